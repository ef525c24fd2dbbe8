"""Tests for anyconc's run-portable Lock, Condition, Semaphore and CapacityLimiter."""

from __future__ import annotations

import inspect
import math
import sys
import threading
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from anyio import WouldBlock, get_current_task

from anyconc import CapacityLimiter, Condition, Lock, Semaphore

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


async def start_one_by_one(tg: Any, funcs: list[Any]) -> list[Any]:
    """Start tasks in order (trio does not run tasks in the order they were started)."""
    handles = []
    for func in funcs:
        handles.append(tg.create_task(func()))
        await anyio.wait_all_tasks_blocked()
    return handles


# --- the motivating case, and run portability of every class --------------------------

ANYIO_LOCK = anyio.Lock()  # created at import time, like a module-level lock
LOCK = Lock()
SEMAPHORE = Semaphore(2, max_value=2)
CONDITION = Condition()
LIMITER = CapacityLimiter(2)


def test_plain_anyio_lock_is_not_run_portable() -> None:
    async def use() -> None:
        async with ANYIO_LOCK:
            pass

    anyio.run(use, backend="asyncio")
    with pytest.raises(RuntimeError, match="no running event loop"):
        anyio.run(use, backend="trio")


def test_lock_across_runs() -> None:
    async def use() -> list[str]:
        order: list[str] = []

        async def worker(name: str) -> None:
            async with LOCK:
                order.append(f"{name} in")
                await anyio.sleep(0)
                order.append(f"{name} out")

        async with anyio.create_task_group() as tg:
            await start_one_by_one(tg, [lambda: worker("a"), lambda: worker("b")])
        return order

    async def leak() -> None:
        await LOCK.acquire()  # never released: the holder ends with the run

    expected = ["a in", "a out", "b in", "b out"]
    assert anyio.run(use, backend="asyncio") == expected
    anyio.run(leak, backend="asyncio")
    assert anyio.run(use, backend="trio") == expected  # a new run starts unlocked
    assert anyio.run(use, backend="asyncio") == expected
    assert not LOCK.locked()


def test_semaphore_across_runs() -> None:
    async def use() -> tuple[int, int]:
        peak = running = 0

        async def worker() -> None:
            nonlocal peak, running
            async with SEMAPHORE:
                running += 1
                peak = max(peak, running)
                await anyio.sleep(0)
                running -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(worker)
        return peak, SEMAPHORE.value

    async def leak() -> int:
        await SEMAPHORE.acquire()
        return SEMAPHORE.value

    assert anyio.run(use, backend="asyncio") == (2, 2)
    assert anyio.run(leak, backend="trio") == 1
    assert anyio.run(use, backend="trio") == (2, 2)  # each run starts at initial_value
    assert anyio.run(use, backend="asyncio") == (2, 2)


