"""Bounded fan-out: gather, amap and as_completed with concurrency limits."""

from __future__ import annotations

import math
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sized,
)
from contextlib import asynccontextmanager
from inspect import iscoroutine
from typing import Any, Literal, TypeVar, overload

import anyio
from anyio import get_cancelled_exc_class
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint
from anyio.streams.memory import MemoryObjectReceiveStream

from . import _instrument
from ._instrument import FanOutProgress
from ._tasks import (
    _FAILED,
    INTERRUPTS,
    Interrupted,
    Task,
    find_interrupt,
    unwrap_interrupts,
)
from ._util import (
    check_async_callable,
    check_awaitable_result,
    check_awaitables,
    check_bool,
    check_int,
    check_iterable,
    check_number,
    close_unstarted,
)

__all__ = ["amap", "as_completed", "gather"]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")
A = TypeVar("A")
R = TypeVar("R")


def _check_fanout(
    where: str,
    aws: tuple[object, ...],
    limit: object,
    return_exceptions: object = False,
) -> None:
    # The coroutines of a rejected call are closed: none will ever run.
    try:
        check_awaitables(where, aws)
        check_int(where, "limit", limit, optional=True)
        check_bool(where, "return_exceptions", return_exceptions)
    except BaseException:
        close_unstarted(aws)
        raise


def _start_bounded(
    group: TaskGroup,
    limit: int | None,
    items: Iterable[A],
    run: Callable[[A], Coroutine[Any, Any, object]],
    spawn: Callable[[A], object] | None = None,
) -> None:
    """
    Start ``run(item)`` in ``group`` for every item, at most ``limit`` at once.

    Without a limit every item is started now (by ``spawn(item)`` if given). With one,
    ``limit`` workers pull the items one at a time, each as soon as it finished the
    previous one, so an item is taken from ``items`` only when a slot is free, in order.
    """
    if limit is None:
        for item in items:
            if spawn is None:
                group.start_soon(run, item)
            else:
                spawn(item)
        return

    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:
            await run(item)

    for _ in range(limit):
        group.start_soon(worker)


async def _await(aw: Awaitable[T]) -> T:
    return await aw


class _Progress:
    """Counts a fan-out's finished children and emits :class:`FanOutProgress`."""

    __slots__ = ("done", "failed", "observers", "operation", "total")

    def __init__(
        self,
        observers: tuple[_instrument.Observer, ...],
        operation: Literal["gather", "amap", "as_completed"],
        total: int | None,
    ) -> None:
        self.observers = observers
        self.operation: Literal["gather", "amap", "as_completed"] = operation
        self.total = total
        self.done = 0
        self.failed = 0

    def report(self, failed: bool) -> None:
        self.done += 1
        if failed:
            self.failed += 1
        _instrument.emit(
            self.observers,
            FanOutProgress(self.operation, self.done, self.failed, self.total, failed),
        )


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


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> tuple[T1]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[True],
) -> tuple[T1 | Exception]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> tuple[T1, T2]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[True],
) -> tuple[T1 | Exception, T2 | Exception]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> tuple[T1, T2, T3]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[True],
) -> tuple[T1 | Exception, T2 | Exception, T3 | Exception]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> tuple[T1, T2, T3, T4]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[True],
) -> tuple[T1 | Exception, T2 | Exception, T3 | Exception, T4 | Exception]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> tuple[T1, T2, T3, T4, T5]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[True],
) -> tuple[
    T1 | Exception, T2 | Exception, T3 | Exception, T4 | Exception, T5 | Exception
]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    aw6: Awaitable[T6],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> tuple[T1, T2, T3, T4, T5, T6]: ...


@overload
async def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    aw6: Awaitable[T6],
    /,
    *,
    limit: int | None = None,
    return_exceptions: Literal[True],
) -> tuple[
    T1 | Exception,
    T2 | Exception,
    T3 | Exception,
    T4 | Exception,
    T5 | Exception,
    T6 | Exception,
]: ...


@overload
async def gather(
    *aws: Awaitable[T],
    limit: int | None = None,
    return_exceptions: Literal[False] = False,
) -> list[T]: ...


@overload
async def gather(
    *aws: Awaitable[T], limit: int | None = None, return_exceptions: bool
) -> list[T | Exception]: ...


