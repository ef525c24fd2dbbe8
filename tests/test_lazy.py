# mypy: disable-error-code="comparison-overlap"
# (pytest.approx() inside a compared list or tuple is not a float to mypy.)
"""AsyncLazy: single-flight, failures, cancellation, reset, ttl, run-portability, seeds."""

from __future__ import annotations

import contextvars
import gc
import inspect
import logging
import math
import threading
import time
from typing import Any

import anyio
import pytest

import anyconc
from anyconc import AsyncLazy

pytestmark = pytest.mark.filterwarnings("error")


class Counter:
    """An async function that counts its calls and can be held at a gate."""

    def __init__(self, result: Any = "value", *, delay: float = 0.0) -> None:
        self.calls = 0
        self.result = result
        self.delay = delay
        self.gate: anyio.Event | None = None
        self.started: anyio.Event | None = None
        self.cancelled = 0
        self.completed = 0
        self.finished: anyio.Event | None = None  # of the latest call, made per call

    def hold(self) -> None:
        self.gate = anyio.Event()
        self.started = anyio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        finished = self.finished = anyio.Event()
        if self.started is not None:
            self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await anyio.sleep(self.delay)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            finished.set()
        self.completed += 1
        result = self.result
        return result(self.calls) if callable(result) else result


# --- single flight ----------------------------------------------------------------------


async def test_thousand_concurrent_gets_run_func_once() -> None:
    func = Counter(result=lambda n: {"call": n})
    func.hold()
    lazy = AsyncLazy(func)
    results: list[Any] = []

    async def getter() -> None:
        results.append(await lazy.get())

    async with anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(getter)
        await anyio.wait_all_tasks_blocked()
        assert func.calls == 1
        assert not lazy.is_set()
        assert func.gate is not None
        func.gate.set()

    assert len(results) == 1000
    assert all(r is results[0] for r in results)
    assert results[0] == {"call": 1}
    assert func.calls == 1
    assert lazy.is_set()
    assert await lazy.get() is results[0]
    assert func.calls == 1


async def test_none_is_a_cached_value() -> None:
    func = Counter(result=None)
    lazy: AsyncLazy[object] = AsyncLazy(func)
    assert not lazy.is_set()
    assert await lazy.get() is None
    assert lazy.is_set()
    assert await lazy.get() is None
    assert func.calls == 1


async def test_falsy_values_are_cached() -> None:
    values: tuple[object, ...] = (0, "", [], False)
    for value in values:
        func = Counter(result=value)
        lazy = AsyncLazy(func)
        assert await lazy.get() == value
        assert await lazy.get() == value
        assert func.calls == 1


async def test_plain_callable_returning_awaitable() -> None:
    func = Counter(result=7)
    lazy = AsyncLazy(lambda: func())
    assert await lazy.get() == 7
    assert await lazy.get() == 7
    assert func.calls == 1


async def test_func_sees_context_variables_of_starting_caller() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def read() -> str:
        return var.get()

    lazy = AsyncLazy(read)
    var.set("from caller")
    assert await lazy.get() == "from caller"


# --- failures ---------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_failure_reaches_every_waiter_and_is_not_cached() -> None:
    attempts = 0
    gate = anyio.Event()

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await gate.wait()
            raise Boom("first attempt")
        return "second"

    lazy = AsyncLazy(flaky)
    errors: list[BaseException] = []

    async def getter() -> None:
        try:
            await lazy.get()
        except Boom as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(getter)
        await anyio.wait_all_tasks_blocked()
        gate.set()

    assert len(errors) == 10
    assert all(e is errors[0] for e in errors)  # the same object, unwrapped
    assert type(errors[0]) is Boom
    assert str(errors[0]) == "first attempt"
    assert attempts == 1
    assert not lazy.is_set()
    # The traceback is reset for each raise: it does not grow with the number of waiters.
    depth = 0
    tb = errors[0].__traceback__
    while tb is not None:
        depth += 1
        tb = tb.tb_next
    assert depth < 10

    assert await lazy.get() == "second"
    assert attempts == 2
    assert lazy.is_set()