def test_condition_across_runs() -> None:
    async def use() -> list[int]:
        data: list[int] = []
        got: list[int] = []

        async def consumer() -> None:
            async with CONDITION:
                await CONDITION.wait_for(lambda: len(data) > 0)
                got.append(data.pop(0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            tg.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()
            async with CONDITION:
                data.extend([1, 2])
                CONDITION.notify_all()
        return sorted(got)

    assert anyio.run(use, backend="asyncio") == [1, 2]
    assert anyio.run(use, backend="trio") == [1, 2]
    assert anyio.run(use, backend="asyncio") == [1, 2]


def test_capacity_limiter_across_runs() -> None:
    async def use() -> tuple[int, float]:
        peak = running = 0

        async def worker() -> None:
            nonlocal peak, running
            async with LIMITER:
                running += 1
                peak = max(peak, running)
                await anyio.sleep(0)
                running -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(worker)
        return peak, LIMITER.borrowed_tokens

    async def leak_and_resize() -> int:
        await LIMITER.acquire()
        LIMITER.total_tokens = 3  # the new size carries over; the borrower does not
        return LIMITER.borrowed_tokens

    assert anyio.run(use, backend="asyncio") == (2, 0)
    assert anyio.run(leak_and_resize, backend="trio") == 1
    assert LIMITER.total_tokens == 3
    assert LIMITER.borrowed_tokens == 0  # outside any run
    assert anyio.run(use, backend="trio") == (3, 0)
    LIMITER.total_tokens = 2
    assert anyio.run(use, backend="asyncio") == (2, 0)


def test_subclasses_of_anyio_primitives() -> None:
    assert isinstance(Lock(), anyio.Lock)
    assert isinstance(Semaphore(1), anyio.Semaphore)
    assert isinstance(Condition(), anyio.Condition)
    assert isinstance(CapacityLimiter(1), anyio.CapacityLimiter)


def test_introspection_outside_runs() -> None:
    lock = Lock(fast_acquire=True)
    assert lock.fast_acquire
    assert not lock.locked()
    assert lock.statistics() == anyio.LockStatistics(False, None, 0)
    assert repr(lock).endswith("[unlocked]>")
    sem = Semaphore(3, max_value=5)
    assert (sem.value, sem.initial_value, sem.max_value) == (3, 3, 5)
    assert sem.statistics() == anyio.SemaphoreStatistics(0)
    assert repr(sem).endswith("[value=3, max_value=5]>")
    cond = Condition(lock)
    assert cond.statistics() == anyio.ConditionStatistics(0, lock.statistics())
    assert not cond.locked()
    limiter = CapacityLimiter(math.inf)
    assert limiter.available_tokens == math.inf
    assert limiter.statistics() == anyio.CapacityLimiterStatistics(0, math.inf, (), 0)
    assert repr(limiter).endswith("[borrowed=0/inf]>")


# --- bad arguments ---------------------------------------------------------------------


def test_bad_arguments() -> None:
    with pytest.raises(
        TypeError,
        match=r"^Lock\(\) argument 'fast_acquire' must be True or False, got str 'yes'$",
    ):
        Lock(fast_acquire="yes")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^Semaphore\(\) argument 'initial_value' must be a non-negative "
        r"integer, got float 1.5$",
    ):
        Semaphore(1.5)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"^Semaphore\(\) argument 'initial_value' must be a non-negative "
        r"integer, got -1$",
    ):
        Semaphore(-1)
    with pytest.raises(
        TypeError,
        match=r"^Semaphore\(\) argument 'max_value' must be a non-negative integer "
        r"or None, got str '2'$",
    ):
        Semaphore(1, max_value="2")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"^Semaphore\(\) argument 'max_value' must be >= initial_value \(3\), "
        r"got 2$",
    ):
        Semaphore(3, max_value=2)
    with pytest.raises(
        TypeError,
        match=r"^Semaphore\(\) argument 'fast_acquire' must be True or False, got "
        r"int 1$",
    ):
        Semaphore(1, fast_acquire=1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^CapacityLimiter\(\) argument 'total_tokens' must be a non-negative "
        r"integer or math.inf, got float 1.5$",
    ):
        CapacityLimiter(1.5)
    with pytest.raises(
        ValueError,
        match=r"^CapacityLimiter\(\) argument 'total_tokens' must be a non-negative "
        r"integer or math.inf, got -1$",
    ):
        CapacityLimiter(-1)
    with pytest.raises(
        TypeError,
        match=r"^Semaphore\(\) argument 'initial_value' must be a non-negative "
        r"integer, got float nan$",
    ):
        Semaphore(math.nan)  # type: ignore[arg-type]
    for value, got in [(math.nan, "float nan"), (True, "bool True")]:
        with pytest.raises(
            TypeError,
            match=r"^CapacityLimiter\(\) argument 'total_tokens' must be a "
            rf"non-negative integer or math.inf, got {got}$",
        ):
            CapacityLimiter(value)
    limiter = CapacityLimiter(1)
    with pytest.raises(
        TypeError,
        match=r"^CapacityLimiter\.total_tokens argument 'total_tokens' must be a "
        r"non-negative integer or math.inf, got str '2'$",
    ):
        limiter.total_tokens = "2"  # type: ignore[assignment]
    assert limiter.total_tokens == 1
    with pytest.raises(
        TypeError,
        match=r"^Condition\(\) argument 'lock' must be an anyconc.Lock or None "
        r"\(AnyIO's locks are bound to one event loop\), got LockAdapter$",
    ):
        Condition(anyio.Lock())  # type: ignore[arg-type]


