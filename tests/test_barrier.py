"""Tests for anyconc.Barrier.

The behaviours are ported from CPython 3.13's ``Lib/test/test_asyncio/test_locks.py``
(``BarrierTests``, named after the test they port) and run on asyncio, uvloop and trio.
``asyncio.sleep(0)`` "let the other task run" steps become
``anyio.wait_all_tasks_blocked()``; trio does not run tasks in the order they were
started, so where order matters tasks are started one at a time.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
import pytest

from anyconc import Barrier, BrokenBarrierError

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

T = TypeVar("T")

N = 5
RGX_REPR = re.compile(
    r"^<(?P<class>.*?) object at (?P<address>.*?) \[(?P<extras>.*?)\]>$"
)


async def gather_tasks(n: int, func: Callable[[], Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``n`` tasks of ``func`` concurrently; their results in start order."""
    async with anyio.create_task_group() as tg:
        handles: list[anyio.TaskHandle[T]] = [tg.create_task(func()) for _ in range(n)]
    return [h.return_value for h in handles]


async def start_one_by_one(
    tg: Any, n: int, func: Callable[[], Awaitable[Any]]
) -> list[Any]:
    handles = []
    for _ in range(n):
        handles.append(tg.create_task(func()))
        await anyio.wait_all_tasks_blocked()
    return handles


async def test_barrier_is_not_awaitable() -> None:
    barrier = Barrier(N)
    assert "filling" in repr(barrier)
    with pytest.raises(TypeError, match="can't be used in 'await' expression"):
        await barrier  # type: ignore[misc]
    assert "filling" in repr(barrier)


async def test_repr() -> None:
    barrier = Barrier(N)
    assert RGX_REPR.match(repr(barrier))
    assert repr(barrier).endswith("[filling, waiters:0/5]>")

    results: list[Any] = []

    async def wait() -> None:
        try:
            results.append(await barrier.wait())
        except BrokenBarrierError as exc:
            results.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert RGX_REPR.match(repr(barrier))
        assert repr(barrier).endswith("[filling, waiters:2/5]>")

        barrier.reset()  # two tasks still inside: resetting until they have left
        assert repr(barrier).endswith("[resetting, waiters:0/5]>")
    assert repr(barrier).endswith("[filling, waiters:0/5]>")
    assert [type(r) for r in results] == [BrokenBarrierError] * 2

    barrier.abort()
    assert RGX_REPR.match(repr(barrier))
    assert repr(barrier).endswith("[broken]>")
    assert barrier.broken


