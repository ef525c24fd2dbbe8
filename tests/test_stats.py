"""statistics() on every stateful primitive, names, reprs and the public __module__."""

from __future__ import annotations

import dataclasses
import inspect
import threading
import types
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import (
    AsyncEvent,
    AsyncEventStatistics,
    AsyncLazy,
    AsyncLazyStatistics,
    BackgroundTasks,
    BackgroundTasksStatistics,
    Barrier,
    BarrierStatistics,
    CircuitBreaker,
    CircuitBreakerStatistics,
    Debouncer,
    LifoQueue,
    PriorityQueue,
    Queue,
    QueueShutDown,
    QueueStatistics,
    RateLimiter,
    RateLimiterStatistics,
    ThreadPool,
    ThreadPoolStatistics,
)

SAFETY = 10

# Made at import time: statistics() needs no event loop.
IMPORT_TIME_POOL = ThreadPool(3, name="import")
IMPORT_TIME_LIMITER = RateLimiter(5, name="api")


def test_statistics_outside_any_run() -> None:
    assert IMPORT_TIME_POOL.statistics() == ThreadPoolStatistics(
        "import", 3, 0, 0, False
    )
    assert IMPORT_TIME_LIMITER.statistics() == RateLimiterStatistics(
        "api", 5.0, 1.0, 0, 0
    )
    assert CircuitBreaker(name="c").statistics() == CircuitBreakerStatistics(
        "c", "closed", 0, 5, 0, 60.0, 0.0, 0
    )
    assert Queue[int](name="q").statistics() == QueueStatistics(
        "q", 0, 0, 0, 0, 0, 0, False
    )
    assert AsyncEvent().statistics() == AsyncEventStatistics(None, False, 0)
    assert Barrier(2).statistics() == BarrierStatistics(None, 2, 0, False)
    assert BackgroundTasks(name="b").statistics() == BackgroundTasksStatistics(
        "b", False, 0, 0, 0, 0, 0, 0
    )


def test_statistics_are_frozen() -> None:
    stats = Queue[int]().statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.size = 3  # type: ignore[misc]


@pytest.mark.parametrize("cls", [Queue, PriorityQueue, LifoQueue])
async def test_queue_statistics(cls: type[Queue[int]]) -> None:
    queue = cls(1, name="jobs")
    async with anyio.create_task_group() as tg:
        got: list[int] = []

        async def getter() -> None:
            got.append(await queue.get())

        tg.start_soon(getter)
        await anyio.wait_all_tasks_blocked()
        assert queue.statistics() == QueueStatistics("jobs", 1, 0, 0, 1, 0, 0, False)
        await queue.put(1)  # handed to the getter
        await anyio.wait_all_tasks_blocked()
        await queue.put(2)
        tg.start_soon(queue.put, 3)  # blocks: full
        tg.start_soon(queue.join)  # blocks: 3 unfinished
        await anyio.wait_all_tasks_blocked()
        assert queue.statistics() == QueueStatistics("jobs", 1, 1, 2, 0, 1, 1, False)
        for _ in range(2):
            assert queue.get_nowait() in (2, 3)
            await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            queue.task_done()
    assert got == [1]
    queue.shutdown()
    stats = queue.statistics()
    assert (stats.size, stats.unfinished_tasks, stats.shutdown) == (0, 0, True)
    with pytest.raises(QueueShutDown):
        queue.put_nowait(4)


async def test_barrier_statistics() -> None:
    barrier = Barrier(3, name="sync")
    async with anyio.create_task_group() as tg:
        tg.start_soon(barrier.wait)
        tg.start_soon(barrier.wait)
        await anyio.wait_all_tasks_blocked()
        assert barrier.statistics() == BarrierStatistics("sync", 3, 2, False)
        await barrier.wait()
    assert barrier.statistics() == BarrierStatistics("sync", 3, 0, False)
    barrier.abort()
    assert barrier.statistics() == BarrierStatistics("sync", 3, 0, True)


async def test_async_event_statistics() -> None:
    event = AsyncEvent(name="ready")
    async with anyio.create_task_group() as tg:
        tg.start_soon(event.wait)
        tg.start_soon(event.wait)
        await anyio.wait_all_tasks_blocked()
        assert event.statistics() == AsyncEventStatistics("ready", False, 2)
        event.set()
    assert event.statistics() == AsyncEventStatistics("ready", True, 0)


