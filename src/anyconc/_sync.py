"""
AnyIO's :class:`~anyio.Lock`, :class:`~anyio.Semaphore`, :class:`~anyio.Condition` and
:class:`~anyio.CapacityLimiter`, made run-portable.

An AnyIO primitive binds itself to the first event loop that uses it: a module-level
``anyio.Lock()`` used by an asyncio run and then by a trio run fails in the second run.
The classes here keep their configuration on the object and the AnyIO primitive in a
:class:`~anyconc._lowlevel.PerRun`, made afresh the first time each run uses it. Within
a run they *are* AnyIO's primitives (same fairness, same checkpoints, same
``statistics()``); they subclass AnyIO's classes, so they are accepted wherever AnyIO
takes one (for example ``anyio.to_thread.run_sync(..., limiter=limiter)``).

What carries over from one run to the next: the configuration (``fast_acquire``,
a semaphore's ``initial_value`` and ``max_value``, a limiter's ``total_tokens``, also
when changed at run time). What does not: holders and waiters. A run starts with the
lock free, the semaphore at ``initial_value`` and no token borrowed, even if a task of
an earlier run never released (that task is gone with its run).

Runs at the same time in several threads are runs like any other: each has its own
primitive (a module-level lock excludes the tasks of each run from each other, not the
tasks of two runs: use a :class:`threading.Lock` around the shared resource for that).

Outside any run (plain code after a run has ended, a worker thread), the read-only
members answer for an unused primitive (a worker thread sees no run: AnyIO's
primitives are not thread-safe), and the operations that acquire, release or notify
raise :exc:`anyio.NoEventLoopError` naming the call (from a worker thread, call them in
the run with ``anyio.from_thread.run_sync()``), on every backend alike.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import TypeVar

import anyio
from anyio import (
    CapacityLimiterStatistics,
    ConditionStatistics,
    LockStatistics,
    NoEventLoopError,
    SemaphoreStatistics,
)

from ._lowlevel import PerRun, current_run_or_none
from ._util import check_bool, check_int, check_sync_callable

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

__all__ = ["CapacityLimiter", "Condition", "Lock", "Semaphore"]

T = TypeVar("T")
P = TypeVar("P")


def _this_run(per_run: PerRun[P]) -> P | None:
    """This run's primitive, or ``None`` when called outside any event loop."""
    try:
        return per_run.get()
    except NoEventLoopError:
        return None


def _outside_a_run(where: str) -> NoEventLoopError:
    return NoEventLoopError(
        f"{where} must be called from a task of an event-loop run (no event loop runs "
        f"in this thread); from a worker thread, use anyio.from_thread.run_sync()"
    )


def _in_run(per_run: PerRun[P], where: str) -> P:
    """This run's primitive, for an operation that needs a task of a run."""
    try:
        return per_run.get()
    except NoEventLoopError:
        raise _outside_a_run(where) from None


def _raise_if_outside_a_run(where: str) -> None:
    # On the error path of a release: outside any run the primitive found (another
    # run's) fails with its backend's own message; say what happened instead.
    if current_run_or_none() is None:
        raise _outside_a_run(where) from None


def _latest(per_run: PerRun[P]) -> P:
    """
    The primitive to release: the one made most recently.

    A task releasing a lock or a token it holds, or leaving ``async with``, holds this
    run's primitive, and this run made the latest one, so no run lookup is needed
    (that is a third of the cost of ``async with lock``). A wrong release still
    raises, from the primitive itself (it checks the owner).
    """
    value = per_run.peek()
    return per_run.get() if value is None else value


