"""run_in_threadpool, iterate_in_threadpool and ThreadPool, on every backend."""

from __future__ import annotations

import contextvars
import gc
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.from_thread
import pytest
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import ThreadPool, iterate_in_threadpool, run_in_threadpool

# Made at import time, with no event loop: used by the tests of every backend in turn.
MODULE_POOL = ThreadPool(2, name="module")

# A real-time bound on threading waits, so a bug fails the test instead of hanging it.
SAFETY = 10

request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="unset"
)


def add(a: int, b: int = 0, *, c: int = 0) -> tuple[int, int, int]:
    return a, b, c


async def async_function() -> None:
    await checkpoint()


class Gate:
    """A thread blocks in ``block()`` until the event loop side calls ``open()``."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self._open = threading.Event()
        self.log: list[str] = []

    def block(self, value: Any = None) -> Any:
        anyio.from_thread.run_sync(self.started.set)
        if not self._open.wait(SAFETY):
            raise AssertionError("the gate was never opened")
        self.log.append("thread done")
        return value

    def open(self) -> None:
        self._open.set()


# -- run_in_threadpool -----------------------------------------------------------------


async def test_event_loop_stays_responsive_while_thread_blocks() -> None:
    ticks: list[int] = []
    seen_by_thread: list[int] = []
    loop_ready = anyio.Event()
    release = threading.Event()

    def blocking() -> str:
        # Proves the loop runs while this thread holds a worker: it serves this call.
        anyio.from_thread.run_sync(loop_ready.set)
        if not release.wait(SAFETY):
            raise AssertionError("never released")
        seen_by_thread.append(len(ticks))
        return "done"

    async def ticker() -> None:
        await loop_ready.wait()
        for i in range(10):
            await checkpoint()
            ticks.append(i)
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        assert await run_in_threadpool(blocking) == "done"

    assert ticks == list(range(10))
    assert seen_by_thread == [10]


async def test_positional_and_keyword_arguments() -> None:
    assert await run_in_threadpool(add, 1) == (1, 0, 0)
    assert await run_in_threadpool(add, 1, 2) == (1, 2, 0)
    assert await run_in_threadpool(add, 1, b=2, c=3) == (1, 2, 3)
    assert await MODULE_POOL.run(add, 4, 5, c=6) == (4, 5, 6)
    assert await MODULE_POOL.run(add, 4) == (4, 0, 0)


async def test_runs_in_a_worker_thread() -> None:
    main = threading.get_ident()
    assert await run_in_threadpool(threading.get_ident) != main
    assert await MODULE_POOL.run(threading.get_ident) != main


async def test_contextvars_are_propagated_as_a_copy() -> None:
    token = request_id.set("req-1")
    try:

        def read_and_write() -> str:
            seen = request_id.get()
            request_id.set("changed in thread")
            return seen

        assert await run_in_threadpool(read_and_write) == "req-1"
        assert await MODULE_POOL.run(read_and_write) == "req-1"
        assert request_id.get() == "req-1"  # the thread worked on a copy
    finally:
        request_id.reset(token)


async def test_exceptions_arrive_unwrapped() -> None:
    error = ValueError("in thread")

    def boom() -> None:
        raise error

    with pytest.raises(ValueError, match="^in thread$") as excinfo:
        await run_in_threadpool(boom)
    assert excinfo.value is error
    with pytest.raises(ValueError, match="^in thread$") as excinfo:
        await MODULE_POOL.run(boom)
    assert excinfo.value is error


async def test_default_cancellation_waits_for_the_thread_then_raises() -> None:
    gate = Gate()
    events: list[str] = []
    scope = anyio.CancelScope()

    async def caller() -> None:
        with scope:
            await run_in_threadpool(gate.block, "result")
            events.append("code after the call")  # not reached
        events.append(f"scope exited, cancelled_caught={scope.cancelled_caught}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await gate.started.wait()
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        # The cancellation is pending: the caller still waits for its thread.
        events.append("cancel requested")
        gate.open()

    assert events == ["cancel requested", "scope exited, cancelled_caught=True"]
    assert gate.log == ["thread done"]


@pytest.mark.parametrize("cancellable", [False, True])
async def test_cancelled_before_the_thread_starts(cancellable: bool) -> None:
    calls: list[str] = []
    pool = ThreadPool(1, cancellable=cancellable)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await pool.run(calls.append, "pool")
    assert scope.cancelled_caught
    with anyio.CancelScope() as scope:
        scope.cancel()
        await run_in_threadpool(calls.append, "default")
    assert scope.cancelled_caught
    assert calls == []


async def test_pool_default_cancellation_waits_for_the_thread() -> None:
    pool = ThreadPool(1, name="patient")
    assert pool.cancellable is False
    gate = Gate()
    events: list[str] = []
    scope = anyio.CancelScope()

    async def caller() -> None:
        with scope:
            await pool.run(gate.block)
            events.append("code after the call")
        events.append("scope exited")

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await gate.started.wait()
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        events.append("cancel requested")
        gate.open()

    assert events == ["cancel requested", "scope exited"]
    assert scope.cancelled_caught
    assert gate.log == ["thread done"]


async def test_cancellable_pool_abandons_the_thread() -> None:
    pool = ThreadPool(1, name="impatient", cancellable=True)
    gate = Gate()
    finished = threading.Event()
    events: list[str] = []

    def work() -> str:
        try:
            return str(gate.block("ignored"))
        finally:
            finished.set()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_when_started() -> None:
                await gate.started.wait()
                scope.cancel()

            tg.start_soon(cancel_when_started)
            await pool.run(work)
            events.append("code after the call")
    events.append("scope exited")

    # Returned at once: the thread is still blocked.
    assert scope.cancelled_caught
    assert events == ["scope exited"]
    assert gate.log == []
    assert not finished.is_set()

    gate.open()
    assert await anyio.to_thread.run_sync(finished.wait, SAFETY) is True
    assert gate.log == ["thread done"]


async def test_pool_never_runs_more_than_max_workers() -> None:
    lock = threading.Lock()
    active = 0
    active_at_start: list[int] = []
    release = threading.Semaphore(0)
    send, receive = anyio.create_memory_object_stream[int](10)

    def work(i: int) -> int:
        nonlocal active
        with lock:
            active += 1
            active_at_start.append(active)
        anyio.from_thread.run_sync(send.send_nowait, i)
        if not release.acquire(timeout=SAFETY):
            raise AssertionError("never released")
        with lock:
            active -= 1
        return i

    results: list[int] = []

    async def call(i: int) -> None:
        results.append(await MODULE_POOL.run(work, i))

    with send, receive:
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(call, i)
            started = [await receive.receive(), await receive.receive()]
            for _ in range(4):
                release.release()  # one call ends: exactly one more may start
                started.append(await receive.receive())
            release.release()
            release.release()

    assert sorted(started) == list(range(6))
    assert sorted(results) == list(range(6))
    assert active_at_start == [1, 2, 2, 2, 2, 2]
    assert active == 0


# -- iterate_in_threadpool ------------------------------------------------------------------


class CountTo:
    """A custom iterator that ends by raising StopIteration in the worker thread."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.i = 0
        self.threads: set[int] = set()
        self.error = ValueError(f"failed at {fail_at}")

    def __iter__(self) -> CountTo:
        return self

    def __next__(self) -> int:
        self.threads.add(threading.get_ident())
        if self.i == self.fail_at:
            raise self.error
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i - 1