async def test_failure_is_raised_unwrapped_for_single_caller() -> None:
    async def fail() -> int:
        raise KeyError("missing")

    lazy = AsyncLazy(fail)
    with pytest.raises(KeyError, match="missing"):
        await lazy.get()
    with pytest.raises(KeyError, match="missing"):
        await lazy.get()


async def test_func_returning_non_awaitable_fails_the_get() -> None:
    lazy: AsyncLazy[Any] = AsyncLazy(lambda: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(
        TypeError,
        match=r"^AsyncLazy\.get\(\): '.*<lambda>' returned int, not an awaitable; "
        r"pass an async function \(or a function returning an awaitable\)$",
    ):
        await lazy.get()
    assert not lazy.is_set()


def test_generator_and_builtin_functions_are_rejected_at_construction() -> None:
    async def agen() -> Any:
        yield 1

    with pytest.raises(
        TypeError,
        match=r"^AsyncLazy\(\) argument 'func' must be an async function, got the "
        r"async generator function '.*agen' \(use 'async def'\)$",
    ):
        AsyncLazy(agen)
    with pytest.raises(TypeError, match=r"got the built-in function 'time'"):
        AsyncLazy(time.time)  # type: ignore[arg-type]


@pytest.mark.virtual_time
async def test_failure_after_all_waiters_left_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished = anyio.Event()

    async def cleanup_fails() -> str:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            raise RuntimeError("cleanup failed") from None
        finally:
            finished.set()
        return "never"

    lazy = AsyncLazy(cleanup_fails)
    with caplog.at_level(logging.ERROR, logger="anyconc"):
        with anyio.move_on_after(1):
            await lazy.get()
        # finished is set in the same step in which the host task logs the failure.
        await finished.wait()

    records = [r for r in caplog.records if r.name == "anyconc"]
    assert len(records) == 1
    assert "cleanup_fails" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)
    assert not lazy.is_set()


# --- cancellation -----------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_cancelling_starter_does_not_cancel_computation_for_others() -> None:
    func = Counter(result="value", delay=10)
    lazy = AsyncLazy(func)
    start = anyio.current_time()
    starter_scope = anyio.CancelScope()
    other_result: list[tuple[Any, float]] = []

    starter_got: list[Any] = []

    async def starter() -> None:
        with starter_scope:
            starter_got.append(await lazy.get())

    async def other() -> None:
        value = await lazy.get()
        other_result.append((value, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        tg.start_soon(starter)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(other)
        await anyio.sleep(3)
        starter_scope.cancel()

    assert starter_scope.cancelled_caught
    assert starter_got == []
    assert other_result == [("value", pytest.approx(10, abs=1e-6))]
    assert func.calls == 1
    assert func.cancelled == 0
    assert func.completed == 1
    assert lazy.is_set()


@pytest.mark.virtual_time
async def test_last_waiter_leaving_cancels_computation() -> None:
    func = Counter(result="value", delay=10)
    lazy = AsyncLazy(func)
    start = anyio.current_time()

    async def waiter(leave_at: float) -> None:
        with anyio.move_on_after(leave_at):
            await lazy.get()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, 2)
        tg.start_soon(waiter, 4)

    assert anyio.current_time() - start == pytest.approx(4, abs=1e-6)
    assert func.finished is not None
    await func.finished.wait()  # the cancelled computation has unwound
    assert anyio.current_time() - start == pytest.approx(4, abs=1e-6)
    assert func.calls == 1
    assert func.cancelled == 1
    assert func.completed == 0
    assert not lazy.is_set()

    # Nothing was cached or poisoned: the next get() starts a fresh computation.
    start = anyio.current_time()
    assert await lazy.get() == "value"
    assert anyio.current_time() - start == pytest.approx(10, abs=1e-6)
    assert func.calls == 2


@pytest.mark.virtual_time
async def test_timeout_on_sole_caller_cancels_computation() -> None:
    func = Counter(delay=10)
    lazy = AsyncLazy(func)
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(3):
            await lazy.get()
    assert anyio.current_time() - start == pytest.approx(3, abs=1e-6)
    assert func.finished is not None
    await func.finished.wait()
    assert anyio.current_time() - start == pytest.approx(3, abs=1e-6)
    assert func.cancelled == 1
    assert not lazy.is_set()


async def test_already_cancelled_caller_starts_nothing() -> None:
    func = Counter()
    lazy = AsyncLazy(func)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await lazy.get()
    assert scope.cancelled_caught
    await anyio.wait_all_tasks_blocked()
    assert func.calls == 0
    assert await lazy.get() == "value"
    assert func.calls == 1


async def test_cancelled_right_after_starting_before_func_ran() -> None:
    func = Counter()
    func.hold()
    lazy = AsyncLazy(func)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lazy.get)
            # The get() above starts the computation task; cancel before it gets going.
            await anyio.lowlevel.checkpoint()
            scope.cancel()
    assert scope.cancelled_caught
    await anyio.wait_all_tasks_blocked()  # the computation task has run, or ended
    # Either cancelled before its first step, or at its first await: never completed.
    assert func.completed == 0
    assert func.calls == func.cancelled
    assert not lazy.is_set()
    func.gate = None
    assert await lazy.get() == "value"
    assert func.completed == 1