async def gather(
    *aws: Awaitable[Any], limit: int | None = None, return_exceptions: bool = False
) -> Any:
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
        user, posts = await gather(fetch_user(uid), fetch_posts(uid))

    Typing: the result is a :class:`list` at run time. Given one to six awaitables
    separately, it is typed as a tuple of their result types, position by position
    (as ``asyncio.gather`` is in typeshed and ``anyio.gather`` is), so that unpacking
    it keeps each type; given ``*aws`` it is ``list[T]``. With
    ``return_exceptions=True`` each position is ``T | Exception``.

    :param aws: the awaitables
    :param limit: how many may run at once (``None``: all)
    :param return_exceptions: put exceptions in the results instead of raising
    :return: the results, in the order of ``aws``
    :raises ExceptionGroup: the failures, without ``return_exceptions``
    :raises TypeError: if an argument is not awaitable (its position is named), or
        ``limit`` is not an integer
    :raises ValueError: if ``limit`` is less than 1

    """
    _check_fanout("gather()", aws, limit, return_exceptions)

    count = len(aws)
    results: list[Any] = [None] * count
    if not count:
        await checkpoint()
        return results

    observers = _instrument.listeners[FanOutProgress]
    progress = _Progress(observers, "gather", count) if observers else None

    async def run_one(index: int) -> None:
        try:
            results[index] = await aws[index]
        except Exception as exc:
            if progress is not None:
                progress.report(True)
            if not return_exceptions:
                raise

            results[index] = exc
        except INTERRUPTS as exc:
            raise Interrupted(exc) from None  # see _tasks.Interrupted
        else:
            if progress is not None:
                progress.report(False)

    try:
        async with _unwrapping_interrupts(), anyio.create_task_group() as group:
            _start_bounded(
                group,
                None if limit is not None and limit >= count else limit,
                range(count),
                run_one,
            )
    finally:
        close_unstarted(aws)

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
    check_async_callable("amap()", "func", func, usage="amap({}, items)")
    check_int("amap()", "limit", limit, optional=True)
    check_number(
        "amap()",
        "max_per_second",
        max_per_second,
        minimum=0,
        inclusive=False,
        finite=True,
        optional=True,
    )
    interval = 0.0 if max_per_second is None else 1 / max_per_second
    iterator = check_iterable("amap()", "items", items)

    # The first call is made here, before any task starts: a function that does not
    # return an awaitable is rejected (TypeError naming it) before it is called for
    # any other item.
    for first_item in iterator:
        first = func(first_item)
        check_awaitable_result("amap()", func, first)
        break
    else:
        await checkpoint()
        return []

    results: list[Any] = [None]
    next_start = -math.inf
    observers = _instrument.listeners[FanOutProgress]
    progress = (
        _Progress(observers, "amap", len(items) if isinstance(items, Sized) else None)
        if observers
        else None
    )

    def numbered() -> Iterator[tuple[int, A]]:
        yield 0, first_item
        for index, item in enumerate(iterator, 1):
            results.append(None)
            yield index, item

    async def call(numbered_item: tuple[int, A]) -> None:
        nonlocal next_start
        index, item = numbered_item
        if interval:
            now = anyio.current_time()
            start = max(now, next_start + interval)
            next_start = start
            if start > now:
                await anyio.sleep_until(start)

        if index:
            awaitable = func(item)
            check_awaitable_result("amap()", func, awaitable)
        else:
            awaitable = first
        try:
            results[index] = await awaitable
        except INTERRUPTS as exc:
            raise Interrupted(exc) from None  # see _tasks.Interrupted
        except Exception:
            if progress is not None:
                progress.report(True)
            raise
        if progress is not None:
            progress.report(False)

    try:
        async with _unwrapping_interrupts(), anyio.create_task_group() as group:
            _start_bounded(group, limit, numbered(), call)
    finally:
        close_unstarted([first])

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
    _check_fanout("as_completed()", aws, limit)

    send, receive = anyio.create_memory_object_stream[Task[T]](math.inf)
    on_finish: Callable[[Task[T]], object] = send.send_nowait
    if observers := _instrument.listeners[FanOutProgress]:
        progress = _Progress(observers, "as_completed", len(aws))

        def finished(task: Task[T]) -> None:
            # Cancelled tasks and interrupts (they end the run) are not reported.
            if not task.cancelled() and not isinstance(task._exception, INTERRUPTS):
                progress.report(task._state is _FAILED)
            send.send_nowait(task)

        on_finish = finished

    tasks = [
        Task(aw if iscoroutine(aw) else _await(aw), None, on_finish=on_finish)
        for aw in aws
    ]

    group = anyio.create_task_group()
    await group.__aenter__()
    try:

        def spawn(task: Task[T]) -> None:
            task._start(group, propagate=False)

        async def run(task: Task[T]) -> None:
            await task._run(propagate=False)

        _start_bounded(
            group,
            None if limit is not None and limit >= len(tasks) else limit,
            tasks,
            run,
            spawn,
        )

        yield _CompletedTasks(receive, len(tasks))
    except BaseException as exc:
        group.cancel_scope.cancel()
        close_unstarted(aws)
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
        # Those never started (left early with a limit): their coroutines, the wrappers
        # of other awaitables included, are closed, so none warns it was never awaited.
        for task in tasks:
            task._settle()  # never started: close its coroutine

        close_unstarted(aws)
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