# --- Lock ------------------------------------------------------------------------------


async def test_seed_lock_counter() -> None:
    # asyncio-concurrency-patterns.md "Sharing State with Lock".
    counter = 0
    lock = Lock()

    async def increment() -> None:  # WRONG: a race even in async code
        nonlocal counter
        temp = counter
        await anyio.sleep(0)  # context switch point
        counter = temp + 1

    async def safe_increment() -> None:  # CORRECT
        nonlocal counter
        async with lock:
            temp = counter
            await anyio.sleep(0)
            counter = temp + 1

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(increment)
    assert counter < 50  # updates were lost

    counter = 0
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(safe_increment)
    assert counter == 50


async def test_lock_fairness_and_statistics() -> None:
    lock = Lock()
    order: list[int] = []

    async def worker(n: int) -> None:
        async with lock:
            order.append(n)

    await lock.acquire()
    stats = lock.statistics()
    assert stats.locked
    assert stats.owner == get_current_task()
    async with anyio.create_task_group() as tg:
        await start_one_by_one(tg, [lambda n=n: worker(n) for n in range(4)])
        assert lock.statistics().tasks_waiting == 4
        assert repr(lock).endswith("[locked]>")
        lock.release()
    assert order == [0, 1, 2, 3]
    assert lock.statistics() == anyio.LockStatistics(False, None, 0)


async def test_lock_nowait_and_misuse() -> None:
    lock = Lock()
    lock.acquire_nowait()
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire_nowait()

    async def other() -> None:
        with pytest.raises(WouldBlock):
            lock.acquire_nowait()
        # AnyIO's message differs per backend (trio's own: "you don't own").
        with pytest.raises(RuntimeError, match="not holding this lock|don't own"):
            lock.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
    lock.release()
    assert not lock.locked()


async def test_lock_cancelled_while_waiting_and_at_checkpoint() -> None:
    lock = Lock()
    await lock.acquire()
    async with anyio.create_task_group() as tg:
        waiter = tg.create_task(lock.acquire())
        await anyio.wait_all_tasks_blocked()
        assert lock.statistics().tasks_waiting == 1
        waiter.cancel()
        await waiter.wait()
    assert waiter.status is waiter.Status.CANCELLED
    assert lock.statistics().tasks_waiting == 0
    lock.release()
    assert not lock.locked()

    for fast in (False, True):
        lock = Lock(fast_acquire=fast)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await lock.acquire()
        assert scope.cancelled_caught
        assert not lock.locked()


@pytest.mark.virtual_time
async def test_lock_timeout() -> None:
    lock = Lock()
    held_at: list[float] = []

    async def holder() -> None:
        async with lock:
            held_at.append(anyio.current_time())
            await anyio.sleep(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.25):
                await lock.acquire()
        assert anyio.current_time() - start == pytest.approx(0.25, abs=1e-6)
        assert lock.statistics().tasks_waiting == 0
        await lock.acquire()  # waits for the holder's release
        assert anyio.current_time() - held_at[0] == pytest.approx(1, abs=1e-6)
        lock.release()
    assert not lock.locked()


async def test_lock_released_when_holder_fails() -> None:
    lock = Lock()

    async def failing() -> None:
        async with lock:
            raise RuntimeError("boom")

    with pytest.raises(ExceptionGroup) as exc_info:
        async with anyio.create_task_group() as tg:
            tg.start_soon(failing)
    assert [str(e) for e in exc_info.value.exceptions] == ["boom"]
    assert not lock.locked()
    async with lock:
        assert lock.locked()


# --- Condition -------------------------------------------------------------------------


