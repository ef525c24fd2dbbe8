"""Bounded fan-out: map a coroutine function over 10,000 items, 100 at a time."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import anyio
from anyio.lowlevel import checkpoint

from benchmarks._harness import Impl, Sample, Workload

LIMIT = 100


async def _double(x: int) -> int:
    await checkpoint()
    return 2 * x


def _check(results: list[Any], n: int) -> None:
    if sorted(results) != list(range(0, 2 * n, 2)):
        raise AssertionError("wrong results")


def amap_anyconc() -> Sample:
    from anyconc import amap

    async def sample(n: int) -> float:
        t0 = perf_counter()
        results = await amap(_double, range(n), limit=LIMIT)
        elapsed = perf_counter() - t0
        _check(results, n)
        return elapsed

    return sample


def amap_aiometer() -> Sample:
    import aiometer

    async def sample(n: int) -> float:
        t0 = perf_counter()
        # aiometer yields in completion order; collecting them is the fair equivalent.
        async with aiometer.amap(_double, range(n), max_at_once=LIMIT) as results_iter:
            results = [r async for r in results_iter]
        elapsed = perf_counter() - t0
        _check(results, n)
        return elapsed

    return sample


def amap_semaphore_task_group() -> Sample:
    async def sample(n: int) -> float:
        t0 = perf_counter()
        semaphore = anyio.Semaphore(LIMIT)
        results: list[Any] = [None] * n

        async def run(i: int, x: int) -> None:
            async with semaphore:
                results[i] = await _double(x)

        async with anyio.create_task_group() as tg:
            for i, x in enumerate(range(n)):
                tg.start_soon(run, i, x)
        elapsed = perf_counter() - t0
        _check(results, n)
        return elapsed

    return sample


WORKLOADS = [
    Workload(
        "amap-10k",
        "amap with limit 100 over 10,000 items",
        "Maps a coroutine function (one checkpoint, then returns) over 10,000 items with "
        "at most 100 running at once and collects the results; per op = per item.",
        (
            Impl("anyconc amap(limit=100)", amap_anyconc),
            Impl("aiometer.amap(max_at_once=100)", amap_aiometer),
            Impl(
                "semaphore + anyio task group", amap_semaphore_task_group, baseline=True
            ),
        ),
        n=10_000,
        quick_n=500,
        rounds=7,
    ),
]
