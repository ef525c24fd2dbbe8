"""Tests for anyconc.retry (exponential backoff, predicates, timeout, cancellation)."""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import sniffio

from anyconc._retry import retry


class Flaky:
    """An async callable failing ``failures`` times, recording the attempt times."""

    def __init__(
        self, failures: int, exc: Callable[[int], BaseException] | None = None
    ):
        self.failures = failures
        self.exc = exc or (lambda n: ValueError(f"boom {n}"))
        self.times: list[float] = []
        self.raised: list[BaseException] = []
        self.start = anyio.current_time()

    @property
    def offsets(self) -> list[float]:
        return [round(t - self.start, 9) for t in self.times]

    async def __call__(self, value: str = "ok", *, suffix: str = "") -> str:
        self.times.append(anyio.current_time())
        if len(self.times) <= self.failures:
            exc = self.exc(len(self.times))
            self.raised.append(exc)
            raise exc
        return value + suffix


# --- backoff timing ---


@pytest.mark.virtual_time
async def test_exponential_backoff_timestamps() -> None:
    flaky = Flaky(3)
    fetch = retry(attempts=4, delay=0.1, factor=2.0)(flaky)
    assert await fetch("v", suffix="!") == "v!"
    assert flaky.offsets == pytest.approx([0.0, 0.1, 0.3, 0.7], abs=1e-6)


@pytest.mark.virtual_time
async def test_default_backoff_is_three_attempts_of_0_1_and_0_2() -> None:
    flaky = Flaky(10)
    with pytest.raises(ValueError, match="boom 3"):
        await retry()(flaky)()
    assert flaky.offsets == pytest.approx([0.0, 0.1, 0.3], abs=1e-6)


@pytest.mark.virtual_time
async def test_max_delay_caps_the_exponential_part() -> None:
    flaky = Flaky(4)
    await retry(attempts=5, delay=1.0, factor=10.0, max_delay=5.0)(flaky)()
    assert flaky.offsets == pytest.approx([0.0, 1.0, 6.0, 11.0, 16.0], abs=1e-6)


@pytest.mark.virtual_time
async def test_factor_one_is_constant_and_zero_delay_still_checkpoints() -> None:
    flaky = Flaky(2)
    await retry(attempts=3, delay=0.5, factor=1.0)(flaky)()
    assert flaky.offsets == pytest.approx([0.0, 0.5, 1.0], abs=1e-6)

    flaky = Flaky(2)
    await retry(attempts=3, delay=0)(flaky)()
    assert flaky.offsets == [0.0, 0.0, 0.0]


@pytest.mark.virtual_time
async def test_huge_attempt_count_does_not_overflow() -> None:
    flaky = Flaky(3)
    # 10.0 ** 400 overflows a float: the cap still applies.
    fetch = retry(attempts=10_000, delay=1.0, factor=10.0, max_delay=2.0)(flaky)
    await fetch()
    assert flaky.offsets == pytest.approx([0.0, 1.0, 3.0, 5.0], abs=1e-6)


@pytest.mark.virtual_time
async def test_jitter_draws_uniform_zero_to_jitter_on_top_of_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws: list[tuple[float, float]] = []

    def fake_uniform(a: float, b: float) -> float:
        draws.append((a, b))
        return 0.25 * len(draws)

    monkeypatch.setattr(random, "uniform", fake_uniform)
    flaky = Flaky(3)
    await retry(attempts=4, delay=1.0, factor=2.0, max_delay=1.5, jitter=2.0)(flaky)()
    assert draws == [(0, 2.0), (0, 2.0), (0, 2.0)]
    # sleeps: 1 + 0.25, 1.5 + 0.5, 1.5 + 0.75
    assert flaky.offsets == pytest.approx([0.0, 1.25, 3.25, 5.5], abs=1e-6)