class Lock(anyio.Lock):
    """
    A mutual-exclusion lock: :class:`anyio.Lock`, usable from any number of runs.

    Fair (first come, first served); acquiring is a checkpoint, and with
    ``fast_acquire=True`` an uncontended acquire does not yield (AnyIO's option). The
    owner must release it; acquiring it again from the owner raises
    :exc:`RuntimeError`.

    Example::

        lock = Lock()  # at module level is fine

        async def safe_increment() -> None:
            global counter
            async with lock:
                counter += 1

    Per run: holders and waiters (also for runs at the same time in other threads);
    shared across runs: the configuration. See the module documentation.

    :param fast_acquire: if ``True``, an uncontended acquire returns without yielding
        to the scheduler (it still checks for cancellation)
    :raises TypeError: if ``fast_acquire`` is not a bool

    """

    __slots__ = ("_fast_acquire", "_per_run")

    def __new__(cls, *, fast_acquire: bool = False) -> Self:
        return object.__new__(cls)

    def __init__(self, *, fast_acquire: bool = False) -> None:
        check_bool("Lock()", "fast_acquire", fast_acquire)
        self._fast_acquire = fast_acquire
        self._per_run: PerRun[anyio.Lock] = PerRun(
            partial(anyio.Lock, fast_acquire=fast_acquire)
        )

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<{type(self).__module__}.{type(self).__qualname__} object at {id(self):#x} [{state}]>"

    async def __aenter__(self) -> None:
        await self._per_run.get().acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        _latest(self._per_run).release()

    @property
    def fast_acquire(self) -> bool:
        """Whether an uncontended acquire skips the scheduling yield."""
        return self._fast_acquire

    async def acquire(self) -> None:
        """
        Acquire the lock, waiting (fairly) while another task holds it.

        :raises RuntimeError: if the current task already holds it

        """
        await self._per_run.get().acquire()

    def acquire_nowait(self) -> None:
        """
        Acquire the lock without waiting.

        :raises ~anyio.WouldBlock: if it is held, or other tasks wait for it
        :raises RuntimeError: if the current task already holds it
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        _in_run(self._per_run, "Lock.acquire_nowait()").acquire_nowait()

    def release(self) -> None:
        """
        Release the lock, handing it to the next waiting task, if any.

        :raises RuntimeError: if the current task does not hold it
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        try:
            _latest(self._per_run).release()
        except RuntimeError:
            _raise_if_outside_a_run("Lock.release()")
            raise

    def locked(self) -> bool:
        """Return ``True`` if a task of the current run holds the lock."""
        lock = _this_run(self._per_run)
        return lock is not None and lock.locked()

    def statistics(self) -> LockStatistics:
        """Return AnyIO's statistics of this run's lock (an unused lock outside runs)."""
        lock = _this_run(self._per_run)
        if lock is None:
            return LockStatistics(False, None, 0)
        return lock.statistics()


class Condition(anyio.Condition):
    """
    A condition variable: :class:`anyio.Condition`, usable from any number of runs.

    :meth:`wait` releases the lock, waits for :meth:`notify` / :meth:`notify_all`
    and re-acquires the lock before returning (also when cancelled). ``notify`` and
    ``notify_all`` must be called with the lock held.

    Example::

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

    Per run: holders and waiters (also for runs at the same time in other threads);
    shared across runs: the configuration. See the module documentation.

    :param lock: the lock to use (an :class:`anyconc.Lock <Lock>`, so that it is
        run-portable too); a new one if omitted
    :raises TypeError: if ``lock`` is not an anyconc ``Lock``

    """

    __slots__ = ("_per_run",)

    _lock: Lock

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is None:
            lock = Lock()
        elif not isinstance(lock, Lock):
            raise TypeError(
                "Condition() argument 'lock' must be an anyconc.Lock or None (AnyIO's "
                f"locks are bound to one event loop), got {type(lock).__name__}"
            )
        self._lock = lock
        self._per_run: PerRun[anyio.Condition] = PerRun(self._make)

    def _make(self) -> anyio.Condition:
        return anyio.Condition(self._lock._per_run.get())

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    async def acquire(self) -> None:
        """Acquire the underlying lock."""
        await self._lock.acquire()

    def acquire_nowait(self) -> None:
        """
        Acquire the underlying lock without waiting.

        :raises ~anyio.WouldBlock: if the lock is not free
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        try:
            self._lock.acquire_nowait()
        except NoEventLoopError:
            raise _outside_a_run("Condition.acquire_nowait()") from None

    def release(self) -> None:
        """
        Release the underlying lock.

        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        try:
            self._lock.release()
        except NoEventLoopError:
            raise _outside_a_run("Condition.release()") from None

    def locked(self) -> bool:
        """Return ``True`` if the underlying lock is held."""
        return self._lock.locked()

    def notify(self, n: int = 1) -> None:
        """
        Wake up to ``n`` tasks waiting in :meth:`wait`, longest-waiting first.

        :raises TypeError: if ``n`` is not an integer
        :raises ValueError: if ``n`` is negative (AnyIO and asyncio let it pass as
            ``0``; anyconc rejects it, as every negative count)
        :raises RuntimeError: if the current task does not hold the lock
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        check_int("Condition.notify()", "n", n, minimum=0)
        _in_run(self._per_run, "Condition.notify()").notify(n)

    def notify_all(self) -> None:
        """
        Wake every task waiting in :meth:`wait`.

        :raises RuntimeError: if the current task does not hold the lock
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        _in_run(self._per_run, "Condition.notify_all()").notify_all()

    async def wait(self) -> None:
        """
        Release the lock, wait for a notification, re-acquire the lock.

        :raises RuntimeError: if the current task does not hold the lock

        """
        await self._per_run.get().wait()

    async def wait_for(self, predicate: Callable[[], T]) -> T:
        """
        Wait until ``predicate()`` is true (it is checked first, then after each
        notification, with the lock held).

        :param predicate: returns a truthy value when the condition is met
        :return: the predicate's last result
        :raises TypeError: if ``predicate`` is not callable (a coroutine object is
            closed) or is an async function (its coroutine would always be true, and
            never awaited)

        """
        check_sync_callable(
            "Condition.wait_for()",
            "predicate",
            predicate,
            usage="condition.wait_for({})",
            fix="the predicate is called with the lock held: use a plain 'def'",
        )
        return await self._per_run.get().wait_for(predicate)

    def statistics(self) -> ConditionStatistics:
        """Return AnyIO's statistics of this run's condition."""
        condition = _this_run(self._per_run)
        if condition is None:
            return ConditionStatistics(0, self._lock.statistics())
        return condition.statistics()


class Semaphore(anyio.Semaphore):
    """
    A counting semaphore: :class:`anyio.Semaphore`, usable from any number of runs.

    Fair (first come, first served). Each run starts with ``initial_value`` tokens.

    Example::

        semaphore = Semaphore(3)  # at most three downloads at a time

        async def download(url: str) -> bytes:
            async with semaphore:
                return await fetch(url)

    Per run: holders and waiters (also for runs at the same time in other threads);
    shared across runs: the configuration. See the module documentation.

    :param initial_value: the number of tokens at the start of each run
    :param max_value: if given, :meth:`release` raises :exc:`ValueError` rather than
        go above it
    :param fast_acquire: if ``True``, an uncontended acquire returns without yielding
        to the scheduler (it still checks for cancellation)
    :raises TypeError: if ``initial_value`` or ``max_value`` is not an int, or
        ``fast_acquire`` not a bool
    :raises ValueError: if ``initial_value`` is negative or ``max_value`` is below it

    """

    __slots__ = ("_initial_value", "_max_value", "_per_run")

    def __new__(
        cls,
        initial_value: int,
        *,
        max_value: int | None = None,
        fast_acquire: bool = False,
    ) -> Self:
        return object.__new__(cls)

    def __init__(
        self,
        initial_value: int,
        *,
        max_value: int | None = None,
        fast_acquire: bool = False,
    ) -> None:
        check_int("Semaphore()", "initial_value", initial_value, minimum=0)
        check_int("Semaphore()", "max_value", max_value, minimum=0, optional=True)
        if max_value is not None and max_value < initial_value:
            raise ValueError(
                f"Semaphore() argument 'max_value' must be >= initial_value "
                f"({initial_value}), got {max_value}"
            )
        check_bool("Semaphore()", "fast_acquire", fast_acquire)

        self._initial_value = initial_value
        self._max_value = max_value
        self._fast_acquire = fast_acquire
        self._per_run: PerRun[anyio.Semaphore] = PerRun(
            partial(
                anyio.Semaphore,
                initial_value,
                max_value=max_value,
                fast_acquire=fast_acquire,
            )
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} object at "
            f"{id(self):#x} [value={self.value}, max_value={self._max_value}]>"
        )

    async def __aenter__(self) -> Self:
        await self._per_run.get().acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        _latest(self._per_run).release()

    async def acquire(self) -> None:
        """Take a token, waiting (fairly) while there is none."""
        await self._per_run.get().acquire()

    def acquire_nowait(self) -> None:
        """
        Take a token without waiting.

        :raises ~anyio.WouldBlock: if there is none
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        _in_run(self._per_run, "Semaphore.acquire_nowait()").acquire_nowait()

    def release(self) -> None:
        """
        Give a token back, handing it to the next waiting task, if any.

        :raises ValueError: if that would exceed ``max_value``
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        # Not _latest(): a semaphore can be released by a task that never acquired it
        # (a signal), so the first use in a run may be a release.
        _in_run(self._per_run, "Semaphore.release()").release()

    @property
    def value(self) -> int:
        """The tokens available in the current run (``initial_value`` outside runs)."""
        semaphore = _this_run(self._per_run)
        return self._initial_value if semaphore is None else semaphore.value

    @property
    def initial_value(self) -> int:
        """The tokens each run starts with."""
        return self._initial_value

    @property
    def max_value(self) -> int | None:
        """The most tokens the semaphore may hold, or ``None``."""
        return self._max_value

    def statistics(self) -> SemaphoreStatistics:
        """Return AnyIO's statistics of this run's semaphore."""
        semaphore = _this_run(self._per_run)
        if semaphore is None:
            return SemaphoreStatistics(0)
        return semaphore.statistics()


