"""Task groups whose tasks have asyncio-style handles, on every backend."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Coroutine, Generator
from contextlib import suppress
from functools import partial
from inspect import CORO_CREATED, getcoroutinestate, iscoroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio import TaskCancelled, TaskNotFinished, get_cancelled_exc_class
from anyio.lowlevel import checkpoint

from ._lowlevel import call_soon, spawn_run_task
from ._util import (
    callable_name,
    check_callable,
    check_coroutine,
    check_optional_str,
    logger,
)

if sys.version_info >= (3, 11):
    from typing import Self, TypeVarTuple, Unpack
else:
    from typing_extensions import Self, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from anyio.abc import TaskGroup as AnyIOTaskGroup

__all__ = [
    "Task",
    "TaskCancelled",
    "TaskGroup",
    "TaskNotFinished",
    "create_task_group",
]

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")


# Task states
_PENDING = 0
_FINISHED = 1
_FAILED = 2
_CANCELLED = 3


class Task(Generic[T]):
    """
    A handle on a task started by :meth:`TaskGroup.create_task` or
    :meth:`TaskGroup.start_soon`, with the surface of :class:`asyncio.Task`.

    ``await task`` waits for the task and returns its result, or raises the exception it
    raised, unwrapped; :exc:`TaskCancelled` if it was cancelled. :meth:`wait` waits
    without raising. The handle works the same on asyncio and trio.

    A task belongs to the event-loop run it was started in.

    Example::

        async with anyconc.TaskGroup() as group:
            user = group.create_task(fetch_user(user_id))
            posts = group.create_task(fetch_posts(user_id))
            return {"user": await user, "posts": await posts}

    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_cancel_requested",
        "_coro",
        "_exception",
        "_handle",
        "_name",
        "_on_finish",
        "_result",
        "_retrieved",
        "_state",
        "_waiter",
    )

    _result: T

    def __init__(self, coro: Coroutine[Any, Any, T], name: str | None) -> None:
        self._coro: Coroutine[Any, Any, T] | None = coro
        self._name = name if name is not None else callable_name(coro)
        self._state = _PENDING
        self._cancel_requested = False
        self._exception: BaseException | None = None
        self._retrieved = False
        self._callbacks: list[Callable[[Task[T]], object]] | None = None
        self._waiter: anyio.Event | None = None
        self._handle: anyio.TaskHandle[None] | None = None
        # Called by _finish() before the done-callbacks: the owner's bookkeeping.
        self._on_finish: Callable[[Task[T]], None] | None = None

    # -- running ----------------------------------------------------------------------

    async def _run(self, propagate: bool = True) -> None:
        # The body of the spawned task. ``propagate`` re-raises a failure into the
        # hosting task group (TaskGroup semantics); background tasks keep it instead.
        if self._cancel_requested:
            self._close_unstarted()
            return

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
            self._finish()
            if propagate:
                raise
        else:
            self._state = _FINISHED
            self._finish()

    def _close_unstarted(self) -> None:
        # Cancelled before it could start (or its owner's run ended first): it counts as
        # cancelled, and its coroutine is closed so that nothing warns it was never
        # awaited.
        if self._coro is not None:
            self._coro.close()

        self._state = _CANCELLED
        self._finish()

    def _finish(self) -> None:
        self._coro = None
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

    def done(self) -> bool:
        """Return ``True`` if the task has finished (returned, raised or was cancelled)."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """Return ``True`` if the task finished because it was cancelled."""
        return self._state == _CANCELLED

    def cancel(self) -> bool:
        """
        Request the cancellation of the task.

        A task that has not started running yet never will (its coroutine is closed),
        as with :meth:`asyncio.Task.cancel`; a running one receives the cancellation at
        its next checkpoint, and may catch it and finish otherwise, as on every backend.

        :return: ``False`` if the task had already finished, ``True`` otherwise

        """
        if self._state != _PENDING:
            return False

        coro = self._coro
        if coro is not None and getcoroutinestate(coro) == CORO_CREATED:
            # Not started yet: it never will be (as with asyncio.Task.cancel()).
            self._cancel_requested = True

        if self._handle is not None:
            self._handle.cancel()

        return True

    def result(self) -> T:
        """
        Return the task's result.

        :raises TaskNotFinished: if the task has not finished yet
        :raises TaskCancelled: if the task was cancelled
        :raises BaseException: the exception the task raised, unwrapped

        """
        state = self._state
        if state == _FINISHED:
            return self._result

        if state == _FAILED:
            self._retrieved = True
            assert self._exception is not None
            raise self._exception

        if state == _CANCELLED:
            raise TaskCancelled("the task was cancelled")

        raise TaskNotFinished("the task has not finished yet")

    def exception(self) -> BaseException | None:
        """
        Return the exception the task raised, or ``None`` if it returned a value.

        :raises TaskNotFinished: if the task has not finished yet
        :raises TaskCancelled: if the task was cancelled

        """
        state = self._state
        if state == _PENDING:
            raise TaskNotFinished("the task has not finished yet")

        if state == _CANCELLED:
            raise TaskCancelled("the task was cancelled")

        self._retrieved = True
        return self._exception

    def add_done_callback(self, fn: Callable[[Task[T]], object]) -> None:
        """
        Call ``fn(task)`` once the task has finished.

        Callbacks run on the event-loop thread, once, in the order they were added, right
        after the task finishes. A callback added to a task that has already finished
        runs at the next scheduling point. An exception raised by a callback is logged
        on the ``anyconc`` logger and goes no further.

        :raises TypeError: if ``fn`` is not callable

        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__qualname__}")

        if self._state != _PENDING:
            call_soon(lambda: self._run_callback(fn))
        elif self._callbacks is None:
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
        """
        if self._state != _PENDING:
            await checkpoint()
            return

        if self._waiter is None:
            self._waiter = anyio.Event()

        await self._waiter.wait()

    async def _wait_result(self) -> T:
        await self.wait()
        return self.result()

    def __await__(self) -> Generator[Any, Any, T]:
        return self._wait_result().__await__()

    def __repr__(self) -> str:
        state = ("pending", "finished", "failed", "cancelled")[self._state]
        return f"<{type(self).__name__} {self._name!r} {state}>"


class TaskGroup:
    """
    A task group (nursery) whose tasks have :class:`Task` handles.

    On exit, the group waits for every task. The first task that raises cancels the
    other tasks and the body of the ``async with`` block; the failures are then raised
    together as an :exc:`ExceptionGroup` (a :exc:`BaseExceptionGroup` if one of them is
    not an :exc:`Exception`), as :class:`asyncio.TaskGroup`, AnyIO and trio do. A
    task's failure that the body re-raises (by ``await task``) is reported once.
    Cancelling the task that hosts the group cancels all its tasks.

    A group can be entered once. ``create_task_group()`` returns a new group that can
    also be used as ``async for group in create_task_group():`` (see
    :func:`create_task_group`).

    Example::

        async with anyconc.TaskGroup() as group:
            a = group.create_task(fetch("a"))
            b = group.start_soon(fetch, "b")
        print(a.result(), b.result())

    :param name: a name for the group, for introspection

    """

    def __init__(self, *, name: str | None = None) -> None:
        check_optional_str("name", name, "TaskGroup()")

        self.name = name
        self._group: AnyIOTaskGroup | None = None
        self._active = False
        self._entered = False
        self._tasks: dict[Task[Any], None] = {}
        # The exceptions of the tasks that failed, to recognise one re-raised by the body.
        self._failures: list[BaseException] = []

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("this task group has already been entered")

        self._entered = True
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._active = True
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
        finally:
            self._active = False

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
        """Cancel every task in the group, and the body of its ``async with`` block."""
        self.cancel_scope.cancel()

    def _forget(self, task: Task[Any]) -> None:
        del self._tasks[task]
        if task._state == _FAILED:
            assert task._exception is not None
            self._failures.append(task._exception)

    def _spawn(self, task: Task[T]) -> Task[T]:
        group = self._group
        coro = task._coro
        assert coro is not None
        if not self._active or group is None:
            coro.close()
            raise RuntimeError(
                "this task group is not active (not entered yet, or already exited); "
                "no new tasks can be started"
            )

        try:
            task._handle = group.create_task(task._run(), name=task._name)
        except BaseException:
            coro.close()
            raise

        task._on_finish = self._forget
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
        :raises RuntimeError: if the group is not active; ``coro`` is closed

        """
        check_coroutine(coro, "create_task", name=name)

        return self._spawn(Task(coro, name))

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
        :raises RuntimeError: if the group is not active

        """
        check_callable(
            "start_soon()",
            "func",
            func,
            usage="start_soon({0}, ...), or create_task({0}(...))",
        )
        check_optional_str("name", name, "start_soon()")
        coro = func(*args)
        if not iscoroutine(coro):
            raise TypeError(
                f"start_soon() expects a coroutine function, but {callable_name(func)!r} "
                f"returned {type(coro).__qualname__}"
            )

        return self._spawn(
            Task(coro, name if name is not None else callable_name(func))
        )

    async def start(
        self,
        func: Callable[..., Coroutine[Any, Any, Any]],
        *args: object,
        name: str | None = None,
    ) -> Any:
        """
        Start ``func(*args, task_status=...)`` as a task of this group and wait until it
        calls ``task_status.started(value)`` (AnyIO's task-status protocol).

        Typed as AnyIO's and trio's ``start()``: the value is ``Any`` (a ``TaskStatus[T]``
        parameter cannot be matched to ``T`` by mypy).

        :return: the value passed to ``task_status.started()``
        :raises TypeError: if ``func`` is not callable (a coroutine object passed
            instead is closed), or ``name`` is not a string
        :raises RuntimeError: if the group is not active, or the task exits without
            calling ``task_status.started()``

        """
        check_callable("start()", "func", func, usage="start({}, ...)")
        check_optional_str("name", name, "start()")
        if not self._active or self._group is None:
            raise RuntimeError(
                "this task group is not active (not entered yet, or already exited); "
                "no new tasks can be started"
            )

        return await self._group.start(func, *args, name=name)


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
        if state.abandoned:
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
    is left); failures nobody will see are logged on the ``anyconc`` logger. A child's
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
    ``async for group in create_task_group():`` (one iteration; the group waits for its
    tasks when the loop ends, and raises their failures as an ``ExceptionGroup``).
    Leaving the ``async for`` loop early, by ``break`` or an exception, cancels every
    task of the group: no task keeps running unobserved. In the ``async for`` form the
    group's tasks run in a task of the event-loop run, so a child's failure cancels its
    siblings, not the loop body; prefer ``async with`` in new code.

    :param name: a name for the group, for introspection

    """
    return TaskGroup(name=name)