@pytest.mark.virtual_time
async def test_jitter_is_reproducible_with_a_seed() -> None:
    expected_rng = random.Random(1234)
    expected = [0.1 * 2**n + expected_rng.uniform(0, 0.05) for n in range(3)]

    random.seed(1234)
    flaky = Flaky(3)
    await retry(attempts=4, jitter=0.05)(flaky)()
    # Compare each sleep (looptime rounds every sleep to a microsecond).
    sleeps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    assert sleeps == pytest.approx(expected, abs=1e-6)
    assert all(0 < s - 0.1 * 2**n < 0.05 for n, s in enumerate(sleeps))


@pytest.mark.virtual_time
async def test_no_jitter_does_not_touch_random(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(a: float, b: float) -> float:
        raise AssertionError("random.uniform called without jitter")

    monkeypatch.setattr(random, "uniform", forbidden)
    flaky = Flaky(2)
    assert await retry(attempts=3)(flaky)() == "ok"
    assert len(flaky.times) == 3


# --- what is retried ---


@pytest.mark.virtual_time
async def test_last_exception_is_reraised_unchanged() -> None:
    flaky = Flaky(5)
    with pytest.raises(ValueError) as info:
        await retry(attempts=3)(flaky)()
    assert info.value is flaky.raised[-1]
    assert str(info.value) == "boom 3"
    # Not wrapped and not chained to the earlier attempts' exceptions.
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
    assert len(flaky.times) == 3


@pytest.mark.virtual_time
async def test_on_type_does_not_retry_other_exceptions() -> None:
    flaky = Flaky(5, exc=lambda n: KeyError(n))
    with pytest.raises(KeyError) as info:
        await retry(attempts=5, on=ValueError)(flaky)()
    assert info.value is flaky.raised[0]
    assert len(flaky.times) == 1


@pytest.mark.virtual_time
async def test_on_tuple() -> None:
    kinds = [KeyError, OSError, ValueError]
    flaky = Flaky(3, exc=lambda n: kinds[n - 1]("x"))
    with pytest.raises(ValueError):
        await retry(attempts=5, on=(KeyError, OSError))(flaky)()
    assert flaky.offsets == pytest.approx([0.0, 0.1, 0.3], abs=1e-6)


@pytest.mark.virtual_time
async def test_on_predicate_receives_the_exception() -> None:
    seen: list[BaseException] = []

    def transient(exc: BaseException) -> bool:
        seen.append(exc)
        return isinstance(exc, OSError) and exc.errno == 11

    codes = [11, 11, 2]
    flaky = Flaky(3, exc=lambda n: OSError(codes[n - 1], "io"))
    with pytest.raises(OSError) as info:
        await retry(attempts=5, on=transient)(flaky)()
    assert info.value.errno == 2
    assert seen == flaky.raised
    assert len(flaky.times) == 3


@pytest.mark.virtual_time
async def test_predicate_that_raises_propagates_chained() -> None:
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    flaky = Flaky(2)
    with pytest.raises(RuntimeError, match="predicate bug") as info:
        await retry(on=broken)(flaky)()
    assert info.value.__context__ is flaky.raised[0]
    assert len(flaky.times) == 1


class Fatal(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, Fatal])
@pytest.mark.virtual_time
async def test_base_exceptions_are_never_retried(exc_type: type[BaseException]) -> None:
    flaky = Flaky(5, exc=lambda n: exc_type())
    with pytest.raises(exc_type):
        await retry(attempts=5, on=BaseException)(flaky)()
    assert len(flaky.times) == 1