def test_barrier_parties() -> None:
    with pytest.raises(
        ValueError,
        match=r"^Barrier\(\) argument 'parties' must be a positive integer, got 0$",
    ):
        Barrier(0)
    with pytest.raises(
        ValueError,
        match=r"^Barrier\(\) argument 'parties' must be a positive integer, got -4$",
    ):
        Barrier(-4)
    with pytest.raises(
        TypeError,
        match=r"^Barrier\(\) argument 'parties' must be a positive integer, got str '3'$",
    ):
        Barrier("3")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^Barrier\(\) argument 'parties' must be a positive integer, got float 2.0$",
    ):
        Barrier(2.0)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^Barrier\(\) argument 'parties' must be a positive integer, got bool True$",
    ):
        Barrier(True)
    barrier = Barrier(N)
    assert barrier.parties == N
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_context_manager() -> None:
    barrier = Barrier(3)
    results: list[int] = []

    async def coro() -> None:
        async with barrier as i:
            results.append(i)

    await gather_tasks(3, coro)
    assert sorted(results) == [0, 1, 2]
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_filling_one_task() -> None:
    barrier = Barrier(1)

    async def f() -> bool:
        async with barrier as i:
            return i == 0

    assert await f()
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_filling_one_task_twice() -> None:
    barrier = Barrier(1)
    assert await barrier.wait() == 0
    assert barrier.n_waiting == 0
    assert await barrier.wait() == 0
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_filling_task_by_task() -> None:
    barrier = Barrier(3)
    async with anyio.create_task_group() as tg:
        t1 = tg.create_task(barrier.wait())
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 1
        assert "filling" in repr(barrier)

        t2 = tg.create_task(barrier.wait())
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 2
        assert "filling" in repr(barrier)

        t3 = tg.create_task(barrier.wait())
    # Indices follow arrival order.
    assert [t1.return_value, t2.return_value, t3.return_value] == [0, 1, 2]
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_filling_tasks_wait_twice() -> None:
    barrier = Barrier(N)
    results: list[bool] = []

    async def coro() -> None:
        async with barrier:
            results.append(True)
            async with barrier:
                results.append(False)

    await gather_tasks(N, coro)
    assert results == [True] * N + [False] * N  # nobody passes twice before all once
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_filling_tasks_check_return_value() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []

    async def coro() -> int:
        async with barrier:
            results1.append(True)
            async with barrier as i:
                results2.append(True)
                return i

    res = await gather_tasks(N, coro)
    assert results1 == [True] * N
    assert results2 == [True] * N
    assert sorted(res) == list(range(N))
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_draining_state() -> None:
    barrier = Barrier(N)
    results: list[bool] = []

    async def coro() -> None:
        async with barrier:
            # The last task to leave restores the filling state.
            results.append("draining" in repr(barrier))

    await gather_tasks(N, coro)
    assert results == [True] * (N - 1) + [False]
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_blocking_tasks_while_draining() -> None:
    rewait = 2
    barrier = Barrier(N)
    barrier_nowaiting = Barrier(N - rewait)
    rewait_n = rewait
    passes = 0

    async def coro() -> None:
        nonlocal rewait_n, passes
        await barrier.wait()
        if rewait_n > 0:
            rewait_n -= 1
            # Arrives while the barrier drains: waits for the next cycle.
            await barrier.wait()
        else:
            await barrier_nowaiting.wait()
            await barrier.wait()
        passes += 1

    # Success means barrier_nowaiting was waited for exactly N - rewait times and the
    # early re-waiters joined the second cycle instead of the first.
    with anyio.fail_after(5):
        await gather_tasks(N, coro)
    assert passes == N
    assert barrier.n_waiting == 0


async def test_filling_tasks_cancel_one() -> None:
    barrier = Barrier(3)
    results: list[int] = []

    async def coro() -> None:
        results.append(await barrier.wait())

    async with anyio.create_task_group() as tg:
        t1 = tg.create_task(coro())
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 1
        tg.create_task(coro())
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 2

        t1.cancel()
        await t1.wait()
        assert t1.status is t1.Status.CANCELLED
        assert barrier.n_waiting == 1

        tg.create_task(coro())
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 2
        tg.create_task(coro())

    # Distinct indices even though a waiter left (asyncio would repeat index 1).
    assert sorted(results) == [0, 1, 2]
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_reset_barrier() -> None:
    barrier = Barrier(1)
    barrier.reset()
    assert barrier.n_waiting == 0
    assert not barrier.broken
    assert await barrier.wait() == 0


async def test_reset_barrier_while_tasks_waiting() -> None:
    barrier = Barrier(N)
    results: list[bool] = []

    async def coro() -> None:
        try:
            await barrier.wait()
        except BrokenBarrierError:
            results.append(True)

    async with anyio.create_task_group() as tg:
        for _ in range(N - 1):
            tg.start_soon(coro)
        await anyio.wait_all_tasks_blocked()
        barrier.reset()

    assert results == [True] * (N - 1)
    assert barrier.n_waiting == 0
    assert "resetting" not in repr(barrier)
    assert not barrier.broken


async def test_reset_barrier_when_tasks_half_draining() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    rest_of_tasks = N // 2

    async def coro() -> None:
        try:
            await barrier.wait()
        except BrokenBarrierError:
            # Released by the trip, but reset before it ran.
            results1.append(True)
        else:
            if barrier._count == rest_of_tasks:
                barrier.reset()

    await gather_tasks(N, coro)
    assert results1 == [True] * rest_of_tasks
    assert barrier.n_waiting == 0
    assert "resetting" not in repr(barrier)
    assert not barrier.broken