@pytest.mark.virtual_time
async def test_async_lazy_statistics() -> None:
    release = anyio.Event()

    async def compute() -> int:
        await release.wait()
        return 42

    lazy = AsyncLazy(compute, ttl=10, name="config")
    assert lazy.statistics() == AsyncLazyStatistics("config", "unset", False, 0, 10.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lazy.get)
        tg.start_soon(lazy.get)
        await anyio.wait_all_tasks_blocked()
        assert lazy.statistics() == AsyncLazyStatistics(
            "config", "computing", False, 2, 10.0
        )
        release.set()
    assert lazy.statistics() == AsyncLazyStatistics("config", "cached", True, 0, 10.0)
    await anyio.sleep(11)
    assert lazy.statistics() == AsyncLazyStatistics("config", "cached", False, 0, 10.0)


@pytest.mark.virtual_time
async def test_circuit_breaker_statistics() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10, name="db")

    async def fail() -> None:
        raise OSError

    with pytest.raises(OSError):
        await breaker.call(fail)
    assert breaker.statistics() == CircuitBreakerStatistics(
        "db", "closed", 1, 2, 0, 10.0, 0.0, 0
    )
    with pytest.raises(OSError):
        await breaker.call(fail)
    assert breaker.statistics() == CircuitBreakerStatistics(
        "db", "open", 0, 2, 0, 10.0, 10.0, 1
    )
    await anyio.sleep(4)
    assert breaker.statistics().retry_after == pytest.approx(6.0)
    await anyio.sleep(6)
    entered = anyio.Event()
    leave = anyio.Event()

    async def trial() -> None:
        async with breaker:
            entered.set()
            await leave.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(trial)
        await entered.wait()
        assert breaker.statistics() == CircuitBreakerStatistics(
            "db", "half-open", 0, 2, 1, 10.0, 0.0, 1
        )
        leave.set()
    assert breaker.statistics() == CircuitBreakerStatistics(
        "db", "closed", 0, 2, 0, 10.0, 0.0, 1
    )


@pytest.mark.virtual_time
async def test_rate_limiter_statistics() -> None:
    limiter = RateLimiter(2, per=1.0, name="api")
    async with limiter:
        pass
    async with limiter:
        pass
    async with anyio.create_task_group() as tg:

        async def enter() -> None:
            async with limiter:
                pass

        tg.start_soon(enter)
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics() == RateLimiterStatistics("api", 2.0, 1.0, 2, 1)
    # The third entry went in at t=1; the first two have left the window.
    assert limiter.statistics() == RateLimiterStatistics("api", 2.0, 1.0, 1, 0)


async def test_thread_pool_statistics() -> None:
    pool = ThreadPool(1, name="images")
    started = anyio.Event()
    release = threading.Event()

    def block() -> None:
        anyio.from_thread.run_sync(started.set)
        release.wait(SAFETY)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.run, block)
        await started.wait()
        tg.start_soon(pool.run, release.is_set)
        await anyio.wait_all_tasks_blocked()
        assert pool.statistics() == ThreadPoolStatistics("images", 1, 1, 1, False)
        release.set()
    assert pool.statistics() == ThreadPoolStatistics("images", 1, 0, 0, False)


async def test_background_tasks_statistics() -> None:
    supervisor = BackgroundTasks(name="app", shutdown_timeout=0)
    release = anyio.Event()

    async def boom() -> None:
        raise ValueError

    async with supervisor:
        done = supervisor.create_task(checkpoint())
        failed = supervisor.create_task(boom())
        supervisor.create_task(release.wait())
        supervisor.create_task(anyio.sleep_forever())
        await done.wait()
        await failed.wait()
        assert failed.exception() is not None
        assert supervisor.statistics() == BackgroundTasksStatistics(
            "app", True, 2, 0, 4, 2, 1, 0
        )
        release.set()
        await anyio.wait_all_tasks_blocked()
    assert supervisor.statistics() == BackgroundTasksStatistics(
        "app", False, 0, 0, 4, 4, 1, 1
    )


