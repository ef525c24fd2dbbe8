"""
Run scoping (issue 14): objects made at import time, used by event-loop runs at the same
time in several threads, by runs one after another on alternating backends, and by
hundreds of runs without keeping any of them alive.

These tests start their own runs (``anyio.run`` in threads), so they are plain ``def``
tests: the backends are named explicitly, asyncio, asyncio + uvloop and trio.
"""

from __future__ import annotations

import collections
import contextvars
import gc
import inspect
import itertools
import threading
import tracemalloc
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
import trio
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import (
    AsyncEvent,
    AsyncLazy,
    BackgroundTasks,
    Barrier,
    CapacityLimiter,
    CircuitBreaker,
    CircuitOpenError,
    Condition,
    Debouncer,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    RateLimiter,
    Semaphore,
    ThreadPool,
)
from anyconc._lowlevel import PerRun, current_run

pytest.importorskip("uvloop")

# Four runs at the same time: two on asyncio (one of them uvloop), two on trio.
FOUR = ("asyncio", "uvloop", "trio", "trio")

INDEX: contextvars.ContextVar[int] = contextvars.ContextVar("INDEX")


def run_one(main: Callable[..., Awaitable[Any]], backend: str, *args: Any) -> Any:
    if backend == "uvloop":
        return anyio.run(
            main, *args, backend="asyncio", backend_options={"use_uvloop": True}
        )
    return anyio.run(main, *args, backend=backend)


def run_in_threads(
    main: Callable[[int, threading.Barrier], Awaitable[Any]],
    backends: Sequence[str] = FOUR,
) -> list[Any]:
    """Run ``main(index, rendezvous)`` in one thread per backend, all at the same time."""
    rendezvous = threading.Barrier(len(backends), timeout=20)
    with ThreadPoolExecutor(len(backends)) as pool:
        futures = [
            pool.submit(run_one, main, backend, index, rendezvous)
            for index, backend in enumerate(backends)
        ]
        return [future.result(timeout=40) for future in futures]


async def meet(rendezvous: threading.Barrier) -> None:
    """Wait until every run has reached this point (the event loop keeps running)."""
    await anyio.to_thread.run_sync(rendezvous.wait)


# --- the mechanism -------------------------------------------------------------------


def test_per_run_values_in_concurrent_runs_are_separate() -> None:
    per_run: PerRun[list[int]] = PerRun(list)

    async def main(index: int, rendezvous: threading.Barrier) -> list[int]:
        per_run.get().append(index)
        await meet(rendezvous)
        for _ in range(200):  # the four threads look it up in turn
            per_run.get().append(index)
            await checkpoint()
        await meet(rendezvous)
        return per_run.get()

    results = run_in_threads(main)
    assert results == [[index] * 201 for index in range(4)]


def test_per_run_value_goes_with_its_run() -> None:
    class Value:
        pass

    per_run: PerRun[Value] = PerRun(Value)
    refs: list[weakref.ref[Value]] = []

    async def main() -> None:
        refs.append(weakref.ref(per_run.get()))

    for backend in ("asyncio", "trio", "uvloop"):
        run_one(main, backend)
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]
    assert per_run.peek() is None


def test_peek_sees_only_this_threads_latest_value() -> None:
    per_run: PerRun[list[int]] = PerRun(list)

    async def main(index: int, rendezvous: threading.Barrier) -> bool:
        mine = per_run.get()
        await meet(rendezvous)  # every thread has looked it up: the slot is someone's
        return per_run.peek() is mine or per_run.peek() is None

    assert run_in_threads(main) == [True] * 4


# --- every run-portable class, four runs at the same time ------------------------------

LOCK = Lock()
SEMAPHORE = Semaphore(2)
CONDITION = Condition()
LIMITER = CapacityLimiter(3)
POOL = ThreadPool(2, name="runs")
EVENT = AsyncEvent()
LAZY_CALLS: list[int] = []
LAZY_TTL_CALLS: list[int] = []
_calls_lock = threading.Lock()


async def _compute() -> int:
    with _calls_lock:
        LAZY_CALLS.append(INDEX.get())
    await checkpoint()
    return INDEX.get()


async def _compute_ttl() -> int:
    with _calls_lock:
        LAZY_TTL_CALLS.append(INDEX.get())
    await checkpoint()
    return INDEX.get()