async def test_reset_barrier_when_tasks_half_draining_half_blocking() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []
    blocking_tasks = N // 2
    count = 0

    async def coro() -> None:
        nonlocal count
        try:
            await barrier.wait()
        except BrokenBarrierError:
            results1.append(True)
            await barrier.wait()
        else:
            count += 1
            if count > blocking_tasks:
                barrier.reset()
                await barrier.wait()
            else:
                try:
                    await barrier.wait()
                except BrokenBarrierError:
                    results2.append(True)

    with anyio.fail_after(5):
        await gather_tasks(N, coro)
    assert results1 == [True] * blocking_tasks
    assert results2 == []
    assert barrier.n_waiting == 0
    assert "resetting" not in repr(barrier)
    assert not barrier.broken


async def test_reset_barrier_while_tasks_waiting_and_waiting_again() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []

    async def coro1() -> None:
        try:
            await barrier.wait()
        except BrokenBarrierError:
            results1.append(True)
        finally:
            await barrier.wait()
            results2.append(True)

    async def coro2() -> None:
        async with barrier:
            results2.append(True)

    async with anyio.create_task_group() as tg:
        for _ in range(N - 1):
            tg.start_soon(coro1)
        await anyio.wait_all_tasks_blocked()
        barrier.reset()
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(coro2)

    assert not barrier.broken
    assert results1 == [True] * (N - 1)
    assert results2 == [True] * N
    assert barrier.n_waiting == 0


async def test_reset_barrier_while_tasks_draining() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []
    results3: list[bool] = []
    count = 0

    async def coro() -> None:
        nonlocal count
        await barrier.wait()
        count += 1
        if count == N:
            # The last task out of the barrier resets it (nobody is inside).
            barrier.reset()
            await barrier.wait()
        else:
            try:
                await barrier.wait()
                results1.append(True)
            except Exception:
                results2.append(True)
        await barrier.wait()
        results3.append(True)

    with anyio.fail_after(5):
        await gather_tasks(N, coro)
    assert not barrier.broken
    assert results1 == [True] * (N - 1)
    assert results2 == []
    assert results3 == [True] * N
    assert barrier.n_waiting == 0


async def test_abort_barrier() -> None:
    barrier = Barrier(1)
    barrier.abort()
    assert barrier.n_waiting == 0
    assert barrier.broken
    with pytest.raises(BrokenBarrierError, match="^barrier aborted$"):
        await barrier.wait()


async def test_abort_barrier_when_tasks_half_draining_half_blocking() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []
    blocking_tasks = N // 2
    count = 0

    async def coro() -> None:
        nonlocal count
        try:
            await barrier.wait()
        except BrokenBarrierError:
            # Released by the trip, but aborted before it ran.
            results1.append(True)
        else:
            count += 1
            if count > blocking_tasks:
                barrier.abort()
            else:
                try:
                    await barrier.wait()
                except BrokenBarrierError:
                    # Blocked waiting for the drain to end, then aborted.
                    results2.append(True)

    await gather_tasks(N, coro)
    assert barrier.broken
    assert results1 == [True] * blocking_tasks
    assert results2 == [True] * (N - blocking_tasks - 1)
    assert barrier.n_waiting == 0
    assert "resetting" not in repr(barrier)


async def test_abort_barrier_when_exception() -> None:
    barrier = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []

    async def coro() -> None:
        try:
            async with barrier as i:
                if i == N // 2:
                    raise RuntimeError
            async with barrier:
                results1.append(True)
        except BrokenBarrierError:
            results2.append(True)
        except RuntimeError:
            barrier.abort()

    await gather_tasks(N, coro)
    assert barrier.broken
    assert results1 == []
    assert results2 == [True] * (N - 1)
    assert barrier.n_waiting == 0


