"""Queue throughput, 1 producer x 1 consumer and 4 x 4, bounded at 100 items."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter
from typing import Any

import anyio

from benchmarks._harness import ASYNCIO, TRIO, Impl, Sample, Workload

MAXSIZE = 100
_DONE = object()


def _queue(make_queue: Callable[[int], Any], workers: int) -> Sample:
    """A queue with ``put``/``get``: the producers finish, then one sentinel per consumer."""

    async def producer(queue: Any, items: int) -> None:
        for i in range(items):
            await queue.put(i)

    async def producers(queue: Any, n: int) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(producer, queue, n // workers)
        for _ in range(workers):
            await queue.put(_DONE)

    async def consumer(queue: Any, got: list[int]) -> None:
        count = 0
        while await queue.get() is not _DONE:
            count += 1
        got.append(count)

    async def sample(n: int) -> float:
        queue, got = make_queue(MAXSIZE), list[int]()
        t0 = perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(producers, queue, n)
            for _ in range(workers):
                tg.start_soon(consumer, queue, got)
        elapsed = perf_counter() - t0
        if sum(got) != n // workers * workers:
            raise AssertionError(f"consumed {sum(got)} items")
        return elapsed

    return sample


def _channel(make_channel: Callable[[int], tuple[Any, Any]], workers: int) -> Sample:
    """A send/receive channel pair: each producer closes its clone when done."""

    async def producer(send: Any, items: int) -> None:
        async with send:
            for i in range(items):
                await send.send(i)

    async def consumer(receive: Any, got: list[int]) -> None:
        count = 0
        async with receive:
            async for _ in receive:
                count += 1
        got.append(count)

    async def sample(n: int) -> float:
        send, receive = make_channel(MAXSIZE)
        got: list[int] = []
        t0 = perf_counter()
        async with anyio.create_task_group() as tg, send, receive:
            for _ in range(workers):
                tg.start_soon(producer, send.clone(), n // workers)
                tg.start_soon(consumer, receive.clone(), got)
        elapsed = perf_counter() - t0
        if sum(got) != n // workers * workers:
            raise AssertionError(f"consumed {sum(got)} items")
        return elapsed

    return sample


def _anyconc(workers: int) -> Sample:
    from anyconc import Queue

    return _queue(Queue, workers)


def _trio(workers: int) -> Sample:
    import trio

    return _channel(trio.open_memory_channel, workers)


def _impls(workers: int) -> tuple[Impl, ...]:
    return (
        Impl("anyconc Queue", lambda: _anyconc(workers)),
        Impl(
            "anyio memory object stream",
            lambda: _channel(anyio.create_memory_object_stream, workers),
            baseline=True,
        ),
        Impl("asyncio.Queue", lambda: _queue(asyncio.Queue, workers), ASYNCIO),
        Impl("trio memory channel", lambda: _trio(workers), TRIO),
    )


WORKLOADS = [
    Workload(
        "queue-1x1",
        "Queue throughput, 1 producer x 1 consumer (maxsize 100)",
        "10,000 items through a queue bounded at 100; per op = per item.",
        _impls(1),
        n=10_000,
        quick_n=500,
        rounds=7,
    ),
    Workload(
        "queue-4x4",
        "Queue throughput, 4 producers x 4 consumers (maxsize 100)",
        "10,000 items (2,500 per producer) through a queue bounded at 100 and "
        "consumed by 4 tasks; per op = per item.",
        _impls(4),
        n=10_000,
        quick_n=500,
        rounds=7,
    ),
]
