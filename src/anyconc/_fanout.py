"""Bounded fan-out: gather, amap and as_completed with concurrency limits."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from inspect import CORO_CREATED, getcoroutinestate, isawaitable, iscoroutine
from typing import Any, TypeVar

import anyio
from anyio import get_cancelled_exc_class
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint
from anyio.streams.memory import MemoryObjectReceiveStream

from ._tasks import INTERRUPTS, Interrupted, Task, find_interrupt, unwrap_interrupts

__all__ = ["amap", "as_completed", "gather"]

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")


def _check_limit(limit: object) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(
            f"limit must be a positive integer or None, got {type(limit).__qualname__}"
        )
    if limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit}")


def _check_awaitables(aws: tuple[object, ...], caller: str) -> None:
    for index, aw in enumerate(aws):
        if not isawaitable(aw):
            hint = "; call it" if callable(aw) else ""
            raise TypeError(
                f"{caller}() argument {index} must be awaitable, got "
                f"{type(aw).__qualname__}{hint}"
            )


def _close_unstarted(aws: Iterable[object]) -> None:
    # A coroutine that never got to run is closed, so that nothing warns it was never
    # awaited (the caller gave it to us; it is ours to dispose of).
    for aw in aws:
        if iscoroutine(aw) and getcoroutinestate(aw) == CORO_CREATED:
            aw.close()


async def _await(aw: Awaitable[T]) -> T:
    return await aw


@asynccontextmanager
async def _unwrapping_interrupts() -> AsyncIterator[None]:
    # Around a task group whose children carry interrupts: the caller gets
    # KeyboardInterrupt / SystemExit in the group (rule 7), as on trio.
    try:
        yield
    except BaseException as exc:
        unwrapped = unwrap_interrupts(exc)
        if unwrapped is exc:
            raise

        raise unwrapped from None


async def gather(
    *aws: Awaitable[T], limit: int | None = None, return_exceptions: bool = False
) -> list[T]:
    """
    Run awaitables concurrently and return their results, in argument order.

    Coroutines, :class:`~anyconc.Task` handles and any other awaitables are accepted.
    With ``limit``, at most that many run at once (the others start as slots free up,
    in argument order). Without ``return_exceptions``, the first failure cancels the
    others and every failure is raised in an :exc:`ExceptionGroup`; with it, an
    :exc:`Exception` raised by an awaitable is put in its place in the result list
    (anything that is not an :exc:`Exception`, such as a cancellation, still
    propagates). Coroutines that never got to start are closed. A ``KeyboardInterrupt``
    or ``SystemExit`` raised by an awaitable is an interrupt, not a failure: it cancels
    the others and comes out in a :exc:`BaseExceptionGroup` (whatever
    ``return_exceptions`` says), on asyncio too, where a bare task would let it escape
    the event loop.

    Example::

        pages = await gather(*(fetch(url) for url in urls), limit=10)

    :param aws: the awaitables
    :param limit: how many may run at once (``None``: all)
    :param return_exceptions: put exceptions in the results instead of raising
    :return: the results, in the order of ``aws``
    :raises ExceptionGroup: the failures, without ``return_exceptions``
    :raises TypeError: if an argument is not awaitable (its position is named), or
        ``limit`` is not an integer
    :raises ValueError: if ``limit`` is less than 1

    """
    try:
        _check_awaitables(aws, "gather")
        _check_limit(limit)
    except BaseException:
        _close_unstarted(aws)
        raise

    count = len(aws)
    results: list[Any] = [None] * count
    if not count:
        await checkpoint()
        return results

    async def run_one(index: int) -> None:
        try:
            results[index] = await aws[index]
        except Exception as exc:
            if not return_exceptions:
                raise

            results[index] = exc
        except INTERRUPTS as exc:
            raise Interrupted(exc) from None  # see _tasks.Interrupted

    try:
        async with _unwrapping_interrupts(), anyio.create_task_group() as group:
            if limit is None or limit >= count:
                for index in range(count):
                    group.start_soon(run_one, index)
            else:
                indexes = iter(range(count))

                async def worker() -> None:
                    for index in indexes:
                        await run_one(index)

                for _ in range(limit):
                    group.start_soon(worker)
    finally:
        _close_unstarted(aws)

    return results


async def amap(
    func: Callable[[A], Awaitable[R]],
    items: Iterable[A],
    *,
    limit: int | None = None,
    max_per_second: float | None = None,
) -> list[R]:
    """
    Call ``func(item)`` concurrently for every item and return the results in order.

    A compatible superset of :func:`anyio.amap`. ``items`` may be any iterable, also a
    lazy or endless-looking one: with ``limit``, items are pulled only as slots free up,
    so at most ``limit`` items are in flight (the memory in use does not grow with the
    number of items, apart from the result list). ``max_per_second`` spaces the calls'
    starts evenly, ``1 / max_per_second`` seconds apart (no bursts), measured with the
    event-loop clock. The first failure cancels the calls in flight, stops pulling
    items, and every failure is raised in an :exc:`ExceptionGroup`.

    Example::

        sizes = await amap(download, urls, limit=10, max_per_second=5)

    :param func: an async function of one argument
    :param items: the arguments
    :param limit: how many calls may run at once (``None``: all)
    :param max_per_second: the highest rate at which calls start (``None``: no limit)
    :return: ``[await func(item) for item in items]``, computed concurrently
    :raises ExceptionGroup: the failures
    :raises TypeError: if ``func`` is not callable, ``items`` is not iterable, or
        ``limit`` is not an integer
    :raises ValueError: if ``limit`` is less than 1 or ``max_per_second`` is not positive

    """
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__qualname__}")
    _check_limit(limit)
    interval = 0.0
    if max_per_second is not None:
        if isinstance(max_per_second, bool) or not isinstance(
            max_per_second, (int, float)
        ):
            raise TypeError(
                f"max_per_second must be a number or None, got "
                f"{type(max_per_second).__qualname__}"
            )
        if not max_per_second > 0 or math.isinf(max_per_second):
            raise ValueError(
                f"max_per_second must be a positive finite number, got {max_per_second}"
            )
        interval = 1 / max_per_second
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(
            f"items must be iterable, got {type(items).__qualname__}"
        ) from None

    results: list[Any] = []
    next_start = -math.inf

    async def call(index: int, item: A) -> None:
        nonlocal next_start
        if interval:
            now = anyio.current_time()
            start = max(now, next_start + interval)
            next_start = start
            if start > now:
                await anyio.sleep_until(start)

        try:
            results[index] = await func(item)
        except INTERRUPTS as exc:
            raise Interrupted(exc) from None  # see _tasks.Interrupted

    async with _unwrapping_interrupts(), anyio.create_task_group() as group:
        if limit is None:
            for index, item in enumerate(iterator):
                results.append(None)
                group.start_soon(call, index, item)
        else:
            numbered = enumerate(iterator)

            async def worker() -> None:
                for index, item in numbered:
                    results.append(None)
                    await call(index, item)

            for _ in range(limit):
                group.start_soon(worker)

    return results


class _CompletedTasks(AsyncIterator[Task[T]]):
    """The iterator of :func:`as_completed`: finished tasks, in completion order."""

    def __init__(self, receive: MemoryObjectReceiveStream[Task[T]], count: int) -> None:
        self._receive = receive
        self._remaining = count

    def __aiter__(self) -> _CompletedTasks[T]:
        return self

    async def __anext__(self) -> Task[T]:
        if not self._remaining:
            raise StopAsyncIteration

        self._remaining -= 1
        return await self._receive.receive()


@asynccontextmanager
async def as_completed(
    *aws: Awaitable[T], limit: int | None = None
) -> AsyncIterator[AsyncIterator[Task[T]]]:
    """
    Run awaitables concurrently and iterate over their :class:`~anyconc.Task` handles
    in the order they finish.

    A task that failed is handed out like the others: its exception is raised by
    ``task.result()`` or ``await task``; it does not cancel the rest. A
    ``KeyboardInterrupt`` or ``SystemExit`` in a task is an interrupt, not a failure:
    it cancels everything, the block included, and comes out of the block unwrapped. With ``limit``, at
    most that many run at once, started in argument order. Leaving the block, early or
    not, normally or by an exception, cancels what is still running and waits for it;
    an exception from the block propagates unchanged.

    Example::

        async with as_completed(*(fetch(url) for url in urls), limit=5) as finished:
            async for task in finished:
                print(task.result())

    :param aws: the awaitables
    :param limit: how many may run at once (``None``: all)
    :return: an async context manager giving an async iterator of finished tasks
    :raises TypeError: if an argument is not awaitable (its position is named), or
        ``limit`` is not an integer
    :raises ValueError: if ``limit`` is less than 1

    """
    try:
        _check_awaitables(aws, "as_completed")
        _check_limit(limit)
    except BaseException:
        _close_unstarted(aws)
        raise

    send, receive = anyio.create_memory_object_stream[Task[T]](math.inf)
    tasks = [
        Task(aw if iscoroutine(aw) else _await(aw), None, on_finish=send.send_nowait)
        for aw in aws
    ]

    group = anyio.create_task_group()
    await group.__aenter__()
    try:
        if limit is None or limit >= len(tasks):
            for task in tasks:
                task._start(group, propagate=False)
        else:
            queue = iter(tasks)

            async def worker() -> None:
                for task in queue:
                    await task._run(propagate=False)

            for _ in range(limit):
                group.start_soon(worker)

        yield _CompletedTasks(receive, len(tasks))
    except BaseException as exc:
        group.cancel_scope.cancel()
        _close_unstarted(aws)
        if isinstance(exc, get_cancelled_exc_class()):
            if await _exit_group(group, exc):
                return

            raise

        await _exit_group(group, None)
        raise
    else:
        group.cancel_scope.cancel()
        await _exit_group(group, None)
    finally:
        for task in tasks:
            task._settle()  # never started: close its coroutine

        _close_unstarted(aws)
        send.close()
        receive.close()


async def _exit_group(group: TaskGroup, exc: BaseException | None) -> bool | None:
    # A task's interrupt comes out of as_completed() unwrapped: its failures stay on
    # their handles, so an interrupt is the only thing its tasks can raise.
    try:
        if exc is None:
            return await group.__aexit__(None, None, None)

        return await group.__aexit__(type(exc), exc, exc.__traceback__)
    except BaseException as raised:
        interrupt = find_interrupt(raised)
        if interrupt is None or interrupt is raised:
            raise

        raise interrupt from None