async def test_abort_barrier_when_exception_then_resetting() -> None:
    barrier1 = Barrier(N)
    barrier2 = Barrier(N)
    results1: list[bool] = []
    results2: list[bool] = []
    results3: list[bool] = []

    async def coro() -> None:
        try:
            i = await barrier1.wait()
            if i == N // 2:
                raise RuntimeError
            await barrier1.wait()
            results1.append(True)
        except BrokenBarrierError:
            results2.append(True)
        except RuntimeError:
            barrier1.abort()

        # Everyone has left barrier1 before the reset, nobody enters it before.
        i = await barrier2.wait()
        if i == N // 2:
            barrier1.reset()
        await barrier2.wait()
        await barrier1.wait()
        results3.append(True)

    await gather_tasks(N, coro)
    assert not barrier1.broken
    assert results1 == []
    assert results2 == [True] * (N - 1)
    assert results3 == [True] * N
    assert barrier1.n_waiting == 0


# --- cancellation at each await point, timeouts, failures ------------------------------


async def test_cancelled_on_entry_takes_no_part() -> None:
    barrier = Barrier(2)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await barrier.wait()
    assert scope.cancelled_caught
    assert barrier.n_waiting == 0

    # Even the task that would trip it: the other one keeps waiting.
    async with anyio.create_task_group() as tg:
        first = tg.create_task(barrier.wait())
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await barrier.wait()
        assert scope.cancelled_caught
        assert barrier.n_waiting == 1
        assert first.status is first.Status.PENDING
        assert await barrier.wait() == 1
    assert first.return_value == 0


async def test_cancelled_after_trip_before_running() -> None:
    barrier = Barrier(3)
    async with anyio.create_task_group() as tg:
        waiters = await start_one_by_one(tg, 2, barrier.wait)
        # Trip it, then cancel a released waiter before it had a chance to run.
        assert await barrier.wait() == 2
        assert "draining" in repr(barrier)
        waiters[0].cancel()
    # asyncio delivers the cancellation; trio had already rescheduled the task, which
    # returns its index. Either way the other one passes and the cycle completes.
    first = waiters[0]
    if first.status is first.Status.CANCELLED:
        assert waiters[1].return_value == 1
    else:
        assert [w.return_value for w in waiters] == [0, 1]
    assert repr(barrier).endswith("[filling, waiters:0/3]>")

    # And the barrier works for the next cycle.
    assert sorted(await gather_tasks(3, barrier.wait)) == [0, 1, 2]


async def test_cancelled_while_blocked_by_drain() -> None:
    barrier = Barrier(2)
    async with anyio.create_task_group() as tg:
        other = tg.create_task(barrier.wait())
        await anyio.wait_all_tasks_blocked()
        assert await barrier.wait() == 1  # trips; `other` has not left yet
        late = tg.create_task(barrier.wait())  # blocks until the drain ends
        late.cancel()
    assert other.return_value == 0
    assert late.status is late.Status.CANCELLED
    assert barrier.n_waiting == 0
    assert not barrier._blocked
    assert sorted(await gather_tasks(2, barrier.wait)) == [0, 1]


@pytest.mark.virtual_time
async def test_timeout_while_filling() -> None:
    barrier = Barrier(2)
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(1.5):
            await barrier.wait()
    assert anyio.current_time() - start == pytest.approx(1.5, abs=1e-6)
    assert barrier.n_waiting == 0
    assert not barrier.broken


async def test_party_failing_before_the_barrier() -> None:
    barrier = Barrier(3)
    passed: list[int] = []

    async def worker(fail: bool) -> None:
        if fail:
            raise RuntimeError("worker failed")
        passed.append(await barrier.wait())

    with pytest.raises(ExceptionGroup) as exc_info:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, False)
            tg.start_soon(worker, False)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(worker, True)
    assert [str(e) for e in exc_info.value.exceptions] == ["worker failed"]
    # The two waiters were cancelled out of the barrier, which is clean again.
    assert passed == []
    assert barrier.n_waiting == 0
    assert not barrier.broken


# --- seed and run portability ----------------------------------------------------------


