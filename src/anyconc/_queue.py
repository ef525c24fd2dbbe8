"""
FIFO, LIFO and priority queues with :class:`asyncio.Queue` semantics on every backend.

The semantics are those of Python 3.13's :mod:`asyncio` queues (``task_done()`` /
``join()``, ``shutdown(immediate=...)``, :exc:`QueueShutDown`), made to run on asyncio,
asyncio + uvloop and trio through AnyIO, and made run-portable: a queue holds no
loop-bound state between operations, so one created at import time can be used by any
number of event-loop runs, one after another.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from typing import Any, Generic, TypeVar

from anyio import Event

from ._lowlevel import (
    OneRunAtATime,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    checkpointed,
    get_ident,
)
from ._stats import QueueStatistics
from ._util import check_bool, check_number, check_optional_str

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

__all__ = [
    "LifoQueue",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
]

T = TypeVar("T")


class QueueEmpty(Exception):
    """Raised by :meth:`Queue.get_nowait` when the queue has no item."""


class QueueFull(Exception):
    """Raised by :meth:`Queue.put_nowait` when the queue has ``maxsize`` items."""


class QueueShutDown(Exception):
    """
    Raised by a queue operation that cannot proceed because the queue was shut down.

    ``put()`` / ``put_nowait()`` raise it as soon as :meth:`Queue.shutdown` has been
    called; ``get()`` / ``get_nowait()`` raise it once the queue is shut down *and* empty
    (at once after ``shutdown(immediate=True)``, which empties the queue).
    """


def _wakeup_next(waiters: deque[Event]) -> None:
    # A waiter that is cancelled removes itself from the deque in the same step in
    # which its cancellation is delivered, so the first one here is always live; a
    # waiter woken here but cancelled before it ran passes the wakeup on (see get/put).
    if waiters:
        waiters.popleft().set()


def _wakeup_all(waiters: deque[Event]) -> None:
    while waiters:
        waiters.popleft().set()


class Queue(Generic[T]):
    """
    A first-in, first-out queue for coordinating producer and consumer tasks.

    Semantics are those of :class:`asyncio.Queue` in Python 3.13, on every backend:

    * ``maxsize <= 0`` (the default) means unbounded. Otherwise :meth:`put` blocks while
      the queue holds ``maxsize`` items (backpressure), and :meth:`put_nowait` raises
      :exc:`QueueFull`. A float ``maxsize`` is accepted, as asyncio does (``1.3`` lets
      two items in).
    * :meth:`task_done` / :meth:`join`: every item put increments a counter of
      unfinished tasks, every ``task_done()`` decrements it, ``join()`` waits until it
      is zero.
    * :meth:`shutdown` makes puts raise :exc:`QueueShutDown` at once, gets raise it once
      the queue is empty, and wakes every blocked ``put()`` / ``get()``.
    * ``async for item in queue`` yields items until the queue is shut down and drained.
      It is plain ``get()``: call :meth:`task_done` yourself if you also use
      :meth:`join`.

    Beyond asyncio, and as in trio, every ``async`` method is a checkpoint, even when it
    would not block, in the order of trio's ``MemorySendChannel.send``: it checks for
    cancellation (raising the backend's cancellation exception, having done nothing),
    does the operation, then yields to the scheduler with the cancellation shielded.
    So the tasks that run during that yield already see the item a ``put()`` added, or
    the slot a ``get()`` freed (a blocked putter proceeds), and a cancellation that
    arrives during it is raised at the caller's next checkpoint instead, the operation
    having happened. On asyncio this holds for a native ``Task.cancel()`` too
    (``asyncio.timeout()``, ``wait_for()``): it is re-armed for the next yield, with
    its message and cancel count. A ``put()`` that finds the queue full, or a
    ``get()`` that finds it empty, first yields once, as a full checkpoint, so that a
    task already scheduled can make room or bring an item; then it waits if it still
    must (the wait is cancellable), and once woken it completes without a further
    yield. ``join()`` with unfinished items checks for cancellation, then waits. A cancelled ``put()`` has not put
    its item and a cancelled ``get()`` has not taken one, so cancellation never loses
    or duplicates an item. Waiters are served in first-come, first-served order, like
    asyncio (a task that calls ``get()`` while a woken getter has not run yet may take
    the item first; the woken one then waits again).

    The queue is not thread-safe (use it from the event-loop thread). It can be created
    at import time and used by any number of runs, one after another, on any backend;
    the items, the unfinished-task count and the shut-down flag carry over between
    runs, blocked waiters of a finished run do not (they were cancelled with it). It
    serves one run at a time: a run in another thread that uses it while the run it
    serves is still running gets a :exc:`RuntimeError` (give each thread's run its own
    queue).

    Example::

        queue: Queue[int] = Queue(maxsize=100)

        async def producer() -> None:
            for i in range(10):
                await queue.put(i)
            queue.shutdown()

        async def consumer() -> None:
            async for item in queue:
                print(item)

    :param maxsize: the number of items the queue holds before ``put()`` blocks; ``0``
        or less for no limit
    :param name: a name, used in the repr and statistics
    :raises TypeError: if ``maxsize`` is not a real number or ``name`` not a string
    :raises ValueError: if ``maxsize`` is NaN

    """

    __slots__ = (
        "__weakref__",
        "_getters",
        "_is_shutdown",
        "_join_waiters",
        "_maxsize",
        "_name",
        "_putters",
        "_queue",
        "_serving",
        "_unfinished_tasks",
    )

    _queue: Any

    def __init__(self, maxsize: float = 0, *, name: str | None = None) -> None:
        check_number(f"{type(self).__name__}()", "maxsize", maxsize)
        check_optional_str(f"{type(self).__name__}()", "name", name)
        self._name = name

        self._maxsize = maxsize
        self._getters: deque[Event] = deque()
        self._putters: deque[Event] = deque()
        self._join_waiters: deque[Event] = deque()
        self._unfinished_tasks = 0
        self._is_shutdown = False
        self._serving = OneRunAtATime(type(self).__name__)
        self._init(maxsize)

    # The storage hooks, overridden by LifoQueue and PriorityQueue (asyncio's names).
    # ``_queue`` must support len() and truth testing.

    def _init(self, maxsize: float) -> None:
        self._queue = deque()

    def _put(self, item: T) -> None:
        self._queue.append(item)

    def _get(self) -> T:
        return self._queue.popleft()  # type: ignore[no-any-return]

    @property
    def name(self) -> str | None:
        """The queue's name, or ``None``."""
        return self._name

    def statistics(self) -> QueueStatistics:
        """
        Return a snapshot of the queue's state.

        :return: its name, bound, size, unfinished tasks, waiting tasks and whether
            it is shut down

        """
        return QueueStatistics(
            self._name,
            self._maxsize,
            len(self._queue),
            self._unfinished_tasks,
            len(self._getters),
            len(self._putters),
            len(self._join_waiters),
            self._is_shutdown,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        # asyncio's format, so that logs read the same after switching (and the name).
        result = f"maxsize={self._maxsize!r}"
        if self._name is not None:
            result = f"name={self._name!r} {result}"
        if self._queue:
            result += f" _queue={list(self._queue)!r}"
        if self._getters:
            result += f" _getters[{len(self._getters)}]"
        if self._putters:
            result += f" _putters[{len(self._putters)}]"
        if self._unfinished_tasks:
            result += f" tasks={self._unfinished_tasks}"
        if self._is_shutdown:
            result += " shutdown"
        return result

    @property
    def maxsize(self) -> float:
        """The number of items allowed in the queue (``0`` or less: unbounded)."""
        return self._maxsize

    def qsize(self) -> int:
        """Return the number of items in the queue."""
        return len(self._queue)

    def empty(self) -> bool:
        """Return ``True`` if the queue has no item."""
        return not self._queue

    def full(self) -> bool:
        """
        Return ``True`` if the queue holds ``maxsize`` items.

        An unbounded queue (``maxsize <= 0``) is never full.
        """
        return 0 < self._maxsize <= len(self._queue)

    async def put(self, item: T) -> None:
        """
        Put an item into the queue, waiting while it is full.

        This is a checkpoint even when the queue has room, in trio's order (see the
        class docstring): tasks that run while it yields see the item. If it raises
        the caller's cancellation, the item was not put.

        Example::

            await queue.put("job")

        :param item: the item
        :raises QueueShutDown: if the queue is shut down (also when that happens while
            waiting for room)

        """
        if not 0 < self._maxsize <= len(self._queue):
            # trio's order (MemorySendChannel.send): check for cancellation, put, then
            # yield shielded, so that the tasks running in that yield see the item.
            await checkpointed(self.put_nowait, item)
            return

        # Full: wait, and the wait is the checkpoint; once there is room the item is
        # put without a further yield. A plain checkpoint comes first, so that a
        # consumer already scheduled can make room before this task blocks (without
        # it, a producer and a consumer in step block on every other item on trio,
        # whose scheduler runs a batch of ready tasks in either order).
        await checkpoint()
        while 0 < self._maxsize <= len(self._queue):
            self._serving.check("put")
            if self._is_shutdown:
                raise QueueShutDown
            putter = Event()
            self._putters.append(putter)
            try:
                await putter.wait()
            except BaseException:
                if putter.is_set():
                    # Woken by get_nowait() but cannot take the slot: pass it on.
                    if not self.full():
                        _wakeup_next(self._putters)
                else:
                    self._putters.remove(putter)
                raise

        self.put_nowait(item)

    def put_nowait(self, item: T) -> None:
        """
        Put an item into the queue without blocking.

        Example::

            queue.put_nowait("job")

        :param item: the item
        :raises QueueShutDown: if the queue is shut down
        :raises QueueFull: if the queue holds ``maxsize`` items

        """
        if self._serving.thread != get_ident():  # the inlined self._serving.check()
            self._serving.claim("put_nowait", "queue.put_nowait, item")
        if self._is_shutdown:
            raise QueueShutDown
        if 0 < self._maxsize <= len(self._queue):
            raise QueueFull

        self._put(item)
        self._unfinished_tasks += 1
        if self._getters:
            self._getters.popleft().set()

    async def get(self) -> T:
        """
        Remove and return an item, waiting while the queue is empty.

        This is a checkpoint even when an item is available, in trio's order (see the
        class docstring): tasks that run while it yields see the freed slot. If it
        raises the caller's cancellation, no item was taken.

        Example::

            job = await queue.get()

        :return: the item
        :raises QueueShutDown: if the queue is shut down and empty (also when that
            happens while waiting)

        """
        if self._queue:
            # trio's order, as put(): the freed slot is visible in the yield.
            return await checkpointed(_get_nowait, self)

        # Empty: wait (a plain checkpoint first, as in put()), then take the item
        # without a further yield.
        await checkpoint()
        while not self._queue:
            self._serving.check("get")
            if self._is_shutdown:
                raise QueueShutDown
            getter = Event()
            self._getters.append(getter)
            try:
                await getter.wait()
            except BaseException:
                if getter.is_set():
                    # Woken by put_nowait() but cannot take the item: pass it on.
                    if self._queue:
                        _wakeup_next(self._getters)
                else:
                    self._getters.remove(getter)
                raise

        return self.get_nowait()

    def get_nowait(self) -> T:
        """
        Remove and return an item if one is available at once.

        Example::

            try:
                job = queue.get_nowait()
            except QueueEmpty:
                job = None

        :return: the item
        :raises QueueShutDown: if the queue is shut down and empty
        :raises QueueEmpty: if the queue is empty

        """
        if self._serving.thread != get_ident():  # the inlined self._serving.check()
            self._serving.claim("get_nowait", "queue.get_nowait")
        if not self._queue:
            if self._is_shutdown:
                raise QueueShutDown
            raise QueueEmpty

        item = self._get()
        if self._putters:
            self._putters.popleft().set()
        return item

    def task_done(self) -> None:
        """
        Indicate that an item taken from the queue has been processed.

        Each ``put`` counts one unfinished task; each ``task_done()`` counts one
        finished. When none is left, every :meth:`join` returns.
        ``shutdown(immediate=True)`` marks the items it discards as done.

        Example::

            job = await queue.get()
            try:
                await handle(job)
            finally:
                queue.task_done()

        :raises ValueError: if called more times than items were put

        """
        self._serving.check("task_done", "queue.task_done")
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")

        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0:
            _wakeup_all(self._join_waiters)

    async def join(self) -> None:
        """
        Wait until every item put has been marked done with :meth:`task_done`.

        Returns at once (after a checkpoint, in trio's order) if nothing is unfinished. Shutting the
        queue down does not by itself end a ``join()``; ``shutdown(immediate=True)``
        does if the discarded items were the only unfinished ones.

        Example::

            await queue.join()

        """
        self._serving.check("join")
        await checkpoint_if_cancelled()
        if self._unfinished_tasks == 0:
            await cancel_shielded_checkpoint()
        else:
            waiter = Event()
            self._join_waiters.append(waiter)
            try:
                await waiter.wait()
            except BaseException:
                if not waiter.is_set():
                    self._join_waiters.remove(waiter)
                raise

    def shutdown(self, immediate: bool = False) -> None:
        """
        Shut the queue down: puts raise :exc:`QueueShutDown`, and so do gets once the
        queue is empty.

        Every blocked ``put()`` raises :exc:`QueueShutDown`; every blocked ``get()``
        does too (there is nothing to take, or it would not be blocked). With
        ``immediate=True`` the remaining items are discarded and each is marked done
        (as by :meth:`task_done`), which can end :meth:`join`. Calling it again is
        allowed (``immediate=True`` then still discards what is left).

        Example::

            queue.shutdown()              # let consumers drain what is there
            queue.shutdown(immediate=True)  # drop the rest now

        :param immediate: discard the remaining items instead of letting them be taken

        """
        check_bool("shutdown()", "immediate", immediate)
        self._serving.check("shutdown", "queue.shutdown")
        self._is_shutdown = True
        if immediate:
            while self._queue:
                self._get()
                if self._unfinished_tasks > 0:
                    self._unfinished_tasks -= 1
            if self._unfinished_tasks == 0:
                _wakeup_all(self._join_waiters)

        # Every blocked getter and putter re-checks and raises QueueShutDown.
        _wakeup_all(self._getters)
        _wakeup_all(self._putters)

    def is_shutdown(self) -> bool:
        """Return ``True`` if :meth:`shutdown` has been called."""
        return self._is_shutdown

    def __aiter__(self) -> Self:
        """Iterate with ``async for``: each step is :meth:`get`; ends when shut down
        and drained."""
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except QueueShutDown:
            raise StopAsyncIteration from None


def _get_nowait(queue: Queue[T]) -> T:
    return queue.get_nowait()


class PriorityQueue(Queue[T]):
    """
    A :class:`Queue` that returns the smallest item first (a binary heap).

    Items must be mutually comparable; the usual form is ``(priority, data)`` tuples
    (add a sequence number, ``(priority, seq, data)``, when ``data`` does not compare).

    Example::

        queue: PriorityQueue[tuple[int, str]] = PriorityQueue()
        await queue.put((2, "low"))
        await queue.put((1, "high"))
        assert await queue.get() == (1, "high")

    """

    __slots__ = ()

    def _init(self, maxsize: float) -> None:
        self._queue = []

    def _put(self, item: T) -> None:
        heapq.heappush(self._queue, item)

    def _get(self) -> T:
        return heapq.heappop(self._queue)  # type: ignore[no-any-return]


class LifoQueue(Queue[T]):
    """
    A :class:`Queue` that returns the most recently added item first (a stack).

    Example::

        queue: LifoQueue[int] = LifoQueue()
        await queue.put(1)
        await queue.put(2)
        assert await queue.get() == 2

    """

    __slots__ = ()

    def _init(self, maxsize: float) -> None:
        self._queue = []

    def _put(self, item: T) -> None:
        self._queue.append(item)

    def _get(self) -> T:
        return self._queue.pop()  # type: ignore[no-any-return]
