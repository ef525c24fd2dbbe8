# mypy: disable-error-code="comparison-overlap,unreachable"
# (mypy keeps narrowing a property such as `.state` across awaits that change it.)
"""Tests for anyconc.CircuitBreaker and CircuitOpenError."""

from __future__ import annotations

import gc
import inspect
import logging
import pickle
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest
import sniffio

from anyconc._circuit import CircuitBreaker, CircuitOpenError
from anyconc.pytest_plugin import backend_spec

T = TypeVar("T")


def run_virtual(fn: Callable[[], Awaitable[T]], backend: str) -> T:
    """anyio.run() under a virtual clock starting at 0 on either backend."""
    name, options = backend_spec(backend, virtual_time=True)
    return anyio.run(fn, backend=name, backend_options=options)


async def ok(value: str = "ok") -> str:
    return value


async def fail(exc: BaseException | None = None) -> None:
    raise exc if exc is not None else ConnectionError("down")


async def trip(breaker: CircuitBreaker, times: int | None = None) -> None:
    for _ in range(breaker.failure_threshold if times is None else times):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)


# --- the state machine ---


async def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10)
    assert breaker.state == "closed"
    await trip(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.failure_count == 2
    await trip(breaker, 1)
    assert breaker.state == "open"

    called = []

    async def probe() -> None:
        called.append(1)

    with pytest.raises(CircuitOpenError):
        await breaker.call(probe)
    assert called == []


async def test_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3)
    await trip(breaker, 2)
    assert await breaker.call(ok) == "ok"
    assert breaker.failure_count == 0
    await trip(breaker, 2)
    assert breaker.state == "closed"
    await trip(breaker, 1)
    assert breaker.state == "open"


@pytest.mark.virtual_time
async def test_open_rejects_with_exact_retry_after() -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10)
    await trip(breaker)
    await anyio.sleep(4)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(6.0, abs=1e-6)
    assert str(info.value) == "circuit breaker is open; retry after 6.000 seconds"
    await anyio.sleep(5.5)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        async with breaker:
            pytest.fail("the block must not run")
    assert info.value.retry_after == pytest.approx(0.5, abs=1e-6)


@pytest.mark.virtual_time
async def test_half_open_after_recovery_then_success_closes() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10)
    await trip(breaker)
    await anyio.sleep(10)
    assert breaker.state == "half-open"
    assert await breaker.call(ok, "trial") == "trial"
    assert breaker.state == "closed"
    assert breaker.failure_count == 0
    # closed again: needs the full threshold to open
    await trip(breaker, 1)
    assert breaker.state == "closed"


@pytest.mark.virtual_time
async def test_half_open_trial_failure_reopens_for_a_full_window() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10)
    await trip(breaker)
    await anyio.sleep(12)
    with pytest.raises(ConnectionError):
        await breaker.call(fail)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(10.0, abs=1e-6)
    await anyio.sleep(10)
    assert breaker.state == "half-open"


async def test_zero_recovery_timeout_goes_half_open_at_once() -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=0)
    await trip(breaker)
    assert breaker.state == "half-open"
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


# --- what counts ---


async def test_unexpected_exceptions_are_neutral() -> None:
    breaker = CircuitBreaker(failure_threshold=2, expected=ConnectionError)
    await trip(breaker, 1)
    with pytest.raises(KeyError):
        await breaker.call(fail, KeyError("k"))
    # neither a failure nor a success: the count is still 1
    assert breaker.failure_count == 1
    await trip(breaker, 1)
    assert breaker.state == "open"


async def test_expected_tuple_and_subclasses() -> None:
    breaker = CircuitBreaker(failure_threshold=2, expected=(TimeoutError, OSError))
    with pytest.raises(ConnectionRefusedError):  # an OSError subclass
        await breaker.call(fail, ConnectionRefusedError())
    with pytest.raises(TimeoutError):
        await breaker.call(fail, TimeoutError())
    assert breaker.state == "open"


@pytest.mark.virtual_time
async def test_unexpected_exception_in_half_open_trial_releases_the_slot() -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, expected=ConnectionError
    )
    await trip(breaker)
    await anyio.sleep(5)
    with pytest.raises(KeyError):
        await breaker.call(fail, KeyError("k"))
    assert breaker.state == "half-open"
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


