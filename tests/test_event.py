# mypy: disable-error-code="comparison-overlap"
# (pytest.approx() inside a compared list or tuple is not a float to mypy.)
"""AsyncEvent: set/clear/wait, per-generation releases, timeouts, run-portability, seeds."""

from __future__ import annotations

import gc
import math
from typing import Any

import anyio
import pytest

import anyconc
from anyconc import AsyncEvent

# --- basics -----------------------------------------------------------------------------


async def test_set_clear_is_set() -> None:
    event = AsyncEvent()
    assert not event.is_set()
    event.set()
    assert event.is_set()
    event.set()  # idempotent
    assert event.is_set()
    event.clear()
    assert not event.is_set()
    event.clear()
    assert not event.is_set()
    assert repr(event) == "<AsyncEvent unset waiters=0>"


async def test_wait_returns_true_at_once_when_set() -> None:
    event = AsyncEvent()
    event.set()
    assert await event.wait() is True
    assert await event.wait(timeout=0) is True
    assert await event.wait(timeout=5) is True


async def test_wait_on_set_event_is_still_a_checkpoint() -> None:
    event = AsyncEvent()
    event.set()
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await event.wait()
        reached = True
    assert scope.cancelled_caught
    assert not reached


async def test_wait_on_set_event_yields_to_other_tasks() -> None:
    event = AsyncEvent()
    event.set()
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        waits = 0
        while not ran and waits < 100:
            assert await event.wait()
            waits += 1
        # Without a yield, `other` could never run; the scheduler runs it in the very
        # next batch (trio picks the order within a batch at random).
        assert 1 <= waits <= 2


async def test_thousand_waiters_released_by_one_set() -> None:
    event = AsyncEvent()
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await event.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert results == []
        assert repr(event) == "<AsyncEvent unset waiters=1000>"
        event.set()

    assert results == [True] * 1000
    assert repr(event) == "<AsyncEvent set waiters=0>"


async def test_clear_right_after_set_does_not_lose_the_wakeup() -> None:
    event = AsyncEvent()
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await event.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        event.set()
        event.clear()  # before any released waiter has run
        assert not event.is_set()

    assert results == [True] * 1000
    assert not event.is_set()


@pytest.mark.virtual_time
async def test_new_waiters_after_clear_block_until_next_set() -> None:
    event = AsyncEvent()
    start = anyio.current_time()
    released: list[tuple[str, float]] = []

    async def waiter(name: str) -> None:
        assert await event.wait()
        released.append((name, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "first generation")
        await anyio.wait_all_tasks_blocked()
        event.set()
        event.clear()
        tg.start_soon(waiter, "second generation")
        await anyio.sleep(5)
        event.set()

    assert released == [
        ("first generation", pytest.approx(0, abs=1e-6)),
        ("second generation", pytest.approx(5, abs=1e-6)),
    ]


async def test_set_clear_set_cycles_release_each_generation_once() -> None:
    event = AsyncEvent()
    log: list[tuple[int, bool]] = []

    async def waiter(generation: int) -> None:
        log.append((generation, await event.wait()))

    async with anyio.create_task_group() as tg:
        for generation in range(5):
            for _ in range(3):
                tg.start_soon(waiter, generation)
            await anyio.wait_all_tasks_blocked()
            assert len(log) == 3 * generation
            event.set()
            event.clear()

    assert sorted(log) == [(g, True) for g in range(5) for _ in range(3)]


async def test_set_from_a_worker_thread_through_from_thread() -> None:
    event = AsyncEvent()

    def worker() -> None:
        anyio.from_thread.run_sync(event.set)

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, worker)
        assert await event.wait() is True
    assert event.is_set()