async def test_cancelled_waiter_at_the_cached_fast_path_returns_value() -> None:
    # Documented decision: the cached fast path does not checkpoint.
    lazy = AsyncLazy(Counter(result=5))
    assert await lazy.get() == 5
    with anyio.CancelScope() as scope:
        scope.cancel()
        assert await lazy.get() == 5
        await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught


def test_computation_cancelled_from_outside_is_retried_by_its_waiters() -> None:
    # Only the event loop's shutdown cancels a computation task from outside; its
    # waiters (if any are still there) then start a new attempt. Simulated on asyncio by
    # cancelling the task directly: once before its first step, once while func runs.
    import asyncio

    func = Counter(result=lambda n: n)
    lazy = AsyncLazy(func)

    def host_tasks() -> list[asyncio.Task[Any]]:
        return [
            t
            for t in asyncio.all_tasks()
            if t.get_name().startswith("anyconc.AsyncLazy")
        ]

    async def main() -> list[Any]:
        waiter = asyncio.get_running_loop().create_task(lazy.get())
        await asyncio.sleep(0)  # the waiter has started the computation task...
        (host,) = host_tasks()
        host.cancel()  # ...which has not run yet
        assert await waiter == 1  # answered by a second attempt
        log: list[Any] = [func.calls]

        lazy.reset()
        func.hold()
        waiter = asyncio.get_running_loop().create_task(lazy.get())
        assert func.started is not None
        await func.started.wait()
        (host,) = host_tasks()
        func.started = anyio.Event()
        host.cancel()  # while func runs
        await func.started.wait()  # the waiter started a new attempt
        assert func.gate is not None
        func.gate.set()
        log += [await waiter, func.calls, func.cancelled, host_tasks()]
        return log

    assert anyio.run(main, backend="asyncio") == [1, 3, 3, 1, []]


# --- reset ------------------------------------------------------------------------------


async def test_reset_during_computation_answers_waiters_but_does_not_cache() -> None:
    gates = [anyio.Event(), anyio.Event()]
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        n = calls
        await gates[n - 1].wait()
        return n

    lazy = AsyncLazy(compute)
    got: dict[str, int] = {}

    async def get(key: str) -> None:
        got[key] = await lazy.get()

    async with anyio.create_task_group() as tg:
        tg.start_soon(get, "before-1")
        tg.start_soon(get, "before-2")
        await anyio.wait_all_tasks_blocked()
        lazy.reset()
        tg.start_soon(get, "after")
        await anyio.wait_all_tasks_blocked()
        assert calls == 2
        gates[0].set()
        await anyio.wait_all_tasks_blocked()
        assert got == {"before-1": 1, "before-2": 1}
        assert not lazy.is_set()  # the reset attempt's result was not cached
        gates[1].set()

    assert got == {"before-1": 1, "before-2": 1, "after": 2}
    assert lazy.is_set()
    assert await lazy.get() == 2
    assert calls == 2