def _check_total_tokens(where: str, value: float) -> None:
    # An int, or math.inf (AnyIO's rule).
    if not (isinstance(value, float) and value == math.inf):
        check_int(where, "total_tokens", value, minimum=0, alternative="math.inf")


class CapacityLimiter(anyio.CapacityLimiter):
    """
    A capacity limiter: :class:`anyio.CapacityLimiter`, usable from any number of runs.

    Each borrower (by default the current task) holds at most one token; waiting is
    fair. ``total_tokens`` can be changed at any time (also outside a run); raising
    it wakes as many waiters as there are new tokens. The value carries over to later
    runs; borrowers do not.

    Being an :class:`anyio.CapacityLimiter`, it can be passed as ``limiter=`` to
    ``anyio.to_thread.run_sync``.

    Example::

        limiter = CapacityLimiter(10)

        async def handle(request: Request) -> Response:
            async with limiter:  # at most ten at a time
                return await process(request)

    Per run: holders and waiters (also for runs at the same time in other threads);
    shared across runs: the configuration. See the module documentation.

    :param total_tokens: the number of tokens (an int, or ``math.inf``)
    :raises TypeError: if ``total_tokens`` is neither an int nor ``math.inf``
    :raises ValueError: if ``total_tokens`` is negative

    """

    __slots__ = ("_per_run", "_total_tokens")

    def __new__(cls, total_tokens: float) -> Self:
        return object.__new__(cls)

    def __init__(self, total_tokens: float) -> None:
        _check_total_tokens("CapacityLimiter()", total_tokens)
        self._total_tokens = total_tokens
        self._per_run: PerRun[anyio.CapacityLimiter] = PerRun(self._make)

    def _make(self) -> anyio.CapacityLimiter:
        return anyio.CapacityLimiter(self._total_tokens)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} object at "
            f"{id(self):#x} [borrowed={self.borrowed_tokens}/{self._total_tokens}]>"
        )

    async def __aenter__(self) -> None:
        await self._per_run.get().acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        _latest(self._per_run).release()

    @property
    def total_tokens(self) -> float:
        """
        The number of tokens; settable (an int or ``math.inf``, >= 0).

        Setting it inside a run applies at once to that run (raising it wakes
        waiters); the value also applies to every later run.
        """
        return self._total_tokens

    @total_tokens.setter
    def total_tokens(self, value: float) -> None:
        _check_total_tokens("CapacityLimiter.total_tokens", value)
        self._total_tokens = value
        limiter = _this_run(self._per_run)
        if limiter is not None:
            limiter.total_tokens = value

    @property
    def borrowed_tokens(self) -> int:
        """The tokens borrowed in the current run (0 outside runs)."""
        limiter = _this_run(self._per_run)
        return 0 if limiter is None else limiter.borrowed_tokens

    @property
    def available_tokens(self) -> float:
        """The tokens free in the current run (``total_tokens`` outside runs)."""
        limiter = _this_run(self._per_run)
        return self._total_tokens if limiter is None else limiter.available_tokens

    def acquire_nowait(self) -> None:
        """
        Borrow a token for the current task without waiting.

        :raises ~anyio.WouldBlock: if none is free
        :raises RuntimeError: if the task already holds one
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        _in_run(self._per_run, "CapacityLimiter.acquire_nowait()").acquire_nowait()

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        """
        Borrow a token for ``borrower`` without waiting.

        :param borrower: the object that will hold the token
        :raises ~anyio.WouldBlock: if none is free
        :raises RuntimeError: if ``borrower`` already holds one
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        _in_run(
            self._per_run, "CapacityLimiter.acquire_on_behalf_of_nowait()"
        ).acquire_on_behalf_of_nowait(borrower)

    async def acquire(self) -> None:
        """
        Borrow a token for the current task, waiting (fairly) for one.

        :raises RuntimeError: if the task already holds one

        """
        await self._per_run.get().acquire()

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        """
        Borrow a token for ``borrower``, waiting (fairly) for one.

        :param borrower: the object that will hold the token
        :raises RuntimeError: if ``borrower`` already holds one

        """
        await self._per_run.get().acquire_on_behalf_of(borrower)

    def release(self) -> None:
        """
        Give back the current task's token.

        :raises RuntimeError: if the task holds none
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        try:
            _latest(self._per_run).release()
        except RuntimeError:
            _raise_if_outside_a_run("CapacityLimiter.release()")
            raise

    def release_on_behalf_of(self, borrower: object) -> None:
        """
        Give back ``borrower``'s token.

        :param borrower: the object holding the token
        :raises RuntimeError: if ``borrower`` holds none
        :raises anyio.NoEventLoopError: if no event loop runs in this thread

        """
        try:
            _latest(self._per_run).release_on_behalf_of(borrower)
        except RuntimeError:
            _raise_if_outside_a_run("CapacityLimiter.release_on_behalf_of()")
            raise

    def statistics(self) -> CapacityLimiterStatistics:
        """Return AnyIO's statistics of this run's limiter."""
        limiter = _this_run(self._per_run)
        if limiter is None:
            return CapacityLimiterStatistics(0, self._total_tokens, (), 0)
        return limiter.statistics()
