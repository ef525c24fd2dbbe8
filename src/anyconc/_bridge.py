"""
The thread bridge: from a worker thread anyconc started, call back into its event loop.

A thread started by :func:`run_in_threadpool`, :meth:`ThreadPool.run`,
:func:`iterate_in_threadpool` (AnyIO worker threads) or by :func:`run_in_executor` with a
:class:`concurrent.futures.ThreadPoolExecutor` knows the event loop that started it, and
:func:`run_from_thread` runs an async function there and returns its result.
:func:`syncify` and :func:`asyncify` are the decorator forms, both ways.

AnyIO worker threads carry AnyIO's own event-loop token; an executor's threads do not
(AnyIO's ``from_thread.run`` raises ``NoEventLoopError`` there), so anyconc wraps the
callable it submits to a thread executor in a :class:`Link` that puts the token in a
thread-local for the duration of the call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sniffio
from anyio import CancelScope, get_cancelled_exc_class
from anyio.lowlevel import EventLoopToken, current_token

from ._util import (
    callable_name,
    check_async_callable,
    check_awaitable_result,
    check_instance,
    check_sync_callable,
)

if TYPE_CHECKING:
    from ._threads import ThreadPool

# asyncio, concurrent.futures and anyio.from_thread (which imports concurrent.futures and
# logging) are imported by the functions that run in a worker thread, not here: see
# tests/test_imports.py (``import anyconc`` and its families load none of them).

__all__ = ["Link", "asyncify", "run_from_thread", "syncify"]

T = TypeVar("T")
P = ParamSpec("P")

_local = threading.local()


class Link:
    """
    What a thread started for one call knows about the event loop and caller behind it.

    Made on the event-loop thread by the caller, before the thread starts; the thread
    sees it through a thread-local while it runs the call (:meth:`wrap`). When the
    caller is cancelled, it calls :meth:`cancel`: the thread's async calls in flight
    are cancelled and later ones are refused, each raising
    :exc:`concurrent.futures.CancelledError` in the thread.
    """

    __slots__ = ("_cancelled", "_lock", "_scopes", "token")

    def __init__(self, token: EventLoopToken | None = None) -> None:
        self.token = current_token() if token is None else token
        self._lock = threading.Lock()
        self._cancelled = False
        self._scopes: set[CancelScope] = set()

    def wrap(self, call: Callable[[], T]) -> Callable[[], T]:
        """Return ``call`` made to run with this link as its thread's link."""
        return functools.partial(self._run, call)

    def _run(self, call: Callable[[], T]) -> T:
        previous = getattr(_local, "link", None)
        _local.link = self
        try:
            return call()
        finally:
            _local.link = previous

    def cancel(self) -> None:
        """Cancel the thread's async calls in flight and refuse later ones (loop thread)."""
        with self._lock:
            self._cancelled = True
            scopes = tuple(self._scopes)

        for scope in scopes:
            scope.cancel()

    def _enter(self, scope: CancelScope) -> None:
        with self._lock:
            if self._cancelled:
                scope.cancel()
            else:
                self._scopes.add(scope)

    def _exit(self, scope: CancelScope) -> None:
        with self._lock:
            self._scopes.discard(scope)


class _Cancelled:
    """What :func:`_call_in_loop` returns to the thread when the call was cancelled."""

    __slots__ = ()


_CANCELLED = _Cancelled()


