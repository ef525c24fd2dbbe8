"""Offloading blocking calls to worker threads."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import checkpoint_if_cancelled

from ._bridge import Link
from ._lowlevel import PerRun
from ._stats import ThreadPoolStatistics
from ._util import (
    check_bool,
    check_int,
    check_iterable,
    check_optional_str,
    check_sync_callable,
    check_sync_result,
)

__all__ = ["ThreadPool", "iterate_in_threadpool", "run_in_threadpool"]

T = TypeVar("T")
P = ParamSpec("P")

_EXHAUSTED = object()


def _is_thread_cancelled(exc: BaseException) -> bool:
    """
    Whether ``exc`` is :exc:`concurrent.futures.CancelledError` (run_from_thread's).

    Looked up in :data:`sys.modules`: if concurrent.futures was never imported, no
    such error can have been raised, and importing it here would cost every user of
    the thread pool its import (see tests/test_imports.py).
    """
    futures = sys.modules.get("concurrent.futures")
    return futures is not None and isinstance(exc, futures.CancelledError)


def _checked(
    where: str, func: Callable[..., T], call: Callable[[], T]
) -> Callable[[], T]:
    # Runs in the worker thread: a coroutine returned there (``lambda: fetch()``) is
    # closed and rejected with the same TypeError on every backend (trio would name
    # AnyIO's wrapper, asyncio would hand the coroutine back).
    def checked() -> T:
        result = call()
        check_sync_result(where, func, result)
        return result

    return checked


async def run_in_threadpool(
    func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """
    Call ``func(*args, **kwargs)`` in a worker thread and return its result.

    The event loop keeps running while the thread works. The call runs in a copy of the
    caller's :mod:`contextvars` context and is bounded by AnyIO's default thread limiter
    (40 threads unless changed). An exception raised by ``func`` is raised here,
    unwrapped.

    If the awaiting task is cancelled, the call still runs to its end (a thread cannot be
    interrupted); then the cancellation is raised here (the result is discarded). Use :class:`ThreadPool` with
    ``cancellable=True`` to abandon the thread instead.

    ``func`` can call async functions back on this event loop with
    :func:`~anyconc.run_from_thread`; when the caller is cancelled, those calls are
    cancelled (see there).

    Example::

        thumbnail = await run_in_threadpool(create_thumbnail, image, size=(200, 200))

    :param func: a synchronous callable
    :raises TypeError: if ``func`` is not callable (a coroutine object passed instead
        is closed), or is a coroutine function, or returned a coroutine object (which
        is closed: a sync function that returns ``fetch()`` is a mistake the thread
        cannot await; the same error on every backend)

    """
    check_sync_callable(
        "run_in_threadpool()", "func", func, usage="run_in_threadpool({}, ...)"
    )
    try:
        result = await anyio.to_thread.run_sync(
            _checked("run_in_threadpool()", func, partial(func, *args, **kwargs))
        )
    except Exception as exc:
        if not _is_thread_cancelled(exc):
            raise
        # The thread let out the error of a call back into the loop that was cancelled
        # with this caller (see run_from_thread): deliver the caller's cancellation.
        await checkpoint_if_cancelled()
        raise

    # The wait for the thread is shielded, so AnyIO returns the result even if the
    # caller was cancelled meanwhile: deliver that cancellation here, on every backend.
    await checkpoint_if_cancelled()
    return result


def iterate_in_threadpool(iterable: Iterable[T]) -> AsyncIterator[T]:
    """
    Iterate over a blocking iterable, each ``next()`` in a worker thread.

    Example::

        async for line in iterate_in_threadpool(open("big.csv")):
            ...

    :param iterable: any iterable; its iterator is created at once, in the caller
    :return: an async iterator over its items; it ends when the iterator is exhausted
        (``StopIteration`` in the thread ends the iteration cleanly). It is a plain
        iterator, not an async generator, so leaving the loop early needs no
        ``aclosing()``: nothing is left to finalize.
    :raises TypeError: if ``iterable`` is not iterable

    """
    return _ThreadIterator(check_iterable("iterate_in_threadpool()", "iterable", iterable))


class _ThreadIterator(AsyncIterator[T]):
    # Not an async generator: one abandoned by ``break`` would be finalized by the
    # backend's async-generator hooks, and trio warns (ResourceWarning) about those.

    __slots__ = ("_iterator",)

    def __init__(self, iterator: Iterator[T]) -> None:
        self._iterator = iterator

    async def __anext__(self) -> T:
        # next() with a default: StopIteration cannot cross the thread/coroutine boundary.
        item = await anyio.to_thread.run_sync(next, self._iterator, _EXHAUSTED)
        if item is _EXHAUSTED:
            raise StopAsyncIteration

        return item  # type: ignore[return-value]


class ThreadPool:
    """
    A named set of worker threads with its own limit on concurrent calls.

    It bounds how many of *its* calls run at once (``max_workers``), on top of AnyIO's
    shared worker threads, so that one kind of blocking work (say, image processing)
    cannot take every thread. The limit is kept per event-loop run, so a pool created at
    import time works in every run, on every backend; runs at the same time in several
    threads each have their own ``max_workers``.

    On cancellation of the awaiting task: by default the call runs to its end and then
    the cancellation is raised (the result is discarded); with ``cancellable=True`` the
    call is abandoned (the thread runs on, its result is discarded) and the cancellation
    is delivered at once. An abandoned call gives its slot back at once, so while it
    runs on, a cancellable pool can have more than ``max_workers`` threads busy.
    Either way, the thread's calls back into the loop (:func:`~anyconc.run_from_thread`)
    are cancelled with the caller.

    Example::

        images = ThreadPool(2, name="images")
        thumbnail = await images.run(create_thumbnail, image, size=(200, 200))

    :param max_workers: how many calls of this pool may run at once (at least 1)
    :param name: a name, for introspection
    :param cancellable: ``True`` to abandon a call whose caller is cancelled

    """

    def __init__(
        self, max_workers: int, *, name: str | None = None, cancellable: bool = False
    ) -> None:
        check_int("ThreadPool()", "max_workers", max_workers)
        check_optional_str("ThreadPool()", "name", name)
        check_bool("ThreadPool()", "cancellable", cancellable)

        self.max_workers = max_workers
        self.name = name
        self.cancellable: bool = cancellable
        self._limiter = PerRun(lambda: anyio.CapacityLimiter(max_workers))

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """
        Call ``func(*args, **kwargs)`` in a worker thread, within this pool's limit.

        :return: what ``func`` returns; its exception is raised unwrapped
        :raises TypeError: if ``func`` is not callable, or is a coroutine function,
            or returned a coroutine object (closed), as with :func:`run_in_threadpool`

        """
        check_sync_callable("ThreadPool.run()", "func", func, usage="pool.run({}, ...)")
        call: Callable[[], T] = _checked(
            "ThreadPool.run()", func, partial(func, *args, **kwargs)
        )
        link = None
        if self.cancellable:
            # An abandoned thread's calls back into the loop are cancelled with it.
            link = Link()
            call = link.wrap(call)
        try:
            result = await anyio.to_thread.run_sync(
                call, abandon_on_cancel=self.cancellable, limiter=self._limiter.get()
            )
        except BaseException as exc:
            if link is not None:
                link.cancel()
            if _is_thread_cancelled(exc):
                await checkpoint_if_cancelled()  # as in run_in_threadpool
            raise
        # As in run_in_threadpool: a cancellation that arrived while the (shielded)
        # call ran is delivered now, instead of at the caller's next checkpoint.
        await checkpoint_if_cancelled()
        return result

    def statistics(self) -> ThreadPoolStatistics:
        """
        Return a snapshot of the pool's state, in the current run.

        :return: its name and limit, the calls holding a slot and those waiting for one
            (outside a run -- plain code, a worker thread -- those of the latest run
            to use the pool, in any thread), and its cancellation policy

        """
        limiter = self._limiter.get_or_none()
        if limiter is None:  # outside a run: the latest run's, in any thread
            limiter = self._limiter.latest()
        running = waiting = 0
        if limiter is not None:
            stats = limiter.statistics()
            running, waiting = stats.borrowed_tokens, stats.tasks_waiting
        return ThreadPoolStatistics(
            self.name, self.max_workers, running, waiting, self.cancellable
        )

    def __repr__(self) -> str:
        return (
            f"<ThreadPool name={self.name!r} max_workers={self.max_workers} "
            f"cancellable={self.cancellable}>"
        )