def test_set_from_a_plain_loop_callback() -> None:
    # A callback scheduled on the loop runs outside any task: the run cannot be
    # identified there, and set() must still wake the waiters.
    event = AsyncEvent()

    async def main_asyncio() -> bool:
        import asyncio

        asyncio.get_running_loop().call_soon(event.set)
        return await event.wait()

    async def main_trio() -> bool:
        import trio

        trio.lowlevel.current_trio_token().run_sync_soon(event.set)
        return await event.wait()

    assert anyio.run(main_asyncio, backend="asyncio") is True
    event.clear()
    assert anyio.run(main_trio, backend="trio") is True


# --- timeouts ---------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_wait_timeout_returns_false_at_exact_time() -> None:
    event = AsyncEvent()
    start = anyio.current_time()
    assert await event.wait(timeout=2.5) is False
    assert anyio.current_time() - start == pytest.approx(2.5, abs=1e-6)
    assert repr(event) == "<AsyncEvent unset waiters=0>"


@pytest.mark.virtual_time
async def test_wait_timeout_returns_true_when_set_before_it_expires() -> None:
    event = AsyncEvent()
    start = anyio.current_time()

    async def setter() -> None:
        await anyio.sleep(1.5)
        event.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(setter)
        assert await event.wait(timeout=10) is True
        assert anyio.current_time() - start == pytest.approx(1.5, abs=1e-6)


