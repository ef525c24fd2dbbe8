"""
The only backend-specific code in anyconc.

AnyIO has no primitive for two jobs that anyconc needs, and is slower than it could be
for two hot-path ones:

* starting a task that belongs to the *run* rather than to the calling task, so that it
  outlives its caller (the host of the run-wide background supervisor, which trio users
  otherwise cannot have: trio has no ambient nursery), and
* scheduling a plain callback "at the next scheduling point" from synchronous code on the
  event-loop thread (asyncio's ``loop.call_soon``; trio's ``TrioToken.run_sync_soon``).

* the identity of the current event-loop run (:func:`current_run`), looked up by every
  operation of a run-portable object, and
* a checkpoint (:func:`checkpoint`), the whole cost of an uncontended queue operation,
  and its two halves in trio's order (:func:`checkpoint_if_cancelled`, then
  :func:`cancel_shielded_checkpoint` once the operation is done), which the queues
  and the barrier use.

All of these are done here, through ``sniffio``, and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import sys
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

import sniffio
from anyio import NoEventLoopError
from anyio import current_effective_deadline as anyio_current_effective_deadline
from anyio import current_time as anyio_current_time
from anyio.lowlevel import (
    cancel_shielded_checkpoint as anyio_cancel_shielded_checkpoint,
)
from anyio.lowlevel import checkpoint as anyio_checkpoint
from anyio.lowlevel import checkpoint_if_cancelled as anyio_checkpoint_if_cancelled
from anyio.lowlevel import current_token

__all__ = [
    "call_soon",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "checkpointed",
    "current_run",
    "current_time",
    "spawn_run_task",
]

A = TypeVar("A")
R = TypeVar("R")

# asyncio keeps only weak references to tasks: hold the run-level tasks here until done.
_asyncio_run_tasks: set[asyncio.Task[Any]] = set()


def spawn_run_task(
    async_fn: Callable[[], Coroutine[Any, Any, object]],
    *,
    name: str,
    context: contextvars.Context | None = None,
    on_done: Callable[[], object] | None = None,
) -> None:
    """
    Start ``async_fn()`` as a task owned by the current event-loop run.

    The task is not a child of the caller and is not cancelled with it. When the run ends
    (its main task returns or raises), the task is cancelled and awaited by the backend:
    asyncio's runner cancels and gathers the remaining tasks; trio cancels its system
    nursery. ``async_fn`` must let that cancellation propagate and must not raise anything
    else (on trio an exception from a system task crashes the whole run).

    :param async_fn: the coroutine function to run
    :param name: the task's name, for introspection
    :param context: the :mod:`contextvars` context to run it in (default: a copy of the
        caller's)
    :param on_done: called (synchronously, on the event-loop thread) when the task has
        ended, even if it was cancelled before it could start running


    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        if on_done is not None:
            # trio always starts a task's code before delivering a cancellation, so a
            # finally: clause is enough here.
            inner, done = async_fn, on_done

            async def run_then_report() -> object:
                try:
                    return await inner()
                finally:
                    done()

            async_fn = run_then_report

        trio.lowlevel.spawn_system_task(async_fn, name=name, context=context)
    elif library == "asyncio":
        loop = asyncio.get_running_loop()
        coro = async_fn()
        # create_task(context=) is 3.11+; running it in the context gives a copy of it.
        task = (
            loop.create_task(coro, name=name)
            if context is None
            else context.run(loop.create_task, coro, name=name)
        )
        _asyncio_run_tasks.add(task)
        task.add_done_callback(_asyncio_run_tasks.discard)
        if on_done is not None:
            # A task cancelled before its first step never runs its code (the
            # cancellation is thrown in at the start), so report through the task.
            report = on_done
            task.add_done_callback(lambda _: report())
    else:  # pragma: no cover - AnyIO supports no other backend
        raise RuntimeError(f"unsupported async library {library!r}")


def call_soon(callback: Callable[[], object]) -> None:
    """
    Call ``callback()`` on the event-loop thread at the next scheduling point.

    Must be called from the event-loop thread, inside a run. An exception raised by the
    callback is the caller's to prevent (wrap it); the backends would report it as a loop
    error.

    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        trio.lowlevel.current_trio_token().run_sync_soon(callback)
    elif library == "asyncio":
        asyncio.get_running_loop().call_soon(callback)
    else:  # pragma: no cover - AnyIO supports no other backend
        raise RuntimeError(f"unsupported async library {library!r}")


def _running_library() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise NoEventLoopError(
            "not currently running on any asynchronous event loop"
        ) from None


def current_run() -> object:
    """
    Return an object that identifies the event-loop run the caller is in.

    It is the backend's native token, as ``anyio.lowlevel.current_token().native_token``
    gives it (the asyncio event loop, or trio's ``TrioToken``), without building an
    ``EventLoopToken`` on every call. Both live exactly as long as the run
    (``anyio.run`` makes a fresh loop per run), so two runs, one after another or on
    different backends, never share a token.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """
    library = _running_library()

    if library == "asyncio":
        return asyncio.get_running_loop()

    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token()

    return current_token().native_token  # pragma: no cover - any other AnyIO backend


def current_time() -> float:
    """
    Return :func:`anyio.current_time`, without AnyIO's backend lookup.

    :raises anyio.NoEventLoopError: if no event loop is running in this thread

    """
    library = _running_library()

    if library == "asyncio":
        return asyncio.get_running_loop().time()

    if library == "trio":
        import trio

        return trio.current_time()

    return anyio_current_time()  # pragma: no cover - any other AnyIO backend


@types.coroutine
def _asyncio_yield() -> Generator[None, None, None]:
    # A bare yield is exactly asyncio.sleep(0), which is AnyIO's asyncio checkpoint: the
    # task is rescheduled at once, and a pending cancellation (AnyIO delivers it with
    # Task.cancel()) is raised here.
    yield


# trio's checkpoint, bound on first use so that asyncio users never import trio.
_trio_checkpoint: Callable[[], Awaitable[None]] | None = None


async def checkpoint() -> None:
    """
    Do what :func:`anyio.lowlevel.checkpoint` does, with less overhead.

    Dispatching on the library name directly saves AnyIO's backend lookup and one
    coroutine layer: about a quarter of an uncontended queue ``put`` + ``get`` on
    asyncio.
    """
    global _trio_checkpoint
    library = sniffio.current_async_library()
    if library == "asyncio":
        await _asyncio_yield()
    elif library == "trio":
        if _trio_checkpoint is None:
            from trio.lowlevel import checkpoint as trio_checkpoint

            _trio_checkpoint = trio_checkpoint

        await _trio_checkpoint()
    else:  # pragma: no cover - any other AnyIO backend
        await anyio_checkpoint()


# --- the two halves of a checkpoint, in trio's order -----------------------------------

try:
    # AnyIO's own record of each asyncio task's innermost cancel scope (what
    # anyio.lowlevel.checkpoint_if_cancelled() reads on asyncio), read here through
    # its dict of weak references; any change of these internals in a later AnyIO
    # falls back to AnyIO's public check (see _asyncio_cancel_called).
    from anyio._backends._asyncio import _task_states

    _asyncio_task_states: dict[Any, Any] = _task_states.data  # type: ignore[attr-defined]
except (ImportError, AttributeError):  # pragma: no cover
    _asyncio_task_states = {}

if sys.version_info >= (3, 12):
    _asyncio_current_task = asyncio.current_task
else:
    # Before 3.12 asyncio.current_task() is Python code: read the C dict it reads.
    _asyncio_current_tasks: dict[Any, Any] = getattr(
        asyncio.tasks, "_current_tasks", {}
    )

    _get_running_loop = asyncio.events._get_running_loop

    def _asyncio_current_task() -> asyncio.Task[Any] | None:
        return _asyncio_current_tasks.get(_get_running_loop())


_weakref = weakref.ref
_trio_checkpoint_if_cancelled: Callable[[], Awaitable[None]] | None = None
_trio_cancel_shielded_checkpoint: Callable[[], Awaitable[None]] | None = None


def _asyncio_cancel_called() -> bool:
    # What AnyIO's asyncio checkpoint_if_cancelled() tests, without its backend lookup
    # and coroutine layers: is a scope around this task, up to the first shielded one,
    # cancelled? (A pending native Task.cancel() needs no check: it is raised by the
    # next yield anyway.)
    state = _asyncio_task_states.get(_weakref(_asyncio_current_task()))
    if state is None:
        # Not a task AnyIO knows (or other AnyIO internals): ask AnyIO.
        return _asyncio_cancel_called_public()
    try:
        scope = state.cancel_scope
        while scope is not None:
            if scope._cancel_called:
                return True
            if scope._shield:
                return False
            scope = scope._parent_scope
    except AttributeError:  # pragma: no cover - an AnyIO with other internals
        return _asyncio_cancel_called_public()
    return False


def _asyncio_cancel_called_public() -> bool:  # pragma: no cover - see above
    # AnyIO's effective deadline is -inf exactly when a scope around the task (up to
    # the first shielded one) is cancelled.
    return anyio_current_effective_deadline() == -math.inf


def _bind_trio() -> None:
    global _trio_checkpoint_if_cancelled, _trio_cancel_shielded_checkpoint
    from trio.lowlevel import cancel_shielded_checkpoint as shielded
    from trio.lowlevel import checkpoint_if_cancelled as if_cancelled

    _trio_checkpoint_if_cancelled = if_cancelled
    _trio_cancel_shielded_checkpoint = shielded


async def checkpoint_if_cancelled() -> None:
    """
    Do what :func:`anyio.lowlevel.checkpoint_if_cancelled` does, with less overhead.

    If the caller is in a cancelled scope, yield and raise the cancellation; otherwise
    return at once, without yielding. The first half of a checkpoint in trio's order.

    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        # AnyIO delivers the cancellation in the yield (it retries every iteration
        # while a task of a cancelled scope runs); loop as AnyIO does until it has.
        while _asyncio_cancel_called():
            await _asyncio_yield()
    elif library == "trio":
        if _trio_checkpoint_if_cancelled is None:
            _bind_trio()
            assert _trio_checkpoint_if_cancelled is not None
        await _trio_checkpoint_if_cancelled()
    else:  # pragma: no cover - any other AnyIO backend
        await anyio_checkpoint_if_cancelled()


@types.coroutine
def _asyncio_shielded_yield() -> Generator[None, None, None]:
    # A bare yield, as in checkpoint(), but a cancellation that lands in it, whether
    # from an AnyIO scope (delivered with Task.cancel()) or a native Task.cancel()
    # (asyncio.timeout(), wait_for()), is not raised here: it is re-armed for the
    # task's next yield, with the same message and cancel count, which is where a
    # shielded scope would let it through. AnyIO's delivery loop sees it pending
    # (Task._must_cancel) and does not cancel the task a second time.
    try:
        yield
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - a yield runs inside a task
            raise
        if sys.version_info >= (3, 11):
            task.uncancel()
        task.cancel(exc.args[0] if exc.args else None)


async def cancel_shielded_checkpoint() -> None:
    """
    Do what :func:`anyio.lowlevel.cancel_shielded_checkpoint` does, with less overhead.

    Yield to the scheduler once, without raising a cancellation: the second half of a
    checkpoint in trio's order, after the operation. On asyncio a native
    ``Task.cancel()`` that arrives during the yield is not raised here but re-armed
    for the task's next yield (AnyIO's own shielded scope would let it through), so
    an operation that completed never looks cancelled.

    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        await _asyncio_shielded_yield()
    elif library == "trio":
        if _trio_cancel_shielded_checkpoint is None:
            _bind_trio()
            assert _trio_cancel_shielded_checkpoint is not None
        await _trio_cancel_shielded_checkpoint()
    else:  # pragma: no cover - any other AnyIO backend
        await anyio_cancel_shielded_checkpoint()


async def checkpointed(operation: Callable[[A], R], argument: A) -> R:
    """
    Return ``operation(argument)`` as a checkpoint in trio's order, in one dispatch.

    :func:`checkpoint_if_cancelled`, then the synchronous operation, then
    :func:`cancel_shielded_checkpoint`: the tasks that run in the yield see what the
    operation did, and a cancelled caller has not done it. If the operation raises,
    there is no yield (as trio's ``send()`` on a closed channel).

    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        while _asyncio_cancel_called():
            await _asyncio_yield()
        result = operation(argument)
        await _asyncio_shielded_yield()
        return result

    if library == "trio":
        if _trio_checkpoint_if_cancelled is None:
            _bind_trio()
        await _trio_checkpoint_if_cancelled()  # type: ignore[misc]
        result = operation(argument)
        await _trio_cancel_shielded_checkpoint()  # type: ignore[misc]
        return result

    await anyio_checkpoint_if_cancelled()  # pragma: no cover - any other AnyIO backend
    result = operation(argument)  # pragma: no cover
    await anyio_cancel_shielded_checkpoint()  # pragma: no cover
    return result  # pragma: no cover
