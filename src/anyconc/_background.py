"""Background tasks: fire-and-forget work that outlives its caller, on every backend."""

from __future__ import annotations

import contextvars
import math
import sys
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio import NoEventLoopError, get_cancelled_exc_class

from . import _instrument
from ._instrument import (
    BackgroundDrainFinished,
    BackgroundDrainStarted,
    BackgroundTaskFailed,
    BackgroundTaskStarted,
)
from ._lowlevel import PerRun, current_run, current_time, spawn_run_task
from ._stats import BackgroundTasksStatistics
from ._tasks import _FAILED, Task
from ._util import (
    DEBUG,
    WARNING,
    check_coroutine,
    check_optional_str,
    check_shutdown_timeout,
    logger,
)

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

if TYPE_CHECKING:
    from anyio.abc import TaskGroup as AnyIOTaskGroup

__all__ = [
    "BackgroundTask",
    "BackgroundTasks",
    "create_background_task",
    "current_owner",
]

T = TypeVar("T")


class _RunState:
    """What one event-loop run knows about its supervisors."""

    __slots__ = ("default", "owners")

    def __init__(self) -> None:
        # The active BackgroundTasks blocks of the run, innermost last.
        self.owners: list[BackgroundTasks] = []
        # The run-wide default supervisor, started on demand.
        self.default: BackgroundTasks | None = None


# Kept by the run itself (see PerRun): the state, which reaches the run through the
# default supervisor's task group, goes with the run.
_run_states: PerRun[_RunState] = PerRun(_RunState)
_run_state = _run_states.get

# Guards entering a BackgroundTasks (two runs in two threads may try at once).
_enter_lock = threading.Lock()


def current_owner() -> BackgroundTasks | None:
    """
    Return the supervisor that :func:`create_background_task` would use now, without
    starting the run-wide default one: the innermost active :class:`BackgroundTasks` of
    the run, else the default supervisor if it was started, else ``None``.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """
    state = _run_state()
    return state.owners[-1] if state.owners else state.default


class BackgroundTask(Task[T]):
    """
    A handle on a background task (see :func:`create_background_task`).

    It has the whole :class:`~anyconc.Task` surface. A failure of the task stays on the
    handle: it never reaches the supervisor or other tasks. If nobody retrieves it (by
    awaiting the task, or calling :meth:`result` / :meth:`exception`, before or in a
    done-callback), it is logged once, with its traceback, on the ``anyconc`` logger
    when the task fails.

    Used as an async context manager, the task is bound to the block: at exit it is
    cancelled if still running and awaited; if it had failed on its own, its exception
    is raised there (unless the block itself is raising).

    Example::

        async with create_background_task(heartbeat()) as task:
            await do_the_work()
        # heartbeat() was cancelled and has finished here

    """

    __slots__ = ("_awaiters", "_in_block", "started_at")

    def __init__(self, coro: Coroutine[Any, Any, T], name: str | None) -> None:
        super().__init__(coro, name)
        self._in_block = False
        # How many ``await task`` are parked: each will retrieve a failure itself.
        self._awaiters = 0
        #: The event-loop time (``anyio.current_time()``) at which the task was created.
        self.started_at: float = current_time()

    def _finish(self) -> None:
        super()._finish()
        # After the done-callbacks, which may retrieve the failure; an ``await task``
        # parked here (counted in _awaiters) will retrieve it when it resumes.
        if (
            self._state == _FAILED
            and not self._retrieved
            and not self._in_block
            and not self._awaiters
        ):
            logger.error(
                "background task %r failed", self._name, exc_info=self._exception
            )

    async def _wait_result(self) -> T:
        self._awaiters += 1
        try:
            return await super()._wait_result()
        finally:
            self._awaiters -= 1

    async def __aenter__(self) -> Self:
        self._in_block = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.cancel()
        # Even if the block is being cancelled, the task must have finished on exit.
        with anyio.CancelScope(shield=True):
            await self.wait()

        if exc_type is None and self._state == _FAILED:
            self._retrieved = True
            assert self._exception is not None
            raise self._exception


