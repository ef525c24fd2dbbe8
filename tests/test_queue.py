"""Tests for anyconc's Queue, LifoQueue and PriorityQueue.

Most behaviours are ported from CPython 3.13's ``Lib/test/test_asyncio/test_queues.py``
(named after the test they port), run on asyncio, uvloop and trio. ``asyncio.sleep(0)``
"let the other task run" steps become ``anyio.wait_all_tasks_blocked()``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest
import sniffio

from anyconc import (
    LifoQueue,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    QueueShutDown,
)

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

T = TypeVar("T")

QUEUE_CLASSES = [Queue, LifoQueue, PriorityQueue]


async def outcome(aw: Awaitable[T]) -> T | Exception:
    """The value of ``aw``, or the exception it raised (so a task can fail on purpose)."""
    try:
        return await aw
    except Exception as exc:
        return exc


# --- basics (QueueBasicTests) ----------------------------------------------------------


async def test_repr_and_str() -> None:
    q: Queue[int] = Queue()
    assert repr(q).startswith("<Queue at 0x")
    assert hex(id(q)) in repr(q)
    assert str(q) == "<Queue maxsize=0>"
    assert hex(id(q)) not in str(q)

    async with anyio.create_task_group() as tg:
        getter = tg.create_task(q.get())
        await anyio.wait_all_tasks_blocked()
        assert "_getters[1]" in repr(q)
        q.put_nowait(0)
    assert await getter == 0

    q = Queue(maxsize=1)
    async with anyio.create_task_group() as tg:
        q.put_nowait(1)
        putter = tg.create_task(q.put(2))
        await anyio.wait_all_tasks_blocked()
        assert "_putters[1]" in repr(q)
        assert q.get_nowait() == 1
    await putter
    assert str(q) == "<Queue maxsize=1 _queue=[2] tasks=2>"


def test_generic_alias() -> None:
    alias = Queue[int]
    assert alias.__args__ == (int,)  # type: ignore[attr-defined]
    assert PriorityQueue[str].__args__ == (str,)  # type: ignore[attr-defined]


async def test_empty() -> None:
    q: Queue[int] = Queue()
    assert q.empty()
    await q.put(1)
    assert not q.empty()
    assert await q.get() == 1
    assert q.empty()


async def test_full() -> None:
    q: Queue[int] = Queue()
    assert not q.full()
    q = Queue(maxsize=1)
    await q.put(1)
    assert q.full()
    assert q.qsize() == 1
    assert q.maxsize == 1


async def test_order() -> None:
    q: Queue[int] = Queue()
    for i in [1, 3, 2]:
        await q.put(i)
    assert [await q.get() for _ in range(3)] == [1, 3, 2]


async def test_lifo_order() -> None:
    q: LifoQueue[int] = LifoQueue()
    for i in [1, 3, 2]:
        await q.put(i)
    assert [await q.get() for _ in range(3)] == [2, 3, 1]


async def test_priority_order() -> None:
    q: PriorityQueue[int] = PriorityQueue()
    for i in [1, 3, 2]:
        await q.put(i)
    assert [await q.get() for _ in range(3)] == [1, 2, 3]


async def test_maxsize_backpressure() -> None:
    q: Queue[int] = Queue(maxsize=2)
    have_been_put: list[int] = []

    async def putter() -> bool:
        for i in range(3):
            await q.put(i)
            have_been_put.append(i)
        return True

    async with anyio.create_task_group() as tg:
        t = tg.create_task(putter())
        await anyio.wait_all_tasks_blocked()
        # The putter is blocked after putting two items.
        assert have_been_put == [0, 1]
        assert q.full()
        assert await q.get() == 0
        # Let the putter resume and put the last item.
        await anyio.wait_all_tasks_blocked()
        assert have_been_put == [0, 1, 2]
        assert await q.get() == 1
        assert await q.get() == 2
    assert await t is True


# --- get (QueueGetTests) ---------------------------------------------------------------


async def test_get_with_putters() -> None:
    q: Queue[int] = Queue(1)
    await q.put(1)
    async with anyio.create_task_group() as tg:
        putter = tg.create_task(q.put(2))
        await anyio.wait_all_tasks_blocked()
        assert await q.get() == 1
    assert putter.status is putter.Status.FINISHED
    assert q.get_nowait() == 2


@pytest.mark.virtual_time
async def test_blocking_get_wait() -> None:
    q: Queue[int] = Queue()
    start = anyio.current_time()

    async def put_later() -> None:
        await anyio.sleep(0.01)
        q.put_nowait(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(put_later)
        assert await q.get() == 1
        assert anyio.current_time() - start == pytest.approx(0.01, abs=1e-6)


def test_nonblocking_get() -> None:
    q: Queue[int] = Queue()
    q.put_nowait(1)
    assert q.get_nowait() == 1


def test_nonblocking_get_exception() -> None:
    q: Queue[int] = Queue()
    with pytest.raises(QueueEmpty):
        q.get_nowait()


async def test_get_cancelled_race() -> None:
    q: Queue[str] = Queue()
    async with anyio.create_task_group() as tg:
        t1 = tg.create_task(q.get())
        await anyio.wait_all_tasks_blocked()
        t2 = tg.create_task(q.get())
        await anyio.wait_all_tasks_blocked()
        t1.cancel()
        await t1.wait()
        assert t1.status is t1.Status.CANCELLED
        await q.put("a")
    assert await t2 == "a"
    assert q.empty()
    assert "_getters" not in repr(q)


async def test_get_with_waiting_putters() -> None:
    q: Queue[str] = Queue(maxsize=1)
    async with anyio.create_task_group() as tg:
        # One at a time: trio does not run tasks in the order they were started.
        tg.create_task(q.put("a"))
        await anyio.wait_all_tasks_blocked()
        tg.create_task(q.put("b"))
        await anyio.wait_all_tasks_blocked()
        assert await q.get() == "a"
        assert await q.get() == "b"


async def test_why_are_getters_waiting() -> None:
    q: Queue[int] = Queue(1)
    got: list[int] = []

    async def consumer(n: int) -> None:
        for _ in range(n):
            got.append(await q.get())

    async def producer(n: int) -> None:
        for i in range(n):
            await q.put(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(producer, 5)
        tg.start_soon(consumer, 5)
    assert got == [0, 1, 2, 3, 4]


@pytest.mark.virtual_time
async def test_get_timeout_leaves_no_getter() -> None:
    # test_cancelled_getters_not_being_held_in_self_getters, and a timeout firing.
    q: Queue[int] = Queue(maxsize=5)
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.1):
            await q.get()
    assert anyio.current_time() - start == pytest.approx(0.1, abs=1e-6)
    assert "_getters" not in repr(q)
    q.put_nowait(7)
    assert await q.get() == 7


async def test_get_cancel_drop_one_pending_reader() -> None:
    q: Queue[int] = Queue()
    async with anyio.create_task_group() as tg:
        reader = tg.create_task(q.get())
        await anyio.wait_all_tasks_blocked()
        q.put_nowait(1)
        q.put_nowait(2)
        reader.cancel()
        await reader.wait()

    got = [] if reader.status is reader.Status.CANCELLED else [reader.return_value]
    while not q.empty():
        got.append(await q.get())
    # If 2 came first, 1 was dropped.
    assert got == [1, 2]


async def test_get_cancel_drop_many_pending_readers() -> None:
    q: Queue[int] = Queue()
    async with anyio.create_task_group() as tg:
        readers = [tg.create_task(q.get()) for _ in range(3)]
        await anyio.wait_all_tasks_blocked()
        q.put_nowait(1)
        q.put_nowait(2)
        readers[0].cancel()
        await readers[0].wait()
        await anyio.wait_all_tasks_blocked()
        # Whatever the first reader did, the two items went to exactly two readers.
        done = [r for r in readers if r.status is r.Status.FINISHED]
        assert sorted(r.return_value for r in done) == [1, 2]
        assert q.empty()
        for r in readers:
            r.cancel()


async def test_put_cancel_drop() -> None:
    q: Queue[int] = Queue(1)
    q.put_nowait(1)
    async with anyio.create_task_group() as tg:
        writer = tg.create_task(q.put(2))
        await anyio.wait_all_tasks_blocked()
        assert q.get_nowait() == 1
        writer.cancel()
        await writer.wait()
        if writer.status is writer.Status.CANCELLED:
            # The cancelled put did not put: try again.
            await q.put(2)
    assert q.get_nowait() == 2
    assert q.qsize() == 0


def test_nonblocking_put_exception() -> None:
    q: Queue[int] = Queue(maxsize=1)
    q.put_nowait(1)
    with pytest.raises(QueueFull):
        q.put_nowait(2)


async def test_float_maxsize() -> None:
    q: Queue[int] = Queue(maxsize=1.3)
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.full()
    with pytest.raises(QueueFull):
        q.put_nowait(3)

    q = Queue(maxsize=1.3)
    await q.put(1)
    await q.put(2)
    assert q.full()


async def test_put_cancelled_race() -> None:
    q: Queue[str] = Queue(maxsize=1)
    async with anyio.create_task_group() as tg:
        put_a = tg.create_task(q.put("a"))
        await anyio.wait_all_tasks_blocked()
        put_b = tg.create_task(q.put("b"))
        await anyio.wait_all_tasks_blocked()
        put_c = tg.create_task(q.put("X"))
        await anyio.wait_all_tasks_blocked()
        assert put_a.status is put_a.Status.FINISHED
        assert put_b.status is put_b.Status.PENDING

        put_c.cancel()
        await put_c.wait()
        assert put_c.status is put_c.Status.CANCELLED
        assert q.get_nowait() == "a"
        await anyio.wait_all_tasks_blocked()
        assert q.get_nowait() == "b"
    await put_b
    assert q.empty()
    assert "_putters" not in repr(q)


async def test_put_with_waiting_getters() -> None:
    q: Queue[str] = Queue()
    async with anyio.create_task_group() as tg:
        t = tg.create_task(q.get())
        await anyio.wait_all_tasks_blocked()
        await q.put("a")
    assert await t == "a"


async def test_why_are_putters_waiting() -> None:
    q: Queue[int] = Queue(2)
    got: list[int] = []

    async def getter() -> None:
        await anyio.wait_all_tasks_blocked()
        for _ in range(q.qsize()):
            got.append(q.get_nowait())

    async with anyio.create_task_group() as tg:
        tg.start_soon(getter)
        for i in range(4):
            tg.start_soon(q.put, i)
    assert sorted(got + [q.get_nowait() for _ in range(q.qsize())]) == [0, 1, 2, 3]


async def test_cancelled_puts_not_held_in_putters() -> None:
    q: Queue[int] = Queue(maxsize=1)
    q.put_nowait(1)
    async with anyio.create_task_group() as tg:
        put_task = tg.create_task(q.put(1))
        await anyio.wait_all_tasks_blocked()
        assert "_putters[1]" in repr(q)
        put_task.cancel()
        await put_task.wait()
    assert put_task.status is put_task.Status.CANCELLED
    assert "_putters" not in repr(q)
    assert q.qsize() == 1


async def test_cancelled_put_after_wakeup_passes_slot_on() -> None:
    # test_cancelled_put_silence_value_error_exception: the woken putter is cancelled
    # before it runs; the slot goes to the next putter, no error, nothing lost.
    q: Queue[int] = Queue(1)
    q.put_nowait(0)
    async with anyio.create_task_group() as tg:
        first = tg.create_task(q.put(1))
        await anyio.wait_all_tasks_blocked()
        second = tg.create_task(q.put(2))
        await anyio.wait_all_tasks_blocked()
        assert q.get_nowait() == 0  # wakes `first`
        first.cancel()
        await first.wait()
        if first.status is first.Status.FINISHED:
            # trio: the woken task was already rescheduled, so its put completed.
            assert q.get_nowait() == 1
        else:
            assert first.status is first.Status.CANCELLED
        await second.wait()
    assert second.status is second.Status.FINISHED
    assert q.get_nowait() == 2
    assert q.empty()


# --- cancellation at each await point, and failures -----------------------------------


async def test_put_cancelled_at_checkpoint_puts_nothing() -> None:
    q: Queue[int] = Queue()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.put(1)
    assert scope.cancelled_caught
    assert q.qsize() == 0
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()


async def test_get_cancelled_at_checkpoint_takes_nothing() -> None:
    q: Queue[int] = Queue()
    q.put_nowait(1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.get()
    assert scope.cancelled_caught
    assert q.get_nowait() == 1


async def test_join_cancelled_at_checkpoint_and_while_waiting() -> None:
    q: Queue[int] = Queue()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.join()
    assert scope.cancelled_caught

    q.put_nowait(1)
    async with anyio.create_task_group() as tg:
        joiner = tg.create_task(q.join())
        second = tg.create_task(q.join())
        await anyio.wait_all_tasks_blocked()
        joiner.cancel()
        await joiner.wait()
        assert joiner.status is joiner.Status.CANCELLED
        q.get_nowait()
        q.task_done()
    assert second.status is second.Status.FINISHED


async def test_fast_path_is_a_schedule_point() -> None:
    # Neither put() nor get() blocks here; each must still let another task run.
    q: Queue[int] = Queue()
    ops = 20
    done = False
    other_steps = 0

    async def other() -> None:
        nonlocal other_steps
        while not done:
            other_steps += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        start = other_steps
        for i in range(ops // 2):
            await q.put(i)
        for i in range(ops // 2):
            assert await q.get() == i
        done = True
    # One step of `other` per operation (trio may order a step before or after).
    assert other_steps - start >= ops - 1


async def test_consumer_failing_loses_no_item() -> None:
    q: Queue[int] = Queue(maxsize=2)
    produced: list[int] = []

    async def producer() -> None:
        for i in range(10):
            await q.put(i)
            produced.append(i)

    async def consumer() -> None:
        await q.get()
        raise RuntimeError("consumer failed")

    with pytest.raises(ExceptionGroup) as exc_info:
        async with anyio.create_task_group() as tg:
            tg.start_soon(producer)
            tg.start_soon(consumer)
    assert [str(e) for e in exc_info.value.exceptions] == ["consumer failed"]
    # The producer was cancelled while blocked: the queue holds exactly what was put
    # and not taken.
    remaining = [q.get_nowait() for _ in range(q.qsize())]
    assert produced[1:] == remaining
    assert "_putters" not in repr(q)


# --- operation order: trio's (check for cancellation, operate, shielded yield) --------

REPS = 20  # trio runs a batch of ready tasks in either order: repeat, then count


async def test_tasks_running_while_put_yields_see_its_item() -> None:
    q: Queue[int] = Queue()
    seen: list[tuple[int, bool]] = []  # (qsize, had put() returned?) as the observer ran

    async def observer(go: anyio.Event, state: dict[str, bool]) -> None:
        await go.wait()
        seen.append((q.qsize(), state["returned"]))

    for i in range(REPS):
        go, state = anyio.Event(), {"returned": False}
        async with anyio.create_task_group() as tg:
            tg.start_soon(observer, go, state)
            await anyio.wait_all_tasks_blocked()
            go.set()  # the observer is ready to run before put() yields
            await q.put(i)
            state["returned"] = True
        assert q.get_nowait() == i

    during = [qsize for qsize, returned in seen if not returned]
    assert during == [1] * len(during)  # every observer that ran in the yield saw it
    if sniffio.current_async_library() == "asyncio":
        assert len(during) == REPS  # FIFO: the observer always runs in the yield
    else:
        assert during  # trio: in about half of the rounds


async def test_tasks_running_while_get_yields_see_its_freed_slot() -> None:
    q: Queue[str] = Queue(maxsize=1)
    seen: list[bool] = []  # as the blocked putter went on: had get() returned?

    async def putter(state: dict[str, bool]) -> None:
        await q.put("second")
        seen.append(state["returned"])

    for _ in range(REPS):
        q.put_nowait("first")
        state = {"returned": False}
        async with anyio.create_task_group() as tg:
            tg.start_soon(putter, state)
            await anyio.wait_all_tasks_blocked()
            assert q.full()
            assert await q.get() == "first"  # frees the slot, then yields
            state["returned"] = True
            putter_done_in_yield = q.qsize() == 1
        assert seen[-1] is not putter_done_in_yield
        assert q.get_nowait() == "second"

    during = [r for r in seen if not r]
    if sniffio.current_async_library() == "asyncio":
        assert len(during) == REPS  # FIFO: the putter always proceeds in the yield
    else:
        assert during  # trio: in about half of the rounds


@pytest.mark.parametrize("op", ["put", "get"])
async def test_cancelled_during_the_yield_the_operation_stands(op: str) -> None:
    # A cancellation that arrives while put()/get() yields after its operation is
    # not raised there (the item has moved): the next checkpoint raises it.
    q: Queue[int] = Queue()
    if op == "get":
        q.put_nowait(5)
    results: list[object] = []
    with anyio.CancelScope() as scope:
        go = anyio.Event()

        async def canceller() -> None:
            await go.wait()
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(canceller)
            await anyio.wait_all_tasks_blocked()
            go.set()
            if op == "put":
                await q.put(6)
                results.append(None)
            else:
                results.append(await q.get())
            await anyio.lowlevel.checkpoint()
            results.append("not reached")
    assert scope.cancelled_caught
    assert results == ([None] if op == "put" else [5])
    assert q.qsize() == (1 if op == "put" else 0)


async def test_cancelled_put_and_get_move_nothing_on_every_path() -> None:
    q: Queue[int] = Queue(maxsize=1)
    # Cancelled on entry, with room / with an item: nothing moves.
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.put(1)
    assert scope.cancelled_caught and q.qsize() == 0
    q.put_nowait(1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.get()
    assert scope.cancelled_caught and q.qsize() == 1
    # Cancelled while blocked (full, then empty): nothing moves either.
    with anyio.move_on_after(0.01) as scope:
        await q.put(2)
    assert scope.cancelled_caught and q.get_nowait() == 1 and q.empty()
    with anyio.move_on_after(0.01) as scope:
        await q.get()
    assert scope.cancelled_caught and q.empty()
    q.task_done()
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()  # exactly one item was ever put


async def test_join_with_nothing_unfinished_is_a_shielded_schedule_point() -> None:
    q: Queue[int] = Queue()
    ran: list[str] = []
    with anyio.CancelScope() as scope:
        go = anyio.Event()

        async def other() -> None:
            await go.wait()
            ran.append("other")
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            await anyio.wait_all_tasks_blocked()
            go.set()
            await q.join()  # other runs in its yield (or just after) and cancels
            ran.append("joined")
            await anyio.lowlevel.checkpoint()
            ran.append("not reached")
    assert scope.cancelled_caught
    assert sorted(ran) == ["joined", "other"]


async def test_asyncio_native_cancel_in_the_yield_waits_for_the_next_one() -> None:
    # asyncio.timeout() / wait_for() cancel with Task.cancel(), outside AnyIO's scopes:
    # landing in get()'s yield, it must not lose the item that get() took.
    if sniffio.current_async_library() != "asyncio":
        pytest.skip("Task.cancel() is asyncio's")
    import asyncio

    q: Queue[int] = Queue()
    q.put_nowait(9)
    main = asyncio.current_task()
    assert main is not None
    # Task.cancelling() is 3.11+: on 3.10 only the items are checked.
    before = main.cancelling() if sys.version_info >= (3, 11) else None
    got: list[int] = []
    cancel_args: tuple[object, ...] | None = None
    go = anyio.Event()

    async def canceller() -> None:
        await go.wait()
        main.cancel("native")

    async with anyio.create_task_group() as tg:
        tg.start_soon(canceller)
        await anyio.wait_all_tasks_blocked()
        go.set()
        got.append(await q.get())
        try:
            await anyio.lowlevel.checkpoint()
        except asyncio.CancelledError as exc:
            cancel_args = exc.args
            if sys.version_info >= (3, 11):
                main.uncancel()
    assert got == [9]
    assert cancel_args == ("native",)  # raised at the next yield, with its message
    if before is not None:
        assert main.cancelling() == before


# --- task_done / join (QueueJoinTests) -------------------------------------------------


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
def test_task_done_underflow(cls: type[Queue[Any]]) -> None:
    q = cls()
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_task_done(cls: type[Queue[int]]) -> None:
    q = cls()
    for i in range(100):
        q.put_nowait(i)
    accumulator = 0

    async def worker() -> None:
        nonlocal accumulator
        while True:
            item = await q.get()
            accumulator += item
            q.task_done()

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(worker)
        await q.join()
        assert accumulator == sum(range(100))
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_join_empty_queue(cls: type[Queue[int]]) -> None:
    q = cls()
    await q.join()
    await q.join()


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
def test_format(cls: type[Queue[int]]) -> None:
    q = cls()
    assert q._format() == "maxsize=0"
    q._unfinished_tasks = 2
    assert q._format() == "maxsize=0 tasks=2"
    q.shutdown()
    assert q._format() == "maxsize=0 tasks=2 shutdown"


# --- shutdown (QueueShutdownTests) -----------------------------------------------------


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_shutdown_immediate_must_be_a_bool(cls: type[Queue[str]]) -> None:
    q = cls()
    q.put_nowait("kept")
    with pytest.raises(
        TypeError,
        match=r"^shutdown\(\) argument 'immediate' must be True or False, got int 1$",
    ):
        q.shutdown(immediate=1)  # type: ignore[arg-type]
    # Nothing happened: the queue is open and still holds its item.
    q.put_nowait("more")
    assert sorted([q.get_nowait(), q.get_nowait()]) == ["kept", "more"]


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_shutdown_empty(cls: type[Queue[str]]) -> None:
    q = cls()
    async with anyio.create_task_group() as tg:
        get_task = tg.create_task(outcome(q.get()))
        await anyio.wait_all_tasks_blocked()
        q.shutdown(immediate=False)
        assert q.qsize() == 0
        assert q.is_shutdown()
        await q.join()
    assert isinstance(await get_task, QueueShutDown)

    with pytest.raises(QueueShutDown):
        await q.put("data")
    with pytest.raises(QueueShutDown):
        q.put_nowait("data")
    with pytest.raises(QueueShutDown):
        await q.get()
    with pytest.raises(QueueShutDown):
        q.get_nowait()


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_shutdown_nonempty(cls: type[Queue[str]]) -> None:
    q = cls(maxsize=1)
    q.put_nowait("data")
    async with anyio.create_task_group() as tg:
        join_task = tg.create_task(q.join())
        put_task = tg.create_task(outcome(q.put("data2")))
        await anyio.wait_all_tasks_blocked()
        assert put_task.status is put_task.Status.PENDING

        q.shutdown(immediate=False)
        assert q.qsize() == 1
        await anyio.wait_all_tasks_blocked()
        assert isinstance(await put_task, QueueShutDown)

        assert await q.get() == "data"
        await anyio.wait_all_tasks_blocked()
        assert join_task.status is join_task.Status.PENDING

        with pytest.raises(QueueShutDown):
            await q.put("data")
        with pytest.raises(QueueShutDown):
            q.put_nowait("data")
        with pytest.raises(QueueShutDown):
            await q.get()
        with pytest.raises(QueueShutDown):
            q.get_nowait()

        q.task_done()
        await anyio.wait_all_tasks_blocked()
        assert join_task.status.name == "FINISHED"
    with pytest.raises(ValueError, match="called too many times"):
        q.task_done()


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_shutdown_immediate(cls: type[Queue[str]]) -> None:
    q = cls()
    q.put_nowait("data")
    async with anyio.create_task_group() as tg:
        join_task = tg.create_task(q.join())
        await anyio.wait_all_tasks_blocked()
        q.shutdown(immediate=True)
        assert q.qsize() == 0
        await anyio.wait_all_tasks_blocked()
        assert join_task.status is join_task.Status.FINISHED

    with pytest.raises(QueueShutDown):
        await q.put("data")
    with pytest.raises(QueueShutDown):
        await q.get()
    with pytest.raises(ValueError, match="called too many times"):
        q.task_done()


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
async def test_shutdown_immediate_with_unfinished(cls: type[Queue[str]]) -> None:
    q = cls()
    q.put_nowait("data")
    q.put_nowait("data")
    async with anyio.create_task_group() as tg:
        join_task = tg.create_task(q.join())
        assert await q.get() == "data"
        q.shutdown(immediate=True)  # unfinished tasks: 2 -> 1
        assert q.qsize() == 0
        await anyio.wait_all_tasks_blocked()
        assert join_task.status is join_task.Status.PENDING

        with pytest.raises(QueueShutDown):
            await q.put("data")
        with pytest.raises(QueueShutDown):
            q.get_nowait()

        q.task_done()
        with pytest.raises(ValueError, match="called too many times"):
            q.task_done()
        await anyio.wait_all_tasks_blocked()
        assert join_task.status.name == "FINISHED"


async def test_shutdown_wakes_blocked_putters_and_getters() -> None:
    full: Queue[int] = Queue(1)
    full.put_nowait(0)
    empty: Queue[int] = Queue()
    async with anyio.create_task_group() as tg:
        putters = [tg.create_task(outcome(full.put(i))) for i in range(3)]
        getters = [tg.create_task(outcome(empty.get())) for _ in range(3)]
        await anyio.wait_all_tasks_blocked()
        full.shutdown()
        empty.shutdown()
    assert all(isinstance(t.return_value, QueueShutDown) for t in putters + getters)
    assert full.get_nowait() == 0


async def test_async_for_ends_when_shut_down_and_drained() -> None:
    q: Queue[int] = Queue(maxsize=2)
    got: list[int] = []

    async def consume() -> None:
        async for item in q:
            got.append(item)
            q.task_done()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for i in range(5):
            await q.put(i)
        await q.join()
        assert got == [0, 1, 2, 3, 4]
        await q.put(5)
        q.shutdown()
    assert got == [0, 1, 2, 3, 4, 5]


# --- bad arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", QUEUE_CLASSES)
def test_bad_maxsize(cls: type[Queue[Any]]) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^{cls.__name__}\(\) argument 'maxsize' must be a number, got str '3'$",
    ):
        cls("3")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=rf"^{cls.__name__}\(\) argument 'maxsize' must be a number, got NoneType",
    ):
        cls(None)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=rf"^{cls.__name__}\(\) argument 'maxsize' must be a number, got nan$",
    ):
        cls(math.nan)
    with pytest.raises(
        TypeError,
        match=rf"^{cls.__name__}\(\) argument 'maxsize' must be a number, got bool True$",
    ):
        cls(True)
    with pytest.raises(
        TypeError,
        match=rf"^{cls.__name__}\(\) argument 'name' must be a string or None, got "
        r"int 123$",
    ):
        cls(name=123)  # type: ignore[arg-type]
    # asyncio: zero or negative means unbounded.
    q = cls(-1)
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full()


# --- stress and seeds ------------------------------------------------------------------


async def test_stress_4x4_100k_items_each_consumed_once() -> None:
    q: Queue[int] = Queue(maxsize=64)
    total, producers, consumers = 100_000, 4, 4
    per_producer = total // producers
    seen = bytearray(total)
    consumed = [0] * consumers

    async def produce(p: int) -> None:
        for i in range(p * per_producer, (p + 1) * per_producer):
            await q.put(i)

    async def consume(c: int) -> None:
        async for item in q:
            seen[item] += 1
            consumed[c] += 1
            q.task_done()

    async with anyio.create_task_group() as tg:
        for c in range(consumers):
            tg.start_soon(consume, c)
        async with anyio.create_task_group() as ptg:
            for p in range(producers):
                ptg.start_soon(produce, p)
        await q.join()
        assert q.empty()
        q.shutdown()

    assert seen == b"\x01" * total  # every item exactly once
    assert sum(consumed) == total
    assert all(n > 0 for n in consumed)  # every consumer took part


async def test_seed_producer_consumer_with_sentinel() -> None:
    # asyncio-concurrency-patterns.md "Producer-Consumer with Queue". The seed puts a
    # single sentinel for three consumers, which would leave two of them waiting
    # forever (on asyncio too); one sentinel per consumer is the working version.
    processed: dict[str, list[int]] = {}
    items = list(range(50))

    async def process(item: int) -> None:
        await anyio.sleep(0)

    async def producer(queue: Queue[int | None], items: list[int], n: int) -> None:
        for item in items:
            await queue.put(item)
        for _ in range(n):
            await queue.put(None)  # sentinel to signal completion

    async def consumer(queue: Queue[int | None], name: str) -> None:
        processed[name] = []
        while True:
            item = await queue.get()
            if item is None:
                queue.task_done()
                break
            await process(item)
            processed[name].append(item)
            queue.task_done()

    queue: Queue[int | None] = Queue(maxsize=100)  # backpressure
    async with anyio.create_task_group() as tg:
        tg.start_soon(producer, queue, items, 3)
        for name in ("worker-1", "worker-2", "worker-3"):
            tg.start_soon(consumer, queue, name)
    await queue.join()
    assert sorted(i for got in processed.values() for i in got) == items
    assert set(processed) == {"worker-1", "worker-2", "worker-3"}
    assert queue.empty()


# --- run portability -------------------------------------------------------------------

MODULE_QUEUE: Queue[str] = Queue(maxsize=2)


def test_module_level_queue_across_runs() -> None:
    async def first_run() -> None:
        # A getter blocked in this run, cancelled when the run's work is done.
        async with anyio.create_task_group() as tg:
            tg.start_soon(MODULE_QUEUE.get)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        await MODULE_QUEUE.put("from asyncio")

    async def second_run() -> str:
        item = await MODULE_QUEUE.get()
        MODULE_QUEUE.task_done()
        async with anyio.create_task_group() as tg:
            for n in (1, 2, 3):  # the third blocks: maxsize=2
                tg.start_soon(MODULE_QUEUE.put, f"from trio {n}")
                await anyio.wait_all_tasks_blocked()
            assert MODULE_QUEUE.full()
            got = MODULE_QUEUE.get_nowait()
            MODULE_QUEUE.task_done()
        assert got == "from trio 1"
        return item

    async def third_run() -> list[str]:
        out = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(MODULE_QUEUE.join)
            for _ in range(2):
                out.append(await MODULE_QUEUE.get())
                MODULE_QUEUE.task_done()
        MODULE_QUEUE.shutdown()
        return [item async for item in MODULE_QUEUE] + out

    anyio.run(first_run, backend="asyncio")
    assert anyio.run(second_run, backend="trio") == "from asyncio"
    assert anyio.run(third_run, backend="asyncio") == ["from trio 2", "from trio 3"]
    assert "_getters" not in repr(MODULE_QUEUE)


async def test_queue_from_a_plain_asyncio_task() -> None:
    # A task AnyIO did not start has no cancel scope of AnyIO's to check: the
    # operations still run in trio's order.
    if sniffio.current_async_library() != "asyncio":
        pytest.skip("asyncio.create_task() is asyncio's")
    import asyncio

    q: Queue[int] = Queue(maxsize=1)

    async def plain() -> list[int]:
        await q.put(1)
        got = [await q.get()]
        await q.put(2)
        got.append(await q.get())
        q.task_done()
        q.task_done()
        await q.join()
        return got

    assert await asyncio.create_task(plain()) == [1, 2]
    assert q.empty()


async def test_a_worker_thread_of_the_serving_run_is_pointed_back_into_the_run() -> None:
    queue: Queue[int] = Queue(name="jobs")
    await queue.put(1)
    with pytest.raises(RuntimeError) as info:
        await anyio.to_thread.run_sync(queue.put_nowait, 2)
    assert str(info.value) == (
        "Queue.put_nowait() of a Queue in use by an event-loop run must be called "
        "from the thread of its event loop (no event loop runs in this thread); from a "
        "worker thread, use anyio.from_thread.run_sync(queue.put_nowait, item)"
    )
    # Read-only calls answer there; the way the message gives works.
    assert await anyio.to_thread.run_sync(queue.qsize) == 1
    await anyio.to_thread.run_sync(anyio.from_thread.run_sync, queue.put_nowait, 2)
    assert [queue.get_nowait(), queue.get_nowait()] == [1, 2]


@pytest.mark.parametrize(
    ("method", "args", "run_sync_args"),
    [
        ("get_nowait", (), "queue.get_nowait"),
        ("task_done", (), "queue.task_done"),
        ("shutdown", (), "queue.shutdown"),
    ],
)
async def test_a_worker_thread_refusal_names_the_method(
    method: str, args: tuple[object, ...], run_sync_args: str
) -> None:
    queue: Queue[int] = Queue()
    await queue.put(1)
    with pytest.raises(RuntimeError) as info:
        await anyio.to_thread.run_sync(getattr(queue, method), *args)
    assert str(info.value) == (
        f"Queue.{method}() of a Queue in use by an event-loop run must be called from "
        f"the thread of its event loop (no event loop runs in this thread); from a "
        f"worker thread, use anyio.from_thread.run_sync({run_sync_args})"
    )
    # Nothing changed.
    assert queue.qsize() == 1
    assert not queue.is_shutdown()
