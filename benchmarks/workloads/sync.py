"""Lazy values, events and barriers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import anyio
import anyio.functools
from anyio.lowlevel import checkpoint

from benchmarks._harness import ASYNCIO, TRIO, Impl, Sample, Workload

# --- cached AsyncLazy.get() ---------------------------------------------------------

_VALUE = object()


async def _compute() -> object:
    return _VALUE


def _cached_gets(make_get: Callable[[], Callable[[], Awaitable[object]]]) -> Sample:
    async def sample(n: int) -> float:
        get = make_get()
        await get()  # computed and cached outside the timing
        t0 = perf_counter()
        for _ in range(n):
            await get()
        return perf_counter() - t0

    return sample


def lazy_anyconc() -> Sample:
    from anyconc import AsyncLazy

    return _cached_gets(lambda: AsyncLazy(_compute).get)


def lazy_nexios() -> Sample:
    from nexios.utils.concurrency import AsyncLazy

    return _cached_gets(lambda: AsyncLazy(_compute).get)


def lazy_anyio_cache() -> Sample:
    return _cached_gets(lambda: anyio.functools.cache(_compute))


def lazy_anyio_checkpointing() -> Sample:
    return _cached_gets(
        lambda: anyio.functools.lru_cache(always_checkpoint=True)(_compute)
    )


# --- event wake-up ------------------------------------------------------------------


class _Wakeup:
    def __init__(self, n: int) -> None:
        self.n = n
        self.started = 0
        self.woken = 0
        self.last = 0.0


async def _waiter(event: Any, state: _Wakeup) -> None:
    state.started += 1
    await event.wait()
    state.woken += 1
    if state.woken == state.n:
        state.last = perf_counter()


def _wakeup(make_event: Callable[[], Any]) -> Sample:
    async def sample(n: int) -> float:
        event, state = make_event(), _Wakeup(n)
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(_waiter, event, state)
            while state.started < n:
                await checkpoint()
            await anyio.wait_all_tasks_blocked()
            t0 = perf_counter()
            event.set()
        if state.woken != n:
            raise AssertionError(f"{state.woken} of {n} waiters woke up")
        return state.last - t0

    return sample


def event_anyconc() -> Sample:
    from anyconc import AsyncEvent

    return _wakeup(AsyncEvent)


def event_nexios() -> Sample:
    from nexios.utils.concurrency import AsyncEvent

    return _wakeup(AsyncEvent)


def event_trio() -> Sample:
    import trio

    return _wakeup(trio.Event)


# --- barrier ------------------------------------------------------------------------


class AnyioBarrier:
    """The barrier a raw-AnyIO user writes by hand: a counter and one event per cycle."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.count = 0
        self.event = anyio.Event()

    async def wait(self) -> None:
        self.count += 1
        if self.count == self.parties:
            self.count = 0
            event, self.event = self.event, anyio.Event()
            event.set()
            await checkpoint()
        else:
            await self.event.wait()


def _barrier_rounds(make_barrier: Callable[[int], Any]) -> Sample:
    async def party(barrier: Any, rounds: int) -> None:
        for _ in range(rounds):
            await barrier.wait()

    async def sample(n: int) -> float:
        parties = min(100, max(2, n // 10))
        barrier = make_barrier(parties)
        t0 = perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(parties):
                tg.start_soon(party, barrier, n // parties)
        return perf_counter() - t0

    return sample


def barrier_anyconc() -> Sample:
    from anyconc import Barrier

    return _barrier_rounds(Barrier)


def barrier_asyncio() -> Sample:
    return _barrier_rounds(asyncio.Barrier)


WORKLOADS = [
    Workload(
        "lazy-get",
        "Cached lazy value: get()",
        "One sample awaits get() 10,000 times on a value computed beforehand; per op = "
        "per get(). anyio.functools.cache skips the checkpoint on a hit by default; "
        "the always_checkpoint=True row shows what a checkpoint costs.",
        (
            Impl("anyconc AsyncLazy.get", lazy_anyconc),
            Impl("nexios AsyncLazy.get", lazy_nexios, ASYNCIO),
            Impl("anyio.functools.cache", lazy_anyio_cache, baseline=True),
            Impl("anyio lru_cache(always_checkpoint)", lazy_anyio_checkpointing),
        ),
        n=10_000,
        quick_n=500,
        rounds=9,
    ),
    Workload(
        "event-1k",
        "Event wake-up of 1,000 waiters",
        "1,000 tasks block on one event; the time from set() until the last waiter "
        "has resumed, per waiter.",
        (
            Impl("anyconc AsyncEvent", event_anyconc),
            Impl("anyio.Event", lambda: _wakeup(anyio.Event), baseline=True),
            Impl("asyncio.Event", lambda: _wakeup(asyncio.Event), ASYNCIO),
            Impl("trio.Event", event_trio, TRIO),
            Impl("nexios AsyncEvent", event_nexios, ASYNCIO),
        ),
        n=1_000,
        quick_n=100,
        rounds=15,
    ),
    Workload(
        "barrier-100x100",
        "Barrier: 100 parties x 100 rounds",
        "100 tasks pass the same barrier 100 times; per op = per wait(). AnyIO has no "
        "barrier: the baseline is the hand-written counter + event one.",
        (
            Impl("anyconc Barrier", barrier_anyconc),
            Impl(
                "hand-written anyio barrier",
                lambda: _barrier_rounds(AnyioBarrier),
                baseline=True,
            ),
            Impl("asyncio.Barrier", barrier_asyncio, ASYNCIO),
        ),
        n=10_000,
        quick_n=200,
        rounds=7,
    ),
]