class BackgroundTasks:
    """
    A supervisor of background tasks, for example for an application's lifespan.

    While its ``async with`` block is active, it is the owner of every
    :func:`create_background_task` call made anywhere in the same event-loop run (by any
    task: request handlers included), unless a more recently entered one is active.
    The failure of a task never affects the supervisor or the other tasks.

    At exit, it stops accepting new tasks (:meth:`create_task` then raises
    :exc:`RuntimeError`), waits up to ``shutdown_timeout`` seconds (``None``: as long as
    it takes) for the running tasks to finish, then cancels those still running, logging
    each on the ``anyconc`` logger, and waits for them. If the block exits because it is
    being cancelled, the tasks are cancelled at once.

    A supervisor can be created at import time and entered again once a block has
    exited (in the same event-loop run or a later one, on any backend); it cannot be
    active twice at once. Its tasks belong to the run its block is active in: it serves
    one run at a time, and a run in another thread that enters it, or gives it a task,
    while it is active gets a :exc:`RuntimeError`. (The run-wide default supervisor,
    and the innermost-owner bookkeeping, are per run.)

    Example::

        async with BackgroundTasks(name="app", shutdown_timeout=10) as tasks:
            tasks.create_task(send_email(user))   # or create_background_task(...)
            await serve()

    :param name: a name, used in logs
    :param shutdown_timeout: the grace period at exit, in seconds (``None``: no limit)

    """

    def __init__(
        self, *, name: str | None = None, shutdown_timeout: float | None = None
    ) -> None:
        check_optional_str("name", name, "BackgroundTasks()")
        check_shutdown_timeout(shutdown_timeout, "BackgroundTasks()")

        self.name = name
        self.shutdown_timeout = shutdown_timeout
        self._group: AnyIOTaskGroup | None = None
        self._run: object | None = None  # the run the active block is in
        self._accepting = False
        self._entered = False
        self._tasks: dict[BackgroundTask[Any], None] = {}
        self._pending: list[BackgroundTask[Any]] = []
        self._idle: anyio.Event | None = None
        # Counters since creation, across blocks and runs (see statistics()).
        self._n_started = 0
        self._n_finished = 0
        self._n_failed = 0
        self._n_cancelled_at_shutdown = 0

    def statistics(self) -> BackgroundTasksStatistics:
        """
        Return a snapshot of the supervisor's state and its counters.

        :return: its name, whether it accepts tasks, the tasks running, and the tasks
            started, finished, failed and cancelled at shutdown since it was made

        """
        return BackgroundTasksStatistics(
            self.name,
            self._accepting,
            len(self._tasks),
            self._n_started,
            self._n_finished,
            self._n_failed,
            self._n_cancelled_at_shutdown,
        )

    def __repr__(self) -> str:
        return f"<BackgroundTasks name={self.name!r} active={len(self._tasks)}>"

    @property
    def active(self) -> tuple[BackgroundTask[Any], ...]:
        """The tasks that are still running (or about to start), oldest first."""
        return tuple(self._tasks)

    def create_task(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> BackgroundTask[T]:
        """
        Start ``coro`` as a background task of this supervisor.

        :param coro: a coroutine object (``send_email(user)``, not ``send_email``)
        :param name: the task's name (default: the coroutine's qualified name)
        :return: the task's handle
        :raises TypeError: if ``coro`` is not a coroutine object
        :raises RuntimeError: if the supervisor is not accepting tasks (not entered yet,
            or shutting down); ``coro`` is closed

        """
        check_coroutine(coro, "create_task", name=name)
        if self._run is not None and self._run is not current_run():
            coro.close()
            raise RuntimeError(
                f"the background tasks supervisor {self.name!r} is active in another "
                f"event-loop run (in another thread); a supervisor serves one run at a "
                f"time: give the task to a supervisor of this run, or use "
                f"create_background_task()"
            )
        if not self._accepting:
            coro.close()
            raise RuntimeError(
                f"the background tasks supervisor {self.name!r} is not accepting new "
                f"tasks (not entered yet, or shutting down)"
            )

        task = BackgroundTask(coro, name)
        task._on_finish = self._forget
        self._tasks[task] = None
        self._n_started += 1
        if observers := _instrument.listeners[BackgroundTaskStarted]:
            _instrument.emit(observers, BackgroundTaskStarted(self.name, task._name))
        if self._group is None:
            self._pending.append(task)  # the host of a default supervisor is starting
        else:
            self._spawn(task)

        return task

    def _spawn(self, task: BackgroundTask[Any]) -> None:
        assert self._group is not None
        task._handle = self._group.create_task(task._run(False), name=task._name)

    def _forget(self, task: Task[Any]) -> None:
        del self._tasks[task]  # type: ignore[arg-type]
        self._n_finished += 1
        if task._state == _FAILED:
            self._n_failed += 1
            if observers := _instrument.listeners[BackgroundTaskFailed]:
                assert task._exception is not None
                _instrument.emit(
                    observers,
                    BackgroundTaskFailed(self.name, task._name, task._exception),
                )
        if not self._tasks and self._idle is not None:
            self._idle.set()

    async def _open(self) -> None:
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._accepting = True
        pending, self._pending = self._pending, []
        for task in pending:
            self._spawn(task)

    async def __aenter__(self) -> Self:
        run = current_run()
        with _enter_lock:
            if self._entered:
                raise RuntimeError(
                    "this background tasks supervisor is already active"
                    + (
                        ""
                        if self._run is None or self._run is run
                        else " in another event-loop run (in another thread)"
                    )
                )
            self._entered = True
            self._run = run

        try:
            await self._open()
        except BaseException:
            self._run = None
            self._entered = False
            raise

        _run_state().owners.append(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        owners = _run_state().owners
        if self in owners:
            owners.remove(self)

        try:
            return await self._close(exc_type, exc_val, exc_tb)
        finally:
            # Reusable afterwards: by a later block, in this run or another one.
            self._group = None
            self._idle = None
            self._run = None
            self._entered = False

    async def _close(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        self._accepting = False
        group = self._group
        assert group is not None
        cancelled_exc_class = get_cancelled_exc_class()
        drain_started_at = current_time()
        finished_before = self._n_finished
        cancelling = exc_type is not None and issubclass(exc_type, cancelled_exc_class)
        if observers := _instrument.listeners[BackgroundDrainStarted]:
            _instrument.emit(
                observers,
                BackgroundDrainStarted(
                    self.name,
                    len(self._tasks),
                    0.0 if cancelling else self.shutdown_timeout,
                ),
            )
        if self._tasks and not (
            exc_type is not None and issubclass(exc_type, cancelled_exc_class)
        ):
            try:
                timeout = (
                    math.inf if self.shutdown_timeout is None else self.shutdown_timeout
                )
                with anyio.move_on_after(timeout):
                    self._idle = anyio.Event()
                    await self._idle.wait()
            except BaseException as exc:  # cancelled (or interrupted) while draining
                exc_type, exc_val, exc_tb = type(exc), exc, exc.__traceback__

        remaining = len(self._tasks)
        self._n_cancelled_at_shutdown += remaining
        self._cancel_remaining(
            DEBUG
            if exc_type is not None and issubclass(exc_type, cancelled_exc_class)
            else WARNING
        )
        try:
            return await group.__aexit__(exc_type, exc_val, exc_tb)
        finally:
            if observers := _instrument.listeners[BackgroundDrainFinished]:
                _instrument.emit(
                    observers,
                    BackgroundDrainFinished(
                        self.name,
                        self._n_finished - finished_before - remaining,
                        remaining,
                        current_time() - drain_started_at,
                    ),
                )

    def _cancel_remaining(self, level: int) -> None:
        for task in self._tasks:
            logger.log(
                level,
                "cancelling background task %r at shutdown of %r",
                task.name,
                self.name,
            )
            task.cancel()


def _default_supervisor(state: _RunState) -> BackgroundTasks:
    supervisor = state.default
    if supervisor is None:
        supervisor = BackgroundTasks(name="anyconc default")
        supervisor._accepting = True  # tasks wait in _pending until the host runs
        state.default = supervisor
        spawn_run_task(
            lambda: _host_default_supervisor(supervisor),
            name="anyconc background supervisor",
            context=contextvars.Context(),
            on_done=lambda: _abandon_pending(supervisor),
        )

    return supervisor


async def _host_default_supervisor(supervisor: BackgroundTasks) -> None:
    # Runs until the event-loop run ends; then the backend cancels it, which cancels the
    # tasks still running. It must raise nothing but that cancellation.
    await supervisor._open()
    try:
        await anyio.sleep_forever()
    except BaseException as exc:
        await supervisor._close(type(exc), exc, exc.__traceback__)
        raise


def _abandon_pending(supervisor: BackgroundTasks) -> None:
    supervisor._accepting = False
    pending, supervisor._pending = supervisor._pending, []
    for task in pending:
        task._close_unstarted()


def create_background_task(
    coro: Coroutine[Any, Any, T], *, name: str | None = None
) -> BackgroundTask[T]:
    """
    Start ``coro`` as a background task and return its handle at once.

    A plain function: call it without ``await``, from any task of a running event loop,
    on asyncio or trio. The task is not tied to the caller: it goes on after the caller
    (say, a request handler) has returned. Its owner is the innermost active
    :class:`BackgroundTasks` of the current run, or else a run-wide default supervisor
    started on demand; when the run ends, tasks still running there are cancelled and
    awaited cleanly.

    The handle is a :class:`BackgroundTask`: ``done()``, ``result()``, ``cancel()``,
    ``await task``, and ``async with create_background_task(...) as task:`` to bind the
    task to a block.

    Example::

        async def signup(user):
            await save(user)
            create_background_task(send_welcome_email(user))
            return {"status": "ok"}   # the email is still sent

    :param coro: a coroutine object
    :param name: the task's name (default: the coroutine's qualified name)
    :return: the task's handle
    :raises TypeError: if ``coro`` is not a coroutine object, or ``name`` is not a
        string (``coro`` is closed)
    :raises RuntimeError: if no event loop is running; ``coro`` is closed

    """
    check_coroutine(coro, "create_background_task", name=name)

    try:
        state = _run_state()
    except NoEventLoopError:
        coro.close()
        raise RuntimeError(
            "create_background_task() must be called from a task of a running event loop"
        ) from None

    owner = state.owners[-1] if state.owners else _default_supervisor(state)
    return owner.create_task(coro, name=name)