async def _call_in_loop(
    link: Link | None,
    func: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T | _Cancelled:
    # Runs on the event loop, in a task of its own. A cancellation, whether from the
    # link (the caller was cancelled) or from AnyIO (the worker's caller was cancelled,
    # or the run ends), is returned as a marker, and run_from_thread raises
    # concurrent.futures.CancelledError for it in the thread on every backend (raised
    # here, asyncio would turn it into its own CancelledError, a BaseException).
    cancelled_exc_class = get_cancelled_exc_class()
    try:
        with CancelScope() as scope:
            if link is not None:
                link._enter(scope)
            try:
                result = func(*args, **kwargs)
                # A plain function may return a coroutine (``lambda: fetch()``); one
                # that returns anything else is named, not "object int can't be used
                # in 'await' expression".
                check_awaitable_result("run_from_thread()", func, result)
                return await result
            finally:
                if link is not None:
                    link._exit(scope)
    except cancelled_exc_class:
        pass

    return _CANCELLED


def _run_in_loop(
    link: Link | None, func: Callable[..., Awaitable[T]], args: Any, kwargs: Any
) -> T:
    import asyncio
    from concurrent.futures import CancelledError

    import anyio.from_thread

    try:
        if link is None:
            result = anyio.from_thread.run(_call_in_loop, None, func, args, kwargs)
        else:
            result = anyio.from_thread.run(
                _call_in_loop, link, func, args, kwargs, token=link.token
            )
    except asyncio.CancelledError:
        # The task was cancelled before it could start (the run is ending).
        result = _CANCELLED

    if result is _CANCELLED:
        raise CancelledError(
            f"{callable_name(func)} was cancelled: the caller of this thread was "
            f"cancelled"
        )

    return result  # type: ignore[return-value]


def _on_event_loop_thread() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False

    return True


def run_from_thread(
    func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """
    From a worker thread anyconc started, run ``await func(*args, **kwargs)`` on its loop.

    The threads that know their event loop are those of :func:`run_in_threadpool`,
    :meth:`ThreadPool.run`, :func:`iterate_in_threadpool` (and any AnyIO worker thread),
    and those of a :class:`concurrent.futures.ThreadPoolExecutor` while they run a call
    of :func:`run_in_executor` / :class:`AsyncExecutor`. The thread blocks until the
    call is done; the call runs in a task of its own on the event loop, on every backend
    (asyncio, uvloop, trio), and its exception is raised here, unwrapped.

    Cancellation (a decision, the same on every backend): when the task awaiting the
    thread is cancelled, the calls the thread makes back into the loop are cancelled —
    the one in flight at its next checkpoint, later ones before they start — and each
    raises :exc:`concurrent.futures.CancelledError` in the thread, so that the thread
    can end early. This holds whether the thread is waited for (the default) or
    abandoned (``ThreadPool(cancellable=True)``, ``AsyncExecutor(cancellable=True)``);
    if the thread lets that exception out, the awaiting task sees its own cancellation.
    The call is also cancelled when the event-loop run ends (then ``RuntimeError``,
    AnyIO's ``RunFinishedError``, if it had not started yet).

    Example::

        def on_progress(done: int) -> None:            # called by a blocking library
            anyconc.run_from_thread(progress_queue.put, done)

        await anyconc.run_in_threadpool(convert_video, path, callback=on_progress)

    :param func: an async function (or any callable returning an awaitable)
    :param args: positional arguments for ``func``
    :param kwargs: keyword arguments for ``func``
    :return: what ``func`` returns
    :raises RuntimeError: when called from the event-loop thread itself, or from a
        thread anyconc does not know (not started by it)
    :raises concurrent.futures.CancelledError: if the call was cancelled (see above)
    :raises TypeError: if ``func`` is not callable (a coroutine object is closed), or is
        a generator, async generator or built-in function

    """
    from concurrent.futures import CancelledError

    import anyio.from_thread

    check_async_callable(
        "run_from_thread()", "func", func, usage="run_from_thread({}, ...)"
    )

    link: Link | None = getattr(_local, "link", None)
    if link is not None:
        if link._cancelled:
            raise CancelledError(
                f"{callable_name(func)} was not started: the caller of this thread "
                f"was cancelled"
            )

        return _run_in_loop(link, func, args, kwargs)

    try:
        # An AnyIO worker thread: AnyIO cancels its calls back into the loop with the
        # caller's cancel scope; this refuses the calls made after that, as a link does.
        anyio.from_thread.check_cancelled()
    except anyio.NoEventLoopError:
        pass
    except (KeyboardInterrupt, SystemExit):  # pragma: no cover - not a cancellation
        raise
    except BaseException:
        # The backend's cancellation exception (asyncio's or trio's).
        raise CancelledError(
            f"{callable_name(func)} was not started: the caller of this thread was "
            f"cancelled"
        ) from None
    else:
        return _run_in_loop(None, func, args, kwargs)

    if _on_event_loop_thread():
        raise RuntimeError(
            "run_from_thread() was called from the event loop thread; await "
            f"{callable_name(func)} directly instead"
        )

    raise RuntimeError(
        "run_from_thread() must be called from a worker thread that anyconc started "
        "(run_in_threadpool, ThreadPool.run, iterate_in_threadpool, or run_in_executor "
        "with a ThreadPoolExecutor); this thread has no event loop to call back into. "
        "From any other thread, use anyio.from_thread.run() with a token "
        "(anyio.lowlevel.current_token()) taken on the event loop"
    )


def syncify(func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """
    Make an async function callable from a worker thread anyconc started, blocking.

    ``syncify(func)(*args, **kwargs)`` is ``run_from_thread(func, *args, **kwargs)``:
    the same threads, cancellation and errors (see :func:`run_from_thread`). The
    signature is kept (``ParamSpec``), and so are the name and docstring.

    Example::

        publish_sync = anyconc.syncify(broker.publish)
        await anyconc.run_in_threadpool(legacy_library.run, on_event=publish_sync)

    :param func: an async function
    :return: a synchronous function with the same parameters, returning ``func``'s result
    :raises TypeError: if ``func`` is not callable, or is a synchronous function

    """
    check_async_callable("syncify()", "func", func, usage="syncify({})", decorating=True)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_from_thread(func, *args, **kwargs)

    return wrapper


def asyncify(
    func: Callable[P, T], *, pool: ThreadPool | None = None
) -> Callable[P, Coroutine[Any, Any, T]]:
    """
    Make a blocking function awaitable: each call runs it in a worker thread.

    ``await asyncify(func)(*args, **kwargs)`` is ``await run_in_threadpool(func, *args,
    **kwargs)`` (or ``await pool.run(...)`` with ``pool=``): the same contextvars copy,
    limits, cancellation policy and errors. The signature is kept (``ParamSpec``), and
    so are the name and docstring. Inside, the function can call back into the loop with
    :func:`run_from_thread` / :func:`syncify`.

    Example::

        @anyconc.asyncify
        def resize(image: bytes, width: int) -> bytes:
            ...

        small = await resize(image, width=200)

    :param func: a synchronous callable
    :param pool: a :class:`ThreadPool` to run the calls in (its limit and cancellation
        policy), or ``None`` for AnyIO's default thread limiter
    :return: an async function with the same parameters, returning ``func``'s result
    :raises TypeError: if ``func`` is not callable or is a coroutine function, or
        ``pool`` is not a ``ThreadPool``

    """
    from ._threads import ThreadPool, run_in_threadpool

    check_sync_callable("asyncify()", "func", func, usage="asyncify({})")
    if pool is not None:
        check_instance("asyncify()", "pool", pool, ThreadPool, "a ThreadPool or None")

    if pool is None:

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await run_in_threadpool(func, *args, **kwargs)

    else:
        run = pool.run

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await run(func, *args, **kwargs)

    return wrapper