LAZY = AsyncLazy(_compute)
LAZY_TTL = AsyncLazy(_compute_ttl, ttl=600)
BREAKER = CircuitBreaker(failure_threshold=8, recovery_timeout=600)
RATE = RateLimiter(3, per=600)
TICKS = anyconc.every(0.002)
DEBOUNCER = Debouncer(0.001)
SUPERVISOR = BackgroundTasks(name="shared")


async def _max_concurrency(
    limit: Callable[[], Any], tasks: int, rounds: int = 5
) -> int:
    inside = peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        for _ in range(rounds):
            async with limit():
                inside += 1
                peak = max(peak, inside)
                await checkpoint()
                await checkpoint()
                inside -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return peak


async def _fail() -> None:
    raise OSError("down")


async def _ok() -> str:
    return "ok"


async def use_every_class(index: int, rendezvous: threading.Barrier) -> dict[str, Any]:
    INDEX.set(index)
    seen: dict[str, Any] = {}
    await meet(rendezvous)

    # Locks family: exclusion (or the limit) holds within each run.
    seen["lock"] = await _max_concurrency(lambda: LOCK, 5)
    seen["semaphore"] = await _max_concurrency(lambda: SEMAPHORE, 5)
    seen["limiter"] = await _max_concurrency(lambda: LIMITER, 6)
    async with LOCK:  # every run holds "the" lock at once: its own
        await meet(rendezvous)

    items: list[int] = []

    async def consume() -> int:
        async with CONDITION:
            await CONDITION.wait_for(lambda: bool(items))
            return items.pop()

    consumed: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _append(consumed, consume()))
        await anyio.wait_all_tasks_blocked()
        async with CONDITION:
            items.append(index)
            CONDITION.notify()
    seen["condition"] = consumed

    seen["pool"] = await POOL.run(lambda: index * 10)

    # AsyncEvent: the flag is shared; run 0 sets it and every run's waiters wake.
    released: list[bool] = []

    async def waiter() -> None:
        released.append(await EVENT.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        await meet(rendezvous)  # every run has 3 waiters
        if index == 0:
            EVENT.set()
    seen["event"] = released
    await meet(rendezvous)
    if index == 0:
        EVENT.clear()
    await meet(rendezvous)

    # AsyncLazy: single flight per run; without ttl the value is then shared.
    async with anyio.create_task_group() as tg:
        lazy_results: list[int] = []
        ttl_results: list[int] = []
        for _ in range(5):
            tg.start_soon(lambda: _append(lazy_results, LAZY.get()))
            tg.start_soon(lambda: _append(ttl_results, LAZY_TTL.get()))
    seen["lazy-one-answer-per-run"] = len(set(lazy_results)) == 1
    seen["lazy-ttl"] = ttl_results
    await meet(rendezvous)
    seen["lazy-shared"] = await LAZY.get()

    # CircuitBreaker: the health is shared; 4 runs x 2 failures open it (threshold 8).
    for _ in range(2):
        with pytest.raises(OSError):
            await BREAKER.call(_fail)
    await meet(rendezvous)
    seen["breaker"] = BREAKER.state
    with pytest.raises(CircuitOpenError):
        await BREAKER.call(_ok)

    # RateLimiter: per run (shared, 9 of these 12 entries would wait ten minutes).
    with anyio.fail_after(10):
        for _ in range(3):
            await RATE.acquire()

    # every(): the schedule is per run, on the run's own clock.
    ticks = []
    async for tick in TICKS:
        ticks.append(tick)
        if len(ticks) == 3:
            break
    seen["ticks"] = on_this_runs_schedule(ticks, 0.002)

    # Debouncer: per run; a burst ends in one call of the last arguments.
    debounced: list[int] = []
    done = anyio.Event()

    def record(n: int) -> None:
        debounced.append(n)
        done.set()

    for n in range(5):
        DEBOUNCER(record, index * 100 + n)
    await done.wait()
    seen["debounced"] = debounced

    # Background tasks: the default supervisor is per run.
    handles = [anyconc.create_background_task(_identity(index)) for _ in range(3)]
    seen["background"] = [await handle for handle in handles]

    # A shared BackgroundTasks serves one run at a time: the runs take turns.
    for turn in range(4):
        if turn == index:
            async with SUPERVISOR as supervisor:
                seen["supervisor"] = await supervisor.create_task(_identity(index))
        await meet(rendezvous)

    return seen


def on_this_runs_schedule(ticks: list[float], interval: float) -> bool:
    """The first tick is on this run's clock (trio's has a random offset of hours), the
    next ones whole intervals after it (a tick can be skipped on a loaded machine)."""
    steps = [(b - a) / interval for a, b in itertools.pairwise(ticks)]
    return 0 <= anyio.current_time() - ticks[0] < 10 and all(
        step > 0.5 and abs(step - round(step)) < 1e-6 for step in steps
    )


async def _append(out: list[Any], awaitable: Awaitable[Any]) -> None:
    out.append(await awaitable)


async def _identity(value: int) -> int:
    await checkpoint()
    return value


def test_every_class_in_four_concurrent_runs() -> None:
    results = run_in_threads(use_every_class)

    for index, seen in enumerate(results):
        assert seen["lock"] == 1
        assert seen["semaphore"] == 2
        assert seen["limiter"] == 3
        assert seen["condition"] == [index]
        assert seen["pool"] == index * 10
        assert seen["event"] == [True, True, True]
        assert seen["lazy-one-answer-per-run"] is True
        assert seen["lazy-ttl"] == [index] * 5  # each run computed its own
        assert seen["breaker"] == "open"
        assert seen["ticks"] is True
        assert seen["debounced"] == [index * 100 + 4]
        assert seen["background"] == [index] * 3
        assert seen["supervisor"] == index

    # Single flight per run: at most one computation per run, and one cached value
    # that every run sees afterwards.
    assert sorted(LAZY_TTL_CALLS) == [0, 1, 2, 3]
    assert len(LAZY_CALLS) == len(set(LAZY_CALLS)) >= 1
    assert len({seen["lazy-shared"] for seen in results}) == 1
    assert not EVENT.is_set()


# --- classes that serve one run at a time ----------------------------------------------


@pytest.mark.parametrize(
    ("make", "use", "call"),
    [
        (lambda: Queue[int](), lambda queue: queue.put_nowait(1), "put_nowait"),
        (lambda: Barrier(2), lambda barrier: barrier.reset(), "reset"),
    ],
    ids=["Queue", "Barrier"],
)
def test_one_run_at_a_time(
    make: Callable[[], Any], use: Callable[[Any], None], call: str
) -> None:
    shared = make()
    kind = type(shared).__name__

    async def main(index: int, rendezvous: threading.Barrier) -> str:
        if index == 0:
            use(shared)
        await meet(rendezvous)  # run 0 is being served, and is still running
        outcome = "served"
        if index == 1:
            try:
                use(shared)
            except RuntimeError as exc:
                outcome = str(exc)
        await meet(rendezvous)
        if index == 0:
            use(shared)  # undisturbed
        return outcome

    outcomes = run_in_threads(main, ("asyncio", "trio"))
    assert outcomes == [
        "served",
        f"{kind}.{call}(): this {kind} is in use by an event-loop run in another "
        f"thread; a {kind} "
        f"serves one run at a time (one after another is fine): give each thread's "
        f"run its own {kind}",
    ]

    async def later() -> str:
        use(shared)  # run 0 has ended: the next run, in any thread, is served
        return "served"

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(run_one, later, "uvloop").result(timeout=20) == "served"
    assert run_one(later, "trio") == "served"


def test_queue_of_a_run_in_another_thread_is_not_disturbed() -> None:
    queue: Queue[int] = Queue()

    async def main(index: int, rendezvous: threading.Barrier) -> Any:
        if index == 0:
            async with anyio.create_task_group() as tg:
                got: list[int] = []
                tg.start_soon(lambda: _append(got, queue.get()))
                await anyio.wait_all_tasks_blocked()
                await meet(rendezvous)  # a getter of run 0 is waiting
                await meet(rendezvous)
                queue.put_nowait(7)
            return got
        await meet(rendezvous)
        with pytest.raises(RuntimeError, match="in use by an event-loop run"):
            await queue.put(99)
        await meet(rendezvous)
        return None

    assert run_in_threads(main, ("trio", "asyncio")) == [[7], None]
    assert queue.empty()


REFUSED = "in use by an event-loop run in another thread"


async def _refused(operation: Callable[[], Any]) -> str:
    """Call ``operation`` (awaiting what it returns); the RuntimeError's first part."""
    try:
        with anyio.fail_after(10):
            result = operation()
            if isinstance(result, Awaitable):
                await result
    except RuntimeError as exc:
        return str(exc).split("; ")[0].split(" is ", 1)[1]
    return "not refused"


@pytest.mark.parametrize("kind", [Queue, LifoQueue, PriorityQueue])
@pytest.mark.parametrize("backends", [("asyncio", "trio"), ("trio", "uvloop")])
def test_every_queue_operation_refuses_a_second_run_and_changes_nothing(
    kind: type[Queue[int]], backends: tuple[str, str]
) -> None:
    # Each of the queues' shapes sends the async operations down another path of
    # issue 19's operation order: room and items (the checkpointed fast path), empty
    # (get() blocks), full (put() blocks). No operation may change anything first.
    some: Queue[int] = kind(3)
    empty: Queue[int] = kind(3)
    full: Queue[int] = kind(2)

    async def main(index: int, rendezvous: threading.Barrier) -> Any:
        if index == 0:
            for queue, items in ((some, [1, 2]), (empty, [0]), (full, [3, 4])):
                for item in items:
                    await queue.put(item)
            assert await empty.get() == 0  # run 0 is served by the empty one too
            empty.task_done()
            await meet(rendezvous)  # the queues serve run 0, which is still running
            await meet(rendezvous)
            taken = [some.get_nowait(), some.get_nowait(), full.get_nowait()]
            taken.append(full.get_nowait())
            for queue in (some, some, full, full):
                queue.task_done()
            with anyio.fail_after(10):
                await some.join()  # nothing was counted in or out by run 1
                await full.join()
            return taken, some.qsize(), empty.qsize(), full.qsize()

        await meet(rendezvous)
        outcomes = {}
        for name, queue in (("some", some), ("empty", empty), ("full", full)):
            for operation, call in (
                ("put_nowait", lambda q=queue: q.put_nowait(9)),
                ("get_nowait", lambda q=queue: q.get_nowait()),
                ("put", lambda q=queue: q.put(9)),
                ("get", lambda q=queue: q.get()),
                ("task_done", lambda q=queue: q.task_done()),
                ("join", lambda q=queue: q.join()),
                ("shutdown", lambda q=queue: q.shutdown()),
                ("shutdown-immediate", lambda q=queue: q.shutdown(immediate=True)),
            ):
                outcomes[name, operation] = await _refused(call)
        await meet(rendezvous)
        return outcomes

    served, refused = run_in_threads(main, backends)
    assert set(refused.values()) == {REFUSED}
    assert len(refused) == 24
    assert served == ([1, 2, 3, 4] if kind is not LifoQueue else [2, 1, 4, 3], 0, 0, 0)
    assert not (some.is_shutdown() or empty.is_shutdown() or full.is_shutdown())


@pytest.mark.parametrize("backends", [("asyncio", "trio"), ("trio", "uvloop")])
def test_every_barrier_operation_refuses_a_second_run_and_changes_nothing(
    backends: tuple[str, str],
) -> None:
    barrier = Barrier(2)

    async def enter() -> int:
        async with barrier as index:
            return index

    async def main(index: int, rendezvous: threading.Barrier) -> Any:
        if index == 0:
            indices: list[int] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: _append(indices, barrier.wait()))
                await anyio.wait_all_tasks_blocked()
                await meet(rendezvous)  # one task of run 0 waits in the barrier
                await meet(rendezvous)
                waiting = barrier.n_waiting
                indices.append(await barrier.wait())  # trips it: nothing was undone
            return waiting, sorted(indices), barrier.broken

        await meet(rendezvous)
        outcomes = [
            await _refused(barrier.wait),
            await _refused(enter),
            await _refused(barrier.reset),
            await _refused(barrier.abort),
        ]
        await meet(rendezvous)
        return outcomes

    served, refused = run_in_threads(main, backends)
    assert refused == [REFUSED] * 4
    assert served == (1, [0, 1], False)


