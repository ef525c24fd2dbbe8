"""Tests for run_in_process, run_in_executor and AsyncExecutor.

Process pools are expensive, so each is created once per module (sync, module-scoped
fixtures) and shared by every backend's run of a test. The functions sent to other
processes live at module level so that they pickle by name; this module imports
nothing heavy at top level, because worker processes import it to find them.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import multiprocessing
import os
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from anyconc._processes import AsyncExecutor, run_in_executor, run_in_process
from anyconc._util import callable_name

# --------------------------------------------------------------------------------------
# Functions run in workers (module level: picklable by name)
# --------------------------------------------------------------------------------------


def square(x: int) -> int:
    return x * x


def fail(message: str) -> None:
    raise ValueError(message)


def describe(*args: Any, **kwargs: Any) -> str:
    return f"{args} {sorted(kwargs.items())}"


def signal_then_wait(started: str, release: str) -> str:
    """Announce the start through one FIFO, then block until the other one is written."""
    with open(started, "w") as f:
        f.write("started")
    with open(release) as f:
        return f.read()


# --------------------------------------------------------------------------------------
# Executors, created once per module
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def process_pool() -> Iterator[ProcessPoolExecutor]:
    # "spawn": forking a process that runs threads (Dask's, AnyIO's) is unsafe, and
    # Python 3.12+ warns about it.
    with ProcessPoolExecutor(
        max_workers=2, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        yield pool


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def loky_executor() -> Iterator[Executor]:
    loky = pytest.importorskip("loky")
    executor = loky.get_reusable_executor(max_workers=2)
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture(params=["process_pool", "dask", "loky"])
def executor(
    request: pytest.FixtureRequest,
) -> Executor:
    if request.param == "dask":
        return request.getfixturevalue("dask_client").get_executor()  # type: ignore[no-any-return]

    if request.param == "loky":
        return request.getfixturevalue("loky_executor")  # type: ignore[no-any-return]

    return request.getfixturevalue("process_pool")  # type: ignore[no-any-return]


def formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


# --------------------------------------------------------------------------------------
# run_in_executor: results, exceptions, fan-out
# --------------------------------------------------------------------------------------


async def test_executor_result_and_kwargs(executor: Executor) -> None:
    assert await run_in_executor(executor, square, 12) == 144
    # func's keyword arguments may be called anything, even "func" or "executor".
    assert await run_in_executor(executor, describe, 1, func=2, executor=3) == (
        "(1,) [('executor', 3), ('func', 2)]"
    )


async def test_executor_exception_unwrapped_with_traceback(executor: Executor) -> None:
    with pytest.raises(ValueError, match="^boom$") as info:
        await run_in_executor(executor, fail, "boom")

    assert type(info.value) is ValueError
    # The remote frames are there: as the cause (process pools) or in the traceback
    # itself (Dask rebuilds them).
    text = formatted(info.value)
    assert ", in fail\n" in text
    assert "raise ValueError(message)" in text


async def test_200_concurrent_calls(executor: Executor) -> None:
    results: dict[int, int] = {}

    async def call(i: int) -> None:
        results[i] = await run_in_executor(executor, square, i)

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(call, i)

    assert results == {i: i * i for i in range(200)}


class Gated:
    """A call that signals its start, then blocks its thread until released."""

    def __init__(self, result: object = "done") -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.finished = threading.Event()
        self.result = result
        self.ran: list[str] = []

    def __call__(self, name: str) -> object:
        self.started.set()
        self.gate.wait()
        self.ran.append(name)
        self.finished.set()
        if isinstance(self.result, BaseException):
            raise self.result

        return self.result


class Caller:
    """Awaits ``func(*args)`` in a task, in its own cancel scope; records the outcome."""

    def __init__(self, func: Callable[..., Awaitable[object]], *args: object) -> None:
        self.func = func
        self.args = args
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.outcome: list[object] = []
        self.passed_checkpoint = False

    async def __call__(self) -> None:
        with self.scope:
            try:
                self.outcome.append(await self.func(*self.args))
            except Exception as exc:
                self.outcome.append(exc)
            # A cancellation requested while the call ran is raised here, if not before.
            await anyio.lowlevel.checkpoint()
            self.passed_checkpoint = True
        self.done.set()

    async def wait(self) -> None:
        # A bound for a broken implementation only (real time: threads are involved).
        with anyio.fail_after(10):
            await self.done.wait()


async def test_no_thread_is_blocked_per_call() -> None:
    gated = Gated("first")
    with ThreadPoolExecutor(max_workers=1) as pool:
        callers = [Caller(run_in_executor, pool, square, i) for i in range(200)]
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(run_in_executor, pool, gated, "first")
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                baseline = threading.active_count()
                for caller in callers:
                    tg.start_soon(caller)

                await anyio.wait_all_tasks_blocked()
                # 200 calls awaited and not one more thread.
                assert threading.active_count() <= baseline
                assert not any(caller.done.is_set() for caller in callers)
            finally:
                gated.gate.set()

    assert [caller.outcome for caller in callers] == [[i * i] for i in range(200)]
    assert all(caller.passed_checkpoint for caller in callers)


# --------------------------------------------------------------------------------------
# run_in_executor: cancellation
# --------------------------------------------------------------------------------------


async def test_cancel_queued_call_cancels_the_future() -> None:
    gated = Gated()
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = Caller(run_in_executor, pool, gated, "second")
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(run_in_executor, pool, gated, "first")
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                tg.start_soon(second)
                await anyio.wait_all_tasks_blocked()
                second.scope.cancel()
                # The queued call is dropped at once, while the first one still runs.
                await second.wait()
                assert second.scope.cancelled_caught
                assert not second.passed_checkpoint
                assert second.outcome == []
                assert gated.ran == []
            finally:
                gated.gate.set()

    # The executor never ran the cancelled call.
    assert gated.ran == ["first"]


@pytest.mark.parametrize("result", ["done", KeyError("failed")], ids=["value", "error"])
async def test_cancel_running_call_waits_then_raises_the_cancellation(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    gated = Gated(result)
    with ThreadPoolExecutor(max_workers=1) as pool:
        caller = Caller(run_in_executor, pool, gated, "call")
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(caller)
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                caller.scope.cancel()
                await anyio.wait_all_tasks_blocked()
                # Still waiting for the call that runs.
                assert not caller.done.is_set()
                assert caller.outcome == []
                gated.gate.set()
                await caller.wait()
            finally:
                gated.gate.set()

    # It ran to its end, then the cancellation was raised, as ThreadPool does: the
    # value is dropped, a failure is logged (not lost).
    assert gated.ran == ["call"]
    assert caller.outcome == []
    assert caller.scope.cancelled_caught
    assert not caller.passed_checkpoint
    messages = [r.getMessage() for r in caplog.records if r.name == "anyconc"]
    if isinstance(result, BaseException):
        assert messages == [
            f"{callable_name(gated)} failed after its caller was cancelled while it "
            f"ran; the exception is dropped"
        ]
    else:
        assert messages == []


async def test_cancellable_executor_abandons_running_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gated = Gated(result=KeyError("abandoned"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        caller = Caller(AsyncExecutor(pool, cancellable=True).run, gated, "call")
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(caller)
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                caller.scope.cancel()
                await caller.wait()
                # The caller left while the call is still blocked in its thread.
                assert caller.scope.cancelled_caught
                assert not caller.passed_checkpoint
                assert caller.outcome == []
                assert gated.ran == []
            finally:
                gated.gate.set()

    # The abandoned call ran to its end; its failure was logged, not lost.
    assert gated.ran == ["call"]
    [record] = [r for r in caplog.records if r.name == "anyconc"]
    assert record.getMessage() == (
        "Gated failed after its caller abandoned it; the exception is dropped"
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is gated.result


async def test_already_cancelled_caller_submits_nothing() -> None:
    ran: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await run_in_executor(pool, ran.append, 1)

    assert scope.cancelled_caught
    assert ran == []


async def test_executor_cancelling_the_call_itself() -> None:
    gated = Gated()
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = Caller(run_in_executor, pool, gated, "second")
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(run_in_executor, pool, gated, "first")
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                tg.start_soon(second)
                await anyio.wait_all_tasks_blocked()
                pool.shutdown(wait=False, cancel_futures=True)
                await second.wait()
                [error] = second.outcome
                assert type(error) is concurrent.futures.CancelledError
            finally:
                gated.gate.set()

    assert gated.ran == ["first"]


_GATED: dict[str, Gated] = {}


def run_gated(key: str, name: str) -> object:
    """Dask pickles every task: this function travels by name, its ``Gated`` does not."""
    return _GATED[key](name)


async def test_dask_cancel_running_call_does_not_wait(
    dask_client: Any, request: pytest.FixtureRequest
) -> None:
    # Dask never reports a call as started, so cancelling the caller always cancels the
    # future (Dask releases the task) and the caller does not wait for it.
    gated = _GATED[request.node.nodeid] = Gated()
    executor = dask_client.get_executor(pure=False)
    caller = Caller(run_in_executor, executor, run_gated, request.node.nodeid, "x")
    try:
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(caller)
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                caller.scope.cancel()
                await caller.wait()
                assert caller.scope.cancelled_caught
                assert not caller.passed_checkpoint
                assert caller.outcome == []
                assert gated.ran == []  # still blocked: the caller did not wait for it
            finally:
                gated.gate.set()

        assert await anyio.to_thread.run_sync(gated.finished.wait, 10)
        assert gated.ran == ["x"]
    finally:
        del _GATED[request.node.nodeid]


# --------------------------------------------------------------------------------------
# run_in_executor: shut-down executors and bad arguments
# --------------------------------------------------------------------------------------


async def test_shut_down_executor_raises_clear_runtime_error(dask_client: Any) -> None:
    process_pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    )
    dask_executor = dask_client.get_executor()
    thread_pool = ThreadPoolExecutor(max_workers=1)
    for executor in (process_pool, dask_executor, thread_pool):
        executor.shutdown()
        with pytest.raises(RuntimeError) as info:
            await run_in_executor(executor, square, 3)

        assert type(info.value) is RuntimeError
        assert str(info.value) == (
            f"executor {executor!r} refused to run square: "
            f"cannot schedule new futures after shutdown"
        )


async def test_cancellable_must_be_a_bool() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(
            TypeError,
            match=r"^AsyncExecutor\(\) argument 'cancellable' must be True or False, "
            r"got int 1$",
        ):
            AsyncExecutor(pool, cancellable=1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^run_in_process\(\) argument 'cancellable' must be True or False, "
        r"got str 'no'$",
    ):
        await run_in_process(square, 2, cancellable="no")  # type: ignore[arg-type]


async def test_run_in_executor_bad_arguments(dask_client: Any) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(
            TypeError,
            match=r"^run_in_executor\(\) argument 'executor' must be a "
            r"concurrent\.futures\.Executor, got 4$",
        ):
            await run_in_executor(4, square, 2)  # type: ignore[arg-type]

        with pytest.raises(
            TypeError,
            match=r"^run_in_executor\(\) argument 'executor' must be a "
            r"concurrent\.futures\.Executor \(for a Dask "
            r"client, pass client\.get_executor\(\)\), got <Client",
        ):
            await run_in_executor(dask_client, square, 2)

        with pytest.raises(
            TypeError,
            match=r"^run_in_executor\(\) argument 'func' must be a function, got int 3$",
        ):
            await run_in_executor(pool, 3)  # type: ignore[arg-type]

        async def job() -> int:
            return 1

        coro = job()
        with pytest.raises(
            TypeError,
            match=r"^run_in_executor\(\) argument 'func' must be a function, got the "
            r"coroutine object .*job\(\); pass the function itself, not the result of "
            r"calling it: run_in_executor\(executor, job, \.\.\.\)$",
        ):
            await run_in_executor(pool, coro)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"  # no warning left

        with pytest.raises(
            TypeError,
            match=r"^run_in_executor\(\) argument 'func' must be a synchronous "
            r"function, got the async function '.*job'; await it directly instead$",
        ):
            await run_in_executor(pool, job)  # type: ignore[unused-coroutine]

        with pytest.raises(
            TypeError,
            match=r"^AsyncExecutor\(\) argument 'executor' must be a "
            r"concurrent\.futures\.Executor",
        ):
            AsyncExecutor(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# run_in_process
# --------------------------------------------------------------------------------------


async def test_run_in_process_result_and_exception() -> None:
    assert await run_in_process(square, 9) == 81
    assert await run_in_process(os.getpid) != os.getpid()
    with pytest.raises(ValueError, match="^boom$") as info:
        await run_in_process(fail, "boom")

    assert type(info.value) is ValueError
    # The worker's traceback, as text, is the cause (like ProcessPoolExecutor's).
    cause = info.value.__cause__
    assert type(cause).__name__ == "_RemoteTraceback"
    assert ", in fail\n" in str(cause)
    assert "raise ValueError(message)" in str(cause)
    assert "_call_pickled" not in str(cause)


async def test_run_in_process_rejects_a_coroutine_object_and_closes_it() -> None:
    coro = _job()
    with pytest.raises(
        TypeError,
        match=r"^run_in_process\(\) argument 'func' must be a function, got the "
        r"coroutine object _job\(\); pass the function itself, not the result of "
        r"calling it: run_in_process\(_job, \.\.\.\)$",
    ):
        await run_in_process(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


def returns_a_coroutine() -> Any:
    return _job()


async def test_run_in_process_sync_function_returning_a_coroutine() -> None:
    # Named, instead of "cannot pickle 'coroutine' object"; closed in the worker.
    with pytest.raises(
        TypeError,
        match=r"^run_in_process\(\): 'returns_a_coroutine' returned a coroutine "
        r"object, which cannot be awaited in a worker process; await the async "
        r"function directly instead$",
    ):
        await run_in_process(returns_a_coroutine)


def _make_closure() -> Callable[[], int]:
    n = 1

    def closure() -> int:
        return n

    return closure


async def test_run_in_process_rejects_unpicklable_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[object] = []

    async def fake_run_sync(*args: object, **kwargs: object) -> object:
        started.append(args)
        raise AssertionError("a worker was asked for")

    monkeypatch.setattr(anyio.to_process, "run_sync", fake_run_sync)

    def local() -> int:
        return 1

    for func, name in [
        (
            lambda: 1,
            r"test_run_in_process_rejects_unpicklable_before_starting"
            r"\.<locals>\.<lambda>",
        ),
        (_make_closure(), r"_make_closure\.<locals>\.closure"),
        (
            local,
            r"test_run_in_process_rejects_unpicklable_before_starting"
            r"\.<locals>\.local",
        ),
    ]:
        with pytest.raises(
            TypeError,
            match=r"^run_in_process\(\) argument 'func' must be picklable to run in "
            r"another process \(a function "
            r"defined at module level, not a lambda, closure or local function\), "
            rf"got {name}: ",
        ):
            await run_in_process(func)

    with pytest.raises(
        TypeError,
        match=r"^run_in_process\(\) arguments must be picklable to run in another "
        r"process, but pickling the "
        r"arguments of square failed: cannot pickle '_thread.lock' object$",
    ):
        await run_in_process(square, threading.Lock())  # type: ignore[arg-type]

    async def job() -> int:
        return 1

    with pytest.raises(
        TypeError,
        match=r"^run_in_process\(\) argument 'func' must be a synchronous function",
    ):
        await run_in_process(job)  # type: ignore[unused-coroutine]

    with pytest.raises(
        TypeError,
        match=r"^run_in_process\(\) argument 'limiter' must be a CapacityLimiter or "
        r"None, got int 2$",
    ):
        await run_in_process(square, 2, limiter=2)  # type: ignore[arg-type]

    assert started == []


async def test_run_in_process_limiter() -> None:
    async def pids(limiter: anyio.CapacityLimiter) -> set[int]:
        found: set[int] = set()

        async def call() -> None:
            found.add(await run_in_process(os.getpid, limiter=limiter))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(call)

        assert limiter.borrowed_tokens == 0
        return found

    # Two tokens: two calls run at once, each in its own new worker process.
    assert len(await pids(anyio.CapacityLimiter(2))) == 2
    # One token: the calls take turns in a single worker.
    assert len(await pids(anyio.CapacityLimiter(1))) == 1


def _fifos(tmp_path: Path) -> tuple[str, str]:
    started, release = str(tmp_path / "started"), str(tmp_path / "release")
    os.mkfifo(started)
    os.mkfifo(release)
    return started, release


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


async def test_run_in_process_cancel_running_waits_for_it(tmp_path: Path) -> None:
    started, release = _fifos(tmp_path)
    caller = Caller(run_in_process, signal_then_wait, started, release)
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        assert await anyio.to_thread.run_sync(_read, started) == "started"
        caller.scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert not caller.done.is_set()  # waiting for the worker to finish
        await anyio.to_thread.run_sync(_write, release, "released")
        await caller.wait()

    # The worker finished; then the cancellation was raised (the value is dropped).
    assert caller.outcome == []
    assert caller.scope.cancelled_caught
    assert not caller.passed_checkpoint


async def test_run_in_process_cancellable_kills_worker(tmp_path: Path) -> None:
    started, release = _fifos(tmp_path)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: run_in_process(
                    signal_then_wait, started, release, cancellable=True
                )
            )
            assert await anyio.to_thread.run_sync(_read, started) == "started"
            scope.cancel()

    # Nobody ever released the worker: it was killed.
    assert scope.cancelled_caught
    # The run goes on with a fresh worker.
    assert await run_in_process(square, 5) == 25


# --------------------------------------------------------------------------------------
# Run-portability
# --------------------------------------------------------------------------------------

_module_thread_pool = ThreadPoolExecutor(max_workers=2)
_module_executor = AsyncExecutor(_module_thread_pool)


def test_objects_made_at_import_work_in_every_run() -> None:
    async def use() -> tuple[int, int, int]:
        return (
            await _module_executor.run(square, 3),
            await run_in_executor(_module_thread_pool, square, 4),
            await run_in_process(square, 5),
        )

    try:
        for backend in ("asyncio", "trio", "asyncio"):
            assert anyio.run(use, backend=backend) == (9, 16, 25)
    finally:
        _module_thread_pool.shutdown()


def test_async_executor_repr_and_properties() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        wrapped = AsyncExecutor(pool, cancellable=True)
        assert wrapped.executor is pool
        assert wrapped.cancellable is True
        assert repr(wrapped) == f"AsyncExecutor({pool!r}, cancellable=True)"
        assert AsyncExecutor(pool).cancellable is False


# --------------------------------------------------------------------------------------
# Bad input at the boundary (issue 16)
# --------------------------------------------------------------------------------------


async def _job() -> int:
    return 1


@pytest.mark.parametrize("use_wrapper", [False, True])
async def test_sync_function_returning_a_coroutine_is_rejected(
    use_wrapper: bool,
) -> None:
    # As run_in_threadpool: the coroutine could never be awaited in the executor.
    made: list[Any] = []

    def sync_returning_coroutine(x: int) -> Any:
        made.append(_job())
        return made[-1]

    where = r"AsyncExecutor\.run\(\)" if use_wrapper else r"run_in_executor\(\)"
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(
            TypeError,
            match=rf"^{where}: '.*sync_returning_coroutine' returned a coroutine "
            r"object, which cannot be awaited in a worker thread; await the async "
            r"function directly instead$",
        ):
            if use_wrapper:
                await AsyncExecutor(pool).run(sync_returning_coroutine, 1)
            else:
                await run_in_executor(pool, sync_returning_coroutine, 1)
    assert len(made) == 1
    assert inspect.getcoroutinestate(made[0]) == "CORO_CLOSED"


@pytest.mark.parametrize("cancellable", [False, True])
async def test_coroutine_returned_after_the_caller_left_is_closed(
    cancellable: bool, caplog: pytest.LogCaptureFixture
) -> None:
    coro = _job()
    gated = Gated(result=coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        caller = Caller(AsyncExecutor(pool, cancellable=cancellable).run, gated, "call")
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(caller)
                assert await anyio.to_thread.run_sync(gated.started.wait, 10)
                caller.scope.cancel()
                if cancellable:
                    await caller.wait()
                    assert inspect.getcoroutinestate(coro) == "CORO_CREATED"
            finally:
                gated.gate.set()
            await caller.wait()
    # The executor's threads are joined: the dropped result was closed, not left to
    # warn "never awaited" (warnings are errors).
    assert gated.ran == ["call"]
    assert caller.outcome == []
    assert caller.scope.cancelled_caught
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    assert [r for r in caplog.records if r.name == "anyconc"] == []


def test_executor_given_a_coroutine_object_closes_it() -> None:
    coro = _job()
    with pytest.raises(
        TypeError,
        match=r"^AsyncExecutor\(\) argument 'executor' must be a "
        r"concurrent\.futures\.Executor, got <coroutine object _job at ",
    ):
        AsyncExecutor(coro)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    coro = _job()
    with pytest.raises(
        TypeError,
        match=r"^run_in_executor\(\) argument 'executor' must be a "
        r"concurrent\.futures\.Executor, got <coroutine object _job at ",
    ):
        anyio.run(run_in_executor, coro, square, 2)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