@pytest.mark.virtual_time
async def test_cancelled_calls_do_not_count_as_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=1, expected=BaseException)

    async def hang() -> None:
        await anyio.sleep(100)

    with anyio.move_on_after(1) as scope:
        await breaker.call(hang)
    assert scope.cancelled_caught
    assert breaker.state == "closed"
    assert breaker.failure_count == 0


@pytest.mark.virtual_time
async def test_cancelled_half_open_trial_gives_its_slot_back() -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5)
    await trip(breaker)
    await anyio.sleep(5)
    trial_started = anyio.Event()

    async def hang() -> None:
        trial_started.set()
        await anyio.sleep(100)

    async with anyio.create_task_group() as tg:

        async def trial() -> None:
            with anyio.CancelScope() as scope:
                tg_scopes.append(scope)
                await breaker.call(hang)

        tg_scopes: list[anyio.CancelScope] = []
        tg.start_soon(trial)
        await trial_started.wait()
        # the only slot is taken
        with pytest.raises(CircuitOpenError) as info:
            await breaker.call(ok)
        assert info.value.retry_after == 0.0
        assert "half-open" in str(info.value)
        tg_scopes[0].cancel()

    assert breaker.state == "half-open"
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


async def test_caller_cancelled_before_admission_takes_no_slot() -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=0)
    await trip(breaker)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await breaker.call(ok)
        pytest.fail("not reached")
    assert breaker.state == "half-open"
    assert await breaker.call(ok) == "ok"


async def test_call_is_a_checkpoint_even_when_rejected() -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1000)
    await trip(breaker)
    ran = []

    async def other() -> None:
        ran.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        # A loop of rejected calls must let the other task run (without yielding,
        # it would spin forever).
        rejections = 0
        while not ran and rejections < 100:
            with pytest.raises(CircuitOpenError):
                await breaker.call(ok)
            rejections += 1
        assert ran == [True]
        assert rejections < 100


# --- concurrency ---


@pytest.mark.parametrize("max_calls", [1, 3])
@pytest.mark.virtual_time
async def test_100_concurrent_callers_through_half_open(max_calls: int) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=max_calls
    )
    await trip(breaker)
    await anyio.sleep(5)
    release = anyio.Event()
    admitted: list[int] = []
    rejected: list[float] = []

    async def trial(i: int) -> None:
        admitted.append(i)
        await release.wait()

    async def caller(i: int) -> None:
        try:
            await breaker.call(trial, i)
        except CircuitOpenError as exc:
            rejected.append(exc.retry_after)

    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(caller, i)
        await anyio.wait_all_tasks_blocked()
        assert len(admitted) == max_calls
        assert len(rejected) == 100 - max_calls
        assert set(rejected) == {0.0}
        assert breaker.state == "half-open"
        release.set()

    assert breaker.state == "closed"