def test_supervisor_active_in_another_run() -> None:
    supervisor = BackgroundTasks(name="one")

    async def main(index: int, rendezvous: threading.Barrier) -> str:
        if index == 0:
            async with supervisor:
                await meet(rendezvous)
                await meet(rendezvous)
            return "entered"
        await meet(rendezvous)
        messages = []
        try:
            async with supervisor:
                pass
        except RuntimeError as exc:
            messages.append(str(exc))
        coro = _identity(1)
        try:
            supervisor.create_task(coro)
        except RuntimeError as exc:
            messages.append(str(exc))
        await meet(rendezvous)
        return " | ".join(messages)

    assert run_in_threads(main, ("asyncio", "trio")) == [
        "entered",
        "this background tasks supervisor is already active in another event-loop "
        "run (in another thread) | the background tasks supervisor 'one' is active "
        "in another event-loop run (in another thread); a supervisor serves one run "
        "at a time: give the task to a supervisor of this run, or use "
        "create_background_task()",
    ]


def test_event_set_from_a_plain_thread_wakes_every_run() -> None:
    event = AsyncEvent()
    ready = threading.Barrier(3, timeout=20)

    async def main(index: int, rendezvous: threading.Barrier) -> list[bool]:
        async with anyio.create_task_group() as tg:
            results: list[bool] = []
            for _ in range(2):
                tg.start_soon(lambda: _append(results, event.wait()))
            await anyio.wait_all_tasks_blocked()
            await anyio.to_thread.run_sync(ready.wait)
        return results

    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(run_one, main, backend, index, threading.Barrier(1))
            for index, backend in enumerate(("uvloop", "trio"))
        ]
        ready.wait()
        assert repr(event) == "<AsyncEvent unset waiters=4>"  # both runs' waiters
        event.set()  # no event loop in this thread
        assert [future.result(timeout=20) for future in futures] == [[True] * 2] * 2
    assert repr(event) == "<AsyncEvent set waiters=0>"


