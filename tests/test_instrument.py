"""The instrumentation hook point: every event kind, several observers, failing ones."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
from collections.abc import Iterator
from typing import TypeVar

import anyio
import pytest
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import (
    BackgroundDrainFinished,
    BackgroundDrainStarted,
    BackgroundTaskFailed,
    BackgroundTasks,
    BackgroundTaskStarted,
    CircuitBreaker,
    CircuitOpenError,
    CircuitStateChanged,
    FanOutProgress,
    InstrumentEvent,
    RetryGaveUp,
    RetryScheduled,
    _instrument,
    retry,
    subscribe,
    unsubscribe,
)

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


E = TypeVar("E", bound=InstrumentEvent)


class Recorder:
    def __init__(self) -> None:
        self.events: list[InstrumentEvent] = []

    def __call__(self, event: InstrumentEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[E], *more: type[E]) -> list[E]:
        kinds = (kind, *more)
        return [e for e in self.events if isinstance(e, kinds)]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    stop = subscribe(rec)
    try:
        yield rec
    finally:
        stop()


# -- retry -----------------------------------------------------------------------------


async def test_retry_scheduled_then_success(recorder: Recorder) -> None:
    errors = [ConnectionError("one"), ConnectionError("two")]

    @retry(attempts=3, delay=0, factor=1)
    async def flaky() -> str:
        await checkpoint()
        if errors:
            raise errors.pop(0)
        return "ok"

    first, second = errors
    assert await flaky() == "ok"
    name = flaky.__qualname__
    assert recorder.events == [
        RetryScheduled(name, 1, 3, 0.0, first),
        RetryScheduled(name, 2, 3, 0.0, second),
    ]
    assert recorder.events[0].kind == "retry.scheduled"


async def test_retry_gave_up_for_each_reason(recorder: Recorder) -> None:
    error = KeyError("k")

    @retry(attempts=2, delay=0)
    async def always() -> None:
        raise error

    @retry(attempts=5, on=ValueError, delay=0)
    async def wrong_kind() -> None:
        raise error

    @retry(attempts=5, delay=100, timeout=1)
    async def too_slow() -> None:
        raise error

    for func in (always, wrong_kind, too_slow):
        with pytest.raises(KeyError):
            await func()

    gave_up = recorder.of(RetryGaveUp)
    assert [(e.function.rsplit(".", 1)[-1], e.attempt, e.reason) for e in gave_up] == [
        ("always", 2, "attempts"),
        ("wrong_kind", 1, "not retryable"),
        ("too_slow", 1, "timeout"),
    ]
    assert all(e.error is error and e.kind == "retry.gave_up" for e in gave_up)
    assert [e.attempt for e in recorder.of(RetryScheduled)] == [1]


# -- circuit breaker -------------------------------------------------------------------


async def fail() -> None:
    raise OSError("down")


async def ok() -> str:
    return "ok"


async def test_circuit_state_changes(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="anyconc")
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=0, name="db")
    for _ in range(2):
        with pytest.raises(OSError):
            await breaker.call(fail)
    with pytest.raises(OSError):  # the trial fails: open again
        await breaker.call(fail)
    assert await breaker.call(ok) == "ok"  # the next trial closes it

    assert recorder.events == [
        CircuitStateChanged("db", "closed", "open", "2 consecutive failures", 0.0),
        CircuitStateChanged("db", "open", "half-open", "recovery timeout elapsed", 0.0),
        CircuitStateChanged("db", "half-open", "open", "a trial call failed", 0.0),
        CircuitStateChanged("db", "open", "half-open", "recovery timeout elapsed", 0.0),
        CircuitStateChanged("db", "half-open", "closed", "a trial call succeeded", 0.0),
    ]
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("WARNING", "circuit breaker 'db' opened for 0.0s: 2 consecutive failures"),
        ("INFO", "circuit breaker 'db' is half-open: recovery timeout elapsed"),
        ("WARNING", "circuit breaker 'db' opened for 0.0s: a trial call failed"),
        ("INFO", "circuit breaker 'db' is half-open: recovery timeout elapsed"),
        ("INFO", "circuit breaker 'db' closed: a trial call succeeded"),
    ]


# -- background tasks ------------------------------------------------------------------


async def test_background_task_events_and_drain_counts(recorder: Recorder) -> None:
    error = RuntimeError("boom")
    release = anyio.Event()

    async def fine() -> None:
        await release.wait()

    async def broken() -> None:
        raise error

    async with BackgroundTasks(name="app", shutdown_timeout=5) as tasks:
        tasks.create_task(fine(), name="fine")
        failing = tasks.create_task(broken(), name="broken")
        await failing.wait()
        with pytest.raises(RuntimeError):
            failing.result()  # retrieved: not logged
        release.set()

    events = recorder.of(
        BackgroundTaskStarted,
        BackgroundTaskFailed,
        BackgroundDrainStarted,
        BackgroundDrainFinished,
    )
    assert events[:3] == [
        BackgroundTaskStarted("app", "fine"),
        BackgroundTaskStarted("app", "broken"),
        BackgroundTaskFailed("app", "broken", error),
    ]
    assert events[3] == BackgroundDrainStarted("app", 1, 5)
    finished = events[4]
    assert isinstance(finished, BackgroundDrainFinished)
    assert (finished.supervisor, finished.finished, finished.cancelled) == ("app", 1, 0)
    assert finished.elapsed >= 0
    assert len(events) == 5


async def test_background_drain_that_cancels(recorder: Recorder) -> None:
    async with BackgroundTasks(name="short", shutdown_timeout=0) as tasks:
        tasks.create_task(anyio.sleep_forever(), name="forever")
        await checkpoint()

    drain = recorder.of(BackgroundDrainStarted, BackgroundDrainFinished)
    assert drain[0] == BackgroundDrainStarted("short", 1, 0)
    assert isinstance(drain[1], BackgroundDrainFinished)
    assert (drain[1].finished, drain[1].cancelled) == (0, 1)
    # A cancellation is not a failure.
    assert recorder.of(BackgroundTaskFailed) == []


async def test_background_events_under_a_limit(recorder: Recorder) -> None:
    # A waiting task is started (and reported) when it leaves the line; at shutdown the
    # waiting ones are cancelled with the running ones.
    release = anyio.Event()
    async with BackgroundTasks(
        name="lim", limit=1, pending_limit=5, shutdown_timeout=0
    ) as tasks:
        tasks.create_task(release.wait(), name="first")
        tasks.create_task(anyio.sleep_forever(), name="second")
        tasks.create_task(anyio.sleep_forever(), name="third")
        await anyio.wait_all_tasks_blocked()
        assert recorder.of(BackgroundTaskStarted) == [
            BackgroundTaskStarted("lim", "first")
        ]
        release.set()
        await anyio.wait_all_tasks_blocked()
        assert recorder.of(BackgroundTaskStarted) == [
            BackgroundTaskStarted("lim", "first"),
            BackgroundTaskStarted("lim", "second"),
        ]
        assert tasks.statistics().waiting == 1

    drain = recorder.of(BackgroundDrainStarted, BackgroundDrainFinished)
    assert drain[0] == BackgroundDrainStarted("lim", 2, 0)
    assert isinstance(drain[1], BackgroundDrainFinished)
    assert (drain[1].finished, drain[1].cancelled) == (0, 2)
    assert len(recorder.of(BackgroundTaskStarted)) == 2
    stats = tasks.statistics()
    assert (stats.started, stats.finished, stats.cancelled_at_shutdown) == (2, 2, 2)


async def test_drain_on_cancellation_has_no_grace_period(recorder: Recorder) -> None:
    with anyio.CancelScope() as scope:
        async with BackgroundTasks(name="c", shutdown_timeout=30) as tasks:
            tasks.create_task(anyio.sleep_forever())
            scope.cancel()
            await checkpoint()
    drain = recorder.of(BackgroundDrainStarted, BackgroundDrainFinished)
    assert len(drain) == 2
    started, finished = drain
    # The task is inside the cancelled scope too: it may be gone before the drain.
    assert isinstance(started, BackgroundDrainStarted)
    assert (started.supervisor, started.timeout) == ("c", 0.0)
    assert isinstance(finished, BackgroundDrainFinished)
    assert (finished.finished, finished.cancelled) == (0, started.active)
    assert 0 <= finished.elapsed < 5  # no grace period of 30 s


# -- fan-out ---------------------------------------------------------------------------


async def test_gather_progress_in_completion_order(recorder: Recorder) -> None:
    events = [anyio.Event() for _ in range(3)]

    async def job(i: int) -> int:
        await events[i].wait()
        if i < 2:
            events[i + 1].set()  # it runs after this job has finished
        if i == 1:
            raise ValueError(i)
        return i

    async def start() -> int:
        await checkpoint()
        events[0].set()
        return -1

    results = await anyconc.gather(
        job(2), job(1), job(0), start(), return_exceptions=True
    )
    assert (
        results[0] == 2
        and isinstance(results[1], ValueError)
        and results[2] == 0
        and results[3] == -1
    )
    # start() finishes first, then 0, then 1 (fails) and 2.
    assert recorder.of(FanOutProgress) == [
        FanOutProgress("gather", 1, 0, 4, False),
        FanOutProgress("gather", 2, 0, 4, False),
        FanOutProgress("gather", 3, 1, 4, True),
        FanOutProgress("gather", 4, 1, 4, False),
    ]


async def test_amap_progress_with_and_without_a_length(recorder: Recorder) -> None:
    async def double(x: int) -> int:
        await checkpoint()
        return 2 * x

    assert await anyconc.amap(double, [1, 2, 3], limit=1) == [2, 4, 6]
    assert await anyconc.amap(double, iter([5]), limit=2) == [10]
    assert recorder.of(FanOutProgress) == [
        FanOutProgress("amap", 1, 0, 3, False),
        FanOutProgress("amap", 2, 0, 3, False),
        FanOutProgress("amap", 3, 0, 3, False),
        FanOutProgress("amap", 1, 0, None, False),
    ]


async def test_amap_progress_counts_a_failure(recorder: Recorder) -> None:
    async def boom(x: int) -> int:
        raise LookupError(x)

    with pytest.raises(ExceptionGroup):
        await anyconc.amap(boom, [1], limit=1)
    assert recorder.of(FanOutProgress) == [FanOutProgress("amap", 1, 1, 1, True)]


async def test_as_completed_progress(recorder: Recorder) -> None:
    async def value(x: int) -> int:
        for _ in range(x):
            await checkpoint()
        if x == 0:
            raise ValueError
        return x

    seen = []
    async with anyconc.as_completed(value(3), value(0), value(1)) as finished:
        async for task in finished:
            seen.append(task.exception() is not None)
    assert seen == [True, False, False]
    assert recorder.of(FanOutProgress) == [
        FanOutProgress("as_completed", 1, 1, 3, True),
        FanOutProgress("as_completed", 2, 1, 3, False),
        FanOutProgress("as_completed", 3, 1, 3, False),
    ]


async def test_as_completed_left_early_reports_no_cancelled_child(
    recorder: Recorder,
) -> None:
    async with anyconc.as_completed(ok(), anyio.sleep_forever()) as finished:
        async for task in finished:
            assert task.result() == "ok"
            break
    assert recorder.of(FanOutProgress) == [
        FanOutProgress("as_completed", 1, 0, 2, False)
    ]


# -- observers -------------------------------------------------------------------------


async def test_several_observers_in_subscription_order_with_kinds() -> None:
    calls: list[tuple[str, str]] = []
    stops = [
        subscribe(lambda e: calls.append(("all", e.kind))),
        subscribe(lambda e: calls.append(("retry", e.kind)), kinds=[RetryScheduled]),
        subscribe(
            lambda e: calls.append(("circuit", e.kind)), kinds=[CircuitStateChanged]
        ),
    ]
    try:

        @retry(attempts=2, delay=0)
        async def once() -> None:
            if not calls:
                raise OSError

        await once()
        breaker = CircuitBreaker(failure_threshold=1)
        with pytest.raises(OSError):
            await breaker.call(fail)
    finally:
        for stop in stops:
            stop()

    assert calls == [
        ("all", "retry.scheduled"),
        ("retry", "retry.scheduled"),
        ("all", "circuit.state_changed"),
        ("circuit", "circuit.state_changed"),
    ]


async def test_a_raising_observer_is_logged_once_per_event_and_breaks_nothing(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def bad(event: InstrumentEvent) -> None:
        raise ZeroDivisionError("observer bug")

    stop = subscribe(bad, kinds=[CircuitStateChanged])
    try:
        breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60, name="x")
        with pytest.raises(OSError):
            await breaker.call(fail)
        # The breaker did open, and later observers still got the event.
        with pytest.raises(CircuitOpenError):
            await breaker.call(ok)
    finally:
        stop()

    assert breaker.state == "open"
    assert [e.kind for e in recorder.of(CircuitStateChanged)] == [
        "circuit.state_changed"
    ]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage().startswith("instrumentation observer <function")
    assert "raised on circuit.state_changed; ignored" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is ZeroDivisionError


async def test_without_the_logging_observer_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyconc")
    unsubscribe(anyconc.logging_observer)
    try:
        assert all(not obs for obs in _instrument.listeners.values())
        breaker = CircuitBreaker(failure_threshold=1)
        with pytest.raises(OSError):
            await breaker.call(fail)
        assert breaker.state == "open"
    finally:
        subscribe(anyconc.logging_observer, kinds=anyconc.LoggingObserver.kinds)
    assert [r for r in caplog.records if r.name == "anyconc"] == []


async def test_logging_observer_debug_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="anyconc")

    @retry(attempts=2, delay=0)
    async def bad() -> None:
        raise OSError("x")

    with pytest.raises(OSError):
        await bad()
    async with BackgroundTasks(name="logs"):
        pass
    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    name = bad.__qualname__
    assert messages[:2] == [
        f"retrying {name} in 0.000s: attempt 1 of 2 raised OSError('x')",
        f"giving up on {name} after attempt 2 of 2 (attempts): OSError('x')",
    ]
    assert (
        messages[2]
        == "background tasks 'logs': draining 0 task(s), grace period unlimited"
    )
    assert messages[3].startswith("background tasks 'logs': drained in ")
    assert messages[3].endswith(", 0 finished, 0 cancelled")


def test_subscribe_and_unsubscribe_errors() -> None:
    def observer(event: InstrumentEvent) -> None:
        pass

    with pytest.raises(
        TypeError, match=r"^subscribe\(\) argument 'observer' must be a function, got int 3$"
    ):
        subscribe(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^subscribe\(\) argument 'kinds' must hold event classes such as "):
        subscribe(observer, kinds=[str])  # type: ignore[list-item]
    stop = subscribe(observer, kinds=RetryScheduled)  # type: ignore[arg-type]
    try:
        assert _instrument.listeners[RetryScheduled][-1] is observer
        assert observer not in _instrument.listeners[RetryGaveUp]
        with pytest.raises(
            ValueError, match=r"is already subscribed; unsubscribe it first"
        ):
            subscribe(observer)
    finally:
        stop()
    stop()  # a second time: nothing
    with pytest.raises(ValueError, match=r"is not subscribed"):
        unsubscribe(observer)


def test_subscribe_bad_input_names_the_call_and_closes_coroutines() -> None:
    async def async_observer(event: InstrumentEvent) -> None:
        pass

    def observer(event: InstrumentEvent) -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"^subscribe\(\) argument 'observer' must be a synchronous function, got "
        r"the async function '.*async_observer'; observers are called synchronously: "
        r"use a plain 'def' that hands the event to a task \(e\.g\. through a "
        r"Queue\)$",
    ):
        subscribe(async_observer)
    coro = async_observer(None)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^subscribe\(\) argument 'observer' must be a function, got the "
        r"coroutine object .*async_observer\(\); pass the function itself",
    ):
        subscribe(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    with pytest.raises(
        TypeError,
        match=r"^subscribe\(\) argument 'kinds' must be iterable, got int 3$",
    ):
        subscribe(observer, kinds=3)  # type: ignore[arg-type]
    coro = async_observer(None)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^subscribe\(\) argument 'kinds' must be iterable, got the coroutine "
        r"object .*async_observer\(\)$",
    ):
        subscribe(observer, kinds=coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    # Nothing was subscribed by the rejected calls.
    assert all(
        async_observer not in obs and observer not in obs
        for obs in _instrument.listeners.values()
    )
    with pytest.raises(
        ValueError,
        match=r"^unsubscribe\(\) argument 'observer' <function .*observer at .*> is "
        r"not subscribed$",
    ):
        unsubscribe(observer)


async def test_an_observer_returning_a_coroutine_has_it_closed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made: list[object] = []

    async def handle(event: InstrumentEvent) -> None:
        raise AssertionError("never run")

    def observer(event: InstrumentEvent) -> object:
        made.append(handle(event))
        return made[-1]

    stop = subscribe(observer, kinds=[CircuitStateChanged])
    try:
        breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60)
        with pytest.raises(OSError):
            await breaker.call(fail)
    finally:
        stop()
    assert breaker.state == "open"
    assert len(made) == 1
    assert inspect.getcoroutinestate(made[0]) == "CORO_CLOSED"  # type: ignore[arg-type]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "raised on circuit.state_changed; ignored" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == (
        f"observer {observer.__qualname__!r} returned a coroutine object, which is "
        f"never awaited: observers are called synchronously"
    )


def test_logging_observer_rejects_what_is_not_a_logger() -> None:
    with pytest.raises(
        TypeError,
        match=r"^LoggingObserver\(\) argument 'logger' must be a logging\.Logger, got "
        r"int$",
    ):
        anyconc.LoggingObserver(3)  # type: ignore[arg-type]
    logger = logging.getLogger("anyconc.test")
    assert anyconc.LoggingObserver(logger).logger is logger


def test_events_are_frozen_dataclasses() -> None:
    event = FanOutProgress("gather", 1, 0, 2, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.done = 2  # type: ignore[misc]
    assert event.kind == "fanout.progress"
    assert {cls.kind for cls in _instrument.EVENT_KINDS} == {
        "retry.scheduled",
        "retry.gave_up",
        "circuit.state_changed",
        "background.task_started",
        "background.task_failed",
        "background.drain_started",
        "background.drain_finished",
        "fanout.progress",
    }
