"""Background tasks: fire-and-forget work that outlives its caller, on every backend."""

from __future__ import annotations

import contextvars
import logging
import math
import sys
import weakref
from collections import OrderedDict, deque
from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio import NoEventLoopError, get_cancelled_exc_class
from anyio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from ._lowlevel import current_run, current_time, spawn_run_task
from ._tasks import _FAILED, Task, check_coroutine
from ._util import check_optional_str, check_shutdown_timeout

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

if TYPE_CHECKING:
    from anyio.abc import TaskGroup as AnyIOTaskGroup

__all__ = [
    "BackgroundTask",
    "BackgroundTasks",
    "BackgroundTasksFull",
    "create_background_task",
    "current_owner",
]

T = TypeVar("T")

logger = logging.getLogger("anyconc")


class _RunState:
    """What one event-loop run knows about its supervisors."""

    __slots__ = ("default", "owners")

    def __init__(self) -> None:
        # The active BackgroundTasks blocks of the run, innermost last.
        self.owners: list[BackgroundTasks] = []
        # The run-wide default supervisor, started on demand.
        self.default: BackgroundTasks | None = None


# Keyed by the run's token (its event loop, or trio's TrioToken), weakly: the state goes
# with the run. Cheaper than two AnyIO RunVars on create_background_task's path.
_run_states: weakref.WeakKeyDictionary[object, _RunState] = weakref.WeakKeyDictionary()


def _run_state() -> _RunState:
    run = current_run()
    state = _run_states.get(run)
    if state is None:
        state = _run_states[run] = _RunState()

    return state


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

    __slots__ = ("_awaiters", "_in_block", "_waiting_in", "started_at")

    def __init__(self, coro: Coroutine[Any, Any, T], name: str | None) -> None:
        super().__init__(coro, name)
        self._in_block = False
        # The limit gate the task waits in (not started yet), else None.
        self._waiting_in: _Gate | None = None
        # How many ``await task`` are parked: each will retrieve a failure itself.
        self._awaiters = 0
        #: The event-loop time (``anyio.current_time()``) at which the task was created.
        self.started_at = current_time()

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

    def waiting(self) -> bool:
        """
        Return ``True`` while the task waits for room under its supervisor's ``limit``
        (see :class:`BackgroundTasks`): it has not started, its coroutine has not run.
        """
        return self._waiting_in is not None

    def cancel(self) -> bool:
        """
        Request the cancellation of the task (see :meth:`anyconc.Task.cancel`).

        A task still waiting for room under its supervisor's ``limit`` leaves the
        waiting line at once and never runs: its coroutine is closed (no "never
        awaited" warning) and the handle is cancelled at the next scheduling point,
        as for a task cancelled before its first step.

        :return: ``False`` if the task had already finished, ``True`` otherwise

        """
        gate = self._waiting_in
        requested = super().cancel()  # not started: it never will be
        if gate is not None:
            gate.withdraw(self)

        return requested

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


class BackgroundTasksFull(RuntimeError):
    """
    Raised by :meth:`BackgroundTasks.create_task` (and so by
    :func:`create_background_task`) when the supervisor already runs ``limit`` tasks
    and ``pending_limit`` more wait: the coroutine passed is closed, nothing was started.

    A web handler typically answers ``429 Too Many Requests`` with a ``Retry-After``;
    a producer that can wait uses :meth:`BackgroundTasks.spawn` instead.
    """


def check_limits(limit: object, pending_limit: object) -> None:
    """
    Validate the ``limit`` and ``pending_limit`` of a :class:`BackgroundTasks`.

    :raises TypeError: if one is not an ``int`` (``bool`` included) or ``None``
    :raises ValueError: if one is less than 1, or ``pending_limit`` is given without
        ``limit``
    """
    for argument, value in (("limit", limit), ("pending_limit", pending_limit)):
        if value is None:
            continue

        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"{argument} must be a positive int or None, "
                f"got {type(value).__qualname__}"
            )

        if value < 1:
            raise ValueError(
                f"{argument} must be a positive int or None (None: no limit), "
                f"got {value}"
            )

    if limit is None and pending_limit is not None:
        raise ValueError(
            "pending_limit needs limit: without limit every task starts at once and "
            "none waits; set limit too, or leave pending_limit None"
        )