# --- one run after another, alternating backends --------------------------------------

SEQ_LOCK = Lock()
SEQ_SEMAPHORE = Semaphore(1)
SEQ_CONDITION = Condition()
SEQ_LIMITER = CapacityLimiter(1)
SEQ_POOL = ThreadPool(1)
SEQ_EVENT = AsyncEvent()
SEQ_LAZY_CALLS: list[str | None] = []


async def _seq_compute() -> str:
    SEQ_LAZY_CALLS.append(anyio.get_current_task().name)
    return "computed"


SEQ_LAZY = AsyncLazy(_seq_compute)
SEQ_BREAKER = CircuitBreaker(failure_threshold=6, recovery_timeout=600)
SEQ_RATE = RateLimiter(2, per=600)
SEQ_TICKS = anyconc.every(0.002)
SEQ_DEBOUNCER = Debouncer(0)
SEQ_SUPERVISOR = BackgroundTasks()
SEQ_QUEUE: Queue[int] = Queue()
SEQ_BARRIER = Barrier(2)


async def use_in_turn(number: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    seen["lock"] = await _max_concurrency(lambda: SEQ_LOCK, 3)
    seen["semaphore"] = await _max_concurrency(lambda: SEQ_SEMAPHORE, 3)
    seen["limiter"] = await _max_concurrency(lambda: SEQ_LIMITER, 3)
    async with SEQ_CONDITION:
        SEQ_CONDITION.notify_all()
    seen["pool"] = await SEQ_POOL.run(lambda: number)
    seen["event-carried"] = SEQ_EVENT.is_set()  # set by the run before
    async with anyio.create_task_group() as tg:
        tg.start_soon(SEQ_EVENT.wait)
        await anyio.wait_all_tasks_blocked()
        SEQ_EVENT.set()
    seen["lazy"] = await SEQ_LAZY.get()
    with pytest.raises(OSError):
        await SEQ_BREAKER.call(_fail)
    seen["breaker"] = SEQ_BREAKER.state  # the failures add up across runs
    with anyio.fail_after(10):
        await SEQ_RATE.acquire()
        await SEQ_RATE.acquire()  # each run has its own window
    ticks = []
    async for tick in SEQ_TICKS:
        ticks.append(tick)
        if len(ticks) == 2:
            break
    seen["tick"] = on_this_runs_schedule(ticks, 0.002)
    done = anyio.Event()
    SEQ_DEBOUNCER(done.set)
    await done.wait()
    async with SEQ_SUPERVISOR as supervisor:
        seen["supervisor"] = await supervisor.create_task(_identity(number))
    seen["background"] = await anyconc.create_background_task(_identity(number))
    # The queue's items carry over: take the previous run's, leave one for the next.
    seen["queue"] = None if SEQ_QUEUE.empty() else SEQ_QUEUE.get_nowait()
    await SEQ_QUEUE.put(number)
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(SEQ_BARRIER.wait)
    return seen


def test_runs_one_after_another_on_alternating_backends() -> None:
    SEQ_EVENT.set()
    backends = ["asyncio", "trio", "uvloop", "trio", "asyncio", "uvloop"]
    results = []
    for number, backend in enumerate(backends):
        SEQ_EVENT.clear()
        results.append(run_one(use_in_turn, backend, number))
        assert SEQ_EVENT.is_set()

    for number, seen in enumerate(results):
        assert seen == {
            "lock": 1,
            "semaphore": 1,
            "limiter": 1,
            "pool": number,
            "event-carried": False,
            "lazy": "computed",
            "breaker": "open" if number == 5 else "closed",
            "tick": True,
            "supervisor": number,
            "background": number,
            "queue": None if number == 0 else number - 1,
        }
    assert len(SEQ_LAZY_CALLS) == 1  # the value is kept across runs


# --- memory: no run is kept alive ------------------------------------------------------

MEM_LOCK = Lock()
MEM_SEMAPHORE = Semaphore(2)
MEM_CONDITION = Condition()
MEM_LIMITER = CapacityLimiter(2)
MEM_POOL = ThreadPool(1)
MEM_EVENT = AsyncEvent()


async def _mem_compute() -> object:
    await checkpoint()
    return object()


MEM_LAZY = AsyncLazy(_mem_compute)
MEM_LAZY_TTL = AsyncLazy(_mem_compute, ttl=600)
MEM_BREAKER = CircuitBreaker(failure_threshold=1000, recovery_timeout=1)
MEM_RATE = RateLimiter(1000)
MEM_TICKS = anyconc.every(0.001)
MEM_DEBOUNCER = Debouncer(0)
MEM_SUPERVISOR = BackgroundTasks()
MEM_QUEUE: Queue[int] = Queue()
MEM_BARRIER = Barrier(2)


async def _forever() -> None:
    await anyio.sleep_forever()


async def use_all_and_leave_some_running(refs: list[weakref.ref[object]]) -> None:
    refs.append(weakref.ref(current_run()))
    runner = trio_runner()
    if runner is not None:
        refs.append(weakref.ref(runner))
    async with MEM_LOCK, MEM_SEMAPHORE, MEM_LIMITER:
        pass
    async with MEM_CONDITION:
        MEM_CONDITION.notify()
    await MEM_POOL.run(int)
    async with anyio.create_task_group() as tg:
        tg.start_soon(MEM_EVENT.wait)
        await anyio.wait_all_tasks_blocked()
        MEM_EVENT.set()
    MEM_EVENT.clear()
    MEM_EVENT_WAITERS.append(anyconc.create_background_task(MEM_EVENT.wait()))
    await MEM_LAZY.get()
    await MEM_LAZY_TTL.get()
    await MEM_BREAKER.call(_ok)
    async with MEM_RATE:
        pass
    async for _ in MEM_TICKS:
        break
    done = anyio.Event()
    MEM_DEBOUNCER(done.set)
    await done.wait()
    MEM_DEBOUNCER(_ok)  # left pending at the end of the run
    async with MEM_SUPERVISOR as supervisor:
        await supervisor.create_task(_identity(1))
    await anyconc.create_background_task(_identity(1))
    anyconc.create_background_task(_forever())  # cancelled when the run ends
    MEM_QUEUE.put_nowait(1)
    await MEM_QUEUE.get()
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(MEM_BARRIER.wait)
    MEM_EVENT_WAITERS.clear()


MEM_EVENT_WAITERS: list[Any] = []


def trio_runner() -> object | None:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    from trio._core._run import GLOBAL_RUN_CONTEXT

    return GLOBAL_RUN_CONTEXT.runner


def object_census() -> collections.Counter[str]:
    """How many objects the garbage collector tracks, by type name, after a collection."""
    gc.collect()
    return collections.Counter(type(obj).__name__ for obj in gc.get_objects())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_300_runs_keep_no_run_alive(backend: str) -> None:
    # What a run leaves behind is counted in objects, not bytes: raw traced memory moves
    # by tens of KiB with the interpreter's own caches and free lists, with worker
    # threads that end a little later under load, and with the Python version, which
    # made a byte threshold near the measured noise flaky. A run kept alive keeps its
    # loop (or trio runner) and well over a hundred objects (a kept task: ~120 on
    # asyncio, ~190 on trio), so 200 more runs that keep anything at all of each run
    # exceed the budget of 200 objects many times over, while the measured growth
    # without a leak is a few dozen objects, whatever the load.
    refs: list[weakref.ref[object]] = []
    run_one(use_all_and_leave_some_running, backend, refs)  # warm-up: caches, imports
    gc.collect()
    tracemalloc.start()
    try:
        census = []
        traced = []
        for number in range(1, 301):
            run_one(use_all_and_leave_some_running, backend, refs)
            # (the census at run 100 is taken before the bytes, the one at run 300
            # after them: the bytes do not count the census itself)
            if number == 100:
                census.append((object_census(), len(refs)))
                traced.append(tracemalloc.get_traced_memory()[0])
            elif number == 300:
                gc.collect()
                traced.append(tracemalloc.get_traced_memory()[0])
                census.append((object_census(), len(refs)))
    finally:
        tracemalloc.stop()

    gc.collect()
    alive = [ref for ref in refs if ref() is not None]
    assert len(refs) >= 301
    assert len(alive) <= 2  # at most the last run's loop/token (and runner)
    (before, refs_before), (after, refs_after) = census
    more = after.copy()
    more.subtract(before)
    # The test's own weak references, one or two per run, are not the library's.
    more["ReferenceType"] -= refs_after - refs_before
    growth = sum(more.values())
    top = [(name, n) for name, n in more.most_common(8) if n > 0]
    assert growth < 200, f"{growth} objects more after 200 more runs: {top}"
    # Bytes as a second check, for what is not a container (strings, buffers): a run
    # kept alive costs 13 KiB or more (issue 14; a kept task with its loop measured
    # ~19 KiB on asyncio, ~25 KiB on trio), 200 of them 2.6 MB or more; the growth
    # without a leak measured 25-75 KiB on Python 3.10-3.13 (the test's own weak
    # references included), so a budget of 1 KiB per run is far from both.
    growth_bytes = traced[1] - traced[0]
    assert growth_bytes < 200 * 1024, f"{growth_bytes} bytes more after 200 more runs"


def test_next_run_in_the_same_thread_is_served_and_guarded() -> None:
    # A thread's second run claims the queue when its first run has ended, so a run in
    # another thread is refused while the second run is going.
    queue: Queue[int] = Queue()
    second_run_started = threading.Event()
    other_tried = threading.Event()
    outcome: list[str] = []

    async def first() -> None:
        queue.put_nowait(1)

    async def second() -> int:
        queue.put_nowait(2)
        second_run_started.set()
        await anyio.to_thread.run_sync(other_tried.wait, 20)
        return queue.qsize()

    async def other() -> None:
        try:
            queue.put_nowait(3)
        except RuntimeError as exc:
            outcome.append(str(exc).split(";")[0])

    def thread_a() -> int:
        run_one(first, "trio")
        return run_one(second, "asyncio")  # type: ignore[no-any-return]

    def thread_b() -> None:
        second_run_started.wait(20)
        try:
            run_one(other, "trio")
        finally:
            other_tried.set()

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(thread_a), pool.submit(thread_b)
        assert a.result(timeout=40) == 2
        b.result(timeout=40)
    assert outcome == [
        "Queue.put_nowait(): this Queue is in use by an event-loop run in another thread"
    ]


# --- task groups and task handles belong to one run -----------------------------------


async def tracked() -> None:
    await checkpoint()  # pragma: no cover - never started


@pytest.mark.parametrize(
    ("owner", "other"),
    [("asyncio", "trio"), ("trio", "uvloop"), ("asyncio", "asyncio"), ("trio", "trio")],
)
def test_a_task_group_and_its_tasks_are_refused_to_a_run_in_another_thread(
    owner: str, other: str
) -> None:
    # Without the check, another run's create_task() started the task in the wrong
    # loop, cancel() half-cancelled the task (trio) or cancelled it from the wrong
    # thread (asyncio), and `await task` crashed the owner's run when the task finished.
    shared: dict[str, Any] = {}
    handed_over = threading.Event()
    other_done = threading.Event()
    refused = tracked()

    async def job() -> str:
        await shared["release"].wait()
        return "job"

    async def owner_main(index: int, rendezvous: threading.Barrier) -> tuple[str, str]:
        shared["release"] = anyio.Event()
        async with anyconc.TaskGroup() as group:
            task = group.create_task(job(), name="job")
            shared["group"], shared["task"] = group, task
            handed_over.set()
            await anyio.to_thread.run_sync(other_done.wait, 20)
            shared["release"].set()
        return task.result(), str(task)

    async def started(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()  # pragma: no cover - refused before it runs

    async def other_main(index: int, rendezvous: threading.Barrier) -> list[str]:
        await anyio.to_thread.run_sync(handed_over.wait, 20)
        group: anyconc.TaskGroup = shared["group"]
        task: anyconc.Task[str] = shared["task"]
        messages: list[str] = []
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: as_coroutine(lambda: group.create_task(refused)),
            lambda: as_coroutine(lambda: group.start_soon(tracked)),
            lambda: group.start(started),
            lambda: as_coroutine(group.cancel),
            lambda: as_coroutine(task.cancel),
            lambda: as_coroutine(lambda: task.add_done_callback(print)),
            lambda: task.wait(),
            lambda: task,
        ]
        try:
            for attempt in attempts:
                with pytest.raises(RuntimeError) as info:
                    await attempt()
                messages.append(str(info.value))
        finally:
            other_done.set()
        return messages

    async def as_coroutine(call: Callable[[], object]) -> object:
        return call()

    async def main(index: int, rendezvous: threading.Barrier) -> object:
        return await (owner_main if index == 0 else other_main)(index, rendezvous)

    (result, state), messages = run_in_threads(main, (owner, other))
    # Nothing changed in the owner's run: the task ran to its end, uncancelled.
    assert (result, state) == ("job", "<Task 'job' finished>")
    # The coroutine given was closed, not left to warn "never awaited".
    assert inspect.getcoroutinestate(refused) == inspect.CORO_CLOSED
    tail = (
        "in another event-loop run than the {}'s (a run in another thread{}): a {} is "
        "used only in its own run; from another thread, go through an "
        "anyio.from_thread.BlockingPortal of that run"
    )
    group_closed = tail.format("task group", "; the coroutine was closed", "task group")
    group_tail = tail.format("task group", "", "task group")
    task_tail = tail.format("task", "", "task")
    assert messages == [
        f"TaskGroup.create_task() and start_soon() of an active task group {group_closed}",
        f"TaskGroup.create_task() and start_soon() of an active task group {group_closed}",
        f"TaskGroup.start() of an active task group {group_tail}",
        f"TaskGroup.cancel() of an active task group {group_tail}",
        f"Task.cancel() of the unfinished task 'job' {task_tail}",
        f"Task.add_done_callback() of the unfinished task 'job' {task_tail}",
        f"await of the unfinished task 'job' (or its wait()) {task_tail}",
        f"await of the unfinished task 'job' (or its wait()) {task_tail}",
    ]


def test_a_finished_task_is_read_and_awaited_from_a_run_in_another_thread() -> None:
    # Read-only: a finished task's result is the same in every run.
    shared: dict[str, Any] = {}

    async def done() -> str:
        return "done"

    async def make() -> None:
        async with anyconc.TaskGroup() as group:
            shared["task"] = group.create_task(done())

    async def read() -> list[object]:
        task: anyconc.Task[str] = shared["task"]
        called: list[str] = []
        task.add_done_callback(lambda t: called.append(t.result()))
        await checkpoint()
        return [await task, task.result(), task.cancel(), called]

    run_one(make, "trio")
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(run_one, read, "asyncio").result(timeout=20) == [
            "done",
            "done",
            False,
            ["done"],
        ]
