"""Background tasks: fire-and-forget work that outlives its caller, on every backend."""

from __future__ import annotations

import contextvars
import math
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio import NoEventLoopError, get_cancelled_exc_class
from anyio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from . import _instrument
from ._instrument import (
    BackgroundDrainFinished,
    BackgroundDrainStarted,
    BackgroundTaskFailed,
    BackgroundTaskStarted,
)
from ._lowlevel import (
    PerRun,
    current_run,
    current_run_or_none,
    current_time,
    interrupt_run,
    ki_protect_on_trio,
    ki_protection_ready,
    spawn_run_task,
)
from ._stats import BackgroundTasksStatistics
from ._tasks import _FAILED, INTERRUPTS, Task, find_interrupt
from ._util import (
    DEBUG,
    WARNING,
    check_coroutine,
    check_int,
    check_optional_str,
    check_shutdown_timeout,
    logger,
    outside_loop_thread,
)

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from exceptiongroup import BaseExceptionGroup
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

# The supervisor that owns the current task's context: set in every background task's
# context (to its supervisor) and by ``async with BackgroundTasks()`` in the entering
# task, so that a task started from there goes to it, also while it drains.
_context_owner: contextvars.ContextVar[BackgroundTasks | None] = contextvars.ContextVar(
    "anyconc_background_owner", default=None
)