async def test_reset_during_computation_with_no_new_caller() -> None:
    func = Counter(result=lambda n: n)
    func.hold()
    lazy = AsyncLazy(func)
    result: list[int] = []

    async def get() -> None:
        result.append(await lazy.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(get)
        await anyio.wait_all_tasks_blocked()
        lazy.reset()
        assert func.gate is not None
        func.gate.set()

    assert result == [1]
    assert not lazy.is_set()
    func.gate = None
    assert await lazy.get() == 2


async def test_reset_drops_cached_value() -> None:
    func = Counter(result=lambda n: n)
    lazy = AsyncLazy(func)
    assert await lazy.get() == 1
    lazy.reset()
    assert not lazy.is_set()
    assert await lazy.get() == 2
    assert await lazy.get() == 2


# --- ttl --------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_ttl_expires_exactly_ttl_after_computation() -> None:
    func = Counter(result=lambda n: n, delay=1)
    lazy = AsyncLazy(func, ttl=5)
    start = anyio.current_time()

    assert await lazy.get() == 1  # computed at start + 1
    assert anyio.current_time() - start == pytest.approx(1, abs=1e-6)
    await anyio.sleep(4.999)
    assert lazy.is_set()
    assert await lazy.get() == 1
    await anyio.sleep(0.001)  # now exactly 5 s after the value was computed
    assert anyio.current_time() - start == pytest.approx(6, abs=1e-6)
    assert not lazy.is_set()
    assert await lazy.get() == 2
    assert anyio.current_time() - start == pytest.approx(7, abs=1e-6)
    assert func.calls == 2


@pytest.mark.virtual_time
async def test_ttl_counts_from_end_of_computation_not_start() -> None:
    func = Counter(result=lambda n: n, delay=8)
    lazy = AsyncLazy(func, ttl=5)
    start = anyio.current_time()
    assert await lazy.get() == 1
    await anyio.sleep(4)  # 12 s after the call started, 4 s after it finished
    assert await lazy.get() == 1
    assert anyio.current_time() - start == pytest.approx(12, abs=1e-6)


def test_ttl_value_from_another_run_is_expired_without_ttl_kept() -> None:
    with_ttl = AsyncLazy(Counter(result=lambda n: n), ttl=1000)
    without_ttl = AsyncLazy(Counter(result=lambda n: n))

    async def main() -> tuple[int, int, bool, bool]:
        before = (with_ttl.is_set(), without_ttl.is_set())
        return await with_ttl.get(), await without_ttl.get(), *before

    assert anyio.run(main, backend="asyncio") == (1, 1, False, False)
    assert not with_ttl.is_set()  # no run: its clock reading means nothing
    assert without_ttl.is_set()
    assert anyio.run(main, backend="trio") == (2, 1, False, True)
    assert anyio.run(main, backend="asyncio") == (3, 1, False, True)


# --- bad arguments ----------------------------------------------------------------------


def test_non_callable_is_rejected() -> None:
    with pytest.raises(
        TypeError,
        match=r"^AsyncLazy\(\) argument 'func' must be a function, got int 42$",
    ):
        AsyncLazy(42)  # type: ignore[arg-type]


def test_coroutine_object_is_rejected_and_closed() -> None:
    async def fetch() -> int:
        return 1

    coro = fetch()
    with pytest.raises(
        TypeError,
        match=r"^AsyncLazy\(\) argument 'func' must be a function, got the coroutine "
        r"object .*fetch\(\); pass the function itself, not the result of calling it: "
        r"AsyncLazy\(fetch\)$",
    ):
        AsyncLazy(coro)  # type: ignore[arg-type]
    assert (
        inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    )  # no "never awaited" warning
    del coro
    gc.collect()


@pytest.mark.parametrize("ttl", [0, -1, -0.5, math.nan])
def test_non_positive_ttl_is_rejected(ttl: float) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^AsyncLazy\(\) argument 'ttl' must be a positive number or None, "
        rf"got {ttl!r}$",
    ):
        AsyncLazy(Counter(), ttl=ttl)


