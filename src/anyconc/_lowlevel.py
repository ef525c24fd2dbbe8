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
* a checkpoint (:func:`checkpoint`), the whole cost of an uncontended queue operation.

All four are done here, through ``sniffio``, and nowhere else.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

import sniffio
from anyio import NoEventLoopError
from anyio import current_time as anyio_current_time
from anyio.lowlevel import checkpoint as anyio_checkpoint
from anyio.lowlevel import current_token

if TYPE_CHECKING:
    import asyncio

# asyncio, like trio, is imported in the branch that uses it (already loaded there: sniffio
# reports "asyncio" only for a running asyncio loop), so that `import anyconc` costs trio
# users no asyncio import (about 20 ms).

__all__ = ["call_soon", "checkpoint", "current_run", "current_time", "spawn_run_task"]

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
        import asyncio

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
        import asyncio

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
        import asyncio

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
        import asyncio

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
