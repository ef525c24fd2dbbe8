"""Bounded background tasks: what ``limit`` / ``pending_limit`` cost per task (issue 20)."""

from __future__ import annotations

from time import perf_counter

import anyio

from benchmarks._harness import Impl, Sample, Workload
from benchmarks.workloads.tasks import _background_job, _Countdown

LIMIT = 50


def _supervised(limit: int | None = None, pending_limit: int | None = None) -> Sample:
    from anyconc import BackgroundTasks, create_background_task

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        async with BackgroundTasks(limit=limit, pending_limit=pending_limit):
            t0 = perf_counter()
            for _ in range(n):
                create_background_task(_background_job(countdown))
            await countdown.event.wait()
            elapsed = perf_counter() - t0
        return elapsed

    return sample


def bg_unlimited() -> Sample:
    return _supervised()


def bg_limit() -> Sample:
    return _supervised(limit=LIMIT)


def bg_limit_pending() -> Sample:
    # A waiting room large enough for the whole sample: nothing is refused.
    return _supervised(limit=LIMIT, pending_limit=1_000_000)


def bg_spawn_backpressure() -> Sample:
    from anyconc import BackgroundTasks

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        async with BackgroundTasks(limit=LIMIT, pending_limit=10 * LIMIT) as tasks:
            t0 = perf_counter()
            for _ in range(n):
                await tasks.spawn(_background_job(countdown))
            await countdown.event.wait()
            elapsed = perf_counter() - t0
        return elapsed

    return sample


def bg_anyio_limiter() -> Sample:
    # The hand-made equivalent: a task group whose tasks take a CapacityLimiter token.
    async def job(countdown: _Countdown, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            await _background_job(countdown)

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        limiter = anyio.CapacityLimiter(LIMIT)
        async with anyio.create_task_group() as tg:
            t0 = perf_counter()
            for _ in range(n):
                tg.start_soon(job, countdown, limiter)
            await countdown.event.wait()
            elapsed = perf_counter() - t0
        return elapsed

    return sample


def bg_anyio_task_group() -> Sample:
    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        async with anyio.create_task_group() as tg:
            t0 = perf_counter()
            for _ in range(n):
                tg.start_soon(_background_job, countdown)
            await countdown.event.wait()
            elapsed = perf_counter() - t0
        return elapsed

    return sample


WORKLOADS = [
    Workload(
        "background-limits-10k",
        "10,000 background tasks, with and without limits",
        "One sample starts 10,000 background tasks with create_background_task (each "
        "yields once, then counts down) under a BackgroundTasks opened outside the "
        f"timing: without limits, with limit={LIMIT} (the rest wait and start one by "
        f"one), and with limit={LIMIT} plus a pending_limit that refuses nothing; "
        f"spawn() awaits room with pending_limit={10 * LIMIT} (backpressure). The "
        f"hand-made alternative is a task group whose tasks take a CapacityLimiter({LIMIT}) "
        "token; per op = per task.",
        (
            Impl("anyconc create_background_task, no limit", bg_unlimited),
            Impl(f"anyconc create_background_task, limit={LIMIT}", bg_limit),
            Impl(
                f"anyconc create_background_task, limit={LIMIT} + pending_limit",
                bg_limit_pending,
            ),
            Impl(
                f"anyconc spawn(), limit={LIMIT}, pending_limit={10 * LIMIT}",
                bg_spawn_backpressure,
            ),
            Impl(f"anyio task group + CapacityLimiter({LIMIT})", bg_anyio_limiter),
            Impl("anyio task group start_soon", bg_anyio_task_group, baseline=True),
        ),
        n=10_000,
        quick_n=200,
        rounds=7,
    ),
]