async def test_seed_condition_wait_for() -> None:
    # asyncio-concurrency-patterns.md "Condition Variable".
    condition = Condition()
    data: list[str] = []

    async def consumer() -> str:
        async with condition:
            await condition.wait_for(lambda: len(data) > 0)
            return data.pop(0)

    async def producer() -> None:
        async with condition:
            data.append("new item")
            condition.notify()

    async with anyio.create_task_group() as tg:
        result = tg.create_task(consumer())
        await anyio.wait_all_tasks_blocked()
        assert condition.statistics().tasks_waiting == 1
        tg.start_soon(producer)
    assert await result == "new item"
    assert data == []


async def test_condition_notify_n_in_order_and_shared_lock() -> None:
    lock = Lock()
    condition = Condition(lock)
    woken: list[int] = []

    async def waiter(n: int) -> None:
        async with condition:
            await condition.wait()
            woken.append(n)

    async with anyio.create_task_group() as tg:
        await start_one_by_one(tg, [lambda n=n: waiter(n) for n in range(4)])
        async with lock:  # the condition's lock is this lock
            assert condition.locked()
            condition.notify(2)
        await anyio.wait_all_tasks_blocked()
        # The two longest-waiting were notified (they then race for the lock).
        assert sorted(woken) == [0, 1]
        async with condition:
            condition.notify_all()
    assert sorted(woken) == [0, 1, 2, 3]

    with pytest.raises(RuntimeError, match="not holding the underlying lock"):
        condition.notify()
    with pytest.raises(RuntimeError, match="not holding the underlying lock"):
        await condition.wait()


async def test_condition_bad_arguments() -> None:
    async def ready() -> bool:
        return True

    condition = Condition()
    async with condition:
        coro = ready()
        with pytest.raises(
            TypeError,
            match=r"^Condition\.wait_for\(\) argument 'predicate' must be a function, "
            r"got the coroutine object .*ready\(\); pass the function itself, not the "
            r"result of calling it: condition\.wait_for\(ready\)$",
        ):
            await condition.wait_for(coro)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
        # An async predicate's coroutine would be true at once, and never awaited.
        with pytest.raises(
            TypeError,
            match=r"^Condition\.wait_for\(\) argument 'predicate' must be a "
            r"synchronous function, got the async function '.*ready'; the predicate "
            r"is called with the lock held: use a plain 'def'$",
        ):
            await condition.wait_for(ready)  # type: ignore[unused-coroutine]
        cases: list[tuple[Any, type[Exception], str]] = [
            (-1, ValueError, "-1"),
            (True, TypeError, "bool True"),
            ("1", TypeError, "str '1'"),
            (1.0, TypeError, "float 1.0"),
        ]
        for n, error, got in cases:
            with pytest.raises(
                error,
                match=r"^Condition\.notify\(\) argument 'n' must be a non-negative "
                rf"integer, got {got}$",
            ):
                condition.notify(n)
        condition.notify(0)
        assert condition.locked()


async def test_condition_wait_cancelled_reacquires_lock() -> None:
    condition = Condition()
    held_after_cancel: list[bool] = []

    async def waiter() -> None:
        async with condition:
            try:
                await condition.wait()
            finally:
                held_after_cancel.append(
                    condition.statistics().lock_statistics.owner == get_current_task()
                )

    async with anyio.create_task_group() as tg:
        task = tg.create_task(waiter())
        await anyio.wait_all_tasks_blocked()
        task.cancel()
    assert task.status is task.Status.CANCELLED
    assert held_after_cancel == [True]
    assert not condition.locked()
    assert condition.statistics().tasks_waiting == 0


@pytest.mark.virtual_time
async def test_condition_wait_timeout() -> None:
    condition = Condition()
    start = anyio.current_time()
    async with condition:
        with anyio.move_on_after(2) as scope:
            await condition.wait()
        assert scope.cancelled_caught
        assert condition.locked()
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-6)
    assert not condition.locked()


# --- Semaphore -------------------------------------------------------------------------


