"""Tests for anyconc.timeout and anyconc.shield."""

from __future__ import annotations

import gc
import logging
import math
import warnings
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import anyio
import pytest
import sniffio

from anyconc import run_until_first_complete
from anyconc._timeouts import Timeout, shield, timeout
from anyconc.pytest_plugin import backend_spec

T = TypeVar("T")


def run_virtual(fn: Callable[[], Awaitable[T]], backend: str) -> T:
    """anyio.run() under a virtual clock starting at 0 on either backend."""
    name, options = backend_spec(backend, virtual_time=True)
    return anyio.run(fn, backend=name, backend_options=options)


# --- timeout ---


@pytest.mark.virtual_time
async def test_timeout_raises_builtin_timeout_error_at_the_deadline() -> None:
    start = anyio.current_time()
    reached = []

    async def body() -> None:
        with timeout(2):
            await anyio.sleep(10)
            reached.append(True)

    with pytest.raises(TimeoutError) as info:
        await body()
    assert type(info.value) is TimeoutError
    assert str(info.value) == "timed out after 2s"
    assert reached == []
    assert anyio.current_time() - start == pytest.approx(2.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_block_finishing_in_time_is_untouched() -> None:
    start = anyio.current_time()
    with timeout(2.0) as scope:
        await anyio.sleep(1.5)
    assert not scope.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(1.5, abs=1e-6)


_module_timeout = timeout(5)  # made at import time: no event loop, no clock read


@pytest.mark.virtual_time
async def test_clock_starts_at_enter_and_one_object_serves_many_tasks() -> None:
    start = anyio.current_time()
    timed_out: dict[str, float] = {}

    async def user(name: str, enter_after: float) -> None:
        await anyio.sleep(enter_after)
        try:
            with _module_timeout:
                await anyio.sleep(100)
        except TimeoutError:
            timed_out[name] = anyio.current_time() - start

    async with anyio.create_task_group() as tg:
        tg.start_soon(user, "a", 0)
        tg.start_soon(user, "b", 1)
        tg.start_soon(user, "c", 3)
    assert timed_out == {
        "a": pytest.approx(5.0, abs=1e-6),
        "b": pytest.approx(6.0, abs=1e-6),
        "c": pytest.approx(8.0, abs=1e-6),
    }


@pytest.mark.virtual_time
async def test_async_with_and_nested_use_of_the_same_object() -> None:
    start = anyio.current_time()
    t = timeout(3)

    async def nested() -> None:
        async with t:
            with t:
                await anyio.sleep(1)
            await anyio.sleep(10)

    with pytest.raises(TimeoutError):
        await nested()
    assert anyio.current_time() - start == pytest.approx(3.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_deadline_can_be_moved_through_the_scope() -> None:
    start = anyio.current_time()

    async def body() -> None:
        with timeout(5) as scope:
            scope.deadline += 2
            await anyio.sleep(100)

    with pytest.raises(TimeoutError):
        await body()
    assert anyio.current_time() - start == pytest.approx(7.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_outer_cancellation_is_not_turned_into_timeout_error() -> None:
    start = anyio.current_time()
    with anyio.move_on_after(1) as outer:
        with timeout(5):
            await anyio.sleep(100)
    assert outer.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seconds", [None, math.inf])
@pytest.mark.virtual_time
async def test_no_limit(seconds: float | None) -> None:
    start = anyio.current_time()
    with timeout(seconds):
        await anyio.sleep(10_000)
    assert anyio.current_time() - start == pytest.approx(10_000, abs=1e-6)


async def test_zero_times_out_at_the_first_checkpoint() -> None:
    steps = []

    async def body() -> None:
        with timeout(0):
            steps.append("before")
            await anyio.lowlevel.checkpoint()
            steps.append("after")

    with pytest.raises(TimeoutError):
        await body()
    assert steps == ["before"]


async def test_body_exception_wins_and_is_unchanged() -> None:
    err = KeyError("body")
    with pytest.raises(KeyError) as info, timeout(10):
        raise err
    assert info.value is err


@pytest.mark.parametrize(
    ("seconds", "exc_type", "message"),
    [
        (-1, ValueError, "got -1"),
        (
            float("nan"),
            ValueError,
            "got nan",
        ),
        ("1", TypeError, "got str '1'"),
        (True, TypeError, "got bool True"),
    ],
)
def test_timeout_bad_arguments(
    seconds: Any, exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type) as info:
        timeout(seconds)
    assert str(info.value) == (
        "timeout() argument 'seconds' must be a non-negative number or None, " + message
    )
    # The class, also exported, names itself.
    with pytest.raises(exc_type) as info:
        Timeout(seconds)
    assert str(info.value) == (
        "Timeout() argument 'seconds' must be a non-negative number or None, " + message
    )


def test_timeout_repr_and_exit_without_enter() -> None:
    t = timeout(1.5)
    assert isinstance(t, Timeout)
    assert repr(t) == "Timeout(1.5)"
    assert t.seconds == 1.5
    with pytest.raises(
        RuntimeError, match="^this timeout was not entered by the current task$"
    ):
        t.__exit__(None, None, None)


def test_timeout_object_across_runs() -> None:
    async def use() -> list[Any]:
        start = anyio.current_time()
        with _module_timeout:
            await anyio.sleep(1)
        try:
            with _module_timeout:
                await anyio.sleep(60)
        except TimeoutError:
            return [sniffio.current_async_library(), anyio.current_time() - start]
        return []

    for backend in ("asyncio", "trio", "asyncio"):
        name, elapsed = run_virtual(use, backend)
        assert name == backend
        assert elapsed == pytest.approx(6.0, abs=1e-6)


# --- shield ---


@pytest.mark.virtual_time
async def test_shield_finishes_the_work_then_delivers_the_cancellation() -> None:
    start = anyio.current_time()
    log: list[str] = []

    async def important_work() -> str:
        await anyio.sleep(3)
        log.append("work done")
        return "result"

    with anyio.move_on_after(1) as scope:
        await shield(important_work())
        log.append("after shield")  # never: the cancellation is delivered first
    assert scope.cancelled_caught
    assert log == ["work done"]
    assert anyio.current_time() - start == pytest.approx(3.0, abs=1e-6)


@pytest.mark.virtual_time
async def test_shield_returns_the_result_and_raises_the_exception_unchanged() -> None:
    async def value() -> int:
        await anyio.sleep(1)
        return 42

    err = ValueError("inner")

    async def failing() -> None:
        await anyio.sleep(1)
        raise err

    assert await shield(value()) == 42
    with pytest.raises(ValueError) as info:
        await shield(failing())
    assert info.value is err


@pytest.mark.virtual_time
async def test_shield_under_a_timeout_completes_then_times_out() -> None:
    start = anyio.current_time()
    done = []

    async def work() -> None:
        await anyio.sleep(4)
        done.append(anyio.current_time() - start)

    with pytest.raises(TimeoutError), timeout(1):
        await shield(work())
    assert done == [pytest.approx(4.0, abs=1e-6)]
    assert anyio.current_time() - start == pytest.approx(4.0, abs=1e-6)


async def test_shield_runs_the_work_even_if_already_cancelled() -> None:
    done = []

    async def work() -> None:
        await anyio.lowlevel.checkpoint()
        done.append(True)

    with anyio.CancelScope() as scope:
        scope.cancel()
        await shield(work())
        done.append(False)
    assert scope.cancelled_caught
    assert done == [True]


@pytest.mark.virtual_time
async def test_failure_while_the_caller_is_cancelled_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def work() -> None:
        await anyio.sleep(2)
        raise OSError("disk full")

    with anyio.move_on_after(1) as scope:
        await shield(work())
    assert scope.cancelled_caught
    records = [r for r in caplog.records if r.name == "anyconc"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert (
        records[0].getMessage()
        == "shielded work failed while its caller was being cancelled"
    )
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], OSError)


class Custom:
    """An awaitable that is not a coroutine."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, str]:
        yield from anyio.sleep(1).__await__()
        return self.value


@pytest.mark.virtual_time
async def test_shield_accepts_other_awaitables() -> None:
    from anyconc import create_task_group

    assert await shield(Custom("custom")) == "custom"
    async with create_task_group() as tg:
        task = tg.create_task(_ret("task"))
        assert await shield(task) == "task"


async def _ret(value: T) -> T:
    await anyio.sleep(0.5)
    return value


async def test_shield_rejects_non_awaitables() -> None:
    async def work() -> None:
        pass

    with pytest.raises(TypeError) as info:
        await shield(work)  # type: ignore[arg-type]
    assert str(info.value) == (
        "shield() argument 'aw' must be awaitable, got the function "
        "'test_shield_rejects_non_awaitables.<locals>.work'; call it: work(...)"
    )
    with pytest.raises(
        TypeError, match=r"^shield\(\) argument 'aw' must be awaitable, got int 3$"
    ):
        await shield(3)  # type: ignore[arg-type]


async def test_seed_shield_from_native_asyncio_cancellation(anyio_backend: Any) -> None:
    # seeds/asyncio-concurrency-patterns.md, "Shield from Cancellation": the operation
    # must complete even if the outer task is cancelled -- here with task.cancel().
    if sniffio.current_async_library() != "asyncio":
        pytest.skip("native task.cancel() exists on asyncio only")

    import asyncio

    log: list[str] = []
    work_started = asyncio.Event()

    async def important_work() -> str:
        work_started.set()
        await asyncio.sleep(0.01)
        log.append("important work done")
        return "saved"

    async def critical_operation() -> str:
        result = await shield(important_work())
        log.append("not reached")
        return result

    task = asyncio.create_task(critical_operation())
    await work_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["important work done"]


async def test_seed_shield_pattern_on_every_backend() -> None:
    # The seed's critical_operation() without asyncio.shield's double call: with
    # anyconc.shield the work runs once, to completion, then the caller is cancelled.
    log: list[str] = []
    started = anyio.Event()

    async def important_work() -> str:
        started.set()
        await anyio.sleep(0.01)
        log.append("done")
        return "saved"

    async def critical_operation() -> None:
        log.append(await shield(important_work()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(critical_operation)
        await started.wait()
        tg.cancel_scope.cancel()
    assert log == ["done"]


@pytest.mark.virtual_time
async def test_seed_first_completed_with_a_timeout() -> None:
    # seeds/asyncio-concurrency-patterns.md, "Wait with First Completed": return the
    # first response, cancel the rest -- here bounded by anyconc.timeout.
    start = anyio.current_time()
    cancelled: list[str] = []

    async def fetch(url: str, latency: float) -> str:
        try:
            await anyio.sleep(latency)
        except anyio.get_cancelled_exc_class():
            cancelled.append(url)
            raise
        return f"response from {url}"

    async def first_response(urls: dict[str, float]) -> str:
        with timeout(5):
            return await run_until_first_complete(
                *[(fetch, {"url": u, "latency": t}) for u, t in urls.items()]
            )

    assert await first_response({"a": 3, "b": 1, "c": 2}) == "response from b"
    assert sorted(cancelled) == ["a", "c"]
    assert anyio.current_time() - start == pytest.approx(1.0, abs=1e-6)

    cancelled.clear()
    with pytest.raises(TimeoutError):
        await first_response({"slow": 10, "slower": 20})
    assert sorted(cancelled) == ["slow", "slower"]
    assert anyio.current_time() - start == pytest.approx(6.0, abs=1e-6)


def test_nothing_is_left_unawaited() -> None:
    async def main() -> None:
        async def work() -> int:
            return 1

        with pytest.raises(TypeError):
            await shield(work)  # type: ignore[arg-type]
        assert await shield(work()) == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for backend in ("asyncio", "trio", "asyncio"):
            anyio.run(main, backend=backend)
        gc.collect()


# --- Timeout.when() / reschedule() / expired() (as asyncio.Timeout) ---


def test_timeout_is_exported() -> None:
    import anyconc

    assert anyconc.Timeout is Timeout
    assert isinstance(anyconc.timeout(1), anyconc.Timeout)


@pytest.mark.virtual_time
async def test_when_reschedule_and_expired_inside_and_after_a_block() -> None:
    t = timeout(5)
    assert t.when() is None  # not inside a block of t
    assert not t.expired()
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with t:
            assert t.when() == pytest.approx(start + 5)
            assert not t.expired()
            t.reschedule(start + 8)
            assert t.when() == pytest.approx(start + 8)
            t.reschedule(None)
            assert t.when() is None
            await anyio.sleep(20)
            t.reschedule(anyio.current_time() + 1)
            await anyio.sleep(100)
    assert anyio.current_time() - start == pytest.approx(21, abs=1e-6)
    assert t.expired()
    assert t.when() is None

    with t:  # a new block: a new deadline, not expired
        assert t.when() == pytest.approx(anyio.current_time() + 5)
        assert not t.expired()
    assert not t.expired()


@pytest.mark.virtual_time
async def test_expired_inside_the_block_and_reschedule_after_it_raises() -> None:
    t = timeout(1)
    with pytest.raises(TimeoutError):
        async with t:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(2)  # the deadline passes while shielded
            assert t.expired()
            with pytest.raises(
                RuntimeError, match="^this timeout has already expired$"
            ):
                t.reschedule(anyio.current_time() + 10)
            await anyio.sleep(0)
    assert t.expired()


@pytest.mark.virtual_time
async def test_a_timeout_error_from_the_body_is_not_expired() -> None:
    t = timeout(5)
    with pytest.raises(TimeoutError, match="^mine$"):
        with t:
            raise TimeoutError("mine")
    assert not t.expired()


async def test_reschedule_outside_a_block_and_bad_when() -> None:
    t = timeout(5)
    with pytest.raises(
        RuntimeError, match="^this timeout was not entered by the current task"
    ):
        t.reschedule(1.0)
    with t:
        with pytest.raises(
            TypeError,
            match=r"^Timeout\.reschedule\(\) argument 'when' must be a number or None, "
            r"got str '1'$",
        ):
            t.reschedule("1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"got nan$"):
            t.reschedule(math.nan)


@pytest.mark.virtual_time
async def test_one_timeout_in_two_tasks_has_a_deadline_per_task() -> None:
    t = timeout(5)
    seen: dict[str, float | None] = {}
    start = anyio.current_time()

    async def user(name: str, enter_after: float) -> None:
        await anyio.sleep(enter_after)
        with t:
            seen[name] = t.when()
            await anyio.sleep(1)

    async with anyio.create_task_group() as group:
        group.start_soon(user, "a", 0)
        group.start_soon(user, "b", 3)
    assert seen == {"a": pytest.approx(start + 5), "b": pytest.approx(start + 8)}


async def test_a_worker_thread_in_a_block_reads_when_but_not_expired_or_reschedule() -> None:
    t = timeout(30)
    with t:
        deadline = t.when()
        # A worker thread runs in a copy of the task's context: it sees the block.
        assert await anyio.to_thread.run_sync(t.when) == deadline
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(t.expired)
        assert str(info.value) == (
            "Timeout.expired() inside a block must be called from the thread of its "
            "event loop (no event loop runs in this thread); from a worker thread, use "
            "anyio.from_thread.run_sync(t.expired)"
        )
        with pytest.raises(RuntimeError) as info:
            await anyio.to_thread.run_sync(t.reschedule, None)
        assert str(info.value) == (
            "Timeout.reschedule() inside a block must be called from the thread of its "
            "event loop (no event loop runs in this thread); from a worker thread, use "
            "anyio.from_thread.run_sync(t.reschedule, when)"
        )
        assert t.when() == deadline  # unchanged
        # The way the messages give works.
        assert await anyio.to_thread.run_sync(anyio.from_thread.run_sync, t.expired) is False
    assert not t.expired()
