"""Task groups whose tasks have asyncio-style handles, on every backend."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Coroutine, Generator
from contextlib import suppress
from functools import partial
from inspect import CORO_CREATED, getcoroutinestate, iscoroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

import anyio
from anyio import TaskCancelled, TaskNotFinished, get_cancelled_exc_class
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from ._lowlevel import (
    call_soon,
    current_run_or_none,
    get_ident,
    interrupt_run,
    ki_protect_on_trio,
    ki_protection_ready,
    spawn_ki_protected,
    spawn_run_task,
)
from ._util import (
    callable_name,
    check_callable,
    check_coroutine,
    check_optional_str,
    in_another_run,
    logger,
    outside_loop_thread,
)

if sys.version_info >= (3, 11):
    from typing import Self, TypeVarTuple, Unpack
else:
    from exceptiongroup import BaseExceptionGroup
    from typing_extensions import Self, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from anyio.abc import TaskGroup as AnyIOTaskGroup
    from anyio.abc import TaskStatus as AnyIOTaskStatus

__all__ = [
    "Task",
    "TaskCancelled",
    "TaskGroup",
    "TaskNotFinished",
    "create_task_group",
]

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")

# TaskGroup.start() is typed through one protocol per number of positional arguments:
# mypy cannot yet solve a TypeVarTuple and the TaskStatus value type together (it infers
# Never), while these overloads give the exact value type on mypy and pyright alike.
StartedT_co = TypeVar("StartedT_co", covariant=True)
A1_contra = TypeVar("A1_contra", contravariant=True)
A2_contra = TypeVar("A2_contra", contravariant=True)
A3_contra = TypeVar("A3_contra", contravariant=True)
A4_contra = TypeVar("A4_contra", contravariant=True)


class _Startable0(Protocol[StartedT_co]):
    def __call__(
        self, *, task_status: AnyIOTaskStatus[StartedT_co]
    ) -> Coroutine[Any, Any, object]: ...


class _Startable1(Protocol[A1_contra, StartedT_co]):
    def __call__(
        self, arg1: A1_contra, /, *, task_status: AnyIOTaskStatus[StartedT_co]
    ) -> Coroutine[Any, Any, object]: ...


class _Startable2(Protocol[A1_contra, A2_contra, StartedT_co]):
    def __call__(
        self,
        arg1: A1_contra,
        arg2: A2_contra,
        /,
        *,
        task_status: AnyIOTaskStatus[StartedT_co],
    ) -> Coroutine[Any, Any, object]: ...


class _Startable3(Protocol[A1_contra, A2_contra, A3_contra, StartedT_co]):
    def __call__(
        self,
        arg1: A1_contra,
        arg2: A2_contra,
        arg3: A3_contra,
        /,
        *,
        task_status: AnyIOTaskStatus[StartedT_co],
    ) -> Coroutine[Any, Any, object]: ...


class _Startable4(Protocol[A1_contra, A2_contra, A3_contra, A4_contra, StartedT_co]):
    def __call__(
        self,
        arg1: A1_contra,
        arg2: A2_contra,
        arg3: A3_contra,
        arg4: A4_contra,
        /,
        *,
        task_status: AnyIOTaskStatus[StartedT_co],
    ) -> Coroutine[Any, Any, object]: ...


#: The states of a task, the members of :class:`anyio.TaskHandle.Status`: ``PENDING``
#: (not finished: not started yet, or running), ``CANCELLING`` (:meth:`Task.cancel` was
#: called, not finished yet), then one of ``FINISHED`` (returned), ``FAILED`` (raised)
#: and ``CANCELLED``.
TaskStatus = anyio.TaskHandle.Status
_PENDING = TaskStatus.PENDING
_CANCELLING = TaskStatus.CANCELLING
_FINISHED = TaskStatus.FINISHED
_FAILED = TaskStatus.FAILED
_CANCELLED = TaskStatus.CANCELLED

#: What is an interrupt rather than a failure (API.md rule 7). On asyncio, a task that
#: raises one of these lets it escape the event loop (``asyncio.Task`` re-raises it out
#: of the loop), so the parent's ``except``/``finally`` would never run.
INTERRUPTS = (KeyboardInterrupt, SystemExit)


class Interrupted(Exception):
    """
    Carries an interrupt (``KeyboardInterrupt`` / ``SystemExit``) out of a child task.

    Internal: raised by a child instead of the interrupt so that asyncio does not let
    the interrupt escape the event loop; the group then cancels the siblings like for
    any failure, and the parent replaces it by the interrupt (:func:`unwrap_interrupts`).
    Never seen by users.
    """

    def __init__(self, interrupt: BaseException) -> None:
        super().__init__(interrupt)
        self.interrupt = interrupt


def unwrap_interrupts(exc: BaseException) -> BaseException:
    """
    Return ``exc`` with every :class:`Interrupted` carrier replaced by its interrupt.

    A group that contains none is returned as is; otherwise a new group (a
    :exc:`BaseExceptionGroup`, since it then holds an interrupt) with the same message,
    traceback, cause and context.
    """
    if isinstance(exc, Interrupted):
        return exc.interrupt

    if isinstance(exc, BaseExceptionGroup):
        if exc.subgroup(lambda e: isinstance(e, Interrupted)) is None:
            return exc

        group = BaseExceptionGroup(
            exc.message, [unwrap_interrupts(e) for e in exc.exceptions]
        )
        group.__traceback__ = exc.__traceback__
        group.__cause__ = exc.__cause__
        group.__context__ = exc.__context__
        group.__suppress_context__ = exc.__suppress_context__
        return group

    return exc


def find_interrupt(exc: BaseException) -> BaseException | None:
    """Return the first interrupt (carried or not) in ``exc`` or its groups, if any."""
    if isinstance(exc, Interrupted):
        return exc.interrupt

    if isinstance(exc, INTERRUPTS):
        return exc

    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_interrupt(inner)
            if found is not None:
                return found

    return None


def _wrong_thread(call: str, owner: str, run_sync_args: str) -> RuntimeError:
    """
    The error of a call that only the thread of the owner's run may make, made in
    another thread: one that runs no event loop (a worker thread, plain code), or one
    that runs another event-loop run.

    :param call: the call and what it was made on, for the message
    :param owner: the kind of object that belongs to one run (``"task"``)
    :param run_sync_args: the arguments of the ``anyio.from_thread.run_sync()`` call a
        worker thread should make instead (``"task.cancel"``)
    """
    if current_run_or_none() is None:
        return outside_loop_thread(call, run_sync_args)
    return in_another_run(call, owner)


class Task(Generic[T]):
    """
    A handle on a task started by :meth:`TaskGroup.create_task` or
    :meth:`TaskGroup.start_soon`, with the surface of :class:`asyncio.Task`.

    ``await task`` waits for the task and returns its result, or raises the exception it
    raised, unwrapped; :exc:`TaskCancelled` if it was cancelled. :meth:`wait` waits
    without raising. The handle works the same on asyncio and trio. A task that awaits
    its own handle (or calls its :meth:`wait`) gets a :exc:`RuntimeError` instead of
    waiting for itself forever, as with asyncio.

    A task belongs to the event-loop run it was started in. Until it has finished,
    cancelling it, awaiting it or adding a done-callback to it in another thread than
    its run's (a worker thread, or another run) raises :exc:`RuntimeError` and changes
    nothing: the backends are not thread-safe. Once it has finished, its result reads
    anywhere. Its coroutine runs in a copy of the :mod:`contextvars` context of the
    code that created the task, taken at creation, as with :func:`asyncio.create_task`
    (even when the task starts later).

    A ``KeyboardInterrupt`` or ``SystemExit`` raised by the task is an interrupt, not a
    failure: it is kept on the handle like an exception, and it also goes to the task's
    owner (the group, or the background supervisor), which cancels everything it holds
    and passes the interrupt on towards the code that started the run, on every backend.

    Example::

        async with anyconc.TaskGroup() as group:
            user = group.create_task(fetch_user(user_id))
            posts = group.create_task(fetch_posts(user_id))
            return {"user": await user, "posts": await posts}

    """

    # The internal interface, used by TaskGroup, _background and _fanout (nothing else
    # touches the attributes), so that the lifecycle lives here: the constructor's
    # ``on_finish``; _start() (spawn in an AnyIO task group now); _defer() (take the
    # creator's context now, for a later start); _set_context_var() (set a variable in
    # the task's context when it starts); _run() (the body, for code that runs it
    # inline); _discard() (will never start: close the coroutine, quietly); _settle()
    # (the owner's group has exited); _unretrieved_failure() and _mark_retrieved().

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_cancel_message",
        "_context",
        "_context_var",
        "_coro",
        "_exception",
        "_handle",
        "_name",
        "_on_finish",
        "_result",
        "_retrieved",
        "_runner",
        "_state",
        "_thread",
        "_waiter",
    )

    _result: T

    def __init__(
        self,
        coro: Coroutine[Any, Any, T],
        name: str | None,
        *,
        on_finish: Callable[[Task[T]], object] | None = None,
    ) -> None:
        self._coro: Coroutine[Any, Any, T] | None = coro
        self._name = name if name is not None else callable_name(coro)
        self._state = _PENDING
        self._cancel_message: str | None = None
        self._exception: BaseException | None = None
        self._retrieved = False
        self._callbacks: list[Callable[[Task[T]], object]] | None = None
        self._waiter: anyio.Event | None = None
        self._handle: anyio.TaskHandle[None] | None = None
        # The coroutine of _run() handed to the backend, and the context to start it in.
        self._runner: Coroutine[Any, Any, None] | None = None
        self._context: contextvars.Context | None = None
        self._context_var: tuple[contextvars.ContextVar[Any], object] | None = None
        # Called by _finish() before the done-callbacks: the owner's bookkeeping.
        self._on_finish = on_finish
        # The thread of the run the task belongs to (a task is made in its run's thread).
        self._thread = get_ident()

    # -- internal interface -------------------------------------------------------------

    def _start(
        self,
        group: AnyIOTaskGroup,
        *,
        propagate: bool = True,
        checkpoint_first: bool = False,
    ) -> None:
        """
        Spawn the task in ``group`` now (in the context snapshot of :meth:`_defer`, if
        any, else the caller's). If spawning fails, the coroutine is closed.

        ``checkpoint_first``: check for a cancellation before the task's first step,
        and if there is one, discard the task instead of running any of its code (a
        task that waited and is started while its owner is being cancelled, on trio
        too, where a new task runs until its first checkpoint).
        """
        runner = self._runner = self._run(propagate, checkpoint_first)
        context = self._context
        try:
            # KI-protected on trio: a Ctrl-C landing inside trio's start_soon would leave
            # a task that never runs and that its task group waits for forever.
            self._context = None
            self._handle = spawn_ki_protected(
                group.create_task, runner, self._name, context
            )
        except BaseException:
            runner.close()
            self._runner = None
            if self._coro is not None:
                self._coro.close()
            raise

    def _defer(self) -> None:
        """
        Take the creator's context for the task now (unless taken already), for a
        start that may come later: call it in the creator's context.
        """
        if self._context is None:
            self._context = contextvars.copy_context()

    def _set_context_var(self, var: contextvars.ContextVar[Any], value: object) -> None:
        """
        Have ``var`` set to ``value`` in the task's context, first thing when it runs
        (cheaper than copying a context to set it in).
        """
        self._context_var = (var, value)

    async def _run(self, propagate: bool = True, checkpoint_first: bool = False) -> None:
        """
        The body of the task. ``propagate`` re-raises a failure into the hosting task
        group (TaskGroup semantics); background tasks keep it instead. An interrupt
        always goes on, carried by :class:`Interrupted`. ``checkpoint_first``: see
        :meth:`_start`.
        """
        if checkpoint_first:
            try:
                await checkpoint_if_cancelled()
            except BaseException:
                self._discard()
                raise

        if self._state is _CANCELLING:  # cancelled before it started: it never will
            self._discard()
            return

        if self._context_var is not None:
            var, value = self._context_var
            var.set(value)  # in the task's own context

        coro = self._coro
        assert coro is not None
        try:
            self._result = await coro
        except BaseException as exc:
            if isinstance(exc, get_cancelled_exc_class()):
                self._state = _CANCELLED
                self._finish()
                raise

            self._state = _FAILED
            self._exception = exc
            if isinstance(exc, INTERRUPTS):
                self._retrieved = True  # it goes on: it is not lost
                self._finish()
                raise Interrupted(exc) from None

            self._finish()
            if propagate:
                raise
        else:
            self._state = _FINISHED
            self._finish()

    def _discard(self) -> None:
        """
        The task will never start (cancelled before it could, or its owner's run ended
        first): it counts as cancelled, and its coroutine is closed so that nothing
        warns it was never awaited.
        """
        if self._state is not _PENDING and self._state is not _CANCELLING:
            return

        if self._coro is not None:
            self._coro.close()

        runner, self._runner = self._runner, None
        if runner is not None and getcoroutinestate(runner) == CORO_CREATED:
            runner.close()

        self._context = None
        self._state = _CANCELLED
        self._finish()

    def _settle(self) -> None:
        """
        The owner's task group has exited: a task that is still not done was cancelled
        by the backend before its first step (asyncio does that at run end, without
        running any of its code). Discard it cleanly.
        """
        if self._state is _PENDING or self._state is _CANCELLING:
            self._discard()

    def _unretrieved_failure(self) -> BaseException | None:
        """The task's exception if it failed and nobody has retrieved it, else None."""
        if self._state is _FAILED and not self._retrieved:
            return self._exception

        return None

    def _mark_retrieved(self) -> None:
        self._retrieved = True

    def _finish(self) -> None:
        self._coro = None
        self._runner = None
        if self._on_finish is not None:
            self._on_finish(self)

        if self._waiter is not None:
            self._waiter.set()

        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for callback in callbacks:
                self._run_callback(callback)

    def _run_callback(self, callback: Callable[[Task[T]], object]) -> None:
        try:
            callback(self)
        except Exception:
            logger.exception("exception in done callback %r of %r", callback, self)

    # -- asyncio.Task-like surface ------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's name (the coroutine's qualified name unless one was given)."""
        return self._name

    def get_name(self) -> str:
        """Return the task's name (:attr:`name`), as :meth:`asyncio.Task.get_name`."""
        return self._name

    def set_name(self, value: object) -> None:
        """
        Set the task's name, as :meth:`asyncio.Task.set_name` (any object; its ``str()``
        is used). The name of the underlying backend task is not changed.
        """
        self._name = str(value)

    def get_coro(self) -> Coroutine[Any, Any, T] | None:
        """
        Return the task's coroutine, as :meth:`asyncio.Task.get_coro`; ``None`` once the
        task has finished (the handle does not keep it alive).
        """
        return self._coro

    def done(self) -> bool:
        """Return ``True`` if the task has finished (returned, raised or was cancelled)."""
        state = self._state
        return state is not _PENDING and state is not _CANCELLING

    def cancelled(self) -> bool:
        """Return ``True`` if the task finished because it was cancelled."""
        return self._state is _CANCELLED

    def cancel(self, msg: str | None = None) -> bool:
        """
        Request the cancellation of the task.

        A task that has not started running yet never will (its coroutine is closed),
        as with :meth:`asyncio.Task.cancel`; a running one receives the cancellation at
        its next checkpoint, and may catch it and finish otherwise, as on every backend.

        A task that has finished can be asked from anywhere (``False``, as
        :meth:`asyncio.Task.cancel`). One that is still running can only be cancelled
        from its event loop's thread: a call from a thread that runs no event loop (a
        worker thread, or plain code) raises :exc:`RuntimeError` and changes nothing
        (the backends' cancellation is not thread-safe, as asyncio's is not); from a
        worker thread, use ``anyio.from_thread.run_sync(task.cancel)``.

        :param msg: as with :meth:`asyncio.Task.cancel`: the message of the
            :exc:`TaskCancelled` that :meth:`result` and ``await task`` raise if the task
            ends cancelled (the backends' own cancellation exception inside the task
            does not carry it: trio's cannot)
        :return: ``False`` if the task had already finished, ``True`` otherwise
        :raises TypeError: if ``msg`` is not a string or ``None``
        :raises RuntimeError: if the task is still running and the call is made in
            another thread than its run's (where no event loop runs, or another run)

        """
        check_optional_str("Task.cancel()", "msg", msg)

        state = self._state
        if state is not _PENDING and state is not _CANCELLING:
            return False

        if get_ident() != self._thread or current_run_or_none() is None:
            raise _wrong_thread(
                f"Task.cancel() of the unfinished task {self._name!r}",
                "task",
                "task.cancel",
            )

        self._state = _CANCELLING
        if msg is not None:
            self._cancel_message = msg

        if self._handle is not None:
            self._handle.cancel()

        return True

    def _cancelled_error(self) -> TaskCancelled:
        message = self._cancel_message
        return TaskCancelled(message if message is not None else "the task was cancelled")

    def result(self) -> T:
        """
        Return the task's result.

        :raises TaskNotFinished: if the task has not finished yet
        :raises TaskCancelled: if the task was cancelled (with the message given to
            :meth:`cancel`, if any)
        :raises BaseException: the exception the task raised, unwrapped

        """
        state = self._state
        if state is _FINISHED:
            return self._result

        if state is _FAILED:
            self._retrieved = True
            assert self._exception is not None
            raise self._exception

        if state is _CANCELLED:
            raise self._cancelled_error()

        raise TaskNotFinished("the task has not finished yet")

    def exception(self) -> BaseException | None:
        """
        Return the exception the task raised, or ``None`` if it returned a value.

        :raises TaskNotFinished: if the task has not finished yet
        :raises TaskCancelled: if the task was cancelled

        """
        state = self._state
        if state is _PENDING or state is _CANCELLING:
            raise TaskNotFinished("the task has not finished yet")

        if state is _CANCELLED:
            raise self._cancelled_error()

        self._retrieved = True
        return self._exception

    def add_done_callback(self, fn: Callable[[Task[T]], object]) -> None:
        """
        Call ``fn(task)`` once the task has finished.

        Callbacks run on the event-loop thread, once, in the order they were added, right
        after the task finishes. A callback added to a task that has already finished
        runs at the next scheduling point of the caller's run; where there is no run to
        schedule it in (the task's run has ended, or the caller is a worker thread),
        it is called at once, in the caller's thread, as :mod:`concurrent.futures`
        does. An exception raised by a callback is logged on the ``anyconc`` logger and
        goes no further.

        To an unfinished task, a callback is added from its event loop's thread only, as
        with :meth:`asyncio.Future.add_done_callback` (the task could finish in between:
        the callback would be lost); from a worker thread, use
        ``anyio.from_thread.run_sync(task.add_done_callback, fn)``.

        :raises TypeError: if ``fn`` is not callable
        :raises RuntimeError: if the task has not finished and the call is made in
            another thread than the task's run

        """
        check_callable("Task.add_done_callback()", "fn", fn)

        if self.done():
            if current_run_or_none() is None:
                self._run_callback(fn)
            else:
                call_soon(lambda: self._run_callback(fn))
            return

        if get_ident() != self._thread:
            raise _wrong_thread(
                f"Task.add_done_callback() of the unfinished task {self._name!r}",
                "task",
                "task.add_done_callback, fn",
            )

        if self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[Task[T]], object]) -> int:
        """
        Remove every registration of ``fn`` as a done-callback.

        :return: the number of registrations removed

        """
        if not self._callbacks:
            return 0

        kept = [callback for callback in self._callbacks if callback != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    async def wait(self) -> None:
        """
        Wait until the task has finished, however it finished. Never raises the task's
        exception (only a cancellation of the waiting task itself).

        :raises RuntimeError: if called by the task itself (it would wait forever),
            or, before the task has finished, in another event-loop run than the
            task's (a run in another thread)

        """
        if self.done():
            await checkpoint()
            return

        if get_ident() != self._thread:
            raise in_another_run(
                f"await of the unfinished task {self._name!r} (or its wait())", "task"
            )

        coro = self._coro
        if coro is not None and getattr(coro, "cr_running", False):
            raise RuntimeError(
                f"task {self._name!r} cannot wait for itself: awaiting its own handle "
                f"would never return; await it from another task"
            )

        if self._waiter is None:
            self._waiter = anyio.Event()

        await self._waiter.wait()

    async def _wait_result(self) -> T:
        await self.wait()
        return self.result()

    def __await__(self) -> Generator[Any, Any, T]:
        return self._wait_result().__await__()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {self._state.name.lower()}>"


class TaskGroup:
    """
    A task group (nursery) whose tasks have :class:`Task` handles.

    On exit, the group waits for every task. The first task that raises cancels the
    other tasks and the body of the ``async with`` block; the failures are then raised
    together as an :exc:`ExceptionGroup` (a :exc:`BaseExceptionGroup` if one of them is
    not an :exc:`Exception`), as :class:`asyncio.TaskGroup`, AnyIO and trio do. A
    task's failure that the body re-raises (by ``await task``) is reported once.
    Cancelling the task that hosts the group cancels all its tasks.

    A group belongs to the event-loop run that entered it: while it is active, starting
    a task in it or cancelling it in another thread than its run's (a worker thread, or
    another run) raises :exc:`RuntimeError` and changes nothing.

    A ``KeyboardInterrupt`` or ``SystemExit`` in a task cancels the others and the body
    like a failure, and comes out of the group in the :exc:`BaseExceptionGroup`, on
    asyncio too (where a bare task would let it escape the event loop), once every
    ``finally`` of the cancelled tasks has run.

    A group can be entered again once its block has exited (so one made at import time
    serves any number of runs); entering it while it is active raises
    :exc:`RuntimeError`. ``create_task_group()`` returns a new group that can also be
    used as ``async for group in create_task_group():`` (see
    :func:`create_task_group`).

    Example::

        async with anyconc.TaskGroup() as group:
            a = group.create_task(fetch("a"))
            b = group.start_soon(fetch, "b")
        print(a.result(), b.result())

    :param name: a name for the group, for introspection

    """

    def __init__(self, *, name: str | None = None) -> None:
        check_optional_str("TaskGroup()", "name", name)

        self.name = name
        self._group: AnyIOTaskGroup | None = None
        self._active = False
        self._thread = 0  # the thread of the run the group is active in
        self._tasks: dict[Task[Any], None] = {}
        # The exceptions of the tasks that failed, to recognise one re-raised by the body.
        self._failures: list[BaseException] = []

    async def __aenter__(self) -> Self:
        if self._active:
            raise RuntimeError(
                "this task group is already active; it can be entered again once its "
                "async with block has exited (or use a new TaskGroup)"
            )

        ki_protection_ready()
        self._active = True
        self._thread = get_ident()
        self._tasks = {}
        self._failures = []
        group = anyio.create_task_group()
        try:
            await group.__aenter__()
        except BaseException:
            self._active = False
            raise

        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        if exc_val is not None and any(exc_val is exc for exc in self._failures):
            # The body re-raised a task's failure (``await task``): it is already among
            # the group's failures, so report it once, as asyncio.TaskGroup does.
            exc_type = exc_val = exc_tb = None

        try:
            return await self._group.__aexit__(exc_type, exc_val, exc_tb)
        except BaseException as exc:
            unwrapped = unwrap_interrupts(exc)
            if unwrapped is exc:
                raise

            raise unwrapped from None
        finally:
            self._active = False
            # Tasks that the backend cancelled before their first step (asyncio at run
            # end): close their coroutines, so that nothing warns.
            for task in tuple(self._tasks):
                task._settle()

    def __aiter__(self) -> _TaskGroupIteration:
        return _TaskGroupIteration(self)

    @property
    def cancel_scope(self) -> anyio.CancelScope:
        """
        The cancel scope of the group (cancelling it cancels every task and the body).

        :raises RuntimeError: if the group has not been entered

        """
        if self._group is None:
            raise RuntimeError("the task group has not been entered")

        return self._group.cancel_scope

    @property
    def tasks(self) -> tuple[Task[Any], ...]:
        """The tasks of this group that are still running, in the order they started."""
        return tuple(self._tasks)

    def cancel(self) -> None:
        """
        Cancel every task in the group, and the body of its ``async with`` block.

        Once the block has exited, there is nothing left to cancel: the call does
        nothing (from any thread, also after the run has ended), as cancelling a
        finished task does nothing. While the group is active, call it from its
        event loop's thread (from a worker thread:
        ``anyio.from_thread.run_sync(group.cancel)``).

        :raises RuntimeError: if the group has not been entered, or if it is active
            and the call is made in another thread than its run's (where no event
            loop runs, or another run)

        """
        scope = self.cancel_scope
        if not self._active:
            return

        if get_ident() != self._thread or current_run_or_none() is None:
            raise _wrong_thread(
                "TaskGroup.cancel() of an active task group", "task group", "group.cancel"
            )

        scope.cancel()

    def _forget(self, task: Task[Any]) -> None:
        del self._tasks[task]
        if task._state is _FAILED:
            assert task._exception is not None
            self._failures.append(task._exception)

    def _check_active(self, call: str, *, closes: bool = False) -> AnyIOTaskGroup:
        """
        Return the AnyIO task group to start a task in.

        :param call: the call starting it, for the messages
        :param closes: whether the caller closes its coroutine if this raises
        :raises RuntimeError: if the group is not active, or is active in a run in
            another thread
        """
        group = self._group
        if not self._active or group is None:
            raise RuntimeError(
                "this task group is not active (not entered yet, or already exited); "
                "no new tasks can be started"
            )

        if get_ident() != self._thread and current_run_or_none() is not None:
            raise in_another_run(
                f"{call} of an active task group", "task group", closed=closes
            )

        return group

    def _spawn(self, coro: Coroutine[Any, Any, T], name: str | None) -> Task[T]:
        try:
            group = self._check_active(
                "TaskGroup.create_task() and start_soon()", closes=True
            )
        except RuntimeError:
            coro.close()
            raise

        task = Task(coro, name, on_finish=self._forget)
        try:
            task._start(group)  # closes the coroutine if it fails
        except anyio.NoEventLoopError:
            raise outside_loop_thread(
                "TaskGroup.create_task() and start_soon() of an active task group",
                "group.create_task, coro",
                closed=True,
            ) from None
        self._tasks[task] = None
        return task

    def create_task(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> Task[T]:
        """
        Start running ``coro`` as a task of this group.

        :param coro: a coroutine object (``fetch()``, not ``fetch``)
        :param name: the task's name (default: the coroutine's qualified name)
        :return: the task's handle
        :raises TypeError: if ``coro`` is not a coroutine object, or ``name`` is not a
            string (``coro`` is closed)
        :raises RuntimeError: if the group is not active, or no event loop runs in
            this thread (a worker thread); ``coro`` is closed

        """
        check_coroutine(coro, "create_task", name=name)

        return self._spawn(coro, name)

    def start_soon(
        self,
        func: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        *args: Unpack[PosArgsT],
        name: str | None = None,
    ) -> Task[T]:
        """
        Start running ``func(*args)`` as a task of this group.

        :param func: a coroutine function
        :param args: positional arguments for ``func``
        :param name: the task's name (default: the function's qualified name)
        :return: the task's handle
        :raises TypeError: if ``func`` is not callable (a coroutine object passed
            instead is closed), does not return a coroutine, or ``name`` is not a
            string
        :raises RuntimeError: if the group is not active, or no event loop runs in
            this thread (a worker thread)

        """
        check_callable(
            "start_soon()",
            "func",
            func,
            usage="start_soon({0}, ...), or create_task({0}(...))",
        )
        check_optional_str("start_soon()", "name", name)
        coro = func(*args)
        if not iscoroutine(coro):
            raise TypeError(
                f"start_soon() expects a coroutine function, but {callable_name(func)!r} "
                f"returned {type(coro).__qualname__}"
            )

        return self._spawn(coro, name if name is not None else callable_name(func))

    @overload
    async def start(
        self, func: _Startable0[StartedT_co], /, *, name: str | None = None
    ) -> StartedT_co: ...

    @overload
    async def start(
        self,
        func: _Startable1[A1_contra, StartedT_co],
        arg1: A1_contra,
        /,
        *,
        name: str | None = None,
    ) -> StartedT_co: ...

    @overload
    async def start(
        self,
        func: _Startable2[A1_contra, A2_contra, StartedT_co],
        arg1: A1_contra,
        arg2: A2_contra,
        /,
        *,
        name: str | None = None,
    ) -> StartedT_co: ...

    @overload
    async def start(
        self,
        func: _Startable3[A1_contra, A2_contra, A3_contra, StartedT_co],
        arg1: A1_contra,
        arg2: A2_contra,
        arg3: A3_contra,
        /,
        *,
        name: str | None = None,
    ) -> StartedT_co: ...

    @overload
    async def start(
        self,
        func: _Startable4[A1_contra, A2_contra, A3_contra, A4_contra, StartedT_co],
        arg1: A1_contra,
        arg2: A2_contra,
        arg3: A3_contra,
        arg4: A4_contra,
        /,
        *,
        name: str | None = None,
    ) -> StartedT_co: ...

    @overload
    async def start(
        self,
        func: Callable[..., Coroutine[Any, Any, object]],
        arg1: object,
        arg2: object,
        arg3: object,
        arg4: object,
        arg5: object,
        /,
        *args: object,
        name: str | None = None,
    ) -> Any: ...

    async def start(
        self,
        func: Callable[..., Coroutine[Any, Any, object]],
        /,
        *args: object,
        name: str | None = None,
    ) -> Any:
        """
        Start ``func(*args, task_status=...)`` as a task of this group and wait until it
        calls ``task_status.started(value)`` (AnyIO's task-status protocol).

        Typed more exactly than AnyIO's and trio's ``start()`` (which return ``Any``):
        with up to four positional arguments, the type checkers check them against
        ``func``'s parameters and give the call the type ``T`` of its
        ``task_status: anyio.abc.TaskStatus[T]`` parameter. An untyped ``func`` and
        five or more arguments give ``Any``, as in AnyIO.

        Example::

            async def serve(port: int, *, task_status: anyio.abc.TaskStatus[str]) -> None:
                ...
                task_status.started(f"listening on {port}")
                ...

            async with create_task_group() as group:
                address = await group.start(serve, 8080)  # a str to the checkers

        The task is listed in :attr:`tasks` from the moment it starts running until it
        finishes, like the others. An interrupt it raises before calling
        ``task_status.started()`` is raised here, unwrapped.

        :return: the value passed to ``task_status.started()``
        :raises TypeError: if ``func`` is not callable (a coroutine object passed
            instead is closed), does not return a coroutine, or ``name`` is not a
            string
        :raises RuntimeError: if the group is not active, or the task exits without
            calling ``task_status.started()``

        """
        check_callable("start()", "func", func, usage="start({}, ...)")
        check_optional_str("start()", "name", name)
        group = self._check_active("TaskGroup.start()")

        task_name = name if name is not None else callable_name(func)

        async def run_started(*, task_status: AnyIOTaskStatus[Any]) -> None:
            coro = func(*args, task_status=task_status)
            if not iscoroutine(coro):
                raise TypeError(
                    f"start() expects a coroutine function, but {callable_name(func)!r} "
                    f"returned {type(coro).__qualname__}"
                )

            task: Task[Any] = Task(coro, task_name, on_finish=self._forget)
            self._tasks[task] = None
            await task._run()

        try:
            return await group.start(run_started, name=task_name)
        except Interrupted as exc:
            raise exc.interrupt from None


# On trio, a Ctrl-C must not raise KeyboardInterrupt in anyconc's code between
# opening and closing the group's AnyIO task group (trio's nursery stack would be
# corrupted): it comes at the main task's next checkpoint (see ki_protect_on_trio).
ki_protect_on_trio(TaskGroup.__aenter__, TaskGroup.__aexit__)


class _HostState:
    """
    What the host task of an ``async for`` group shares with its iterator.

    The host must not reference the iterator itself: the iterator has to be freed (and
    its ``__del__`` run) as soon as the loop is left by ``break`` or an exception, while
    the host is still running.
    """

    __slots__ = ("abandoned", "entered", "error", "finished", "group", "release")

    def __init__(self, group: TaskGroup) -> None:
        self.group = group
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.finished = anyio.Event()
        self.error: BaseException | None = None
        self.abandoned = False

    def abandon(self) -> None:
        # Synchronous: cancel every task of the group and let the host exit it.
        self.abandoned = True
        if self.group._group is not None:
            self.group._group.cancel_scope.cancel()

        self.release.set()


async def _host_group(state: _HostState) -> None:
    try:
        async with state.group:
            state.entered.set()
            await state.release.wait()
    except get_cancelled_exc_class():
        raise  # the run is ending: let the backend finish this task
    except BaseException as exc:
        state.error = exc
        interrupt = find_interrupt(exc) if state.abandoned else None
        if interrupt is not None:
            # Nobody will see the group's exception now; an interrupt is not a failure
            # to log: it ends the run (API.md rule 7).
            if not await interrupt_run(interrupt):
                raise interrupt from None
        elif state.abandoned:
            logger.error(
                "task group %r failed after its async for loop was left",
                state.group.name,
                exc_info=exc,
            )
    finally:
        state.entered.set()
        state.finished.set()


class _TaskGroupIteration:
    """
    The ``async for group in create_task_group():`` form: one iteration.

    The body of an ``async for`` loop can be left by ``break`` or an exception without
    the iterator being told, so the group cannot be entered in the caller's task like
    ``async with`` does (its cancel scope would stay open). Instead the group is hosted
    by a task of the event-loop run: the first step starts the host and hands out the
    group, the second (the loop ending normally) waits for every task and raises their
    failures as an ``ExceptionGroup``. Leaving the loop early cancels every task of the
    group at once (when CPython frees this iterator, which it does as soon as the loop
    is left) but cannot wait for them: nothing runs between ``break`` and the next
    statement; failures nobody will see are logged on the ``anyconc`` logger. A child's
    failure cancels its siblings but not the loop body. If the caller is cancelled while
    the loop ends, the group is cancelled and waited for; then its failures are raised
    if it had any (as ``async with`` does), else the cancellation.
    """

    def __init__(self, group: TaskGroup) -> None:
        self._group = group
        self._step = 0
        self._state: _HostState | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> TaskGroup:
        if self._step == 0:
            self._step = 1
            state = self._state = _HostState(self._group)
            spawn_run_task(
                partial(_host_group, state),
                name="anyconc task group host",
                context=contextvars.copy_context(),
            )
            try:
                await state.entered.wait()
            except BaseException:
                # Cancelled before the loop body could start: nobody will ever see
                # the group, so do not leave it open.
                self._step = 2
                state.abandon()
                raise

            if state.error is not None:
                self._step = 2
                raise state.error

            return self._group

        if self._step == 1:
            self._step = 2
            hosted = self._state
            assert hosted is not None
            hosted.release.set()
            try:
                await hosted.finished.wait()
            except get_cancelled_exc_class():
                self._group.cancel()
                with anyio.CancelScope(shield=True):
                    await hosted.finished.wait()

                if hosted.error is None:
                    raise

            if hosted.error is not None:
                raise hosted.error

        raise StopAsyncIteration

    def __del__(self) -> None:
        # The loop was left by break or an exception: stop everything now. This runs
        # synchronously at that point, on the event-loop thread (CPython frees the
        # iterator as soon as the loop is left).
        if self._step == 1 and self._state is not None:
            self._step = 2
            # An exception here means the run is already gone: nothing left to stop.
            with suppress(Exception):
                self._state.abandon()


def create_task_group(*, name: str | None = None) -> TaskGroup:
    """
    Create a :class:`TaskGroup`.

    Use it as ``async with create_task_group() as group:``, or as
    ``async for group in create_task_group():`` (one iteration). In the ``async for``
    form:

    * a loop that runs to its end waits for every task, and raises their failures as
      an ``ExceptionGroup``, like ``async with``;
    * a loop left early (``break``, ``return``, an exception) cancels every task of the
      group at once, but *cannot wait for them*: Python calls nothing on the iterator
      at that point, so no implementation can. The code after the loop starts while
      their cleanup (``finally`` blocks) is still to run. Their failures are logged on
      the ``anyconc`` logger, and nothing warns if the run ends meanwhile. Code that
      must leave early *and* wait uses ``async with``;
    * the group's tasks run in a task of the event-loop run, so a child's failure
      cancels its siblings, not the loop body.

    Prefer ``async with`` in new code.

    :param name: a name for the group, for introspection

    """
    return TaskGroup(name=name)
