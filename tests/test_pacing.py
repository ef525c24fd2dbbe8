# mypy: disable-error-code="comparison-overlap"
# (pytest.approx() inside a compared list or tuple is not a float to mypy.)
"""Tests for anyconc.RateLimiter, anyconc.every and anyconc.Debouncer."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest
import sniffio

from anyconc._pacing import Debouncer, RateLimiter, every
from anyconc.pytest_plugin import backend_spec

T = TypeVar("T")


def run_virtual(fn: Callable[[], Awaitable[T]], backend: str) -> T:
    """anyio.run() under a virtual clock starting at 0 on either backend."""
    name, options = backend_spec(backend, virtual_time=True)
    return anyio.run(fn, backend=name, backend_options=options)


def offsets(times: list[float], start: float) -> list[float]:
    return [round(t - start, 6) for t in times]


# --- RateLimiter ---


async def enter_in_order(
    limiter: RateLimiter, n: int, start: float
) -> list[tuple[int, float]]:
    """Start n tasks one after another (each queued before the next), record entries."""
    entries: list[tuple[int, float]] = []

    async def enter(i: int) -> None:
        async with limiter:
            entries.append((i, round(anyio.current_time() - start, 6)))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(enter, i)
            await settle()
    return entries


async def settle() -> None:
    """Let every other task run a few steps, without moving the (virtual) clock.

    (AnyIO's ``wait_all_tasks_blocked`` polls with 0.1 s sleeps on asyncio, which a
    virtual clock turns into elapsed time.) Each checkpoint is one scheduler pass on
    both backends, in which every runnable task takes one step.
    """
    for _ in range(5):
        await anyio.lowlevel.checkpoint()


@pytest.mark.virtual_time
async def test_rate_limiter_bursts_then_waits_fifo() -> None:
    limiter = RateLimiter(2, per=1.0)
    entries = await enter_in_order(limiter, 7, anyio.current_time())
    assert entries == [
        (0, 0.0),
        (1, 0.0),
        (2, 1.0),
        (3, 1.0),
        (4, 2.0),
        (5, 2.0),
        (6, 3.0),
    ]


@pytest.mark.virtual_time
async def test_rate_limiter_is_a_sliding_window() -> None:
    limiter = RateLimiter(3, per=1.0)
    start = anyio.current_time()
    times: list[float] = []
    for at in (0.0, 0.0, 0.0, 0.5, 1.2, 1.3, 1.4):
        await anyio.sleep_until(start + at)
        async with limiter:
            times.append(anyio.current_time())
    assert offsets(times, start) == [0.0, 0.0, 0.0, 1.0, 1.2, 1.3, 2.0]
    # no window of 1 s holds more than 3 entries
    rel = offsets(times, start)
    assert max(sum(1 for t in rel if w <= t < w + 1) for w in rel) == 3


@pytest.mark.parametrize(
    ("rate", "per", "spacing"), [(0.5, 1.0, 2.0), (2.5, 1.0, 0.4), (1.5, 3.0, 2.0)]
)
@pytest.mark.virtual_time
async def test_fractional_rate_spaces_entries_evenly(
    rate: float, per: float, spacing: float
) -> None:
    limiter = RateLimiter(rate, per=per)
    entries = await enter_in_order(limiter, 4, anyio.current_time())
    assert entries == [(i, pytest.approx(i * spacing, abs=1e-6)) for i in range(4)]


@pytest.mark.virtual_time
async def test_cancelled_head_waiter_passes_its_turn_on() -> None:
    limiter = RateLimiter(1, per=1.0)
    start = anyio.current_time()
    entered: dict[str, float] = {}
    scopes: dict[str, anyio.CancelScope] = {}

    async def enter(name: str) -> None:
        with anyio.CancelScope() as scope:
            scopes[name] = scope
            async with limiter:
                entered[name] = round(anyio.current_time() - start, 6)

    async with anyio.create_task_group() as tg:
        for name in "abcd":
            tg.start_soon(enter, name)
            await settle()
        await anyio.sleep(0.5)
        scopes["b"].cancel()  # the head waiter
        scopes["c"].cancel()  # not the head
    assert entered == {"a": 0.0, "d": 1.0}


@pytest.mark.virtual_time
async def test_acquire_is_a_checkpoint_and_cancelled_caller_takes_no_slot() -> None:
    limiter = RateLimiter(1, per=10)
    start = anyio.current_time()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limiter.acquire()
        pytest.fail("not reached")
    assert scope.cancelled_caught
    async with limiter:
        assert anyio.current_time() == start


@pytest.mark.virtual_time
async def test_timeout_while_waiting_for_the_limiter() -> None:
    limiter = RateLimiter(1, per=10)
    await limiter.acquire()
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(3):
            await limiter.acquire()
    assert anyio.current_time() - start == pytest.approx(3.0, abs=1e-6)
    # the timed-out waiter left the queue: the next one gets the slot at t=10
    await limiter.acquire()
    assert anyio.current_time() - start == pytest.approx(10.0, abs=1e-6)


async def test_body_exception_propagates_and_the_entry_counts() -> None:
    limiter = RateLimiter(1, per=1000)

    async def body() -> None:
        async with limiter:
            raise KeyError("inside")

    with pytest.raises(KeyError):
        await body()
    with anyio.move_on_after(0.05) as scope:
        await limiter.acquire()
    assert scope.cancelled_caught


@pytest.mark.parametrize(
    ("args", "exc_type", "message"),
    [
        ((0,), ValueError, "'rate' must be a positive finite number, got 0"),
        ((-1,), ValueError, "'rate' must be a positive finite number, got -1"),
        (
            (float("inf"),),
            ValueError,
            "'rate' must be a positive finite number, got inf",
        ),
        (
            (float("nan"),),
            ValueError,
            "'rate' must be a positive finite number, got nan",
        ),
        (("5",), TypeError, "'rate' must be a positive finite number, got str '5'"),
        ((5, 0), ValueError, "'per' must be a positive finite number, got 0"),
        ((True,), TypeError, "'rate' must be a positive finite number, got bool True"),
        (
            (5, float("nan")),
            ValueError,
            "'per' must be a positive finite number, got nan",
        ),
        (
            (5, None),
            TypeError,
            "'per' must be a positive finite number, got NoneType None",
        ),
    ],
)
def test_rate_limiter_bad_arguments(
    args: tuple[Any, ...], exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type) as info:
        RateLimiter(*args)
    assert str(info.value) == "RateLimiter() argument " + message


_limiter = RateLimiter(2, per=10)


def test_rate_limiter_across_runs() -> None:
    assert repr(_limiter) == "<RateLimiter name=None rate=2.0 per=10.0>"

    async def use() -> list[Any]:
        start = anyio.current_time()
        times = []
        for _ in range(3):
            async with _limiter:
                times.append(anyio.current_time() - start)
        return [sniffio.current_async_library(), *times]

    # each run starts with a fresh window (the previous run's times mean nothing)
    for backend in ("asyncio", "trio", "asyncio"):
        assert run_virtual(use, backend) == [
            backend,
            0.0,
            0.0,
            pytest.approx(10.0, abs=1e-6),
        ]
    # and without a virtual clock
    assert anyio.run(_limiter.acquire, backend="trio") is None


# --- every ---


@pytest.mark.virtual_time
async def test_every_ticks_without_drift() -> None:
    start = anyio.current_time()
    ticks: list[float] = []
    seen_at: list[float] = []
    async for tick in every(0.1):
        ticks.append(tick)
        seen_at.append(anyio.current_time())
        await anyio.sleep(0.03)  # body time must not shift the schedule
        if len(ticks) == 30:
            break
    assert offsets(ticks, start) == pytest.approx(
        [k * 0.1 for k in range(30)], abs=1e-6
    )
    assert seen_at == pytest.approx(ticks, abs=1e-6)


@pytest.mark.virtual_time
async def test_every_skips_missed_ticks_without_bunching() -> None:
    start = anyio.current_time()
    durations = iter([0.5, 2.5, 0.2, 1.0, 0.0])
    ticks: list[float] = []
    async for tick in every(1.0):
        assert anyio.current_time() == pytest.approx(tick, abs=1e-6)
        ticks.append(tick)
        d = next(durations, None)
        if d is None:
            break
        await anyio.sleep(d)
    # tick 1's body overran to 3.5: ticks 2 and 3 are skipped; the body ending
    # exactly at 6.0 gets tick 6 at once
    assert offsets(ticks, start) == [0.0, 1.0, 4.0, 5.0, 6.0, 7.0]


@pytest.mark.virtual_time
async def test_every_cancelled_while_waiting() -> None:
    start = anyio.current_time()
    ticks: list[float] = []
    with anyio.move_on_after(2.5) as scope:
        async for tick in every(1.0):
            ticks.append(tick)
    assert scope.cancelled_caught
    assert offsets(ticks, start) == [0.0, 1.0, 2.0]
    assert anyio.current_time() - start == pytest.approx(2.5, abs=1e-6)


@pytest.mark.parametrize(
    ("interval", "exc_type", "message"),
    [
        (0, ValueError, "must be a positive finite number, got 0"),
        (-1.5, ValueError, "must be a positive finite number, got -1.5"),
        (float("inf"), ValueError, "must be a positive finite number, got inf"),
        ("1", TypeError, "must be a positive finite number, got str '1'"),
        (float("nan"), ValueError, "must be a positive finite number, got nan"),
        (True, TypeError, "must be a positive finite number, got bool True"),
    ],
)
def test_every_bad_arguments(
    interval: Any, exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type) as info:
        every(interval)
    assert str(info.value) == "every() argument 'interval' " + message


_ticks = every(2.0)


def test_every_across_runs() -> None:
    async def use() -> list[Any]:
        start = anyio.current_time()
        got: list[Any] = [sniffio.current_async_library()]
        async for tick in _ticks:
            got.append(round(tick - start, 6))
            if len(got) == 4:
                break
        return got

    for backend in ("asyncio", "trio", "asyncio"):
        assert run_virtual(use, backend) == [backend, 0.0, 2.0, 4.0]


# --- Debouncer ---


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, float]] = []
        self.event = anyio.Event()
        self.start = anyio.current_time()

    async def __call__(self, value: Any) -> None:
        self.calls.append((value, round(anyio.current_time() - self.start, 6)))
        self.event.set()


@pytest.mark.virtual_time
async def test_debounce_collapses_a_burst_into_the_last_call() -> None:
    rec = Recorder()
    debounce = Debouncer(1.0)
    for value in (1, 2, 3):
        debounce(rec, value)
        assert debounce.pending
        await anyio.sleep(0.3)
    await rec.event.wait()
    assert rec.calls == [(3, 1.6)]
    assert not debounce.pending
    await anyio.sleep(5)
    assert rec.calls == [(3, 1.6)]


@pytest.mark.virtual_time
async def test_debounce_separate_bursts_run_separately() -> None:
    rec = Recorder()
    debounce = Debouncer(1.0)
    debounce(rec, "a")
    await anyio.sleep(2)
    debounce(rec, "b")
    debounce(rec, "c")
    await anyio.sleep(2)
    assert rec.calls == [("a", 1.0), ("c", 3.0)]


@pytest.mark.virtual_time
async def test_started_run_is_not_cancelled_and_runs_do_not_overlap() -> None:
    start = anyio.current_time()
    log: list[tuple[str, Any, float]] = []
    done = anyio.Event()

    async def slow(value: str) -> None:
        log.append(("start", value, round(anyio.current_time() - start, 6)))
        await anyio.sleep(2)
        log.append(("end", value, round(anyio.current_time() - start, 6)))
        if value == "third":
            done.set()

    debounce = Debouncer(1.0)
    debounce(slow, "first")  # runs 1 -> 3
    await anyio.sleep(1.5)
    debounce(slow, "second")  # due at 2.5, waits for "first"...
    await anyio.sleep(1.0)
    debounce(slow, "third")  # ...and is superseded at 2.5: due at 3.5, runs 3.5 -> 5.5
    await done.wait()
    assert log == [
        ("start", "first", 1.0),
        ("end", "first", 3.0),
        ("start", "third", 3.5),
        ("end", "third", 5.5),
    ]


@pytest.mark.virtual_time
async def test_due_run_waits_for_the_previous_one() -> None:
    start = anyio.current_time()
    log: list[tuple[str, Any, float]] = []
    done = anyio.Event()

    async def slow(value: str) -> None:
        log.append(("start", value, round(anyio.current_time() - start, 6)))
        await anyio.sleep(2)
        if value == "second":
            done.set()

    debounce = Debouncer(0.5)
    debounce(slow, "first")  # runs 0.5 -> 2.5
    await anyio.sleep(1.0)
    debounce(slow, "second")  # due at 1.5, starts when "first" ends at 2.5
    await done.wait()
    assert log == [("start", "first", 0.5), ("start", "second", 2.5)]


@pytest.mark.virtual_time
async def test_debounce_sync_function_and_cancel() -> None:
    calls: list[int] = []
    debounce = Debouncer(1.0)
    debounce(calls.append, 1)
    await anyio.sleep(1.5)
    assert calls == [1]

    debounce(calls.append, 2)
    assert debounce.cancel() is True
    assert debounce.cancel() is False
    assert not debounce.pending
    await anyio.sleep(5)
    assert calls == [1]


@pytest.mark.virtual_time
async def test_failing_run_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(value: int) -> None:
        raise ValueError(f"bad {value}")

    debounce = Debouncer(0.5)
    debounce(broken, 1)
    debounce(broken, 2)
    await anyio.sleep(1)
    records = [r for r in caplog.records if r.name == "anyconc" and r.exc_info]
    assert len(records) == 1
    assert str(records[0].exc_info[1]) == "bad 2"  # type: ignore[index]


def test_pending_run_is_cancelled_when_the_run_ends() -> None:
    calls: list[str] = []
    debounce = Debouncer(10)

    async def record(value: str) -> None:
        calls.append(value)

    async def schedule_and_leave() -> str:
        debounce(record, sniffio.current_async_library())
        await anyio.sleep(0)
        return "left"

    async def schedule_and_wait() -> None:
        debounce(record, sniffio.current_async_library())
        await anyio.sleep(11)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for backend in ("asyncio", "trio", "asyncio"):
            assert run_virtual(schedule_and_leave, backend) == "left"
            gc.collect()
        assert calls == []
        assert not debounce.pending  # outside a run
        for backend in ("asyncio", "trio", "asyncio"):
            run_virtual(schedule_and_wait, backend)
    assert calls == ["asyncio", "trio", "asyncio"]


def test_debouncer_bad_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"^Debouncer\(\) argument 'delay' must be a non-negative finite number, "
        r"got -1$",
    ):
        Debouncer(-1)
    with pytest.raises(
        TypeError,
        match=r"^Debouncer\(\) argument 'delay' must be a non-negative finite number, "
        r"got str '1'$",
    ):
        Debouncer("1")  # type: ignore[arg-type]
    for value, error, got in [
        (float("nan"), ValueError, "nan"),
        (float("inf"), ValueError, "inf"),
        (True, TypeError, "bool True"),
    ]:
        with pytest.raises(
            error,
            match=r"^Debouncer\(\) argument 'delay' must be a non-negative finite "
            rf"number, got {got}$",
        ):
            Debouncer(value)
    assert Debouncer(0).delay == 0.0
    with pytest.raises(
        RuntimeError,
        match="^a Debouncer must be called from a task of a running event loop$",
    ):
        Debouncer(1)(print, "x")


async def test_debouncer_rejects_coroutines_and_non_callables() -> None:
    debounce = Debouncer(1)

    async def save(doc: str) -> None:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coro = save("doc")
        with pytest.raises(TypeError) as info:
            debounce(coro)  # type: ignore[arg-type]
        del coro
        gc.collect()
    assert str(info.value) == (
        "Debouncer.__call__() argument 'func' must be a function, got the coroutine "
        "object test_debouncer_rejects_coroutines_and_non_callables.<locals>.save(); "
        "pass the function itself, not the result of calling it: debouncer(save, ...)"
    )
    with pytest.raises(
        TypeError,
        match=r"^Debouncer\.__call__\(\) argument 'func' must be a function, got int 5$",
    ):
        debounce(5)  # type: ignore[arg-type]
    assert not debounce.pending


@pytest.mark.virtual_time
async def test_seed_debounce_pattern() -> None:
    # seeds/asyncio-concurrency-patterns.md, "Debounce Pattern": each new call cancels
    # the pending one; only the last runs, `delay` after it -- without awaiting.
    searches: list[tuple[str, float]] = []
    start = anyio.current_time()
    ran = anyio.Event()

    async def search(query: str) -> None:
        searches.append((query, round(anyio.current_time() - start, 6)))
        ran.set()

    debouncer = Debouncer(0.3)
    for prefix in ("a", "an", "any", "anyc", "anyconc"):
        debouncer(search, prefix)  # keystrokes 0.1 s apart
        await anyio.sleep(0.1)
    await ran.wait()
    assert searches == [("anyconc", 0.7)]


@pytest.mark.virtual_time
async def test_debouncer_passes_keyword_arguments() -> None:
    done = anyio.Event()
    got: list[tuple[str, int]] = []

    async def save(doc: str, *, version: int) -> None:
        got.append((doc, version))
        done.set()

    debounce = Debouncer(0.5)
    debounce(save, "a", version=1)
    debounce(save, "b", version=2)
    await done.wait()
    assert got == [("b", 2)]


async def test_rate_limiter_statistics_from_a_worker_thread_are_the_runs() -> None:
    from anyconc import RateLimiterStatistics

    limiter = RateLimiter(5, per=10, name="api")
    for _ in range(2):
        await limiter.acquire()

    expected = RateLimiterStatistics(
        name="api", rate=5.0, per=10.0, admitted=2, waiting=0
    )
    assert limiter.statistics() == expected
    # No run in the worker thread: the latest run's (this one's), not an unused one's.
    assert await anyio.to_thread.run_sync(limiter.statistics) == expected


async def test_debouncer_seen_from_a_worker_thread_is_the_runs() -> None:
    calls: list[int] = []
    debouncer = Debouncer(600, name="save")
    debouncer(calls.append, 1)
    assert await anyio.to_thread.run_sync(lambda: debouncer.pending) is True
    with pytest.raises(RuntimeError) as info:
        await anyio.to_thread.run_sync(debouncer.cancel)
    assert str(info.value) == (
        "Debouncer.cancel() must be called from a task of the event-loop run that "
        "scheduled the call (no event loop runs in this thread); from a worker "
        "thread, use anyio.from_thread.run_sync(debouncer.cancel)"
    )
    assert [debouncer.pending] == [True]  # unchanged
    assert await anyio.to_thread.run_sync(anyio.from_thread.run_sync, debouncer.cancel)
    assert [debouncer.pending] == [False]
    assert await anyio.to_thread.run_sync(debouncer.cancel) is False
    assert calls == []


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_debouncer_after_its_run_ended_has_nothing_pending(backend: str) -> None:
    debouncer = Debouncer(600)

    async def schedule() -> bool:
        debouncer(print, "never")
        return debouncer.pending

    name, options = backend_spec(backend)
    assert anyio.run(schedule, backend=name, backend_options=options) is True
    # The run ended: its scheduled call was cancelled with it.
    assert (debouncer.pending, debouncer.cancel()) == (False, False)
    assert repr(debouncer) == "<Debouncer name=None delay=600.0 pending=False>"