@pytest.mark.virtual_time
async def test_seed_barrier_with_three_workers() -> None:
    # asyncio-concurrency-patterns.md "Barrier (Python 3.11+)".
    log: list[tuple[str, str, float]] = []
    start = anyio.current_time()

    async def worker(barrier: Barrier, name: str, delay: float) -> None:
        log.append((name, "starting", anyio.current_time() - start))
        await anyio.sleep(delay)
        log.append((name, "waiting", anyio.current_time() - start))
        await barrier.wait()
        log.append((name, "continuing", anyio.current_time() - start))

    barrier = Barrier(3)
    async with anyio.create_task_group() as tg:
        for name, delay in (("A", 1), ("B", 2), ("C", 3)):
            tg.start_soon(worker, barrier, name, delay)

    waiting = {name: t for name, what, t in log if what == "waiting"}
    continuing = {name: t for name, what, t in log if what == "continuing"}
    assert waiting == {"A": 1, "B": 2, "C": 3}
    assert continuing == {"A": 3, "B": 3, "C": 3}  # nobody continues before the last
    assert [what for _, what, _ in log][-3:] == ["continuing"] * 3


MODULE_BARRIER = Barrier(3)


def test_module_level_barrier_across_runs() -> None:
    async def cycle() -> list[int]:
        return sorted(await gather_tasks(3, MODULE_BARRIER.wait))

    async def leave_one_waiting_then_cancel() -> int:
        async with anyio.create_task_group() as tg:
            tg.start_soon(MODULE_BARRIER.wait)
            await anyio.wait_all_tasks_blocked()
            n = MODULE_BARRIER.n_waiting
            tg.cancel_scope.cancel()
        return n

    async def aborted() -> bool:
        with pytest.raises(BrokenBarrierError):
            await MODULE_BARRIER.wait()
        MODULE_BARRIER.reset()
        return MODULE_BARRIER.broken

    assert anyio.run(cycle, backend="asyncio") == [0, 1, 2]
    assert anyio.run(leave_one_waiting_then_cancel, backend="asyncio") == 1
    assert MODULE_BARRIER.n_waiting == 0
    assert anyio.run(cycle, backend="trio") == [0, 1, 2]
    MODULE_BARRIER.abort()  # the broken state carries over to the next run
    assert anyio.run(aborted, backend="trio") is False
    assert anyio.run(cycle, backend="asyncio") == [0, 1, 2]


# --- tasks arriving during a drain: admitted to the next cycle asleep ------------------


async def trip_then_wait_again(barrier: Barrier) -> tuple[int, int]:
    first = await barrier.wait()
    # The tripping task returns before the released ones run: it arrives again
    # while they drain, and is admitted to the next cycle when the drain ends.
    assert "draining" in repr(barrier)
    second = await barrier.wait()
    return first, second


async def test_task_arriving_during_a_drain_joins_the_next_cycle_in_order() -> None:
    barrier = Barrier(3)
    async with anyio.create_task_group() as tg:
        first = await start_one_by_one(tg, 2, barrier.wait)
        tripper = tg.create_task(trip_then_wait_again(barrier))
        await anyio.wait_all_tasks_blocked()
        assert [t.return_value for t in first] == [0, 1]
        assert repr(barrier).endswith("[filling, waiters:1/3]>")
        later = await start_one_by_one(tg, 2, barrier.wait)
    assert tripper.return_value == (2, 0)
    assert [t.return_value for t in later] == [1, 2]
    assert repr(barrier).endswith("[filling, waiters:0/3]>")


async def test_reset_breaks_a_task_admitted_from_a_drain() -> None:
    barrier = Barrier(3)

    async def guarded() -> tuple[int, int] | BrokenBarrierError:
        try:
            return await trip_then_wait_again(barrier)
        except BrokenBarrierError as exc:
            return exc

    async with anyio.create_task_group() as tg:
        await start_one_by_one(tg, 2, barrier.wait)
        tripper = tg.create_task(guarded())
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 1
        barrier.reset()  # it has arrived (a scheduling point has passed): it breaks
        assert repr(barrier).endswith("[resetting, waiters:0/3]>")
    result = tripper.return_value
    assert isinstance(result, BrokenBarrierError)
    assert str(result) == "barrier reset or aborted while waiting"
    assert repr(barrier).endswith("[filling, waiters:0/3]>")
    assert sorted(await gather_tasks(3, barrier.wait)) == [0, 1, 2]


