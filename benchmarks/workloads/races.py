"""A 3-candidate race: the first to finish wins, the others are cancelled and awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import perf_counter

import anyio
from anyio.lowlevel import checkpoint

from benchmarks._harness import ASYNCIO, Impl, Sample, Workload


async def _fast() -> int:
    await checkpoint()
    return 1


async def _slow() -> int:
    await anyio.sleep(60)
    return 2


async def _fast_asyncio() -> int:
    await asyncio.sleep(0)
    return 1


async def _slow_asyncio() -> int:
    await asyncio.sleep(60)
    return 2


async def task_group_race(*candidates: Callable[[], Awaitable[int]]) -> int:
    """The race a raw-AnyIO user writes by hand."""
    winner: list[int] = []

    async def run(candidate: Callable[[], Awaitable[int]]) -> None:
        value = await candidate()
        if not winner:
            winner.append(value)
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for candidate in candidates:
            tg.start_soon(run, candidate)
    return winner[0]


async def asyncio_wait_race(*candidates: Callable[[], Awaitable[int]]) -> int:
    """``asyncio.wait(FIRST_COMPLETED)``, then cancel and await the losers."""
    tasks = [asyncio.ensure_future(candidate()) for candidate in candidates]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return next(iter(done)).result()


def _races(race: Callable[..., Awaitable[int]], native: bool = False) -> Sample:
    fast, slow = (_fast_asyncio, _slow_asyncio) if native else (_fast, _slow)

    async def sample(n: int) -> float:
        t0 = perf_counter()
        for _ in range(n):
            if await race(slow, fast, slow) != 1:
                raise AssertionError("the fast candidate should have won")
        return perf_counter() - t0

    return sample


def anyconc_race() -> Sample:
    from anyconc import run_until_first_complete

    return _races(run_until_first_complete)


WORKLOADS = [
    Workload(
        "race-3",
        "3-candidate race",
        "One race: three candidates, the middle one returns after one checkpoint, the "
        "other two sleep and are cancelled and awaited before the race returns; one "
        "sample runs 1,000 races one after the other; per op = per race.",
        (
            Impl("anyconc run_until_first_complete", anyconc_race),
            Impl(
                "hand-written task-group race",
                lambda: _races(task_group_race),
                baseline=True,
            ),
            Impl(
                "asyncio.wait FIRST_COMPLETED",
                lambda: _races(asyncio_wait_race, native=True),
                ASYNCIO,
            ),
        ),
        n=1_000,
        quick_n=50,
        rounds=9,
    ),
]