async def test_semaphore_limits_and_is_fair() -> None:
    sem = Semaphore(1)
    order: list[int] = []

    async def worker(n: int) -> None:
        async with sem as s:
            assert s is sem
            order.append(n)

    await sem.acquire()
    assert sem.value == 0
    async with anyio.create_task_group() as tg:
        await start_one_by_one(tg, [lambda n=n: worker(n) for n in range(3)])
        assert sem.statistics().tasks_waiting == 3
        with pytest.raises(WouldBlock):
            sem.acquire_nowait()
        sem.release()
    assert order == [0, 1, 2]
    assert sem.value == 1


async def test_semaphore_max_value_and_signal_release() -> None:
    sem = Semaphore(0, max_value=1)
    # Released before anyone acquired it in this run (a signal).
    sem.release()
    assert sem.value == 1
    with pytest.raises(ValueError, match="semaphore released too many times"):
        sem.release()
    sem.acquire_nowait()
    assert sem.value == 0


async def test_semaphore_cancelled_while_waiting_and_at_checkpoint() -> None:
    sem = Semaphore(1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await sem.acquire()
    assert scope.cancelled_caught
    assert sem.value == 1

    await sem.acquire()
    async with anyio.create_task_group() as tg:
        waiter = tg.create_task(sem.acquire())
        await anyio.wait_all_tasks_blocked()
        waiter.cancel()
    assert waiter.status is waiter.Status.CANCELLED
    assert sem.statistics().tasks_waiting == 0
    sem.release()
    assert sem.value == 1


# --- CapacityLimiter -------------------------------------------------------------------


async def test_capacity_limiter_on_behalf_of_and_statistics() -> None:
    limiter = CapacityLimiter(2)
    a, b, c = object(), object(), object()
    limiter.acquire_on_behalf_of_nowait(a)
    await limiter.acquire_on_behalf_of(b)
    with pytest.raises(WouldBlock):
        limiter.acquire_on_behalf_of_nowait(c)
    with pytest.raises(RuntimeError, match="already holding"):
        limiter.acquire_on_behalf_of_nowait(a)
    stats = limiter.statistics()
    assert (stats.borrowed_tokens, stats.total_tokens, stats.tasks_waiting) == (2, 2, 0)
    assert set(stats.borrowers) == {a, b}
    assert limiter.available_tokens == 0

    async with anyio.create_task_group() as tg:
        waiting = tg.create_task(limiter.acquire_on_behalf_of(c))
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 1
        limiter.release_on_behalf_of(a)
    assert waiting.status is waiting.Status.FINISHED
    assert set(limiter.statistics().borrowers) == {b, c}
    with pytest.raises(RuntimeError, match="isn't holding"):
        limiter.release_on_behalf_of(a)
    limiter.release_on_behalf_of(b)
    limiter.release_on_behalf_of(c)
    assert limiter.borrowed_tokens == 0


async def test_capacity_limiter_raising_total_tokens_wakes_waiters() -> None:
    limiter = CapacityLimiter(0)
    async with anyio.create_task_group() as tg:
        waiters = [tg.create_task(limiter.acquire_on_behalf_of(i)) for i in range(3)]
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 3
        limiter.total_tokens = 2
        await anyio.wait_all_tasks_blocked()
        assert sum(w.status is w.Status.FINISHED for w in waiters) == 2
        limiter.total_tokens = math.inf
    assert limiter.borrowed_tokens == 3
    assert limiter.total_tokens == math.inf


async def test_capacity_limiter_cancelled_while_waiting() -> None:
    limiter = CapacityLimiter(1)
    async with limiter:
        async with anyio.create_task_group() as tg:
            waiter = tg.create_task(limiter.acquire())
            await anyio.wait_all_tasks_blocked()
            waiter.cancel()
        assert waiter.status is waiter.Status.CANCELLED
        assert limiter.statistics().tasks_waiting == 0
        assert limiter.borrowed_tokens == 1
    assert limiter.borrowed_tokens == 0


async def test_capacity_limiter_as_thread_limiter() -> None:
    limiter = CapacityLimiter(2)
    lock = threading.Lock()
    running = peak = entered = 0
    # Safety nets only (nothing here waits for them to expire): 30 s, not 5 s, as a
    # loaded machine may take seconds to start a thread.
    first_two_in = threading.Barrier(3, timeout=30)
    release = threading.Event()

    def work() -> None:
        nonlocal running, peak, entered
        with lock:
            running += 1
            peak = max(peak, running)
            entered += 1
            n = entered
        if n <= 2:
            first_two_in.wait()
        assert release.wait(30)
        with lock:
            running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(lambda: anyio.to_thread.run_sync(work, limiter=limiter))
        try:
            await anyio.to_thread.run_sync(first_two_in.wait)
            await anyio.wait_all_tasks_blocked()
            assert limiter.borrowed_tokens == 2
            assert limiter.statistics().tasks_waiting == 2
        finally:
            release.set()
    assert (peak, entered) == (2, 4)
    assert limiter.borrowed_tokens == 0


# --- outside any run: after it ended, and from a worker thread --------------------------

OUTSIDE_OPERATIONS: list[tuple[str, Any]] = [
    ("Lock.acquire_nowait()", lambda p: p["lock"].acquire_nowait()),
    ("Lock.release()", lambda p: p["lock"].release()),
    ("Condition.acquire_nowait()", lambda p: p["condition"].acquire_nowait()),
    ("Condition.release()", lambda p: p["condition"].release()),
    ("Condition.notify()", lambda p: p["condition"].notify()),
    ("Condition.notify_all()", lambda p: p["condition"].notify_all()),
    ("Semaphore.acquire_nowait()", lambda p: p["semaphore"].acquire_nowait()),
    ("Semaphore.release()", lambda p: p["semaphore"].release()),
    ("CapacityLimiter.acquire_nowait()", lambda p: p["limiter"].acquire_nowait()),
    (
        "CapacityLimiter.acquire_on_behalf_of_nowait()",
        lambda p: p["limiter"].acquire_on_behalf_of_nowait("job"),
    ),
    ("CapacityLimiter.release()", lambda p: p["limiter"].release()),
    (
        "CapacityLimiter.release_on_behalf_of()",
        lambda p: p["limiter"].release_on_behalf_of("job"),
    ),
]


def _primitives() -> dict[str, Any]:
    return {
        "lock": Lock(),
        "condition": Condition(),
        "semaphore": Semaphore(2),
        "limiter": CapacityLimiter(2),
    }


async def _use(primitives: dict[str, Any]) -> None:
    for name in ("lock", "condition", "semaphore", "limiter"):
        async with primitives[name]:
            pass
    async with primitives["condition"]:
        primitives["condition"].notify_all()


def _refusals(primitives: dict[str, Any]) -> list[tuple[str, str]]:
    seen = []
    for where, operation in OUTSIDE_OPERATIONS:
        try:
            operation(primitives)
        except anyio.NoEventLoopError as exc:
            seen.append((where, str(exc)))
    return seen


def _expected_refusals() -> list[tuple[str, str]]:
    return [
        (
            where,
            f"{where} must be called from a task of an event-loop run (no event loop "
            f"runs in this thread); from a worker thread, use "
            f"anyio.from_thread.run_sync()",
        )
        for where, _ in OUTSIDE_OPERATIONS
    ]


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_operations_after_the_run_ended_name_the_call(backend: str) -> None:
    from anyconc.pytest_plugin import backend_spec

    primitives = _primitives()
    name, options = backend_spec(backend)
    anyio.run(_use, primitives, backend=name, backend_options=options)

    # The same error on every backend (it was the backend's own, or AnyIO's generic).
    assert _refusals(primitives) == _expected_refusals()
    # Read-only members answer for an unused primitive.
    assert (primitives["lock"].locked(), primitives["semaphore"].value) == (False, 2)
    assert primitives["limiter"].available_tokens == 2


async def test_operations_from_a_worker_thread_name_the_call() -> None:
    primitives = _primitives()
    await _use(primitives)
    assert await anyio.to_thread.run_sync(_refusals, primitives) == _expected_refusals()
    # Nothing changed in the run; the way the message gives works.
    await anyio.to_thread.run_sync(
        anyio.from_thread.run_sync, primitives["semaphore"].acquire_nowait
    )
    assert primitives["semaphore"].value == 1
