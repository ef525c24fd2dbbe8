"""The thread bridge: run_from_thread, syncify and asyncify, from every kind of thread."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

import anyconc
from anyconc import (
    AsyncExecutor,
    ThreadPool,
    asyncify,
    iterate_in_threadpool,
    run_from_thread,
    run_in_executor,
    run_in_threadpool,
    syncify,
)

# A real-time bound on threading waits, so a bug fails the test instead of hanging it.
SAFETY = 10

KINDS = [
    "run_in_threadpool",
    "thread_pool",
    "cancellable_thread_pool",
    "iterate_in_threadpool",
    "run_in_executor",
    "cancellable_executor",
]

# Made at import time: used by every backend's run in turn.
MODULE_POOL = ThreadPool(2, name="bridge")


async def in_thread(kind: str, func: Callable[[], Any], executor: Any = None) -> Any:
    """Run ``func()`` in a worker thread of the given kind; return its result."""
    if kind == "run_in_threadpool":
        return await run_in_threadpool(func)
    if kind == "thread_pool":
        return await MODULE_POOL.run(func)
    if kind == "cancellable_thread_pool":
        return await ThreadPool(1, cancellable=True).run(func)
    if kind == "iterate_in_threadpool":

        def items() -> Iterator[Any]:
            yield func()

        return [item async for item in iterate_in_threadpool(items())][0]
    if kind == "run_in_executor":
        return await run_in_executor(executor, func)
    if kind == "cancellable_executor":
        return await AsyncExecutor(executor, cancellable=True).run(func)
    raise AssertionError(kind)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


async def add(a: int, b: int = 0, *, c: int = 0) -> tuple[int, int]:
    await checkpoint()
    return a + b + c, threading.get_ident()


@pytest.mark.parametrize("kind", KINDS)
async def test_calls_back_into_the_loop_from_each_kind_of_thread(
    kind: str, executor: ThreadPoolExecutor
) -> None:
    loop_thread = threading.get_ident()
    worker_threads: list[int] = []

    def work() -> tuple[int, int]:
        worker_threads.append(threading.get_ident())
        first = run_from_thread(add, 1, 2, c=3)
        second = run_from_thread(add, 10)
        return first[0] + second[0], first[1]

    total, ran_on = await in_thread(kind, work, executor)
    assert total == 16
    assert ran_on == loop_thread  # the async function ran on the event loop thread
    assert worker_threads != [loop_thread] and len(worker_threads) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_exception_of_the_async_function_arrives_unwrapped(
    kind: str, executor: ThreadPoolExecutor
) -> None:
    error = LookupError("not here")

    async def fail() -> None:
        await checkpoint()
        raise error

    def work() -> BaseException | None:
        try:
            run_from_thread(fail)
        except LookupError as exc:
            return exc
        return None

    assert await in_thread(kind, work, executor) is error


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelling_the_caller_cancels_the_call_back_into_the_loop(
    kind: str, executor: ThreadPoolExecutor
) -> None:
    in_callback = anyio.Event()
    thread_done = threading.Event()
    log: list[str] = []

    async def callback() -> None:
        in_callback.set()
        try:
            await anyio.sleep_forever()
        finally:
            log.append("callback cancelled")

    def work() -> str:
        try:
            try:
                run_from_thread(callback)
            except CancelledError:
                log.append("thread: CancelledError")
            # A later call is refused before it starts.
            try:
                run_from_thread(add, 1)
            except CancelledError:
                log.append("thread: second call refused")
            return "thread result"
        finally:
            thread_done.set()

    after_call: list[object] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_when_in_callback() -> None:
                await in_callback.wait()
                scope.cancel()

            tg.start_soon(cancel_when_in_callback)
            after_call.append(await in_thread(kind, work, executor))

    assert scope.cancelled_caught
    assert after_call == []  # the caller saw its cancellation, not the result
    assert await anyio.to_thread.run_sync(thread_done.wait, SAFETY) is True
    assert log == [
        "callback cancelled",
        "thread: CancelledError",
        "thread: second call refused",
    ]


@pytest.mark.parametrize(
    "kind", ["run_in_threadpool", "thread_pool", "run_in_executor"]
)
async def test_cancelled_error_let_out_of_the_thread_becomes_the_callers_cancellation(
    kind: str, executor: ThreadPoolExecutor
) -> None:
    in_callback = anyio.Event()

    async def callback() -> None:
        in_callback.set()
        await anyio.sleep_forever()

    def work() -> None:
        run_from_thread(callback)  # raises CancelledError, not caught

    reached: list[str] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_when_in_callback() -> None:
                await in_callback.wait()
                scope.cancel()

            tg.start_soon(cancel_when_in_callback)
            await in_thread(kind, work, executor)
            reached.append("after")

    assert scope.cancelled_caught
    assert reached == []


async def test_a_call_not_cancelled_runs_to_its_end_while_the_caller_waits() -> None:
    # Without cancellation, the thread's calls are independent of other tasks.
    order: list[str] = []

    async def slow(n: int) -> int:
        for _ in range(3):
            await checkpoint()
        order.append(f"callback {n}")
        return n * 2

    def work() -> list[int]:
        return [run_from_thread(slow, n) for n in range(3)]

    assert await run_in_threadpool(work) == [0, 2, 4]
    assert order == ["callback 0", "callback 1", "callback 2"]


async def test_called_from_the_event_loop_thread_raises_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"from the event loop thread; await add"):
        run_from_thread(add, 1)


async def test_called_from_a_foreign_thread_raises_runtime_error() -> None:
    errors: list[BaseException] = []

    def foreign() -> None:
        try:
            run_from_thread(add, 1)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=foreign)
    thread.start()
    await anyio.to_thread.run_sync(thread.join, SAFETY)
    assert len(errors) == 1
    assert type(errors[0]) is RuntimeError
    assert "must be called from a worker thread that anyconc started" in str(errors[0])


async def test_executor_thread_forgets_the_loop_after_the_call(
    executor: ThreadPoolExecutor,
) -> None:
    # The same executor thread, used directly afterwards, is not a bridge thread.
    single = ThreadPoolExecutor(1)
    try:
        assert (await run_in_executor(single, lambda: run_from_thread(add, 2)))[0] == 2
        outcome = single.submit(run_from_thread, add, 1).exception(SAFETY)
        assert type(outcome) is RuntimeError
    finally:
        single.shutdown()


def test_run_from_thread_bad_arguments() -> None:
    with pytest.raises(
        TypeError, match=r"^run_from_thread\(\) argument 'func' must be a function, got int 42$"
    ):
        run_from_thread(42)  # type: ignore[arg-type]
    coro = add(1)
    with pytest.raises(
        TypeError,
        match=r"^run_from_thread\(\) argument 'func' must be a function, got the "
        r"coroutine object add\(\); pass the function itself, not the result of "
        r"calling it: run_from_thread\(add, \.\.\.\)$",
    ):
        run_from_thread(coro)  # type: ignore[arg-type]
    # The rejected coroutine was closed: no "never awaited" warning (warnings are errors).
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


@pytest.mark.parametrize("executor", [False, True])
async def test_run_from_thread_plain_function_is_a_type_error_naming_it(
    executor: bool,
) -> None:
    calls: list[int] = []

    def plain(x: int) -> int:
        calls.append(x)
        return x

    def in_thread() -> object:
        return run_from_thread(plain, 1)  # type: ignore[arg-type]

    with pytest.raises(
        TypeError,
        match=r"^run_from_thread\(\): '.*plain' returned int, not an awaitable; pass "
        r"an async function \(or a function returning an awaitable\)$",
    ):
        if executor:
            with ThreadPoolExecutor(max_workers=1) as pool:
                await anyconc.run_in_executor(pool, in_thread)
        else:
            await run_in_threadpool(in_thread)
    assert calls == [1]
    # A plain function returning an awaitable still works.
    total, _ = await run_in_threadpool(lambda: run_from_thread(lambda: add(2, 1)))
    assert total == 3


def test_run_from_thread_outside_any_event_loop() -> None:
    with pytest.raises(RuntimeError, match=r"must be called from a worker thread"):
        run_from_thread(add, 1)


# -- syncify / asyncify ----------------------------------------------------------------


async def test_syncify_keeps_the_signature_and_calls_back() -> None:
    async def publish(topic: str, *, payload: int) -> str:
        """Publish."""
        await checkpoint()
        return f"{topic}={payload}"

    publish_sync = syncify(publish)
    assert publish_sync.__name__ == "publish"
    assert publish_sync.__doc__ == "Publish."

    def legacy(callback: Callable[..., str]) -> str:
        return callback("t", payload=3)

    assert await run_in_threadpool(legacy, publish_sync) == "t=3"


def test_syncify_rejects_synchronous_functions() -> None:
    def plain() -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"^syncify\(\) argument 'func' must be an async function, got the "
        r"synchronous function '.*plain' \(use 'async def'\)$",
    ):
        syncify(plain)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^syncify\(\) argument 'func' must be a function, got int 3$"
    ):
        syncify(3)  # type: ignore[arg-type]


async def test_asyncify_runs_in_a_worker_thread_with_the_signature_kept() -> None:
    loop_thread = threading.get_ident()

    @asyncify
    def blocking(a: int, *, b: int = 1) -> tuple[int, int]:
        """Block."""
        return a * b, threading.get_ident()

    assert blocking.__name__ == "blocking"
    assert blocking.__doc__ == "Block."
    value, thread = await blocking(3, b=4)
    assert value == 12
    assert thread != loop_thread


async def test_asyncify_with_a_pool_and_a_call_back_inside() -> None:
    pool = ThreadPool(1, name="asyncify")
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return run_from_thread(add, n)[0]
        finally:
            with lock:
                running -= 1

    awaitable_work: Callable[[int], Awaitable[int]] = asyncify(work, pool=pool)
    assert await anyconc.gather(*(awaitable_work(n) for n in range(4))) == [0, 1, 2, 3]
    assert peak == 1


async def test_asyncify_exception_unwrapped() -> None:
    error = ValueError("bad")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError) as excinfo:
        await asyncify(fail)()
    assert excinfo.value is error


def test_asyncify_bad_arguments() -> None:
    async def coroutine_function() -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"^asyncify\(\) argument 'func' must be a synchronous function, got the "
        r"async function '.*coroutine_function'; await it directly instead$",
    ):
        asyncify(coroutine_function)
    with pytest.raises(
        TypeError, match=r"^asyncify\(\) argument 'func' must be a function, got int 5$"
    ):
        asyncify(5)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^asyncify\(\) argument 'pool' must be a ThreadPool or None, got str 'pool'$",
    ):
        asyncify(print, pool="pool")  # type: ignore[arg-type]
    for convert in (asyncify, syncify):
        coro = coroutine_function()
        with pytest.raises(
            TypeError,
            match=rf"^{convert.__name__}\(\) argument 'func' must be a function, got "
            r"the coroutine object .*coroutine_function\(\); pass the function "
            rf"itself, not the result of calling it: {convert.__name__}\("
            r"coroutine_function\)$",
        ):
            convert(coro)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