async def test_iterate_custom_iterator_stop_iteration_ends_cleanly() -> None:
    source = CountTo(3)
    iterator = iterate_in_threadpool(source)
    assert iterator.__aiter__() is iterator
    assert [item async for item in iterator] == [0, 1, 2]
    assert threading.get_ident() not in source.threads
    # Exhausted: stays exhausted.
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_iterate_list_and_generator() -> None:
    assert [x async for x in iterate_in_threadpool([1, 2, 3])] == [1, 2, 3]
    assert [x async for x in iterate_in_threadpool(i * i for i in range(4))] == [
        0,
        1,
        4,
        9,
    ]
    empty: list[int] = []
    assert [x async for x in iterate_in_threadpool(empty)] == []


async def test_iterate_exception_mid_iteration() -> None:
    source = CountTo(5, fail_at=2)
    items: list[int] = []
    with pytest.raises(ValueError, match="^failed at 2$") as excinfo:
        async for item in iterate_in_threadpool(source):
            items.append(item)
    assert excinfo.value is source.error
    assert items == [0, 1]


async def test_iterate_break_leaves_nothing_to_finalize() -> None:
    # An async generator left by break is finalized by the backend's hooks; trio warns
    # (ResourceWarning, an error here). The iterator must not need that.
    source = CountTo(10)
    async for item in iterate_in_threadpool(source):
        if item == 1:
            break
    gc.collect()
    await anyio.wait_all_tasks_blocked()
    assert source.i == 2