@pytest.mark.virtual_time
async def test_cancellation_of_an_attempt_is_not_retried() -> None:
    attempts: list[float] = []

    @retry(attempts=5, on=BaseException, delay=0)
    async def slow() -> None:
        attempts.append(anyio.current_time())
        await anyio.sleep(10)

    start = anyio.current_time()
    with anyio.move_on_after(1) as scope:
        await slow()
    assert scope.cancelled_caught
    assert len(attempts) == 1
    assert anyio.current_time() - start == pytest.approx(1.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_cancellation_raised_by_the_function_is_not_retried() -> None:
    calls = 0

    @retry(attempts=5, on=BaseException, delay=0)
    async def cancelled_inside() -> None:
        nonlocal calls
        calls += 1
        with anyio.CancelScope() as inner:
            inner.cancel()
            await anyio.sleep(1)
        # the inner scope swallowed it; now be cancelled by the outer one
        await anyio.sleep(10)

    with anyio.move_on_after(2) as scope:
        await cancelled_inside()
    assert scope.cancelled_caught
    assert calls == 1


@pytest.mark.virtual_time
async def test_cancellation_during_backoff_sleep() -> None:
    flaky = Flaky(5)
    with anyio.move_on_after(0.15) as scope:
        await retry(attempts=5)(flaky)()
    assert scope.cancelled_caught
    assert flaky.offsets == pytest.approx([0.0, 0.1], abs=1e-6)
    assert anyio.current_time() - flaky.start == pytest.approx(0.15, abs=1e-6)


@pytest.mark.virtual_time
async def test_outer_timeout_during_attempt_raises_timeout_error_not_retried() -> None:
    calls = 0

    @retry(attempts=3, on=TimeoutError)
    async def hang() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep(100)

    with pytest.raises(TimeoutError):
        with anyio.fail_after(1):
            await hang()
    assert calls == 1


# --- timeout ---


@pytest.mark.virtual_time
async def test_timeout_stops_before_a_sleep_that_would_overrun() -> None:
    flaky = Flaky(10)
    with pytest.raises(ValueError) as info:
        await retry(attempts=10, delay=1.0, factor=2.0, timeout=2.5)(flaky)()
    # attempts at 0 and 1; the next would start at 3 >= 2.5: stop at once
    assert flaky.offsets == pytest.approx([0.0, 1.0], abs=1e-6)
    assert info.value is flaky.raised[-1]
    assert anyio.current_time() - flaky.start == pytest.approx(1.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_timeout_never_starts_an_attempt_at_the_deadline() -> None:
    flaky = Flaky(10)
    with pytest.raises(ValueError):
        await retry(attempts=10, delay=1.0, factor=1.0, timeout=2.0)(flaky)()
    assert flaky.offsets == pytest.approx([0.0, 1.0], abs=1e-6)


@pytest.mark.virtual_time
async def test_timeout_does_not_cut_an_attempt_in_flight() -> None:
    start = anyio.current_time()
    outcomes = iter([ValueError("slow failure"), None])

    @retry(attempts=5, delay=0, timeout=1.0)
    async def slow() -> str:
        await anyio.sleep(3)
        exc = next(outcomes)
        if exc is not None:
            raise exc
        return "done"

    # The first attempt overruns the budget and fails: no second attempt.
    with pytest.raises(ValueError, match="slow failure"):
        await slow()
    assert anyio.current_time() - start == pytest.approx(3.0, abs=1e-6)

    # An attempt that overruns the budget but succeeds returns its value.
    @retry(attempts=2, timeout=1.0)
    async def slow_ok() -> str:
        await anyio.sleep(3)
        return "late but fine"

    assert await slow_ok() == "late but fine"
    assert anyio.current_time() - start == pytest.approx(6.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_timeout_counts_from_each_call() -> None:
    flaky = Flaky(10)
    fetch = retry(attempts=10, delay=1.0, factor=1.0, timeout=2.5)(flaky)
    with pytest.raises(ValueError):
        await fetch()
    await anyio.sleep(100)
    with pytest.raises(ValueError):
        await fetch()
    assert flaky.offsets == pytest.approx(
        [0.0, 1.0, 2.0, 102.0, 103.0, 104.0], abs=1e-6
    )


# --- the decorated function ---


@pytest.mark.virtual_time
async def test_wraps_metadata_and_passes_arguments() -> None:
    @retry()
    async def greet(name: str, *, punct: str = ".") -> str:
        """Say hello."""
        return f"hello {name}{punct}"

    assert greet.__name__ == "greet"
    assert greet.__doc__ == "Say hello."
    assert await greet("ann", punct="!") == "hello ann!"


async def test_callable_object_returning_non_awaitable_fails_at_call() -> None:
    class Sync:
        calls = 0

        def __call__(self) -> int:
            self.calls += 1
            return 42

    obj = Sync()
    wrapped: Any = retry(on=TypeError)(obj)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^retry\(\): '.*<locals>.Sync' returned int, not an awaitable; pass an "
        r"async function \(or a function returning an awaitable\)$",
    ):
        await wrapped()
    assert obj.calls == 1


async def test_concurrent_callers_have_independent_budgets() -> None:
    flakies = [Flaky(n % 3) for n in range(20)]
    results: list[str] = []

    async def one(f: Flaky) -> None:
        results.append(await retry(attempts=3, delay=0)(f)(str(len(results))))

    async with anyio.create_task_group() as tg:
        for f in flakies:
            tg.start_soon(one, f)
    assert len(results) == 20
    assert [len(f.times) for f in flakies] == [n % 3 + 1 for n in range(20)]


@pytest.mark.virtual_time
async def test_each_retry_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="anyconc")
    flaky = Flaky(1)

    @retry(delay=0.25)
    async def op() -> str:
        return await flaky()

    assert await op() == "ok"
    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    assert len(messages) == 1
    assert messages[0].endswith(
        "op in 0.250s: attempt 1 of 3 raised ValueError('boom 1')"
    )


# --- bad arguments (at decoration time) ---


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        ({"attempts": 0}, ValueError, "'attempts' must be a positive integer, got 0"),
        ({"attempts": -2}, ValueError, "'attempts' must be a positive integer, got -2"),
        (
            {"attempts": 2.0},
            TypeError,
            "'attempts' must be a positive integer, got float 2.0",
        ),
        (
            {"attempts": True},
            TypeError,
            "'attempts' must be a positive integer, got bool True",
        ),
        (
            {"delay": -0.1},
            ValueError,
            "'delay' must be a non-negative number, got -0.1",
        ),
        (
            {"delay": float("nan")},
            ValueError,
            "'delay' must be a non-negative number, got nan",
        ),
        (
            {"delay": "1"},
            TypeError,
            "'delay' must be a non-negative number, got str '1'",
        ),
        ({"factor": 0.5}, ValueError, "'factor' must be a number >= 1, got 0.5"),
        (
            {"max_delay": -1},
            ValueError,
            "'max_delay' must be a non-negative number or None, got -1",
        ),
        (
            {"jitter": -0.5},
            ValueError,
            "'jitter' must be a non-negative number, got -0.5",
        ),
        (
            {"timeout": 0},
            ValueError,
            "'timeout' must be a positive number or None, got 0",
        ),
        (
            {"timeout": -3},
            ValueError,
            "'timeout' must be a positive number or None, got -3",
        ),
        (
            {"timeout": float("nan")},
            ValueError,
            "'timeout' must be a positive number or None, got nan",
        ),
        (
            {"on": ()},
            ValueError,
            "'on' must be an exception type, a tuple of them or a predicate, "
            "got an empty tuple",
        ),
        (
            {"on": int},
            TypeError,
            "'on' must be an exception type, a tuple of them or a predicate, "
            "got the class 'int'",
        ),
        (
            {"on": (ValueError, "KeyError")},
            TypeError,
            "'on' must be an exception type, a tuple of them or a predicate, "
            "got a tuple containing 'KeyError'",
        ),
        (
            {"on": 3},
            TypeError,
            "'on' must be an exception type, a tuple of them or a predicate, got int",
        ),
    ],
)
def test_bad_arguments(
    kwargs: dict[str, Any], exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type) as info:
        retry(**kwargs)
    assert str(info.value) == "retry() argument " + message