class _Spawner:
    """A :meth:`BackgroundTasks.spawn` call waiting for room."""

    __slots__ = ("event", "gone", "reserved")

    def __init__(self) -> None:
        self.event = anyio.Event()
        # A slot was reserved for this call (it was woken up).
        self.reserved = False
        # The call was cancelled while waiting: skip it.
        self.gone = False


class _Gate:
    """
    The limit gate of a :class:`BackgroundTasks` with a ``limit``: in front of the
    supervisor's usual admission path, it counts the running tasks, keeps the waiting
    ones in arrival order (with the context each was created in), starts the next one
    whenever a running one finishes, and hands freed room to waiting ``spawn()`` calls
    in order.

    Room is counted as: running + waiting + reserved (for woken ``spawn()`` calls that
    have not run yet) <= ``limit + pending_limit``; a task runs at once while fewer
    than ``limit`` run. A gate belongs to one ``async with`` block of its supervisor.
    """

    __slots__ = (
        "limit",
        "pending_limit",
        "reserved",
        "running",
        "spawners",
        "supervisor",
        "waiting",
    )

    def __init__(
        self, supervisor: BackgroundTasks, limit: int, pending_limit: int | None
    ) -> None:
        self.supervisor = supervisor
        self.limit = limit
        self.pending_limit = pending_limit
        self.running = 0
        self.waiting: OrderedDict[BackgroundTask[Any], contextvars.Context] = (
            OrderedDict()
        )
        self.reserved = 0
        self.spawners: deque[_Spawner] = deque()

    def full(self) -> bool:
        return self.pending_limit is not None and (
            self.running + len(self.waiting) + self.reserved
            >= self.limit + self.pending_limit
        )

    def admit(
        self, coro: Coroutine[Any, Any, T], name: str | None
    ) -> BackgroundTask[T]:
        supervisor = self.supervisor
        if self.full():
            coro.close()
            raise BackgroundTasksFull(
                f"the background tasks supervisor {supervisor.name!r} is full: "
                f"{self.running} running (limit={self.limit}) and {len(self.waiting)} "
                f"waiting (pending_limit={self.pending_limit}); try again later, or "
                f"await spawn() to wait for room"
            )

        task = BackgroundTask(coro, name)
        supervisor._tasks[task] = None
        if self.running < self.limit:
            self.running += 1
            task._on_finish = self.finished
            supervisor._spawn(task)
        else:
            task._waiting_in = self
            self.waiting[task] = contextvars.copy_context()  # rule 9: at creation

        return task

    def _start(self, task: BackgroundTask[Any], context: contextvars.Context) -> None:
        group = self.supervisor._group
        assert group is not None
        task._handle = group.create_task(
            task._run(False), name=task._name, context=context
        )

    def finished(self, task: Task[Any]) -> None:
        # A running task finished: start the next waiting one (before the supervisor
        # forgets this one, so that a drain never sees it idle while tasks wait).
        self.running -= 1
        if self.waiting:
            following, context = self.waiting.popitem(last=False)
            following._waiting_in = None
            following._on_finish = self.finished
            self.running += 1
            group = self.supervisor._group
            assert group is not None
            following._handle = group.create_task(
                _run_admitted(following), name=following._name, context=context
            )

        self.wake()
        self.supervisor._forget(task)

    def withdraw(self, task: BackgroundTask[Any]) -> None:
        # A waiting task is cancelled: it leaves the line, and is started at once only
        # to close its coroutine (Task._run sees the cancellation request first). It
        # takes no running slot.
        context = self.waiting.pop(task)
        task._waiting_in = None
        task._on_finish = self.supervisor._forget
        self._start(task, context)
        self.wake()

    def wake(self) -> None:
        # Hand the room there is to the waiting spawn() calls, oldest first.
        spawners = self.spawners
        while spawners and not self.full():
            spawner = spawners.popleft()
            if spawner.gone:
                continue

            spawner.reserved = True
            self.reserved += 1
            spawner.event.set()


