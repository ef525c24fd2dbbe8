"""Thread offloading: sequential and 8-way parallel calls of a trivial function."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import perf_counter

import anyio

from benchmarks._harness import ASYNCIO, TRIO, Impl, Sample, Workload

#: ``await call(func, arg)``: one thread call through the implementation.
Call = Callable[[Callable[[int], int], int], Awaitable[int]]

PARALLEL = 8


def _work(x: int) -> int:
    return x


def _sequential(call: Call) -> Sample:
    async def sample(n: int) -> float:
        t0 = perf_counter()
        for i in range(n):
            await call(_work, i)
        return perf_counter() - t0

    return sample


def _parallel(call: Call) -> Sample:
    async def worker(calls: int) -> None:
        for i in range(calls):
            await call(_work, i)

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(PARALLEL):
                tg.start_soon(worker, n // PARALLEL)
        return perf_counter() - t0

    return sample


def _anyconc() -> Call:
    from anyconc import run_in_threadpool

    return run_in_threadpool


def _anyio() -> Call:
    return anyio.to_thread.run_sync


def _asyncio() -> Call:
    async def call(func: Callable[[int], int], arg: int) -> int:
        return await asyncio.get_running_loop().run_in_executor(None, func, arg)

    return call


def _trio() -> Call:
    import trio

    return trio.to_thread.run_sync


def _nexios() -> Call:
    from nexios.utils.concurrency import run_in_threadpool

    return run_in_threadpool  # type: ignore[no-any-return, unused-ignore]


def _impls(shape: Callable[[Call], Sample]) -> tuple[Impl, ...]:
    return (
        Impl("anyconc run_in_threadpool", lambda: shape(_anyconc())),
        Impl("anyio.to_thread.run_sync", lambda: shape(_anyio()), baseline=True),
        Impl("loop.run_in_executor", lambda: shape(_asyncio()), ASYNCIO),
        Impl("trio.to_thread.run_sync", lambda: shape(_trio()), TRIO),
        Impl("nexios run_in_threadpool", lambda: shape(_nexios()), ASYNCIO),
    )


WORKLOADS = [
    Workload(
        "threads-seq",
        "2,000 sequential thread calls",
        "One sample awaits 2,000 calls of a trivial function in a worker thread, one "
        "after the other; per op = per call.",
        _impls(_sequential),
        n=2_000,
        quick_n=100,
        rounds=15,
    ),
    Workload(
        "threads-par8",
        "2,000 thread calls, 8 in parallel",
        "As threads-seq, split over 8 tasks that each make 250 calls; per op = per "
        "call.",
        _impls(_parallel),
        n=2_000,
        quick_n=160,
        rounds=15,
    ),
]