async def test_cancelling_a_task_admitted_from_a_drain() -> None:
    barrier = Barrier(3)
    async with anyio.create_task_group() as tg:
        await start_one_by_one(tg, 2, barrier.wait)
        tripper = tg.create_task(trip_then_wait_again(barrier))
        await anyio.wait_all_tasks_blocked()
        assert barrier.n_waiting == 1
        tripper.cancel()
        await tripper.wait()
        assert tripper.status is tripper.Status.CANCELLED
        assert barrier.n_waiting == 0
        assert barrier._filling == []
    assert sorted(await gather_tasks(3, barrier.wait)) == [0, 1, 2]


async def test_more_arrivals_during_a_drain_than_parties() -> None:
    # Four tasks arrive while one cycle drains (on asyncio, whose scheduler is FIFO,
    # every time): too many for the next cycle, so they all arrive again and fill
    # two more cycles. Every task passes, each cycle numbers its two tasks 0 and 1.
    barrier = Barrier(2)
    go = anyio.Event()
    indices: list[int] = []

    async def late() -> None:
        await go.wait()
        indices.append(await barrier.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(late)
        first = tg.create_task(barrier.wait())
        await anyio.wait_all_tasks_blocked()
        go.set()
        indices.append(await barrier.wait())
    indices.append(first.return_value)
    assert sorted(indices) == [0, 0, 0, 1, 1, 1]
    assert repr(barrier).endswith("[filling, waiters:0/2]>")


async def test_abort_wakes_tasks_blocked_by_a_drain() -> None:
    barrier = Barrier(3)
    results: list[object] = []

    async def pass_then_abort() -> None:
        # The first of the two released tasks to run aborts while the other one is
        # still inside: the tripping task, blocked by the drain, is woken to raise.
        try:
            results.append(await barrier.wait())
        except BrokenBarrierError as exc:
            results.append(str(exc))
        barrier.abort()

    async def guarded() -> object:
        try:
            return await trip_then_wait_again(barrier)
        except BrokenBarrierError as exc:
            return str(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(pass_then_abort)
            await anyio.wait_all_tasks_blocked()
        tripper = tg.create_task(guarded())
    assert tripper.return_value == "barrier aborted"
    # One released task returned its index; the other, checked again when it ran,
    # found the barrier aborted.
    assert len(results) == 2
    assert [r for r in results if isinstance(r, str)] == [
        "barrier reset or aborted while waiting"
    ]
    assert [r for r in results if isinstance(r, int)][0] in (0, 1)
    assert barrier.broken
    assert barrier._blocked == []


async def test_a_worker_thread_of_the_serving_run_is_pointed_back_into_the_run() -> None:
    barrier = Barrier(2)
    barrier.reset()  # this run is served
    with pytest.raises(RuntimeError) as info:
        await anyio.to_thread.run_sync(barrier.abort)
    assert str(info.value) == (
        "Barrier.abort() of a Barrier in use by an event-loop run must be called from "
        "the thread of its event loop (no event loop runs in this thread); from a "
        "worker thread, use anyio.from_thread.run_sync(barrier.abort)"
    )
    assert await anyio.to_thread.run_sync(lambda: barrier.broken) is False
    await anyio.to_thread.run_sync(anyio.from_thread.run_sync, barrier.abort)
    assert barrier.broken

    with pytest.raises(RuntimeError) as info:
        await anyio.to_thread.run_sync(barrier.reset)
    assert str(info.value).startswith(
        "Barrier.reset() of a Barrier in use by an event-loop run must be called from"
    )
    assert str(info.value).endswith("anyio.from_thread.run_sync(barrier.reset)")
    assert barrier.broken  # not reset