def test_rejects_synchronous_functions_at_decoration() -> None:
    def fetch() -> int:
        return 1

    with pytest.raises(TypeError) as info:
        retry()(fetch)  # type: ignore[arg-type]
    assert str(info.value) == (
        "retry() argument 'func' must be an async function, got the synchronous function "
        "'test_rejects_synchronous_functions_at_decoration.<locals>.fetch' "
        "(use 'async def')"
    )


def test_rejects_generators_and_non_callables() -> None:
    async def agen() -> Any:
        yield 1

    with pytest.raises(
        TypeError,
        match=r"got the async generator function '.*agen' \(use 'async def'\)$",
    ):
        retry()(agen)
    with pytest.raises(
        TypeError, match=r"^retry\(\) argument 'func' must be a function, got int 3$"
    ):
        retry()(3)  # type: ignore[arg-type]


async def test_rejects_a_coroutine_object_and_closes_it() -> None:
    async def fetch() -> int:
        return 1

    coro = fetch()
    with pytest.raises(
        TypeError,
        match=r"^retry\(\) argument 'func' must be a function, got the coroutine object "
        r".*fetch\(\); pass the function itself, not the result of calling it: "
        r"retry\(\.\.\.\)\(fetch\)$",
    ):
        retry()(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


def test_rejects_an_async_predicate_and_closes_a_coroutine_given_as_on() -> None:
    async def is_retryable(exc: BaseException) -> bool:
        return True

    with pytest.raises(TypeError) as info:
        retry(on=is_retryable)  # type: ignore[arg-type]
    assert str(info.value) == (
        "retry() argument 'on' must be an exception type, a tuple of them or a "
        f"predicate, got the async function {is_retryable.__qualname__!r}; the "
        "predicate is called synchronously: use a plain 'def'"
    )
    coro = is_retryable(ValueError())
    with pytest.raises(TypeError) as info:
        retry(on=coro)  # type: ignore[arg-type]
    assert str(info.value) == (
        "retry() argument 'on' must be an exception type, a tuple of them or a "
        "predicate, got coroutine"
    )
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


# --- run-portability and the seed's pattern ---


async def _flaky_once_then_ok() -> str:
    return "ok"


_state = {"calls": 0}


@retry(attempts=3, delay=0)
async def _module_level() -> str:
    _state["calls"] += 1
    if _state["calls"] % 2:
        raise ValueError("odd call")
    return sniffio.current_async_library()


def test_module_level_decorated_function_across_runs() -> None:
    assert anyio.run(_module_level, backend="asyncio") == "asyncio"
    assert anyio.run(_module_level, backend="trio") == "trio"
    assert anyio.run(_module_level, backend="asyncio") == "asyncio"
    assert _state["calls"] == 6


@pytest.mark.virtual_time
async def test_seed_retry_with_exponential_backoff() -> None:
    # seeds/asyncio-concurrency-patterns.md, "Retry Pattern": max_retries=3, delay=1.0,
    # sleeping delay * 2 ** attempt between attempts, re-raising after the last one.
    start = anyio.current_time()
    calls: list[float] = []

    @retry(attempts=3, delay=1.0)
    async def coro_func() -> str:
        calls.append(anyio.current_time() - start)
        if len(calls) < 3:
            raise ConnectionError("flaky")
        return "response"

    assert await coro_func() == "response"
    assert calls == pytest.approx([0.0, 1.0, 3.0], abs=1e-6)

    calls.clear()
    start = anyio.current_time()

    @retry(attempts=3, delay=1.0)
    async def always_down() -> str:
        calls.append(anyio.current_time() - start)
        raise ConnectionError(f"down {len(calls)}")

    with pytest.raises(ConnectionError, match="down 3"):
        await always_down()
    assert calls == pytest.approx([0.0, 1.0, 3.0], abs=1e-6)