@pytest.mark.virtual_time
async def test_first_trial_outcome_decides_and_later_ones_are_ignored() -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=2
    )
    await trip(breaker)
    await anyio.sleep(5)

    async def fails_after(t: float) -> None:
        await anyio.sleep(t)
        raise ConnectionError("still down")

    async def succeeds_after(t: float) -> str:
        await anyio.sleep(t)
        return "up"

    outcomes: list[str] = []

    async def run(func: Any, t: float) -> None:
        try:
            outcomes.append(await breaker.call(func, t))
        except ConnectionError:
            outcomes.append("failed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, fails_after, 1)
        tg.start_soon(run, succeeds_after, 2)

    assert outcomes == ["failed", "up"]
    # the first trial re-opened it at t=6; the late success does not close it
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(4.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_stale_failure_of_a_call_admitted_while_closed_is_ignored() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=5)
    slow_admitted = anyio.Event()

    async def slow_failure() -> None:
        slow_admitted.set()
        await anyio.sleep(20)
        raise ConnectionError("late")

    async with anyio.create_task_group() as tg:

        async def slow() -> None:
            with pytest.raises(ConnectionError, match="late"):
                await breaker.call(slow_failure)

        tg.start_soon(slow)
        await slow_admitted.wait()
        await trip(breaker, 2)  # opens at t=0
        await anyio.sleep(5)
        assert await breaker.call(ok) == "ok"  # trial closes it at t=5
        await trip(breaker, 1)
        assert breaker.failure_count == 1
    # the slow call failed at t=20, but it was admitted before the breaker opened
    assert breaker.failure_count == 1
    assert breaker.state == "closed"


# --- the three ways in ---


async def test_async_with_counts_the_block_outcome() -> None:
    breaker = CircuitBreaker(failure_threshold=2)

    async def failing_block() -> None:
        async with breaker as entered:
            assert entered is breaker
            raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await failing_block()
    assert breaker.state == "open"


async def test_nested_blocks_in_one_task_and_in_several_tasks() -> None:
    a = CircuitBreaker(failure_threshold=1)
    b = CircuitBreaker(failure_threshold=1)

    async def nested() -> None:
        async with a:
            async with b:
                pass
            raise ConnectionError("a only")

    with pytest.raises(ConnectionError):
        await nested()
    assert (a.state, b.state) == ("open", "closed")

    shared = CircuitBreaker(failure_threshold=3)
    gate = anyio.Event()

    async def user(fails: bool) -> None:
        try:
            async with shared:
                await gate.wait()
                if fails:
                    raise ConnectionError("x")
        except ConnectionError:
            pass

    async with anyio.create_task_group() as tg:
        for fails in (True, False, True):
            tg.start_soon(user, fails)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert shared.state == "closed"


async def test_exit_without_enter_raises() -> None:
    breaker = CircuitBreaker()
    with pytest.raises(
        RuntimeError, match="^this circuit breaker was not entered by the current task$"
    ):
        await breaker.__aexit__(None, None, None)


async def test_decorator_passes_arguments_and_keeps_metadata() -> None:
    breaker = CircuitBreaker(failure_threshold=2)

    @breaker
    async def fetch(url: str, *, retries: int = 0) -> str:
        """Fetch a URL."""
        if url == "bad":
            raise ConnectionError(url)
        return f"{url}:{retries}"

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a URL."
    assert await fetch("a", retries=2) == "a:2"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await fetch("bad")
    with pytest.raises(CircuitOpenError):
        await fetch("a")


async def test_call_with_non_awaitable_result_is_neutral() -> None:
    breaker = CircuitBreaker(failure_threshold=1)

    class Sync:
        def __call__(self) -> int:
            return 3

    with pytest.raises(
        TypeError,
        match=r"^CircuitBreaker\.call\(\): '.*Sync' returned int, not an awaitable; ",
    ):
        await breaker.call(Sync())  # type: ignore[arg-type]
    assert breaker.state == "closed"


# --- bad arguments ---


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        (
            {"failure_threshold": 0},
            ValueError,
            "failure_threshold' must be a positive integer, got 0",
        ),
        (
            {"failure_threshold": 1.5},
            TypeError,
            "failure_threshold' must be a positive integer, got float 1.5",
        ),
        (
            {"half_open_max_calls": 0},
            ValueError,
            "half_open_max_calls' must be a positive integer, got 0",
        ),
        (
            {"recovery_timeout": -1},
            ValueError,
            "recovery_timeout' must be a non-negative number, got -1",
        ),
        (
            {"recovery_timeout": "60"},
            TypeError,
            "recovery_timeout' must be a non-negative number, got str '60'",
        ),
        (
            {"failure_threshold": True},
            TypeError,
            "failure_threshold' must be a positive integer, got bool True",
        ),
        (
            {"half_open_max_calls": True},
            TypeError,
            "half_open_max_calls' must be a positive integer, got bool True",
        ),
        (
            {"recovery_timeout": float("nan")},
            ValueError,
            "recovery_timeout' must be a non-negative number, got nan",
        ),
        (
            {"recovery_timeout": True},
            TypeError,
            "recovery_timeout' must be a non-negative number, got bool True",
        ),
        (
            {"expected": int},
            TypeError,
            "expected' must be an exception type or a non-empty tuple of them, got <class 'int'>",
        ),
        (
            {"expected": ()},
            TypeError,
            "expected' must be an exception type or a non-empty tuple of them, got ()",
        ),
    ],
)
def test_bad_arguments(
    kwargs: dict[str, Any], exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type) as info:
        CircuitBreaker(**kwargs)
    assert str(info.value) == "CircuitBreaker() argument '" + message