@pytest.mark.parametrize(
    ("ttl", "name"), [("5", "str '5'"), (True, "bool True"), ([], r"list \[\]")]
)
def test_non_number_ttl_is_rejected(ttl: object, name: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^AsyncLazy\(\) argument 'ttl' must be a positive number or None, "
        rf"got {name}$",
    ):
        AsyncLazy(Counter(), ttl=ttl)  # type: ignore[arg-type]


def test_integer_and_infinite_ttl_are_accepted() -> None:
    assert "ttl=3.0" in repr(AsyncLazy(Counter(), ttl=3))
    assert "ttl=inf" in repr(AsyncLazy(Counter(), ttl=math.inf))


# --- run-portability --------------------------------------------------------------------

MODULE_LAZY_CALLS = Counter(result=lambda n: n)
MODULE_LAZY = AsyncLazy(MODULE_LAZY_CALLS)  # created at import time, no loop running


async def test_module_level_lazy_is_usable_on_every_backend() -> None:
    # The asyncio, uvloop and trio variants share this object: each computes in its run.
    MODULE_LAZY.reset()
    MODULE_LAZY_CALLS.hold()
    calls_before = MODULE_LAZY_CALLS.calls
    results: list[int] = []

    async def get() -> None:
        results.append(await MODULE_LAZY.get())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(get)
        await anyio.wait_all_tasks_blocked()
        assert MODULE_LAZY_CALLS.gate is not None
        MODULE_LAZY_CALLS.gate.set()

    assert results == [calls_before + 1] * 3
    assert await MODULE_LAZY.get() == calls_before + 1
    MODULE_LAZY_CALLS.gate = None


def test_run_portability_asyncio_trio_asyncio() -> None:
    func = Counter(result=lambda n: n)
    lazy = AsyncLazy(func)

    async def main() -> list[int]:
        lazy.reset()
        func.hold()
        results: list[int] = []

        async def get() -> None:
            results.append(await lazy.get())

        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            tg.start_soon(get)
            await anyio.wait_all_tasks_blocked()
            assert func.gate is not None
            func.gate.set()
        results.append(await lazy.get())
        return results

    assert anyio.run(main, backend="asyncio") == [1, 1, 1]
    assert anyio.run(main, backend="trio") == [2, 2, 2]
    assert anyio.run(main, backend="asyncio") == [3, 3, 3]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_ending_mid_computation_leaves_nothing_behind(backend: str) -> None:
    func = Counter(result=lambda n: n)
    lazy: AsyncLazy[int] = AsyncLazy(func)

    async def leave_it_running() -> None:
        func.hold()
        # A waiter in a task the run will cancel at its end (asyncio: a loop task;
        # trio: a system task), so the run ends with the computation still in flight.
        anyconc.create_background_task(lazy.get())
        assert func.started is not None
        await func.started.wait()

    anyio.run(leave_it_running, backend=backend)
    assert func.calls == 1
    assert func.cancelled == 1
    assert not lazy.is_set()

    async def use_again() -> int:
        func.gate = None
        func.started = None
        return await lazy.get()

    assert (
        anyio.run(use_again, backend="trio" if backend == "asyncio" else "asyncio") == 2
    )
    assert anyio.run(use_again, backend=backend) == 2
    gc.collect()


# --- the seeds' examples ----------------------------------------------------------------

CALCULATIONS = 0
CALCULATION_LOCK = threading.Lock()


def calculate_daily_stats() -> dict[str, dict[str, int]]:
    # Expensive, synchronous: runs in a worker thread.
    global CALCULATIONS
    with CALCULATION_LOCK:
        CALCULATIONS += 1
    return {"views": {"2024-01-01": 10}, "clicks": {"2024-01-01": 3}}


daily_stats = AsyncLazy(lambda: anyconc.run_in_threadpool(calculate_daily_stats))


async def get_daily_analytics() -> Any:
    try:
        # Will compute only once and cache
        stats = await daily_stats.get()
        return stats
    except Exception as e:
        return {"error": str(e)}, 500


