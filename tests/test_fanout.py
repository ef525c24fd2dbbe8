from __future__ import annotations

import gc
import inspect
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any, cast

import anyio
import pytest

import anyconc
from anyconc import amap, as_completed, gather

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class Tracker:
    """Counts how many calls run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def run(self, value: int, delay: float = 1.0) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(delay)
            return value
        finally:
            self.running -= 1


async def fail(message: str, delay: float = 0.0) -> int:
    await anyio.sleep(delay)
    raise ValueError(message)


# -- gather -------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_gather_returns_results_in_argument_order() -> None:
    tracker = Tracker()
    start = anyio.current_time()
    results = await gather(tracker.run(1, 3), tracker.run(2, 1), tracker.run(3, 2))
    # Typed per position, as a tuple (as asyncio.gather in typeshed); a list at run time.
    assert type(cast(object, results)) is list
    assert list(results) == [1, 2, 3]
    assert tracker.peak == 3
    assert anyio.current_time() - start == pytest.approx(3)


@pytest.mark.virtual_time
async def test_gather_limit_bounds_concurrency() -> None:
    tracker = Tracker()
    start = anyio.current_time()
    results = await gather(*(tracker.run(i) for i in range(10)), limit=3)
    assert results == list(range(10))
    assert tracker.peak == 3
    # 10 one-second calls, 3 at a time: ceil(10 / 3) rounds
    assert anyio.current_time() - start == pytest.approx(4)


@pytest.mark.virtual_time
async def test_gather_failure_cancels_the_rest_and_raises_group() -> None:
    cancelled: list[int] = []

    async def slow(i: int) -> int:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            cancelled.append(i)
            raise
        return i

    start = anyio.current_time()
    with pytest.raises(ExceptionGroup) as info:
        await gather(slow(0), fail("boom", 1), slow(2))

    assert [str(e) for e in info.value.exceptions] == ["boom"]
    assert sorted(cancelled) == [0, 2]
    assert anyio.current_time() - start == pytest.approx(1)


async def test_gather_return_exceptions_keeps_them_in_place() -> None:
    async def ok() -> int:
        return 7

    results = await gather(ok(), fail("x"), ok(), return_exceptions=True)
    assert results[0] == 7 and results[2] == 7
    assert isinstance(results[1], ValueError) and str(results[1]) == "x"


async def test_gather_accepts_tasks_and_other_awaitables() -> None:
    class Ready:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield from anyio.sleep(0).__await__()
            return "custom"

    async def value(v: int) -> int:
        await anyio.sleep(0)
        return v

    async with anyconc.TaskGroup() as group:
        task = group.create_task(value(5))
        assert list(await gather(task, value(6), Ready())) == [5, 6, "custom"]


async def test_gather_of_nothing_is_an_empty_list() -> None:
    assert await gather() == []


async def test_gather_with_limit_closes_unstarted_coroutines_on_failure() -> None:
    coros = [fail("first")] + [anyio.sleep(1) for _ in range(5)]
    with pytest.raises(ExceptionGroup):
        await gather(*coros, limit=1)

    assert all(inspect.getcoroutinestate(c) == "CORO_CLOSED" for c in coros)


@pytest.mark.virtual_time
async def test_gather_caller_cancelled_cancels_everything() -> None:
    tracker = Tracker()
    with anyio.move_on_after(0.5) as scope:
        await gather(*(tracker.run(i) for i in range(4)), limit=2)

    assert scope.cancelled_caught
    assert tracker.running == 0
    assert tracker.peak == 2


async def test_gather_bad_arguments() -> None:
    async def job() -> int:
        return 1

    coro = job()
    with pytest.raises(
        TypeError, match=r"gather\(\) argument 1 must be awaitable, got int"
    ):
        await gather(coro, 42)  # type: ignore[call-overload]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"

    with pytest.raises(
        TypeError,
        match=r"^gather\(\) argument 0 must be awaitable, got the function '.*job'; call it: job\(\.\.\.\)$",
    ):
        await gather(job)  # type: ignore[call-overload]

    coro = job()
    with pytest.raises(
        ValueError,
        match=r"^gather\(\) argument 'limit' must be a positive integer or None, got 0$",
    ):
        await gather(coro, limit=0)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"

    # A yes/no flag is True or False: "no" or 0 would silently mean something.
    coro = job()
    with pytest.raises(
        TypeError,
        match=r"^gather\(\) argument 'return_exceptions' must be True or False, "
        r"got str 'no'$",
    ):
        await gather(coro, return_exceptions="no")  # type: ignore[call-overload]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"

    with pytest.raises(
        TypeError,
        match=r"^gather\(\) argument 'limit' must be a positive integer or None, got float 1.5$",
    ):
        await gather(limit=1.5)  # type: ignore[call-overload]


# -- amap ---------------------------------------------------------------------------


async def test_amap_is_compatible_with_anyio_amap() -> None:
    async def double(x: int) -> int:
        await anyio.sleep(0)
        return 2 * x

    assert await amap(double, range(5)) == await anyio.amap(double, range(5))


@pytest.mark.virtual_time
async def test_amap_limit_and_order() -> None:
    tracker = Tracker()

    async def job(x: int) -> int:
        return await tracker.run(x * x, delay=1 + (x % 3))

    start = anyio.current_time()
    assert await amap(job, range(6), limit=2) == [0, 1, 4, 9, 16, 25]
    assert tracker.peak == 2
    # delays 1,2,3,1,2,3 on two slots: slot A runs 0,2,5 (1+3+3), slot B 1,3,4 (2+1+2)
    assert anyio.current_time() - start == pytest.approx(7)


@pytest.mark.virtual_time
async def test_amap_max_per_second_spaces_starts_evenly() -> None:
    starts: list[float] = []
    origin = anyio.current_time()

    async def job(x: int) -> int:
        starts.append(anyio.current_time() - origin)
        return x

    assert await amap(job, range(5), max_per_second=2) == list(range(5))
    assert starts == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


async def test_amap_pulls_at_most_limit_items_ahead() -> None:
    pulled = 0
    high_water = 0
    done = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield i

    async def job(x: int) -> int:
        nonlocal done, high_water
        high_water = max(high_water, pulled - done)
        if not x % 1000:  # let the other workers run now and then (cheaply)
            await anyio.lowlevel.checkpoint()
        done += 1
        return x & 1

    tracemalloc.start()
    try:
        results = await amap(job, items(), limit=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(results) == 1_000_000
    assert sum(results) == 500_000
    assert high_water <= 10
    # The result list itself is ~8 MB; nothing else may grow with the item count.
    assert peak < 30_000_000


@pytest.mark.virtual_time
async def test_amap_failure_stops_pulling_and_raises_group() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            pulled.append(i)
            yield i

    async def job(x: int) -> int:
        await anyio.sleep(0.5 if x == 3 else 1)
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ExceptionGroup) as info:
        await amap(job, items(), limit=4)

    assert [str(e) for e in info.value.exceptions] == ["three"]
    assert pulled == [0, 1, 2, 3]


async def test_amap_bad_arguments() -> None:
    async def job(x: int) -> int:
        return x

    with pytest.raises(
        TypeError, match=r"^amap\(\) argument 'func' must be a function, got int 42$"
    ):
        await amap(42, [1])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^amap\(\) argument 'items' must be iterable, got int 42$"
    ):
        await amap(job, 42)  # type: ignore[arg-type]
    items = job(1)
    with pytest.raises(
        TypeError,
        match=r"^amap\(\) argument 'items' must be iterable, got the coroutine "
        r"object [\w.<>]+job\(\)$",
    ):
        await amap(job, items)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(items) == inspect.CORO_CLOSED
    with pytest.raises(
        ValueError,
        match=r"^amap\(\) argument 'limit' must be a positive integer or None, got -1$",
    ):
        await amap(job, [1], limit=-1)
    with pytest.raises(
        ValueError,
        match=r"^amap\(\) argument 'max_per_second' must be a positive finite number or None, got 0$",
    ):
        await amap(job, [1], max_per_second=0)
    with pytest.raises(
        TypeError,
        match=r"^amap\(\) argument 'max_per_second' must be a positive finite number or None, got str '1'$",
    ):
        await amap(job, [1], max_per_second="1")  # type: ignore[arg-type]


# -- as_completed -------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_as_completed_yields_tasks_in_completion_order() -> None:
    async def after(delay: float, value: str) -> str:
        await anyio.sleep(delay)
        return value

    order: list[tuple[str, float]] = []
    start = anyio.current_time()
    async with as_completed(after(3, "c"), after(1, "a"), after(2, "b")) as finished:
        async for task in finished:
            assert isinstance(task, anyconc.Task)
            assert task.done()
            order.append((task.result(), anyio.current_time() - start))

    assert order == [  # type: ignore[comparison-overlap]
        ("a", pytest.approx(1)),
        ("b", pytest.approx(2)),
        ("c", pytest.approx(3)),
    ]


@pytest.mark.virtual_time
async def test_as_completed_failed_task_is_handed_out_not_raised() -> None:
    async def ok() -> int:
        await anyio.sleep(2)
        return 1

    seen: list[object] = []
    async with as_completed(fail("bad", 1), ok()) as finished:
        async for task in finished:
            exc = task.exception()
            seen.append(str(exc) if exc else task.result())

    assert seen == ["bad", 1]


@pytest.mark.virtual_time
async def test_as_completed_leaving_early_cancels_the_rest() -> None:
    tracker = Tracker()
    start = anyio.current_time()
    async with as_completed(
        *(tracker.run(i, delay=i + 1) for i in range(5))
    ) as finished:
        async for task in finished:
            assert task.result() == 0
            break

    assert tracker.running == 0
    assert anyio.current_time() - start == pytest.approx(1)


@pytest.mark.virtual_time
async def test_as_completed_limit() -> None:
    tracker = Tracker()
    results: list[int] = []
    async with as_completed(*(tracker.run(i) for i in range(5)), limit=2) as finished:
        async for task in finished:
            results.append(task.result())

    assert sorted(results) == list(range(5))
    assert tracker.peak == 2


async def test_as_completed_exception_in_block_propagates_unwrapped() -> None:
    tracker = Tracker()
    with pytest.raises(KeyError):
        async with as_completed(tracker.run(1, delay=100)):
            raise KeyError("body")

    assert tracker.running == 0


async def test_as_completed_bad_arguments() -> None:
    coro = anyio.sleep(0)
    with pytest.raises(
        TypeError, match=r"as_completed\(\) argument 1 must be awaitable, got str"
    ):
        async with as_completed(coro, "x"):  # type: ignore[arg-type]
            pass
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"
    with pytest.raises(
        ValueError,
        match=r"^as_completed\(\) argument 'limit' must be a positive integer or None, got 0$",
    ):
        async with as_completed(limit=0):
            pass


def test_fanout_works_in_consecutive_runs_on_every_backend() -> None:
    async def main() -> list[int]:
        async def double(x: int) -> int:
            await anyio.sleep(0)
            return 2 * x

        first = list(await gather(double(1), double(2), limit=1))
        second = await amap(double, [3, 4], limit=1)
        async with as_completed(double(5)) as finished:
            third = [t.result() async for t in finished]
        return first + second + third

    for backend in ("asyncio", "trio", "asyncio"):
        assert anyio.run(main, backend=backend) == [2, 4, 6, 8, 10]


# -- bad input at the boundary (issue 16) -------------------------------------------


async def test_amap_rejects_a_coroutine_object_and_closes_it() -> None:
    async def job(x: int) -> int:
        return x

    coro = job(1)
    with pytest.raises(
        TypeError,
        match=r"^amap\(\) argument 'func' must be a function, got the coroutine object "
        r".*job\(\); pass the function itself, not the result of calling it: "
        r"amap\(job, items\)$",
    ):
        await amap(coro, [1, 2])  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


@pytest.mark.parametrize("limit", [None, 2])
async def test_amap_sync_function_is_rejected_after_its_first_call(
    limit: int | None,
) -> None:
    calls: list[int] = []

    def sync(x: int) -> str:
        calls.append(x)
        return str(x)

    with pytest.raises(
        TypeError,
        match=r"^amap\(\): '.*sync' returned str, not an awaitable; pass an async "
        r"function \(or a function returning an awaitable\)$",
    ):
        await amap(sync, range(5), limit=limit)  # type: ignore[arg-type]
    assert calls == [0]


async def test_amap_generator_function_is_rejected_before_any_call() -> None:
    def gen(x: int) -> Iterator[int]:
        if x:
            raise AssertionError("not called")
        yield x

    with pytest.raises(
        TypeError,
        match=r"^amap\(\) argument 'func' must be an async function, got the generator "
        r"function '.*gen' \(use 'async def'\)$",
    ):
        await amap(gen, [1])  # type: ignore[arg-type]


async def test_amap_lambda_returning_a_coroutine_still_works() -> None:
    tracker = Tracker()
    assert await amap(lambda x: tracker.run(x, 0), range(4), limit=2) == [0, 1, 2, 3]
    assert await amap(lambda x: tracker.run(x, 0), []) == []


async def test_amap_first_call_is_closed_when_cancelled_before_it_runs() -> None:
    tracker = Tracker()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await amap(tracker.run, range(3))
    assert scope.cancelled_caught
    gc.collect()  # a leaked coroutine would warn now: warnings are errors
    assert tracker.running == 0


@pytest.mark.parametrize("wrap", [False, True])
async def test_as_completed_left_early_with_a_limit_leaves_no_unawaited_coroutine(
    wrap: bool,
) -> None:
    tracker = Tracker()
    async with anyconc.TaskGroup() as group:
        aws: list[Any] = [tracker.run(i, 0) for i in range(4)]
        if wrap:
            # Task handles are wrapped in an internal coroutine each.
            aws = [group.create_task(aw) for aw in aws]
        async with as_completed(*aws, limit=1) as finished:
            async for task in finished:
                assert task.result() == 0
                break
    gc.collect()  # a leaked coroutine would warn now: warnings are errors
    assert tracker.running == 0


@pytest.mark.parametrize(
    ("value", "error", "got"),
    [
        (float("nan"), TypeError, "float nan"),
        (True, TypeError, "bool True"),
        ("2", TypeError, "str '2'"),
        (-1, ValueError, "-1"),
    ],
)
@pytest.mark.parametrize("call", ["gather", "amap", "as_completed"])
async def test_bad_limit_is_rejected_before_anything_runs(
    call: str, value: Any, error: type[Exception], got: str
) -> None:
    ran: list[int] = []

    async def job(x: int) -> int:
        ran.append(x)
        return x

    coros = [] if call == "amap" else [job(1), job(2)]
    with pytest.raises(
        error,
        match=rf"^{call}\(\) argument 'limit' must be a positive integer or None, "
        rf"got {got}$",
    ):
        if call == "gather":
            await gather(*coros, limit=value)
        elif call == "amap":
            await amap(job, [1, 2], limit=value)
        else:
            async with as_completed(*coros, limit=value):
                raise AssertionError("not entered")
    assert all(inspect.getcoroutinestate(c) == "CORO_CLOSED" for c in coros)
    assert ran == []


@pytest.mark.parametrize(
    ("value", "error", "got"),
    [
        (float("nan"), ValueError, "nan"),
        (float("inf"), ValueError, "inf"),
        (True, TypeError, "bool True"),
        (-2.5, ValueError, "-2.5"),
    ],
)
async def test_amap_bad_max_per_second_is_rejected_before_anything_runs(
    value: Any, error: type[Exception], got: str
) -> None:
    ran: list[int] = []

    async def job(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(
        error,
        match=r"^amap\(\) argument 'max_per_second' must be a positive finite number "
        rf"or None, got {got}$",
    ):
        await amap(job, [1, 2], max_per_second=value)
    assert ran == []