async def test_iterate_iterator_created_in_caller() -> None:
    made_in: list[int] = []

    class Iterable:
        def __iter__(self) -> Iterator[int]:
            made_in.append(threading.get_ident())
            return iter([7])

    iterator = iterate_in_threadpool(Iterable())
    assert made_in == [threading.get_ident()]
    assert [x async for x in iterator] == [7]


async def test_iterate_cancelled_consumer() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        async for _ in iterate_in_threadpool([1, 2]):
            pytest.fail("cancelled before the first item")
    assert scope.cancelled_caught


# -- bad arguments ---------------------------------------------------------------------------


async def test_run_in_threadpool_bad_arguments() -> None:
    with pytest.raises(
        TypeError,
        match=r"^run_in_threadpool\(\) argument 'func' must be a function, got int 42$",
    ):
        await run_in_threadpool(42)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=(
            r"^run_in_threadpool\(\) argument 'func' must be a synchronous function, "
            r"got the async function 'async_function'; await it directly instead$"
        ),
    ):
        await run_in_threadpool(async_function)  # type: ignore[unused-coroutine]
    coro = async_function()
    with pytest.raises(
        TypeError,
        match=r"^run_in_threadpool\(\) argument 'func' must be a function, got the "
        r"coroutine object async_function\(\); pass the function itself, not the "
        r"result of calling it: run_in_threadpool\(async_function, \.\.\.\)$",
    ):
        await run_in_threadpool(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


def test_pool_cancellable_must_be_a_bool() -> None:
    with pytest.raises(
        TypeError,
        match=r"^ThreadPool\(\) argument 'cancellable' must be True or False, "
        r"got str 'yes'$",
    ):
        ThreadPool(2, cancellable="yes")  # type: ignore[arg-type]
    assert ThreadPool(2, cancellable=True).cancellable is True


async def test_pool_run_bad_arguments() -> None:
    with pytest.raises(
        TypeError,
        match=r"^ThreadPool\.run\(\) argument 'func' must be a function, got str 'nope'$",
    ):
        await MODULE_POOL.run("nope")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=(
            r"^ThreadPool\.run\(\) argument 'func' must be a synchronous function, "
            r"got the async function 'async_function'; await it directly instead$"
        ),
    ):
        await MODULE_POOL.run(async_function)  # type: ignore[unused-coroutine]
    coro = async_function()
    with pytest.raises(
        TypeError,
        match=r"^ThreadPool\.run\(\) argument 'func' must be a function, got the "
        r"coroutine object async_function\(\); pass the function itself, not the "
        r"result of calling it: pool\.run\(async_function, \.\.\.\)$",
    ):
        await MODULE_POOL.run(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


@pytest.mark.parametrize("use_pool", [False, True])
async def test_sync_function_returning_a_coroutine_is_rejected(
    use_pool: bool,
) -> None:
    created: list[Any] = []

    def sync_returning_coroutine(x: int) -> Any:
        coro = async_function()
        created.append(coro)
        return coro

    where = r"ThreadPool\.run\(\)" if use_pool else r"run_in_threadpool\(\)"
    with pytest.raises(
        TypeError,
        match=rf"^{where}: '.*sync_returning_coroutine' returned a coroutine object, "
        r"which cannot be awaited in a worker thread; await the async function "
        r"directly instead$",
    ):
        if use_pool:
            await MODULE_POOL.run(sync_returning_coroutine, 1)
        else:
            await run_in_threadpool(sync_returning_coroutine, 1)
    assert len(created) == 1
    assert inspect.getcoroutinestate(created[0]) == "CORO_CLOSED"


def test_iterate_in_threadpool_bad_arguments() -> None:
    with pytest.raises(
        TypeError,
        match=r"^iterate_in_threadpool\(\) argument 'iterable' must be iterable, "
        r"got int 42$",
    ):
        iterate_in_threadpool(42)  # type: ignore[arg-type]
    coro = async_function()
    with pytest.raises(
        TypeError,
        match=r"^iterate_in_threadpool\(\) argument 'iterable' must be iterable, "
        r"got the coroutine object \w+\(\)$",
    ):
        iterate_in_threadpool(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


@pytest.mark.parametrize(
    ("max_workers", "error", "message"),
    [
        (0, ValueError, "must be a positive integer, got 0$"),
        (-3, ValueError, "must be a positive integer, got -3$"),
        (True, TypeError, "must be a positive integer, got bool True$"),
        (2.0, TypeError, "must be a positive integer, got float 2.0$"),
        ("2", TypeError, "must be a positive integer, got str '2'$"),
        (float("nan"), TypeError, "must be a positive integer, got float nan$"),
        (None, TypeError, "must be a positive integer, got NoneType None$"),
    ],
)
def test_thread_pool_bad_max_workers(
    max_workers: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(
        error, match=r"^ThreadPool\(\) argument 'max_workers' " + message
    ):
        ThreadPool(max_workers)


def test_thread_pool_bad_name_and_repr() -> None:
    with pytest.raises(
        TypeError,
        match=r"^ThreadPool\(\) argument 'name' must be a string or None, got int 3$",
    ):
        ThreadPool(1, name=3)  # type: ignore[arg-type]
    pool = ThreadPool(3, name="images", cancellable=True)
    assert (pool.max_workers, pool.name, pool.cancellable) == (3, "images", True)
    assert repr(pool) == "<ThreadPool name='images' max_workers=3 cancellable=True>"


# -- the seeds -----------------------------------------------------------------------------


class FakeImage:
    """Stands in for PIL.Image.Image in the seed's upload handler."""

    LANCZOS = "lanczos"

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.saved_to: list[tuple[str, int]] = []

    def resize(self, size: tuple[int, int], method: str) -> FakeImage:
        assert method == FakeImage.LANCZOS
        return FakeImage(size)

    def save(self, path: str) -> None:
        self.saved_to.append((path, threading.get_ident()))


def create_thumbnail(image: FakeImage, size: tuple[int, int]) -> FakeImage:
    return image.resize(size, FakeImage.LANCZOS)


async def test_seed_upload_thumbnail() -> None:
    # nexios-concurrency-guide: POST /upload.
    async def upload_image(filename: str) -> dict[str, str]:
        image = FakeImage((1024, 768))
        thumbnail = await run_in_threadpool(create_thumbnail, image, size=(200, 200))
        await run_in_threadpool(thumbnail.save, f"static/thumbnails/{filename}")
        assert thumbnail.size == (200, 200)
        assert [path for path, _ in thumbnail.saved_to] == [
            f"static/thumbnails/{filename}"
        ]
        assert thumbnail.saved_to[0][1] != threading.get_ident()
        return {"thumbnail_url": f"/thumbnails/{filename}"}

    assert await upload_image("cat.png") == {"thumbnail_url": "/thumbnails/cat.png"}


def cpu_intensive_task(n: int) -> int:
    # The seed sleeps 1 s here to "simulate" work; a real computation keeps it fast.
    return sum(n for _ in range(n))


async def test_seed_compute() -> None:
    # nexios-course-day20: GET /compute/{n:int}.
    async def compute(n: int) -> dict[str, int]:
        result = await run_in_threadpool(cpu_intensive_task, n)
        return {"result": result}

    assert await compute(7) == {"result": 49}
    results = []
    async with anyconc.TaskGroup() as group:
        tasks = [group.create_task(compute(n)) for n in range(5)]
    results = [t.result()["result"] for t in tasks]
    assert results == [0, 1, 4, 9, 16]


# -- run-portability -------------------------------------------------------------------------


async def _use_module_pool() -> list[Any]:
    results: list[Any] = [await MODULE_POOL.run(add, 1, c=2)]
    async with anyconc.TaskGroup() as group:
        tasks = [group.create_task(MODULE_POOL.run(add, i)) for i in range(4)]
    results.append([t.result()[0] for t in tasks])
    results.append([x async for x in iterate_in_threadpool(range(3))])
    results.append(await run_in_threadpool(add, 5, b=6))
    return results


def test_module_level_pool_asyncio_trio_asyncio() -> None:
    expected = [(1, 0, 2), [0, 1, 2, 3], [0, 1, 2], (5, 6, 0)]
    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(_use_module_pool, backend=backend) == expected


async def test_pool_statistics_from_a_worker_thread_are_the_runs() -> None:
    pool = ThreadPool(2, name="stats")
    # Asked from inside a call (a worker thread, no run there): this call is running.
    stats = await pool.run(pool.statistics)
    assert stats == anyconc.ThreadPoolStatistics(
        name="stats", max_workers=2, running=1, waiting=0, cancellable=False
    )
    assert pool.statistics().running == 0
