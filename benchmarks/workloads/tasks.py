"""Task groups: spawn + join, memory per sleeping task, fire-and-forget background tasks."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from time import perf_counter
from typing import Any

import anyio
from anyio.lowlevel import checkpoint

from benchmarks._harness import ASYNCIO, TRIO, Impl, Sample, Workload

# --- spawn + join -------------------------------------------------------------------


async def _noop() -> None:
    pass


def anyconc_create_task() -> Sample:
    from anyconc import TaskGroup

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with TaskGroup() as tg:
            handles = [tg.create_task(_noop()) for _ in range(n)]
        del handles
        return perf_counter() - t0

    return sample


def anyconc_start_soon() -> Sample:
    from anyconc import TaskGroup

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with TaskGroup() as tg:
            for _ in range(n):
                tg.start_soon(_noop)
        return perf_counter() - t0

    return sample


def anyio_start_soon() -> Sample:
    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(_noop)
        return perf_counter() - t0

    return sample


def anyio_create_task() -> Sample:
    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with anyio.create_task_group() as tg:
            handles = [tg.create_task(_noop()) for _ in range(n)]
        del handles
        return perf_counter() - t0

    return sample


def asyncio_task_group() -> Sample:
    # Python 3.11+: the AttributeError on 3.10 makes this row "not available".
    task_group = asyncio.TaskGroup

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with task_group() as tg:
            for _ in range(n):
                tg.create_task(_noop())
        return perf_counter() - t0

    return sample


def trio_nursery() -> Sample:
    import trio

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(_noop)
        return perf_counter() - t0

    return sample


def nexios_task_group() -> Sample:
    from nexios.utils.concurrency import TaskGroup

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with TaskGroup() as tg:  # type: ignore[no-untyped-call, unused-ignore]
            tasks = [tg.create_task(_noop()) for _ in range(n)]
            # Nexios's exit cancels whatever is still running, so joining is explicit.
            await asyncio.gather(*tasks)
        return perf_counter() - t0

    return sample


def asyncer_soonify() -> Sample:
    import asyncer

    async def sample(n: int) -> float:
        t0 = perf_counter()
        async with asyncer.create_task_group() as tg:
            soon = tg.soonify(_noop)
            values = [soon() for _ in range(n)]
        del values
        return perf_counter() - t0

    return sample


def _spawn_impls() -> tuple[Impl, ...]:
    return (
        Impl("anyconc TaskGroup.create_task", anyconc_create_task),
        Impl("anyconc TaskGroup.start_soon", anyconc_start_soon),
        Impl("anyio start_soon", anyio_start_soon, baseline=True),
        Impl("anyio create_task", anyio_create_task),
        Impl("asyncio.TaskGroup", asyncio_task_group, ASYNCIO),
        Impl("trio nursery", trio_nursery, TRIO),
        Impl("nexios TaskGroup", nexios_task_group, ASYNCIO),
        Impl("asyncer soonify", asyncer_soonify),
    )


# --- peak memory per sleeping task --------------------------------------------------


class _MemoryProbe:
    """Traces allocations from the first spawn until every task is asleep."""

    def __init__(self) -> None:
        self.started = 0
        self.base = 0
        self.peak = 0

    def start(self) -> None:
        gc.collect()
        # Nothing collectable is made while tasks are spawned and fall asleep, so the
        # collector would only add time (a lot of it, over 100,000 traced tasks).
        gc.disable()
        tracemalloc.start()
        self.base = tracemalloc.get_traced_memory()[0]

    async def all_sleeping(self, n: int) -> None:
        # A task counts itself just before it blocks; the parent only runs again once
        # the last one has blocked, so "n counted" means "n asleep".
        try:
            while self.started < n:
                await checkpoint()
            self.peak = tracemalloc.get_traced_memory()[1] - self.base
        finally:
            tracemalloc.stop()
            gc.enable()


async def _sleeper(event: Any, probe: _MemoryProbe) -> None:
    probe.started += 1
    await event.wait()


def mem_anyconc_create_task() -> Sample:
    from anyconc import TaskGroup

    async def sample(n: int) -> float:
        event, probe = anyio.Event(), _MemoryProbe()
        async with TaskGroup() as tg:
            probe.start()
            handles = [tg.create_task(_sleeper(event, probe)) for _ in range(n)]
            await probe.all_sleeping(n)
            event.set()
        del handles
        return probe.peak

    return sample


def mem_anyconc_start_soon() -> Sample:
    from anyconc import TaskGroup

    async def sample(n: int) -> float:
        event, probe = anyio.Event(), _MemoryProbe()
        async with TaskGroup() as tg:
            probe.start()
            for _ in range(n):
                tg.start_soon(_sleeper, event, probe)
            await probe.all_sleeping(n)
            event.set()
        return probe.peak

    return sample


def mem_anyio_start_soon() -> Sample:
    async def sample(n: int) -> float:
        event, probe = anyio.Event(), _MemoryProbe()
        async with anyio.create_task_group() as tg:
            probe.start()
            for _ in range(n):
                tg.start_soon(_sleeper, event, probe)
            await probe.all_sleeping(n)
            event.set()
        return probe.peak

    return sample


def mem_anyio_create_task() -> Sample:
    async def sample(n: int) -> float:
        event, probe = anyio.Event(), _MemoryProbe()
        async with anyio.create_task_group() as tg:
            probe.start()
            handles = [tg.create_task(_sleeper(event, probe)) for _ in range(n)]
            await probe.all_sleeping(n)
            event.set()
        del handles
        return probe.peak

    return sample


def mem_asyncio_task_group() -> Sample:
    # Python 3.11+: the AttributeError on 3.10 makes this row "not available".
    task_group = asyncio.TaskGroup

    async def sample(n: int) -> float:
        event, probe = asyncio.Event(), _MemoryProbe()
        async with task_group() as tg:
            probe.start()
            for _ in range(n):
                tg.create_task(_sleeper(event, probe))
            await probe.all_sleeping(n)
            event.set()
        return probe.peak

    return sample


def mem_trio_nursery() -> Sample:
    import trio

    async def sample(n: int) -> float:
        event, probe = trio.Event(), _MemoryProbe()
        async with trio.open_nursery() as nursery:
            probe.start()
            for _ in range(n):
                nursery.start_soon(_sleeper, event, probe)
            await probe.all_sleeping(n)
            event.set()
        return probe.peak

    return sample


def mem_nexios_task_group() -> Sample:
    from nexios.utils.concurrency import TaskGroup

    async def sample(n: int) -> float:
        event, probe = asyncio.Event(), _MemoryProbe()
        async with TaskGroup() as tg:  # type: ignore[no-untyped-call, unused-ignore]
            probe.start()
            tasks = [tg.create_task(_sleeper(event, probe)) for _ in range(n)]
            await probe.all_sleeping(n)
            event.set()
            await asyncio.gather(*tasks)
        return probe.peak

    return sample


def mem_asyncer_soonify() -> Sample:
    import asyncer

    async def sample(n: int) -> float:
        event, probe = anyio.Event(), _MemoryProbe()
        async with asyncer.create_task_group() as tg:
            probe.start()
            soon = tg.soonify(_sleeper)
            values = [soon(event, probe) for _ in range(n)]
            await probe.all_sleeping(n)
            event.set()
        del values
        return probe.peak

    return sample


# --- fire-and-forget background tasks -----------------------------------------------


class _Countdown:
    def __init__(self, n: int) -> None:
        self.left = n
        self.event = anyio.Event()


async def _background_job(countdown: _Countdown) -> None:
    await checkpoint()
    countdown.left -= 1
    if not countdown.left:
        countdown.event.set()


def bg_anyconc_default() -> Sample:
    from anyconc import create_background_task

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        t0 = perf_counter()
        for _ in range(n):
            create_background_task(_background_job(countdown))
        await countdown.event.wait()
        return perf_counter() - t0

    return sample


def bg_anyconc_supervisor() -> Sample:
    from anyconc import BackgroundTasks

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        async with BackgroundTasks() as supervisor:
            t0 = perf_counter()
            for _ in range(n):
                supervisor.create_task(_background_job(countdown))
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


def bg_asyncio_create_task() -> Sample:
    # The idiom asyncio's documentation gives: keep a strong reference until done.
    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        keep: set[asyncio.Task[None]] = set()
        t0 = perf_counter()
        for _ in range(n):
            task = asyncio.create_task(_background_job(countdown))
            keep.add(task)
            task.add_done_callback(keep.discard)
        await countdown.event.wait()
        return perf_counter() - t0

    return sample


def bg_nexios() -> Sample:
    from nexios.utils.concurrency import create_background_task

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        t0 = perf_counter()
        tasks = [create_background_task(_background_job(countdown)) for _ in range(n)]
        await countdown.event.wait()
        elapsed = perf_counter() - t0
        # Nexios keeps no reference; hold them only so none is collected mid-run.
        del tasks
        return elapsed

    return sample


def bg_trio_nursery() -> Sample:
    import trio

    async def sample(n: int) -> float:
        countdown = _Countdown(n)
        async with trio.open_nursery() as nursery:
            t0 = perf_counter()
            for _ in range(n):
                nursery.start_soon(_background_job, countdown)
            await countdown.event.wait()
            elapsed = perf_counter() - t0
        return elapsed

    return sample


WORKLOADS = [
    Workload(
        "spawn-10k",
        "Spawn and join 10,000 trivial tasks",
        "One sample opens a task group, spawns 10,000 tasks that return at once and "
        "waits for all of them; per op = per task.",
        _spawn_impls(),
        n=10_000,
        quick_n=1_000,
        rounds=9,
    ),
    Workload(
        "spawn-100k",
        "Spawn and join 100,000 trivial tasks",
        "As spawn-10k with 100,000 tasks (the scheduler's behaviour with a long run "
        "queue).",
        _spawn_impls(),
        n=100_000,
        quick_n=2_000,
        rounds=2,
        warmup=0,  # spawn-10k ran just before: the code paths are warm
    ),
    Workload(
        "memory-100k",
        "Peak memory per sleeping task (100,000 tasks)",
        "tracemalloc's peak from the first spawn until all 100,000 tasks sleep on an "
        "event (the backend's own event for native groups), divided by 100,000.",
        (
            Impl("anyconc TaskGroup.create_task", mem_anyconc_create_task),
            Impl("anyconc TaskGroup.start_soon", mem_anyconc_start_soon),
            Impl("anyio start_soon", mem_anyio_start_soon, baseline=True),
            Impl("anyio create_task", mem_anyio_create_task),
            Impl("asyncio.TaskGroup", mem_asyncio_task_group, ASYNCIO),
            Impl("trio nursery", mem_trio_nursery, TRIO),
            Impl("nexios TaskGroup", mem_nexios_task_group, ASYNCIO),
            Impl("asyncer soonify", mem_asyncer_soonify),
        ),
        n=100_000,
        quick_n=500,
        rounds=1,
        quick_rounds=1,
        warmup=0,
        unit="B/task",
        scale=1.0,
    ),
    Workload(
        "background-1k",
        "1,000 fire-and-forget background tasks",
        "One sample starts 1,000 background tasks (each yields once, then counts "
        "down) and waits until the last one has run; per op = per task. Supervisors "
        "(task group, nursery, BackgroundTasks) are opened outside the timing.",
        (
            Impl("anyconc create_background_task", bg_anyconc_default),
            Impl("anyconc BackgroundTasks.create_task", bg_anyconc_supervisor),
            Impl("anyio task group start_soon", bg_anyio_task_group, baseline=True),
            Impl("asyncio.create_task + ref set", bg_asyncio_create_task, ASYNCIO),
            Impl("nexios create_background_task", bg_nexios, ASYNCIO),
            Impl("trio nursery start_soon", bg_trio_nursery, TRIO),
        ),
        n=1_000,
        quick_n=200,
        rounds=15,
    ),
    Workload(
        "background-10k",
        "10,000 fire-and-forget background tasks",
        "As background-1k with 10,000 tasks per sample (issue 3's size); per op = per "
        "task.",
        (
            Impl("anyconc create_background_task", bg_anyconc_default),
            Impl("anyconc BackgroundTasks.create_task", bg_anyconc_supervisor),
            Impl("anyio task group start_soon", bg_anyio_task_group, baseline=True),
            Impl("asyncio.create_task + ref set", bg_asyncio_create_task, ASYNCIO),
            Impl("nexios create_background_task", bg_nexios, ASYNCIO),
            Impl("trio nursery start_soon", bg_trio_nursery, TRIO),
        ),
        n=10_000,
        quick_n=200,
        rounds=7,
    ),
]