@pytest.mark.virtual_time
async def test_timed_out_waiter_is_not_released_by_a_later_set() -> None:
    event = AsyncEvent()
    start = anyio.current_time()
    results: list[tuple[bool, float]] = []

    async def waiter(timeout: float) -> None:
        results.append((await event.wait(timeout), anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, 1)
        tg.start_soon(waiter, 10)
        await anyio.sleep(3)
        event.set()

    assert sorted(results) == [
        (False, pytest.approx(1, abs=1e-6)),
        (True, pytest.approx(3, abs=1e-6)),
    ]


async def test_timeout_zero_polls() -> None:
    event = AsyncEvent()
    assert await event.wait(timeout=0) is False
    event.set()
    assert await event.wait(timeout=0) is True


async def test_set_and_timeout_in_same_instant_counts_as_set() -> None:
    event = AsyncEvent()
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await event.wait(timeout=0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        event.set()  # before the waiter ran: it finds the event set
    assert results == [True]


# --- cancellation -----------------------------------------------------------------------


async def test_cancelled_waiter_raises_and_others_are_still_released() -> None:
    event = AsyncEvent()
    results: list[str] = []
    scope = anyio.CancelScope()

    async def cancelled_waiter() -> None:
        with scope:
            await event.wait()
            results.append("cancelled waiter released")  # pragma: no cover

    async def waiter() -> None:
        assert await event.wait()
        results.append("released")

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancelled_waiter)
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert repr(event) == "<AsyncEvent unset waiters=2>"
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert repr(event) == "<AsyncEvent unset waiters=1>"
        event.set()

    assert scope.cancelled_caught
    assert results == ["released"]


async def test_all_waiters_cancelled_leaves_nothing_behind() -> None:
    event = AsyncEvent()
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(event.wait)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert repr(event) == "<AsyncEvent unset waiters=0>"
    assert not event._waiting  # no generation kept: nothing refers to the run
    event.set()
    assert await event.wait()


@pytest.mark.virtual_time
async def test_fail_after_around_wait() -> None:
    event = AsyncEvent()
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(4):
            await event.wait()
    assert anyio.current_time() - start == pytest.approx(4, abs=1e-6)
    assert repr(event) == "<AsyncEvent unset waiters=0>"


# --- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [-1, -0.001, math.nan])
async def test_bad_timeout_value(timeout: float) -> None:
    event = AsyncEvent()
    with pytest.raises(
        ValueError,
        match=rf"^AsyncEvent\.wait\(\) argument 'timeout' must be a non-negative "
        rf"number or None, got {timeout!r}$",
    ):
        await event.wait(timeout)
    assert repr(event) == "<AsyncEvent unset waiters=0>"


@pytest.mark.parametrize(("timeout", "name"), [("1", "str '1'"), (True, "bool True")])
async def test_bad_timeout_type(timeout: object, name: str) -> None:
    event = AsyncEvent()
    event.set()  # checked even when the wait would return at once
    with pytest.raises(
        TypeError,
        match=rf"^AsyncEvent\.wait\(\) argument 'timeout' must be a non-negative "
        rf"number or None, got {name}$",
    ):
        await event.wait(timeout)  # type: ignore[arg-type]


# --- run-portability --------------------------------------------------------------------

MODULE_EVENT = AsyncEvent()  # created at import time, no loop running


async def test_module_level_event_is_usable_on_every_backend() -> None:
    # The asyncio, uvloop and trio variants of this test share the object.
    MODULE_EVENT.clear()
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await MODULE_EVENT.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        MODULE_EVENT.set()
        MODULE_EVENT.clear()

    assert results == [True] * 3
    assert await MODULE_EVENT.wait(timeout=0) is False


def test_run_portability_asyncio_trio_asyncio() -> None:
    event = AsyncEvent()
    event.set()  # set and cleared with no loop running
    event.clear()

    async def main() -> list[Any]:
        log: list[Any] = [await event.wait(timeout=0)]

        async def waiter() -> None:
            log.append(await event.wait())

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            event.set()
        log.append(event.is_set())
        event.clear()
        return log

    expected = [False, True, True, True]
    assert anyio.run(main, backend="asyncio") == expected
    assert anyio.run(main, backend="trio") == expected
    assert anyio.run(main, backend="asyncio") == expected


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_ending_with_waiters_then_another_run(backend: str) -> None:
    event = AsyncEvent()

    async def leave_waiters() -> None:
        # Waiters the run cancels at its end (tasks of the run-wide supervisor).
        for _ in range(3):
            anyconc.create_background_task(event.wait())
        await anyio.wait_all_tasks_blocked()
        assert repr(event) == "<AsyncEvent unset waiters=3>"

    anyio.run(leave_waiters, backend=backend)
    assert repr(event) == "<AsyncEvent unset waiters=0>"
    event.set()  # no loop running, nobody to release
    event.clear()

    async def use_again() -> list[bool]:
        results: list[bool] = []

        async def waiter() -> None:
            results.append(await event.wait())

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            event.set()
        event.clear()
        return results

    other = "trio" if backend == "asyncio" else "asyncio"
    assert anyio.run(use_again, backend=other) == [True]
    assert anyio.run(use_again, backend=backend) == [True]
    gc.collect()


def test_generation_left_over_from_unfinished_run_is_replaced() -> None:
    # A run whose waiters were never finished (their tasks abandoned, not cancelled):
    # the next run must not try to wake them, and must work normally.
    event = AsyncEvent()

    async def strand_a_waiter() -> None:
        coro = event.wait()
        coro.send(None)  # joins a generation, suspended forever
        coro.close()  # its finally runs; the generation is dropped
        stuck = event.wait()
        stuck.send(None)
        globals()["_STUCK"] = stuck  # keeps the stranded waiter alive

    anyio.run(strand_a_waiter, backend="asyncio")
    assert repr(event) == "<AsyncEvent unset waiters=1>"

    async def main() -> bool:
        async with anyio.create_task_group() as tg:
            tg.start_soon(event.wait)
            await anyio.wait_all_tasks_blocked()
            assert repr(event) == "<AsyncEvent unset waiters=1>"  # a fresh generation
            event.set()
        return event.is_set()

    assert anyio.run(main, backend="trio") is True
    stuck = globals().pop("_STUCK")
    stuck.close()


# --- the seeds' examples ----------------------------------------------------------------


class JobCoordinator:
    def __init__(self) -> None:
        self.completion_event = AsyncEvent()
        self.result: str | None = None

    async def run_job(self) -> None:
        # Simulate work
        await anyio.sleep(5)
        self.result = "Job completed"
        self.completion_event.set()

    async def wait_for_completion(self) -> str | None:
        await self.completion_event.wait()
        return self.result


@pytest.mark.virtual_time
async def test_seed_job_coordinator() -> None:
    async def run_coordinated_job() -> dict[str, Any]:
        coordinator = JobCoordinator()
        # Start job in background
        anyconc.create_background_task(coordinator.run_job())
        # Wait for completion
        result = await coordinator.wait_for_completion()
        return {"result": result}

    start = anyio.current_time()
    assert await run_coordinated_job() == {"result": "Job completed"}
    assert anyio.current_time() - start == pytest.approx(5, abs=1e-6)


class TaskManager:
    """The course's practice exercise, with anyio's cancellation class for asyncio's."""

    def __init__(self, *, bind_to_block: bool) -> None:
        self.tasks: dict[str, Any] = {}
        self.events: dict[str, AsyncEvent] = {}
        self.bind_to_block = bind_to_block

    async def create_task(self, task_id: str, duration: int) -> dict[str, Any]:
        async def task() -> None:
            try:
                # Simulate work
                await anyio.sleep(duration)
                self.events[task_id].set()
            except anyio.get_cancelled_exc_class():
                self.events[task_id].clear()
                raise

        self.events[task_id] = AsyncEvent()
        if not self.bind_to_block:
            self.tasks[task_id] = anyconc.create_background_task(task())
            return {"status": "started"}
        async with anyconc.create_background_task(task()) as t:
            self.tasks[task_id] = t
            return {"status": "started"}

    async def wait_for_task(self, task_id: str) -> dict[str, Any]:
        if task_id not in self.events:
            return {"error": "Task not found"}

        await self.events[task_id].wait()
        return {"status": "completed"}


@pytest.mark.virtual_time
async def test_seed_task_manager_background_tasks_complete() -> None:
    manager = TaskManager(bind_to_block=False)
    start = anyio.current_time()
    assert await manager.create_task("a", 3) == {"status": "started"}
    assert await manager.create_task("b", 7) == {"status": "started"}
    assert await manager.wait_for_task("missing") == {"error": "Task not found"}
    assert await manager.wait_for_task("b") == {"status": "completed"}
    assert anyio.current_time() - start == pytest.approx(7, abs=1e-6)
    assert await manager.wait_for_task("a") == {"status": "completed"}
    assert anyio.current_time() - start == pytest.approx(7, abs=1e-6)
    assert manager.events["a"].is_set()
    assert manager.events["b"].is_set()


@pytest.mark.virtual_time
async def test_seed_task_manager_as_written_cancels_at_block_exit() -> None:
    # As written, the task is bound to the `async with` block: returning from the block
    # cancels it, its handler clears the event, and a waiter is never released.
    manager = TaskManager(bind_to_block=True)
    start = anyio.current_time()
    assert await manager.create_task("job", 3) == {"status": "started"}
    assert manager.tasks["job"].cancelled()
    assert not manager.events["job"].is_set()
    with anyio.move_on_after(60) as scope:
        await manager.wait_for_task("job")
    assert scope.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(60, abs=1e-6)


@pytest.mark.virtual_time
async def test_seed_asyncio_patterns_event_signaling() -> None:
    # asyncio-concurrency-patterns' waiter/setter, with anyconc.AsyncEvent.
    log: list[tuple[str, float]] = []
    start = anyio.current_time()

    async def waiter(event: AsyncEvent) -> None:
        log.append(("Waiting for event...", anyio.current_time() - start))
        await event.wait()
        log.append(("Event received!", anyio.current_time() - start))

    async def setter(event: AsyncEvent) -> None:
        await anyio.sleep(2)
        event.set()
        log.append(("Event set!", anyio.current_time() - start))

    event = AsyncEvent()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, event)
        tg.start_soon(setter, event)

    assert [(m, round(t, 6)) for m, t in log] == [
        ("Waiting for event...", 0),
        ("Event set!", 2),
        ("Event received!", 2),
    ]