async def test_seed_daily_stats_analytics() -> None:
    global CALCULATIONS
    daily_stats.reset()
    CALCULATIONS = 0
    responses: list[Any] = []

    async def request() -> None:
        responses.append(await get_daily_analytics())

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(request)

    assert CALCULATIONS == 1
    assert responses == [calculate_daily_stats()] * 50
    assert all(r is responses[0] for r in responses)
    CALCULATIONS = 1
    daily_stats.reset()  # what the daily reset task does
    assert await get_daily_analytics() == calculate_daily_stats()
    assert CALCULATIONS == 3  # one recomputation plus the direct call above


async def test_seed_daily_stats_error_is_reported_and_retried() -> None:
    failures = iter([OSError("large_dataset.csv: no such file")])

    def calculate() -> dict[str, int]:
        for exc in failures:
            raise exc
        return {"views": 1}

    stats = AsyncLazy(lambda: anyconc.run_in_threadpool(calculate))

    async def handler() -> Any:
        try:
            return await stats.get()
        except Exception as e:
            return {"error": str(e)}, 500

    assert await handler() == ({"error": "large_dataset.csv: no such file"}, 500)
    assert await handler() == {"views": 1}


@pytest.mark.virtual_time
async def test_seed_daily_reset_task() -> None:
    # The seed's reset_daily loop, with anyio.sleep for asyncio.sleep, under virtual time.
    func = Counter(result=lambda n: {"day": n})
    stats = AsyncLazy(func)

    async def reset_daily() -> None:
        while True:
            await anyio.sleep(86400)  # 24 hours
            stats.reset()

    seen: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(reset_daily)
        await anyio.sleep(3600)  # read at 01:00 each day, the reset runs at midnight
        for _ in range(3):
            seen.append(await stats.get())
            seen.append(await stats.get())
            await anyio.sleep(86400)
        tg.cancel_scope.cancel()

    assert seen == [
        {"day": 1},
        {"day": 1},
        {"day": 2},
        {"day": 2},
        {"day": 3},
        {"day": 3},
    ]


async def expensive_computation() -> dict[str, str]:
    await anyio.sleep(2)  # Simulate expensive work
    return {"data": "expensive result"}


lazy_data = AsyncLazy(expensive_computation)


@pytest.mark.virtual_time
async def test_seed_lazy_data_get_and_reset() -> None:
    lazy_data.reset()

    async def get_data() -> Any:
        return await lazy_data.get()

    async def reset_data() -> Any:
        lazy_data.reset()
        return {"status": "reset"}

    start = anyio.current_time()
    assert await get_data() == {"data": "expensive result"}
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)
    assert await get_data() == {"data": "expensive result"}
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)  # cached
    assert await reset_data() == {"status": "reset"}
    assert await get_data() == {"data": "expensive result"}
    assert anyio.current_time() - start == pytest.approx(4, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_refreshable_cache() -> None:
    # The long guide's RefreshableCache, with anyio.current_time() for time.time().
    fetches = 0

    async def fetch_latest_config_from_api() -> dict[str, int]:
        nonlocal fetches
        fetches += 1
        await anyio.sleep(1)
        return {"version": fetches}

    class RefreshableCache:
        def __init__(self, refresh_interval: int = 300) -> None:
            self.refresh_interval = refresh_interval
            self.last_refresh = -math.inf
            self.cache = AsyncLazy(self._fetch_data)

        async def get(self) -> Any:
            current_time = anyio.current_time()
            if current_time - self.last_refresh > self.refresh_interval:
                self.cache.reset()
                self.last_refresh = current_time
            return await self.cache.get()

        async def _fetch_data(self) -> Any:
            return await fetch_latest_config_from_api()

    config_cache = RefreshableCache(refresh_interval=600)
    assert await config_cache.get() == {"version": 1}
    await anyio.sleep(300)
    assert await config_cache.get() == {"version": 1}
    await anyio.sleep(400)  # 701 s after the refresh
    assert await config_cache.get() == {"version": 2}
    assert fetches == 2
    # The same with the built-in ttl:
    config = AsyncLazy(fetch_latest_config_from_api, ttl=600)
    assert await config.get() == {"version": 3}
    await anyio.sleep(599)
    assert await config.get() == {"version": 3}
    await anyio.sleep(1)
    assert await config.get() == {"version": 4}