async def test_call_rejects_a_coroutine_object_and_closes_it() -> None:
    breaker = CircuitBreaker()
    coro = ok()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError) as info:
            await breaker.call(coro)  # type: ignore[arg-type]
        del coro
        gc.collect()
    assert str(info.value) == (
        "CircuitBreaker.call() argument 'func' must be a function, got the coroutine "
        "object ok(); pass the function itself, not the result of calling it: "
        "breaker.call(ok, ...)"
    )
    with pytest.raises(
        TypeError,
        match=r"^CircuitBreaker\.call\(\) argument 'func' must be a function, got int 5$",
    ):
        await breaker.call(5)  # type: ignore[arg-type]


def test_decorator_rejects_sync_functions() -> None:
    breaker = CircuitBreaker()

    def sync() -> int:
        return 1

    with pytest.raises(TypeError) as info:
        breaker(sync)  # type: ignore[arg-type]
    assert str(info.value) == (
        "CircuitBreaker.__call__() argument 'func' must be an async function, "
        "got the synchronous function "
        "'test_decorator_rejects_sync_functions.<locals>.sync' (use 'async def')"
    )


def test_decorator_rejects_a_coroutine_object_and_closes_it() -> None:
    coro = ok()
    with pytest.raises(TypeError) as info:
        CircuitBreaker()(coro)  # type: ignore[arg-type]
    assert str(info.value) == (
        "CircuitBreaker.__call__() argument 'func' must be a function, got the "
        "coroutine object ok(); pass the function itself, not the result of calling "
        "it: breaker(ok)"
    )
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


# --- errors, logging, portability ---


def test_circuit_open_error_pickles_and_is_an_exception() -> None:
    err = CircuitOpenError(2.5)
    assert isinstance(err, Exception)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is CircuitOpenError
    assert copy.retry_after == 2.5
    assert str(copy) == "circuit breaker is open; retry after 2.500 seconds"


async def test_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="anyconc")
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=0)
    await trip(breaker)
    await breaker.call(ok)
    messages = [
        r.getMessage().split(": ", 1)[-1] for r in caplog.records if r.name == "anyconc"
    ]
    levels = [r.levelname for r in caplog.records if r.name == "anyconc"]
    assert messages[0] == "2 consecutive failures"
    assert levels == ["WARNING", "INFO", "INFO"]
    assert messages[2] == "a trial call succeeded"


_portable = CircuitBreaker(failure_threshold=2, recovery_timeout=100)


def test_run_portability_asyncio_trio_asyncio() -> None:
    assert _portable.state == "closed"  # no event loop: no clock needed

    async def first() -> float:
        await anyio.sleep(50)
        await trip(_portable)
        return anyio.current_time()

    assert run_virtual(first, "asyncio") == pytest.approx(50.0, abs=1e-6)
    assert _portable.state == "open"  # outside a run: the last state reached

    async def second() -> list[Any]:
        seen: list[Any] = [sniffio.current_async_library(), anyio.current_time()]
        # A new clock: the open window restarts in full (not 150 s, not 50 s).
        with pytest.raises(CircuitOpenError) as info:
            await _portable.call(ok)
        seen.append(info.value.retry_after)
        await anyio.sleep(100)
        seen.append(_portable.state)
        seen.append(await _portable.call(ok, "trio trial"))
        seen.append(_portable.state)
        return seen

    assert run_virtual(second, "trio") == [
        "trio",
        0.0,
        pytest.approx(100.0, abs=1e-6),
        "half-open",
        "trio trial",
        "closed",
    ]

    async def third() -> list[Any]:
        await trip(_portable, 1)
        result = [_portable.failure_count, await _portable.call(ok, "asyncio")]
        await trip(_portable)
        return [*result, _portable.state]

    assert anyio.run(third, backend="asyncio") == [1, "asyncio", "open"]