async def test_background_tasks_statistics_under_a_limit() -> None:
    # A task counts as started when it leaves the waiting line; one cancelled while
    # waiting never started, so it never finishes either.
    supervisor = BackgroundTasks(name="lim", limit=1, pending_limit=2)
    release = anyio.Event()
    async with supervisor:
        supervisor.create_task(release.wait())
        second = supervisor.create_task(checkpoint())
        third = supervisor.create_task(anyio.sleep_forever())
        await anyio.wait_all_tasks_blocked()
        assert supervisor.statistics() == BackgroundTasksStatistics(
            "lim", True, 1, 2, 1, 0, 0, 0
        )
        third.cancel()
        await third.wait()
        assert supervisor.statistics() == BackgroundTasksStatistics(
            "lim", True, 1, 1, 1, 0, 0, 0
        )
        release.set()
        await second.wait()
        assert supervisor.statistics() == BackgroundTasksStatistics(
            "lim", True, 0, 0, 2, 2, 0, 0
        )
    assert supervisor.statistics() == BackgroundTasksStatistics(
        "lim", False, 0, 0, 2, 2, 0, 0
    )


# -- names and reprs -------------------------------------------------------------------


def test_names_in_reprs() -> None:
    assert (
        repr(CircuitBreaker(name="db"))
        == "<CircuitBreaker name='db' state='closed' failures=0/5>"
    )
    assert (
        repr(RateLimiter(5, name="api")) == "<RateLimiter name='api' rate=5.0 per=1.0>"
    )
    assert repr(RateLimiter(5)) == "<RateLimiter name=None rate=5.0 per=1.0>"
    assert repr(Debouncer(0.5, name="save")) == (
        "<Debouncer name='save' delay=0.5 pending=False>"
    )
    assert str(Queue[int](3, name="jobs")) == "<Queue name='jobs' maxsize=3>"
    assert Debouncer(1, name="save").name == "save"
    assert Queue[int]().name is None
    assert repr(AsyncEvent(name="ready")) == "<AsyncEvent name='ready' unset waiters=0>"
    assert repr(Barrier(2, name="b")).endswith("['b', filling, waiters:0/2]>")

    async def make() -> int:
        return 1

    assert repr(AsyncLazy(make, name="cfg")).startswith("<AsyncLazy name='cfg' ")
    assert (Barrier(1, name="x").name, AsyncEvent(name="y").name) == ("x", "y")


# Not a string: typed Any so that the type checkers let the wrong call through.
BAD_NAME: Any = 1


async def _one() -> int:
    return 1


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda: CircuitBreaker(name=BAD_NAME), "CircuitBreaker()"),
        (lambda: RateLimiter(1, name=BAD_NAME), "RateLimiter()"),
        (lambda: Debouncer(1, name=BAD_NAME), "Debouncer()"),
        (lambda: Queue(name=BAD_NAME), "Queue()"),
        (lambda: PriorityQueue(name=BAD_NAME), "PriorityQueue()"),
        (lambda: Barrier(1, name=BAD_NAME), "Barrier()"),
        (lambda: AsyncEvent(name=BAD_NAME), "AsyncEvent()"),
        (lambda: AsyncLazy(_one, name=BAD_NAME), "AsyncLazy()"),
    ],
)
def test_bad_names(make: object, where: str) -> None:
    # The shared check's message: the function, the argument, what it got.
    expected = f"{where} argument 'name' must be a string or None, got int 1"
    with pytest.raises(TypeError) as excinfo:
        make()  # type: ignore[operator]
    assert str(excinfo.value) == expected


def test_every_exported_name_lives_in_anyconc() -> None:
    import anyio

    for name in anyconc.__all__:
        obj = getattr(anyconc, name)
        # A generic alias (the Observer type) is not a class, though 3.10 says it is.
        is_class = inspect.isclass(obj) and not isinstance(obj, types.GenericAlias)
        if is_class or inspect.isfunction(obj):
            if obj.__module__.startswith("anyio"):
                continue  # re-exported from AnyIO (TaskCancelled, TaskNotFinished)
            assert obj.__module__ == "anyconc", name
            assert getattr(anyconc, obj.__name__) is obj
    assert anyconc.Lock.__module__ == "anyconc"
    assert anyio.Lock.__module__ != "anyconc"


def test_type_hints_of_exported_classes_still_resolve() -> None:
    # __module__ is "anyconc", where e.g. Literal is not defined: the annotations were
    # resolved in their own module before it was changed.
    import typing

    for name in anyconc.__all__:
        obj = getattr(anyconc, name)
        if inspect.isclass(obj):
            typing.get_type_hints(obj)
    hints = typing.get_type_hints(CircuitBreakerStatistics)
    assert hints["state"] == typing.Literal["closed", "open", "half-open"]
    assert hints["name"] == (str | None)