async def _run_admitted(task: BackgroundTask[Any]) -> None:
    # A waiting task given room. If its supervisor is being cancelled meanwhile (a
    # cancelled host cancels the running tasks, whose ends would start the waiting
    # ones), it must not run even its first step: close it instead.
    try:
        await checkpoint_if_cancelled()
    except BaseException:
        task._close_unstarted()
        raise

    await task._run(False)


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
    active twice at once.

    **Limits** (as aiojobs' ``Scheduler(limit=, pending_limit=)``, on every backend):
    with ``limit``, at most that many tasks run at once; the others wait, in arrival
    order, and start one by one as running ones finish. A waiting task has not started:
    its coroutine has not run, :meth:`BackgroundTask.waiting` is ``True``, and
    cancelling it closes the coroutine (no warning) so that it never runs. With
    ``pending_limit`` too, at most that many wait: then :meth:`create_task` (and
    :func:`create_background_task`, which cannot wait) raises
    :exc:`BackgroundTasksFull` and closes the coroutine, while :meth:`spawn` waits for
    room (backpressure). A waiting task runs in the context copied when it was created.

    The drain at exit covers waiting tasks: they start as room frees up, within the
    same ``shutdown_timeout``; at the deadline (or when the block is cancelled or
    interrupted) running and waiting tasks are cancelled alike, waiting ones closed
    without having run. Decided here: ``pending_limit`` without ``limit`` is a
    :exc:`ValueError` (nothing would ever wait, so it could only mislead), and
    ``limit`` without ``pending_limit`` lets any number wait.

    Example::

        async with BackgroundTasks(name="app", shutdown_timeout=10) as tasks:
            tasks.create_task(send_email(user))   # or create_background_task(...)
            await serve()

        async with BackgroundTasks(limit=50, pending_limit=500) as tasks:
            for user in users:
                await tasks.spawn(send_email(user))   # waits while 550 are in

    :param name: a name, used in logs
    :param shutdown_timeout: the grace period at exit, in seconds (``None``: no limit)
    :param limit: the most tasks running at once (``None``: no limit)
    :param pending_limit: the most tasks waiting for room while ``limit`` run
        (``None``: no limit); needs ``limit``
    :raises TypeError: if an argument has the wrong type (a ``bool`` is not a limit)
    :raises ValueError: if ``shutdown_timeout`` is negative or NaN, a limit is less
        than 1, or ``pending_limit`` is given without ``limit``

    """

    def __init__(
        self,
        *,
        name: str | None = None,
        shutdown_timeout: float | None = None,
        limit: int | None = None,
        pending_limit: int | None = None,
    ) -> None:
        check_optional_str("name", name)
        check_shutdown_timeout(shutdown_timeout)
        check_limits(limit, pending_limit)

        self.name = name
        self.shutdown_timeout = shutdown_timeout
        self.limit = limit
        self.pending_limit = pending_limit
        self._gate: _Gate | None = (
            None if limit is None else _Gate(self, limit, pending_limit)
        )
        self._group: AnyIOTaskGroup | None = None
        self._accepting = False
        self._entered = False
        self._tasks: dict[BackgroundTask[Any], None] = {}
        self._pending: list[BackgroundTask[Any]] = []
        self._idle: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<BackgroundTasks name={self.name!r} active={len(self._tasks)}>"

    @property
    def active(self) -> tuple[BackgroundTask[Any], ...]:
        """
        The tasks that are still running (or about to start), oldest first; not those
        waiting for room under ``limit`` (see :attr:`waiting`).
        """
        if self._gate is None or not self._gate.waiting:
            return tuple(self._tasks)

        return tuple(task for task in self._tasks if task._waiting_in is None)

    @property
    def waiting(self) -> tuple[BackgroundTask[Any], ...]:
        """The tasks waiting for room under ``limit``, in the order they will start."""
        return () if self._gate is None else tuple(self._gate.waiting)

    def create_task(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> BackgroundTask[T]:
        """
        Start ``coro`` as a background task of this supervisor.

        With a ``limit`` reached, the task waits for room (it has not started; see
        :class:`BackgroundTasks`).

        :param coro: a coroutine object (``send_email(user)``, not ``send_email``)
        :param name: the task's name (default: the coroutine's qualified name)
        :return: the task's handle
        :raises TypeError: if ``coro`` is not a coroutine object
        :raises RuntimeError: if the supervisor is not accepting tasks (not entered yet,
            or shutting down); ``coro`` is closed
        :raises BackgroundTasksFull: if ``limit`` tasks run and ``pending_limit`` wait
            already; ``coro`` is closed

        """
        check_coroutine(coro, "create_task")
        if not self._accepting:
            coro.close()
            raise RuntimeError(
                f"the background tasks supervisor {self.name!r} is not accepting new "
                f"tasks (not entered yet, or shutting down)"
            )

        if self._gate is not None:
            return self._gate.admit(coro, name)

        task = BackgroundTask(coro, name)
        task._on_finish = self._forget
        self._tasks[task] = None
        if self._group is None:
            self._pending.append(task)  # the host of a default supervisor is starting
        else:
            self._spawn(task)

        return task

    async def spawn(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> BackgroundTask[T]:
        """
        Start ``coro`` as a background task of this supervisor, waiting for room first
        if ``limit`` tasks run and ``pending_limit`` wait already (backpressure).

        Calls that wait are given room in the order they came; while they wait,
        :meth:`create_task` calls find the supervisor full (they cannot jump the line).
        Without ``pending_limit`` (or ``limit``) it never waits. As the Queue family's
        operations, it checks for cancellation first and ends with a cancel-shielded
        yield. Cancelled while waiting, it closes ``coro`` and starts nothing. A call
        that is waiting when the supervisor begins to shut down goes on waiting until
        room frees up (the drain starts the waiting tasks, or cancels them at the
        deadline); it then gets the :exc:`RuntimeError` of :meth:`create_task`.

        :param coro: a coroutine object (``send_email(user)``, not ``send_email``)
        :param name: the task's name (default: the coroutine's qualified name)
        :return: the task's handle (the task may be waiting to start)
        :raises TypeError: if ``coro`` is not a coroutine object
        :raises RuntimeError: if the supervisor is not accepting tasks; ``coro`` is
            closed

        """
        check_coroutine(coro, "spawn")
        try:
            await checkpoint_if_cancelled()
        except BaseException:
            coro.close()
            raise

        gate = self._gate
        if gate is not None and self._accepting and gate.full():
            spawner = _Spawner()
            gate.spawners.append(spawner)
            try:
                await spawner.event.wait()
            except BaseException:
                coro.close()
                if spawner.reserved:
                    gate.reserved -= 1  # pass the room on
                    gate.wake()
                else:
                    spawner.gone = True

                raise

            gate.reserved -= 1  # the room reserved for this call is used now
            try:
                task = self.create_task(coro, name=name)
            except BaseException:
                gate.wake()
                raise
        else:
            task = self.create_task(coro, name=name)

        await cancel_shielded_checkpoint()
        return task

    def _spawn(self, task: BackgroundTask[Any]) -> None:
        assert self._group is not None
        task._handle = self._group.create_task(task._run(False), name=task._name)

    def _forget(self, task: Task[Any]) -> None:
        del self._tasks[task]  # type: ignore[arg-type]
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
        if self._entered:
            raise RuntimeError("this background tasks supervisor is already active")

        self._entered = True
        if self._gate is not None:  # a fresh one per block: nothing left from the last
            self._gate = _Gate(self, self._gate.limit, self._gate.pending_limit)

        try:
            await self._open()
        except BaseException:
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
        # No drain on a cancellation or an interrupt (rule 7): only a normal exit or
        # an Exception of the body drains; a waiting task must not start then.
        if self._tasks and (exc_type is None or issubclass(exc_type, Exception)):
            try:
                timeout = (
                    math.inf if self.shutdown_timeout is None else self.shutdown_timeout
                )
                with anyio.move_on_after(timeout):
                    self._idle = anyio.Event()
                    await self._idle.wait()
            except BaseException as exc:  # cancelled (or interrupted) while draining
                exc_type, exc_val, exc_tb = type(exc), exc, exc.__traceback__

        self._cancel_remaining(
            logging.DEBUG
            if exc_type is not None and issubclass(exc_type, cancelled_exc_class)
            else logging.WARNING
        )
        return await group.__aexit__(exc_type, exc_val, exc_tb)

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
    :raises TypeError: if ``coro`` is not a coroutine object
    :raises RuntimeError: if no event loop is running; ``coro`` is closed

    """
    check_coroutine(coro, "create_background_task")
    try:
        state = _run_state()
    except NoEventLoopError:
        coro.close()
        raise RuntimeError(
            "create_background_task() must be called from a task of a running event loop"
        ) from None

    owner = state.owners[-1] if state.owners else _default_supervisor(state)
    return owner.create_task(coro, name=name)