def current_owner() -> BackgroundTasks | None:
    """
    Return the supervisor that :func:`create_background_task` would use now, without
    starting the run-wide default one: the innermost active :class:`BackgroundTasks` of
    the run, else the default supervisor if it was started, else ``None``.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """
    state = _run_state()
    owner = _context_owner.get()
    if owner is not None and owner._accepts_from_context():
        return owner

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
    is raised there, unless the block itself is raising: then it is logged (never
    lost). A failure is also logged when its only awaiter is cancelled in the same step
    in which the task fails.

    A ``KeyboardInterrupt`` or ``SystemExit`` raised by the task is not kept as a
    failure: it cancels the supervisor's tasks at once (and the body of its
    ``async with`` block) and goes on to the code that started the run (see
    :class:`BackgroundTasks`).

    Example::

        async with create_background_task(heartbeat()) as task:
            await do_the_work()
        # heartbeat() was cancelled and has finished here

    """

    __slots__ = ("_awaiters", "_in_block", "_waiting_in", "started_at")

    def __init__(
        self,
        coro: Coroutine[Any, Any, T],
        name: str | None,
        *,
        on_finish: Callable[[Task[T]], object] | None = None,
    ) -> None:
        super().__init__(coro, name, on_finish=on_finish)
        self._in_block = False
        # The limit gate the task waits in (not started yet), else None.
        self._waiting_in: _Gate | None = None
        # How many ``await task`` are parked: each will retrieve a failure itself.
        self._awaiters = 0
        #: The event-loop time (``anyio.current_time()``) at which the task was created.
        self.started_at: float = current_time()

    def _log_if_unretrieved(self) -> None:
        exc = self._unretrieved_failure()
        if exc is not None:
            self._mark_retrieved()  # logged once
            logger.error("background task %r failed", self._name, exc_info=exc)

    def _finish(self) -> None:
        super()._finish()
        # After the done-callbacks, which may retrieve the failure; an ``await task``
        # parked here (counted in _awaiters) will retrieve it when it resumes, and a
        # bound block at its exit.
        if self._exception is not None and not self._in_block and not self._awaiters:
            self._log_if_unretrieved()

    def waiting(self) -> bool:
        """
        Return ``True`` while the task waits for room under its supervisor's ``limit``
        (see :class:`BackgroundTasks`): it has not started, its coroutine has not run.
        """
        return self._waiting_in is not None

    def cancel(self, msg: str | None = None) -> bool:
        """
        Request the cancellation of the task (see :meth:`anyconc.Task.cancel`).

        A task still waiting for room under its supervisor's ``limit`` leaves the
        waiting line at once and never runs: its coroutine is closed (no "never
        awaited" warning) and the handle is cancelled at the next scheduling point,
        as for a task cancelled before its first step.

        :param msg: as with :meth:`anyconc.Task.cancel`
        :return: ``False`` if the task had already finished, ``True`` otherwise
        :raises TypeError: if ``msg`` is not a string or ``None``

        """
        gate = self._waiting_in
        requested = super().cancel(msg)  # not started: it never will be
        if gate is not None and requested:
            gate.withdraw(self)

        return requested

    async def _wait_result(self) -> T:
        self._awaiters += 1
        try:
            return await super()._wait_result()
        finally:
            self._awaiters -= 1
            # The awaiter was cancelled in the step in which the task failed: nobody
            # else will retrieve the failure.
            if not self._awaiters and not self._in_block:
                self._log_if_unretrieved()

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
        try:
            with anyio.CancelScope(shield=True):
                await self.wait()
        finally:
            self._in_block = False

        exc = self._unretrieved_failure()
        if exc is None:
            return

        if exc_type is None:
            self._mark_retrieved()
            raise exc

        # The block is raising its own exception: the task's failure is logged, not
        # lost (API.md rule 4).
        self._log_if_unretrieved()


class BackgroundTasksFull(RuntimeError):
    """
    Raised by :meth:`BackgroundTasks.create_task` (and so by
    :func:`create_background_task`) when the supervisor already runs ``limit`` tasks
    and ``pending_limit`` more wait: the coroutine passed is closed, nothing was started.

    A web handler typically answers ``429 Too Many Requests`` with a ``Retry-After``;
    a producer that can wait uses :meth:`BackgroundTasks.spawn` instead.
    """


def check_limits(limit: object, pending_limit: object, where: str) -> None:
    """
    Validate the ``limit`` and ``pending_limit`` of a :class:`BackgroundTasks` (or of
    the ``anyconc.asgi`` helpers that make one; ``where`` names the call).

    :raises TypeError: if one is not an ``int`` (``bool`` included) or ``None``
    :raises ValueError: if one is less than 1, or ``pending_limit`` is given without
        ``limit``
    """
    check_int(where, "limit", limit, optional=True)
    check_int(where, "pending_limit", pending_limit, optional=True)
    if limit is None and pending_limit is not None:
        raise ValueError(
            f"{where} argument 'pending_limit' must be None when 'limit' is None, got "
            f"{pending_limit}: pending_limit needs limit (without limit every task "
            f"starts at once and none waits); set limit too, or leave pending_limit None"
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
    supervisor's one admission path (:meth:`BackgroundTasks._admit`), it counts the
    running tasks, keeps the waiting ones in arrival order (each holding the context it
    was created in: ``Task._defer()``), starts the next one whenever a running one
    finishes, and hands freed room to waiting ``spawn()`` calls in order.

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
        "withdrawn",
    )

    def __init__(
        self, supervisor: BackgroundTasks, limit: int, pending_limit: int | None
    ) -> None:
        self.supervisor = supervisor
        self.limit = limit
        self.pending_limit = pending_limit
        self.running = 0
        self.waiting: OrderedDict[BackgroundTask[Any], None] = OrderedDict()
        # Waiting tasks cancelled: started only to be discarded, they hold no slot.
        self.withdrawn: set[BackgroundTask[Any]] = set()
        self.reserved = 0
        self.spawners: deque[_Spawner] = deque()

    def full(self) -> bool:
        return self.pending_limit is not None and (
            self.running + len(self.waiting) + self.reserved
            >= self.limit + self.pending_limit
        )

    def check_room(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self.full():
            coro.close()
            raise BackgroundTasksFull(
                f"the background tasks supervisor {self.supervisor.name!r} is full: "
                f"{self.running} running (limit={self.limit}) and {len(self.waiting)} "
                f"waiting (pending_limit={self.pending_limit}); try again later, or "
                f"await spawn() to wait for room"
            )

    def admit(self, task: BackgroundTask[Any]) -> None:
        # In front of the supervisor's _admit: run now, or wait (not started) in the
        # creator's context, taken now (rule 9).
        if self.running < self.limit:
            self.running += 1
            self.supervisor._admit(task)
        else:
            task._defer()
            task._waiting_in = self
            self.supervisor._tasks[task] = None
            self.waiting[task] = None

    def finished(self, task: Task[Any]) -> None:
        # The task's on_finish. A running task finished: start the next waiting one
        # (before the supervisor forgets this one, so that a drain never sees it idle
        # while tasks wait).
        if self.withdrawn and task in self.withdrawn:
            self.withdrawn.discard(task)
            self.supervisor._forget(task, started=False)  # it never ran
            return

        self.running -= 1
        if self.waiting:
            following, _ = self.waiting.popitem(last=False)
            following._waiting_in = None
            self.running += 1
            group = self.supervisor._group
            assert group is not None
            # If the supervisor is being cancelled meanwhile (a cancelled host
            # cancels the running tasks, whose ends start the waiting ones), it
            # must not run even its first step.
            self.supervisor._started(following)
            following._start(group, propagate=False, checkpoint_first=True)

        self.wake()
        self.supervisor._forget(task)

    def withdraw(self, task: BackgroundTask[Any]) -> None:
        # A waiting task is cancelled: it leaves the line, and is started at once only
        # to be discarded (Task._run sees the cancellation request first). It takes no
        # running slot.
        del self.waiting[task]
        task._waiting_in = None
        self.withdrawn.add(task)
        group = self.supervisor._group
        assert group is not None
        task._start(group, propagate=False)
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


class BackgroundTasks:
    """
    A supervisor of background tasks, for example for an application's lifespan.

    While its ``async with`` block is active, it is the owner of every
    :func:`create_background_task` call made anywhere in the same event-loop run (by any
    task: request handlers included), unless a more recently entered one is active, or
    the caller belongs to another supervisor (see :func:`create_background_task`).
    The failure of a task never affects the supervisor or the other tasks.

    At exit, it stops accepting new tasks from outside (:meth:`create_task` then raises
    :exc:`RuntimeError`) and drains: it waits up to ``shutdown_timeout`` seconds
    (``None``: as long as it takes) for the running tasks to finish -- including tasks
    that they start meanwhile, which still belong to it -- then cancels those still
    running, logging each on the ``anyconc`` logger, and waits for them.

    How the block ends decides the rest (API.md rules 4 and 7):

    * normally, or by an :exc:`Exception` from the body: the drain above; the body's
      exception then comes out unwrapped (``except ValueError`` catches it);
    * by a cancellation: no drain, the tasks are cancelled at once, and the
      cancellation goes on;
    * by an interrupt (Ctrl-C, ``KeyboardInterrupt`` / ``SystemExit`` from the body
      or from any of its tasks): no drain, the tasks are cancelled at once, and once
      every ``finally`` has run the interrupt comes out, unwrapped, on every backend.

    A supervisor can be created at import time and entered again once a block has
    exited (in the same event-loop run or a later one, on any backend); it cannot be
    active twice at once. Its tasks belong to the run its block is active in: it serves
    one run at a time, and a run in another thread that enters it, or gives it a task,
    while it is active gets a :exc:`RuntimeError`. (The run-wide default supervisor,
    and the innermost-owner bookkeeping, are per run.)

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
        check_optional_str("BackgroundTasks()", "name", name)
        check_shutdown_timeout("BackgroundTasks()", shutdown_timeout)
        check_limits(limit, pending_limit, "BackgroundTasks()")

        self.name = name
        self.shutdown_timeout = shutdown_timeout
        self.limit = limit
        self.pending_limit = pending_limit
        self._gate: _Gate | None = (
            None if limit is None else _Gate(self, limit, pending_limit)
        )
        self._group: AnyIOTaskGroup | None = None
        self._run: object | None = None  # the run the active block is in
        self._accepting = False
        # Draining: only the supervisor's own tasks may still add tasks to it.
        self._draining = False
        self._entered = False
        self._tasks: dict[BackgroundTask[Any], None] = {}
        self._pending: list[BackgroundTask[Any]] = []
        self._idle: anyio.Event | None = None
        self._owner_token: contextvars.Token[BackgroundTasks | None] | None = None
        # Counters since creation, across blocks and runs (see statistics()).
        self._n_started = 0
        self._n_finished = 0
        self._n_failed = 0
        self._n_cancelled_at_shutdown = 0

    def statistics(self) -> BackgroundTasksStatistics:
        """
        Return a snapshot of the supervisor's state and its counters.

        A task counts as started when it really starts: at once, or when it leaves the
        waiting line under ``limit``; a waiting task cancelled before it could start
        counts as neither started nor finished (at shutdown, as cancelled at shutdown).

        :return: its name, whether it accepts tasks, the tasks running and waiting, and
            the tasks started, finished, failed and cancelled at shutdown since it was
            made

        """
        gate = self._gate
        waiting = 0 if gate is None else len(gate.waiting)
        return BackgroundTasksStatistics(
            self.name,
            self._accepting,
            len(self._tasks) - waiting,
            waiting,
            self._n_started,
            self._n_finished,
            self._n_failed,
            self._n_cancelled_at_shutdown,
        )

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

    def _accepts_from_context(self) -> bool:
        # Called with this supervisor as the current context's owner.
        return self._accepting or self._draining

    def create_task(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> BackgroundTask[T]:
        """
        Start ``coro`` as a background task of this supervisor.

        The task runs in a copy of the caller's :mod:`contextvars` context, taken now.
        While the supervisor drains (its block is exiting), only its own tasks may still
        add tasks to it; the drain then waits for those too, within the same
        ``shutdown_timeout``. With a ``limit`` reached, the task waits for room (it has
        not started; see :class:`BackgroundTasks`).

        :param coro: a coroutine object (``send_email(user)``, not ``send_email``)
        :param name: the task's name (default: the coroutine's qualified name)
        :return: the task's handle
        :raises TypeError: if ``coro`` is not a coroutine object
        :raises RuntimeError: if the supervisor is not accepting tasks (not entered yet,
            shutting down, or exited), or is active in another run, or in a run while
            no event loop runs in this thread (a worker thread); ``coro`` is closed
        :raises BackgroundTasksFull: if ``limit`` tasks run and ``pending_limit`` wait
            already; ``coro`` is closed

        """
        check_coroutine(coro, "create_task", name=name)
        run = self._run
        if run is not None and run is not (current := current_run_or_none()):
            coro.close()
            if current is None:
                raise outside_loop_thread(
                    f"BackgroundTasks.create_task() of the active supervisor "
                    f"{self.name!r}",
                    "supervisor.create_task, coro",
                    closed=True,
                )
            raise RuntimeError(
                f"the background tasks supervisor {self.name!r} is active in another "
                f"event-loop run (in another thread); a supervisor serves one run at a "
                f"time: give the task to a supervisor of this run, or use "
                f"create_background_task()"
            )
        return self._create(coro, name, _context_owner.get())

    def _create(
        self,
        coro: Coroutine[Any, Any, T],
        name: str | None,
        caller_owner: BackgroundTasks | None,
    ) -> BackgroundTask[T]:
        # ``caller_owner``: the owner in the caller's context (_context_owner.get()).
        if not self._accepting and not (self._draining and caller_owner is self):
            coro.close()
            raise RuntimeError(
                f"the background tasks supervisor {self.name!r} is not accepting new "
                f"tasks (not entered yet, shutting down, or exited); create the task "
                f"while its async with block is active"
            )

        gate = self._gate
        if gate is None:
            task = BackgroundTask(coro, name, on_finish=self._forget)
        else:
            gate.check_room(coro)
            task = BackgroundTask(coro, name, on_finish=gate.finished)
        if caller_owner is not self:
            # This supervisor owns what the task itself starts: say so in its context
            # (a copy of the caller's, taken now).
            task._set_context_var(_context_owner, self)

        if gate is None:
            self._admit(task)
        else:
            gate.admit(task)  # the limit gate, in front of _admit
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
        :raises TypeError: if ``coro`` is not a coroutine object, or ``name`` is not a
            string (``coro`` is closed)
        :raises RuntimeError: if the supervisor is not accepting tasks; ``coro`` is
            closed

        """
        check_coroutine(coro, "spawn", name=name)
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

    def _admit(self, task: BackgroundTask[Any]) -> None:
        # The one way a new task comes in (a limit gate can sit in front of it; a task
        # made to wait there must take its creator's context first: task._defer()).
        # It is counted at once, and started now (the backend copies the caller's
        # context, or uses the one taken), or as soon as the default supervisor's
        # host runs, in the context taken now: context is copied at creation, always
        # (API.md rule 9).
        self._tasks[task] = None
        self._started(task)
        if self._group is None:
            task._defer()
            self._pending.append(task)
        else:
            task._start(self._group, propagate=False)

    def _started(self, task: BackgroundTask[Any]) -> None:
        # A task starts (admitted to run, or leaving the waiting line under limit).
        self._n_started += 1
        if observers := _instrument.listeners[BackgroundTaskStarted]:
            _instrument.emit(observers, BackgroundTaskStarted(self.name, task._name))

    def _forget(self, task: Task[Any], *, started: bool = True) -> None:
        # ``started``: False for a waiting task cancelled before it could start.
        del self._tasks[task]  # type: ignore[arg-type]
        if started:
            self._n_finished += 1
        # An interrupt is not a failure (it goes on to the code that started the run).
        if task._state is _FAILED and not isinstance(task._exception, INTERRUPTS):
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
            task._start(group, propagate=False)

    async def __aenter__(self) -> Self:
        ki_protection_ready()
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
            if self._gate is not None:  # a fresh one per block: nothing left from the last
                self._gate = _Gate(self, self._gate.limit, self._gate.pending_limit)

        try:
            await self._open()
        except BaseException:
            self._run = None
            self._entered = False
            raise

        _run_state().owners.append(self)
        self._owner_token = _context_owner.set(self)
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

        token, self._owner_token = self._owner_token, None
        if token is not None:
            with suppress(ValueError):  # exited in another context than entered
                _context_owner.reset(token)

        try:
            return await self._close(exc_val)
        finally:
            # Reusable afterwards: by a later block, in this run or another one.
            self._group = None
            self._idle = None
            self._run = None
            self._entered = False

    async def _close(self, exc_val: BaseException | None) -> bool | None:
        """
        Drain (unless ``exc_val`` is an interrupt or a cancellation), cancel what is
        left, wait for it; raise ``exc_val`` unwrapped, or an interrupt raised by a task
        (it wins over anything else), else the group's own exception.
        """
        self._accepting = False
        group = self._group
        assert group is not None
        drain_started_at = current_time()
        finished_before = self._n_finished
        drains = exc_val is None or isinstance(exc_val, Exception)
        if observers := _instrument.listeners[BackgroundDrainStarted]:
            _instrument.emit(
                observers,
                BackgroundDrainStarted(
                    self.name,
                    len(self._tasks),
                    self.shutdown_timeout if drains else 0.0,
                ),
            )
        if self._tasks and drains:
            self._draining = True
            try:
                timeout = (
                    math.inf if self.shutdown_timeout is None else self.shutdown_timeout
                )
                with anyio.move_on_after(timeout):
                    self._idle = anyio.Event()
                    await self._idle.wait()
            except BaseException as exc:  # cancelled or interrupted while draining
                exc_val = exc
            finally:
                self._draining = False

        remaining = len(self._tasks)  # running and waiting
        drained = self._n_finished - finished_before
        self._n_cancelled_at_shutdown += remaining
        quiet = exc_val is not None and not isinstance(exc_val, Exception)
        self._cancel_remaining(DEBUG if quiet else WARNING)
        try:
            return await group.__aexit__(
                None if exc_val is None else type(exc_val),
                exc_val,
                None if exc_val is None else exc_val.__traceback__,
            )
        except BaseException as exc:
            interrupt = find_interrupt(exc)
            if interrupt is not None and interrupt is not exc:
                raise interrupt from None

            if (
                exc_val is not None
                and exc is not exc_val
                and isinstance(exc, BaseExceptionGroup)
                and _only(exc, exc_val)
            ):
                # The body's own exception, wrapped by the task group: unwrap it.
                raise exc_val from None

            raise
        finally:
            # Tasks that the backend cancelled before their first step (asyncio at run
            # end): close their coroutines, so that nothing warns.
            for task in tuple(self._tasks):
                task._settle()
            if observers := _instrument.listeners[BackgroundDrainFinished]:
                _instrument.emit(
                    observers,
                    BackgroundDrainFinished(
                        self.name,
                        drained,
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


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for inner in group.exceptions:
        if isinstance(inner, BaseExceptionGroup):
            yield from _leaves(inner)
        else:
            yield inner


def _only(group: BaseExceptionGroup[BaseException], exc: BaseException) -> bool:
    """Whether ``group`` holds ``exc`` and nothing else but cancellations."""
    cancelled = get_cancelled_exc_class()
    leaves = list(_leaves(group))
    return any(leaf is exc for leaf in leaves) and all(
        leaf is exc or isinstance(leaf, cancelled) for leaf in leaves
    )


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
    # tasks still running. It must raise nothing but that cancellation, or an interrupt
    # raised by one of its tasks, which goes to the code that started the run.
    await supervisor._open()
    try:
        await anyio.sleep_forever()
    except BaseException as exc:
        try:
            await supervisor._close(exc)
        except INTERRUPTS as interrupt:
            if await interrupt_run(interrupt):
                return  # trio: delivered to the main task instead

            raise  # asyncio: it leaves the event loop, which ends the run

        raise


# On trio, a Ctrl-C must not raise KeyboardInterrupt in anyconc's code between
# opening and closing a supervisor's task group (trio's nursery stack would be
# corrupted): it comes at the main task's next checkpoint (see ki_protect_on_trio).
ki_protect_on_trio(
    BackgroundTasks.__aenter__, BackgroundTasks.__aexit__, _host_default_supervisor
)


def _abandon_pending(supervisor: BackgroundTasks) -> None:
    supervisor._accepting = False
    pending, supervisor._pending = supervisor._pending, []
    for task in pending:
        task._discard()


def create_background_task(
    coro: Coroutine[Any, Any, T], *, name: str | None = None
) -> BackgroundTask[T]:
    """
    Start ``coro`` as a background task and return its handle at once.

    A plain function: call it without ``await``, from any task of a running event loop,
    on asyncio or trio. The task is not tied to the caller: it goes on after the caller
    (say, a request handler) has returned. Its owner is, in this order: the supervisor
    of the calling task (when the caller is a background task, or runs inside an
    ``async with BackgroundTasks()`` block, or was started from one, as long as that
    supervisor is active or draining); else the innermost active
    :class:`BackgroundTasks` of the current run; else a run-wide default supervisor
    started on demand. When the run ends, tasks still running in the default supervisor
    are cancelled and awaited, and tasks not started yet are closed, without any
    warning, on every backend.

    The task runs in a copy of the caller's :mod:`contextvars` context taken now, like
    :func:`asyncio.create_task` (also for the first tasks of a run, which wait for the
    default supervisor to start).

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

    caller_owner = owner = _context_owner.get()
    if owner is None or not (owner._accepting or owner._draining):
        owner = state.owners[-1] if state.owners else _default_supervisor(state)

    return owner._create(coro, name, caller_owner)
