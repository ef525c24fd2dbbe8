# pyright: strict
"""
Static type tests of the public API: ``assert_type`` checks, run by ``mypy --strict``
and ``pyright`` (see ``.ci/run``); nothing here runs.

The module is named ``check_*.py`` so that pytest does not collect it. The functions
are never called: each statement only has to type-check, with the type written next
to it. A line that must be *rejected* carries a ``# type: ignore[code]`` comment, which
``warn_unused_ignores`` (part of ``mypy --strict``) turns into a failure if the error
goes away.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import anyio
import anyio.abc

import anyconc
from anyconc import (
    AllFailedError,
    AsyncEvent,
    AsyncEventStatistics,
    AsyncExecutor,
    AsyncLazy,
    AsyncLazyStatistics,
    BackgroundDrainFinished,
    BackgroundDrainStarted,
    BackgroundTask,
    BackgroundTaskFailed,
    BackgroundTasks,
    BackgroundTasksFull,
    BackgroundTasksStatistics,
    BackgroundTaskStarted,
    Barrier,
    BarrierStatistics,
    CapacityLimiter,
    CircuitBreaker,
    CircuitBreakerStatistics,
    CircuitOpenError,
    CircuitStateChanged,
    Condition,
    Debouncer,
    FanOutProgress,
    InstrumentEvent,
    LifoQueue,
    Lock,
    LoggingObserver,
    Observer,
    PriorityQueue,
    Queue,
    QueueStatistics,
    RateLimiter,
    RateLimiterStatistics,
    RetryGaveUp,
    RetryScheduled,
    Semaphore,
    Task,
    TaskGroup,
    ThreadPool,
    ThreadPoolStatistics,
    Timeout,
    amap,
    as_completed,
    asyncify,
    create_background_task,
    create_task_group,
    every,
    gather,
    iterate_in_threadpool,
    logging_observer,
    retry,
    run_from_thread,
    run_in_executor,
    run_in_process,
    run_in_threadpool,
    run_until_first_complete,
    shield,
    subscribe,
    syncify,
    timeout,
    unsubscribe,
)
from anyconc.asgi import (
    BackgroundTasksMiddleware,
    BackgroundTasksStatus,
    background_tasks_lifespan,
    background_tasks_status,
)
from anyconc.otel import OpenTelemetryObserver
from anyconc.prometheus import PrometheusObserver

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


async def fetch_int(x: int) -> int:
    return x


async def fetch_str() -> str:
    return ""


def blocking(a: int, b: str = "", *, c: float = 0.0) -> bytes:
    return b""


async def serve(
    port: int, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started(f"port {port}")


async def serve_many(
    a: int, b: str, c: bytes, d: float, *, task_status: anyio.abc.TaskStatus[int]
) -> None:
    task_status.started(a)


async def serve_nothing(*, task_status: anyio.abc.TaskStatus[None]) -> None:
    task_status.started()


async def serve_five(
    a: int, b: int, c: int, d: int, e: int, *, task_status: anyio.abc.TaskStatus[int]
) -> None:
    task_status.started(a)


async def tasks() -> None:
    async with TaskGroup() as group:
        assert_type(group, TaskGroup)
        task = group.create_task(fetch_int(1))
        assert_type(task, Task[int])
        assert_type(await task, int)
        assert_type(task.result(), int)
        assert_type(task.exception(), BaseException | None)
        assert_type(task.done(), bool)
        assert_type(task.cancel(), bool)
        assert_type(group.start_soon(fetch_int, 2), Task[int])
        assert_type(group.start_soon(fetch_str, name="s"), Task[str])
        group.start_soon(fetch_int, "x")  # type: ignore[arg-type]
        assert_type(group.tasks, tuple[Task[Any], ...])
        assert_type(group.cancel_scope, anyio.CancelScope)
        # The value passed to task_status.started(), with its type (AnyIO's and
        # trio's are Any); arguments are checked up to four of them.
        assert_type(await group.start(serve, 1), str)
        assert_type(await group.start(serve, 1, name="web"), str)
        assert_type(await group.start(serve_many, 1, "b", b"c", 1.5), int)
        assert_type(await group.start(serve_nothing), None)
        await group.start(serve, "1")  # type: ignore[misc]
        await group.start(serve, 1, 2)  # type: ignore[arg-type]
        # Five arguments or more: not checked, Any as in AnyIO.
        assert_type(await group.start(serve_five, 1, 2, 3, 4, 5), Any)
    async with create_task_group(name="g") as other:
        assert_type(other, TaskGroup)
    async for each in create_task_group():
        assert_type(each, TaskGroup)


async def threads() -> None:
    assert_type(await run_in_threadpool(blocking, 1, "s", c=2.0), bytes)
    await run_in_threadpool(blocking, "1")  # type: ignore[arg-type]
    pool = ThreadPool(2, name="p", cancellable=True)
    assert_type(await pool.run(blocking, 1), bytes)
    assert_type(iterate_in_threadpool([1, 2]), AsyncIterator[int])
    assert_type(await run_in_process(blocking, 1), bytes)
    with concurrent.futures.ThreadPoolExecutor() as executor:
        assert_type(await run_in_executor(executor, blocking, 1, c=1.0), bytes)
        assert_type(await AsyncExecutor(executor).run(blocking, 1), bytes)


async def races() -> None:
    assert_type(
        await run_until_first_complete(
            lambda: fetch_int(1), (fetch_int, {"x": 2}), fetch_int(3), timeout=1
        ),
        int,
    )
    assert_type(AllFailedError("m", [ValueError()]), AllFailedError)


async def background() -> None:
    async with BackgroundTasks(name="b", shutdown_timeout=5) as supervisor:
        assert_type(supervisor, BackgroundTasks)
        assert_type(supervisor.create_task(fetch_str()), BackgroundTask[str])
        assert_type(supervisor.active, tuple[BackgroundTask[Any], ...])
    async with BackgroundTasks(limit=10, pending_limit=100) as limited:
        assert_type(await limited.spawn(fetch_str(), name="s"), BackgroundTask[str])
        assert_type(limited.waiting, tuple[BackgroundTask[Any], ...])
        assert_type(limited.limit, int | None)
        assert_type(limited.pending_limit, int | None)
        try:
            assert_type(limited.create_task(fetch_int(1)).waiting(), bool)
        except BackgroundTasksFull as full:
            assert_type(full, BackgroundTasksFull)
    BackgroundTasks(limit="1")  # type: ignore[arg-type]
    task = create_background_task(fetch_int(1), name="n")
    assert_type(task, BackgroundTask[int])
    assert_type(await task, int)
    create_background_task(fetch_int)  # type: ignore[arg-type]


async def asgi_limits(app: Any) -> None:
    middleware = BackgroundTasksMiddleware(app, limit=10, pending_limit=100)
    assert_type(middleware, BackgroundTasksMiddleware)
    background_tasks_lifespan(limit=10, pending_limit=None)
    status = background_tasks_status()
    assert_type(status, BackgroundTasksStatus)
    assert_type(status["waiting_tasks"], int)
    assert_type(status["limit"], int | None)
    assert_type(status["pending_limit"], int | None)
    assert_type(status["started_tasks"], int)
    assert_type(status["failed_tasks"], int)


async def lazy_and_events() -> None:
    lazy = AsyncLazy(fetch_str, ttl=10)
    assert_type(lazy, AsyncLazy[str])
    assert_type(await lazy.get(), str)
    assert_type(lazy.is_set(), bool)
    event = AsyncEvent()
    assert_type(await event.wait(timeout=1), bool)


async def coordination() -> None:
    barrier = Barrier(2)
    assert_type(await barrier.wait(), int)
    async with Lock(fast_acquire=True), Semaphore(1, max_value=2), CapacityLimiter(3):
        pass
    async with Condition(Lock()) as _:
        pass
    queue: Queue[int] = Queue(maxsize=2)
    await queue.put(1)
    assert_type(await queue.get(), int)
    assert_type(queue.get_nowait(), int)
    await queue.put("x")  # type: ignore[arg-type]
    assert_type(PriorityQueue[tuple[int, str]]().get_nowait(), tuple[int, str])
    assert_type(LifoQueue[str]().get_nowait(), str)


async def fan_out() -> None:
    # Per position, as anyio.gather (and asyncio.gather in typeshed).
    assert_type(await gather(fetch_int(1)), tuple[int])
    assert_type(await gather(fetch_int(1), fetch_str()), tuple[int, str])
    assert_type(
        await gather(fetch_int(1), fetch_str(), fetch_int(2), limit=2),
        tuple[int, str, int],
    )
    number, text = await gather(fetch_int(1), fetch_str())
    assert_type(number, int)
    assert_type(text, str)
    assert_type(
        await gather(fetch_int(1), fetch_str(), return_exceptions=True),
        tuple[int | Exception, str | Exception],
    )
    coros = [fetch_int(i) for i in range(10)]
    assert_type(await gather(*coros), list[int])
    assert_type(await gather(*coros, return_exceptions=True), list[int | Exception])
    flag: bool = bool(coros)
    assert_type(await gather(*coros, return_exceptions=flag), list[int | Exception])

    assert_type(await amap(fetch_int, range(3), limit=2, max_per_second=5), list[int])
    await amap(fetch_int, ["x"])  # type: ignore[arg-type]
    completed: AbstractAsyncContextManager[AsyncIterator[Task[int]]]
    completed = as_completed(*coros, limit=2)
    async with completed as finished:
        async for done in finished:
            assert_type(done, Task[int])


async def resilience() -> None:
    @retry(attempts=3, on=(ValueError, KeyError), delay=0.1, timeout=5)
    async def flaky(x: int) -> str:
        return str(x)

    as_callable: Callable[[int], Coroutine[Any, Any, str]] = flaky
    assert_type(await as_callable(1), str)
    assert_type(await flaky(1), str)
    retry(on=lambda exc: isinstance(exc, OSError))

    breaker = CircuitBreaker(failure_threshold=2, expected=OSError)
    assert_type(breaker.state, Literal["closed", "open", "half-open"])
    assert_type(await breaker.call(fetch_int, 1), int)

    @breaker
    async def guarded(x: int) -> int:
        return x

    assert_type(await guarded(1), int)
    assert_type(CircuitOpenError(1.0).retry_after, float)

    debounce = Debouncer(0.5)
    debounce(fetch_int, 1)
    debounce(blocking, 1, c=2.0)
    debounce(fetch_int, "x")  # type: ignore[arg-type]

    async with RateLimiter(5, per=1.0) as limiter:
        assert_type(limiter, RateLimiter)
    assert_type(every(1.0), AsyncIterator[float])

    t = timeout(5)
    assert_type(t, Timeout)
    assert_type(t, anyconc.Timeout)
    with t as scope:
        assert_type(scope, anyio.CancelScope)
        assert_type(t.when(), float | None)
        t.reschedule(None)
    assert_type(t.expired(), bool)
    assert_type(await shield(fetch_int(1)), int)


def bridge() -> None:
    # From a worker thread: back into the event loop, blocking.
    assert_type(run_from_thread(fetch_int, 1), int)
    run_from_thread(fetch_int, "x")  # type: ignore[arg-type]
    sync_fetch = syncify(fetch_int)  # the signature kept (ParamSpec)
    as_sync: Callable[[int], int] = sync_fetch
    assert_type(sync_fetch(x=1), int)
    assert_type(as_sync(1), int)
    syncify(blocking)  # type: ignore[arg-type]


async def bridge_async() -> None:
    async_blocking = asyncify(blocking)
    assert_type(await async_blocking(1, "s", c=1.0), bytes)
    assert_type(await asyncify(blocking, pool=ThreadPool(2))(1), bytes)
    await async_blocking("1")  # type: ignore[arg-type]


def instrumentation() -> None:
    def observe(event: InstrumentEvent) -> None:
        if isinstance(event, RetryScheduled):
            assert_type(event.function, str)
            assert_type(event.attempt, int)
            assert_type(event.attempts, int)
            assert_type(event.delay, float)
            assert_type(event.error, BaseException)
        elif isinstance(event, RetryGaveUp):
            assert_type(event.reason, Literal["attempts", "not retryable", "timeout"])
        elif isinstance(event, CircuitStateChanged):
            assert_type(event.breaker, str | None)
            assert_type(event.previous, Literal["closed", "open", "half-open"])
            assert_type(event.state, Literal["closed", "open", "half-open"])
            assert_type(event.reason, str)
            assert_type(event.recovery_timeout, float)
        elif isinstance(event, BackgroundTaskStarted):
            assert_type(event.supervisor, str | None)
            assert_type(event.task, str)
        elif isinstance(event, BackgroundTaskFailed):
            assert_type(event.error, BaseException)
        elif isinstance(event, BackgroundDrainStarted):
            assert_type(event.active, int)
            assert_type(event.timeout, float | None)
        elif isinstance(event, BackgroundDrainFinished):
            assert_type(event.finished, int)
            assert_type(event.cancelled, int)
            assert_type(event.elapsed, float)
        elif isinstance(event, FanOutProgress):
            assert_type(event.operation, Literal["gather", "amap", "as_completed"])
            assert_type(event.done, int)
            assert_type(event.failed, int)
            assert_type(event.total, int | None)
            assert_type(event.child_failed, bool)
        assert_type(event.kind, str)

    as_observer: Observer = observe
    stop = subscribe(as_observer, kinds=[RetryScheduled, CircuitStateChanged])
    assert_type(stop, Callable[[], None])
    stop()
    subscribe(observe, kinds=[int])  # type: ignore[list-item]
    unsubscribe(observe)
    assert_type(logging_observer, LoggingObserver)
    assert_type(LoggingObserver.kinds, tuple[type[InstrumentEvent], ...])
    subscribe(LoggingObserver(), kinds=LoggingObserver.kinds)
    subscribe(OpenTelemetryObserver(span_events=False))
    subscribe(PrometheusObserver(namespace="app"), kinds=PrometheusObserver.kinds)


def statistics() -> None:
    # Every name= is optional, a string or None; every statistics() a frozen snapshot.
    queue = Queue[int](name="q").statistics()
    assert_type(queue, QueueStatistics)
    assert_type(queue.name, str | None)
    assert_type(queue.maxsize, float)
    assert_type(queue.size, int)
    assert_type(queue.shutdown, bool)
    assert_type(PriorityQueue[int](name="p").statistics(), QueueStatistics)
    assert_type(LifoQueue[int](name="l").statistics(), QueueStatistics)
    barrier = Barrier(2, name="b").statistics()
    assert_type(barrier, BarrierStatistics)
    assert_type(barrier.n_waiting, int)
    assert_type(barrier.broken, bool)
    event = AsyncEvent(name="e")
    assert_type(event.name, str | None)
    assert_type(event.statistics(), AsyncEventStatistics)
    assert_type(event.statistics().waiters, int)
    lazy = AsyncLazy(fetch_str, name="l").statistics()
    assert_type(lazy, AsyncLazyStatistics)
    assert_type(lazy.state, Literal["cached", "computing", "unset"])
    assert_type(lazy.ttl, float | None)
    breaker = CircuitBreaker(name="c")
    assert_type(breaker.name, str | None)
    assert_type(breaker.statistics(), CircuitBreakerStatistics)
    assert_type(breaker.statistics().times_opened, int)
    assert_type(breaker.statistics().retry_after, float)
    limiter = RateLimiter(5, name="r").statistics()
    assert_type(limiter, RateLimiterStatistics)
    assert_type(limiter.admitted, int)
    assert_type(Debouncer(0.5, name="d").name, str | None)
    pool = ThreadPool(2, name="t").statistics()
    assert_type(pool, ThreadPoolStatistics)
    assert_type(pool.running, int)
    supervisor = BackgroundTasks(name="s").statistics()
    assert_type(supervisor, BackgroundTasksStatistics)
    assert_type(supervisor.failed, int)
    assert_type(supervisor.accepting, bool)
    assert_type(supervisor.waiting, int)
    Queue[int](name=1)  # type: ignore[arg-type]


def awaitable_of(value: Awaitable[int]) -> Awaitable[int]:
    return value
