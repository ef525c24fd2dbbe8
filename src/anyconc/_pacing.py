"""Pacing: rate limiting, drift-free periodic ticks and debouncing."""

from __future__ import annotations

import inspect
import math
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import partial
from types import TracebackType
from typing import ParamSpec

import anyio
from anyio import NoEventLoopError
from anyio.lowlevel import checkpoint

from ._background import BackgroundTask, create_background_task
from ._lowlevel import PerRun
from ._stats import RateLimiterStatistics
from ._util import callable_name, check_callable, check_number, check_optional_str

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

__all__ = ["Debouncer", "RateLimiter", "every"]

P = ParamSpec("P")


# --- RateLimiter ---


class _LimiterState:
    """One run's state of a RateLimiter (times on that run's clock)."""

    __slots__ = ("admitted", "waiters")

    def __init__(self, capacity: int) -> None:
        # Admission times of the last ``capacity`` entries, oldest first.
        self.admitted: deque[float] = deque(maxlen=capacity)
        # Tasks waiting for their turn, in arrival order; the head waits for its slot,
        # the others for their event (set when they become the head).
        self.waiters: deque[anyio.Event] = deque()


class RateLimiter:
    """
    Let at most ``rate`` entries through per ``per`` seconds, in arrival order.

    ``async with limiter:`` waits for the caller's turn, then runs the block. It limits
    how often blocks *start*, not how many run at once (combine it with a
    :class:`~anyconc.CapacityLimiter` for that); leaving the block does nothing.

    The exact rule:

    * a whole-numbered ``rate`` (``10``, ``10.0``) is a sliding window: an entry is let
      in when fewer than ``rate`` entries were let in during the last ``per`` seconds. So
      bursts of up to ``rate`` entries go through at once, and no window of ``per``
      seconds ever holds more than ``rate`` entries;
    * a fractional ``rate`` (``0.5``, ``2.5``) spaces entries evenly, one every
      ``per / rate`` seconds, without bursts.

    Fairness: callers are let in strictly first come, first served; a newcomer never
    overtakes a waiting caller, even when its own slot would be free. A waiter that is
    cancelled leaves the queue at once and its turn passes to the next one. Every
    ``acquire`` is a checkpoint, also when it is let in at once.

    The limiter may be made at import time and used by any number of event-loop runs,
    one after another or at the same time in several threads, on any backend. Its
    history and its waiters are per run, nothing is shared across runs (the clocks of
    two runs are unrelated): each run has its own ``rate`` per ``per`` seconds, and a
    new run starts with a fresh window.

    Example::

        limiter = anyconc.RateLimiter(5, per=1.0)   # at most 5 requests a second

        async def fetch(url):
            async with limiter:
                return await client.get(url)

    :param rate: entries allowed per ``per`` seconds (a positive number)
    :param per: the length of the window, in seconds (a positive number)
    :param name: a name, used in the repr and statistics
    :raises TypeError: if an argument is not a number
    :raises ValueError: if an argument is not positive and finite

    """

    __slots__ = ("_capacity", "_name", "_per", "_rate", "_state", "_window")

    def __init__(
        self, rate: float, per: float = 1.0, *, name: str | None = None
    ) -> None:
        self._rate = float(
            check_number(
                "RateLimiter()", "rate", rate, minimum=0, inclusive=False, finite=True
            )
        )
        self._per = float(
            check_number(
                "RateLimiter()", "per", per, minimum=0, inclusive=False, finite=True
            )
        )
        check_optional_str("RateLimiter()", "name", name)
        self._name = name
        if self._rate.is_integer():
            self._capacity = int(self._rate)
            self._window = self._per
        else:
            self._capacity = 1
            self._window = self._per / self._rate

        capacity = self._capacity
        self._state: PerRun[_LimiterState] = PerRun(lambda: _LimiterState(capacity))

    @property
    def rate(self) -> float:
        """Entries allowed per :attr:`per` seconds."""
        return self._rate

    @property
    def per(self) -> float:
        """The length of the window, in seconds."""
        return self._per

    @property
    def name(self) -> str | None:
        """The limiter's name, or ``None``."""
        return self._name

    def statistics(self) -> RateLimiterStatistics:
        """
        Return a snapshot of the limiter's state, in the current run.

        :return: its name, rate and window, the entries let in within the current
            window, and the tasks waiting (outside a run -- plain code, a worker
            thread -- those of the latest run to use the limiter, in any thread, all
            its recorded entries counted)

        """
        state: _LimiterState | None = self._state.get_or_none()
        if state is not None:
            now = anyio.current_time()
        else:
            state = self._state.latest()
            now = math.inf
        if state is None:
            return RateLimiterStatistics(self._name, self._rate, self._per, 0, 0)

        start = now - self._window
        admitted = (
            sum(1 for t in state.admitted if t > start)
            if now != math.inf
            else (len(state.admitted))
        )
        return RateLimiterStatistics(
            self._name, self._rate, self._per, admitted, len(state.waiters)
        )

    def __repr__(self) -> str:
        # anyconc's one repr style: <Class name=... key=value ...>
        return (
            f"<{type(self).__qualname__} name={self._name!r} rate={self._rate!r} "
            f"per={self._per!r}>"
        )

    def _next_slot(self, state: _LimiterState, now: float) -> float:
        if len(state.admitted) < self._capacity:
            return now

        return max(now, state.admitted[0] + self._window)

    async def acquire(self) -> None:
        """Wait for the caller's turn (see the class description)."""
        await checkpoint()
        state = self._state.get()
        now = anyio.current_time()
        if not state.waiters and self._next_slot(state, now) <= now:
            state.admitted.append(now)
            return

        turn = anyio.Event()
        state.waiters.append(turn)
        try:
            if state.waiters[0] is not turn:
                await turn.wait()

            # Only the head admits anyone, so its slot cannot move while it sleeps.
            slot = self._next_slot(state, anyio.current_time())
            await anyio.sleep_until(slot)
            state.admitted.append(max(slot, anyio.current_time()))
        finally:
            if state.waiters[0] is turn:
                state.waiters.popleft()
                if state.waiters:
                    state.waiters[0].set()
            else:
                state.waiters.remove(turn)

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


# --- every ---


class _Schedule:
    """One run's schedule of an ``every()`` iterator (times on that run's clock)."""

    __slots__ = ("index", "start", "started")

    def __init__(self) -> None:
        self.started = False
        self.start = 0.0
        self.index = 0


class _Ticks:
    __slots__ = ("_interval", "_runs")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._runs: PerRun[_Schedule] = PerRun(_Schedule)

    def __repr__(self) -> str:
        return f"every({self._interval!r})"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> float:
        schedule = self._runs.get()
        if not schedule.started:
            # First tick, or first in a new run (whose clock has nothing to do with
            # the previous run's): the schedule starts now.
            await checkpoint()
            schedule.started = True
            schedule.start = anyio.current_time()
            schedule.index = 0
            return schedule.start

        # The first tick not in the past; the tolerance keeps a tick that is due right
        # now (up to float rounding) from being counted as missed.
        elapsed = (anyio.current_time() - schedule.start) / self._interval
        index = max(schedule.index + 1, math.ceil(elapsed - 1e-9))
        tick = schedule.start + index * self._interval
        await anyio.sleep_until(tick)
        schedule.index = index
        return tick


def every(interval: float) -> AsyncIterator[float]:
    """
    Tick every ``interval`` seconds, without drift.

    The first tick is at once (when iteration starts), the ``n``-th at exactly
    ``start + n * interval``: each yielded float is the tick's *scheduled* time on the
    :func:`anyio.current_time` clock (so ``anyio.current_time() - tick`` is how late the
    body started). The schedule does not move when the body is slow; a tick whose time
    has passed while the body ran is skipped, not bunched: after a body that overran
    by 2.5 intervals, the next tick is the next one on the schedule, once. A body that
    ends exactly on a tick gets that tick at once.

    Each step is a checkpoint. The iterator needs no cleanup (``break`` out of it
    freely). Iterated again in a later event-loop run, it starts a new schedule; the
    schedule is per run (also for runs at the same time in several threads).

    Example::

        async for tick in anyconc.every(5.0):
            await report_metrics()

    :param interval: seconds between ticks (a positive finite number)
    :return: an async iterator of scheduled tick times
    :raises TypeError: if ``interval`` is not a number
    :raises ValueError: if ``interval`` is not positive and finite

    """
    return _Ticks(
        float(
            check_number(
                "every()", "interval", interval, minimum=0, inclusive=False, finite=True
            )
        )
    )


# --- Debouncer ---


class _DebounceState:
    """A Debouncer's state in one event-loop run."""

    __slots__ = ("pending", "running")

    def __init__(self) -> None:
        self.pending: _Run | None = None
        self.running: _Run | None = None


class _Run:
    """One scheduled run of a Debouncer."""

    __slots__ = ("finished", "handle")

    def __init__(self) -> None:
        self.handle: BackgroundTask[None] | None = None
        # Set when the run has started (made then: it belongs to the current run).
        self.finished: anyio.Event | None = None


class Debouncer:
    """
    Collapse a burst of calls into one run of the last call, ``delay`` seconds after it.

    ``debouncer(func, *args)`` is a plain call (no ``await``): it schedules
    ``func(*args)`` to run ``delay`` seconds later, as a background task owned by
    anyconc's background supervisor (see :func:`~anyconc.create_background_task`), and
    drops the run it had scheduled before, if that one has not started yet. So calls
    closer together than ``delay`` end in a single run, of the *last* call's function
    and arguments, ``delay`` after the last call. ``func`` may be an async function
    (its result is awaited) or a plain function.

    Decisions where a debouncer has to choose:

    * a run that has started is never cancelled by a later call; the later call
      schedules a new run;
    * runs never overlap: a run that is due while the previous one is still going
      waits for it to finish first (it can still be superseded while it waits);
    * a run that fails is logged once, with its traceback, on the ``anyconc`` logger
      (it is a background task nobody awaits);
    * the pending run belongs to the run of the event loop: the supervisor cancels it
      when the run (or the enclosing :class:`~anyconc.BackgroundTasks` block) ends.
      The debouncer may be made at import time and used by one event-loop run after
      another, on any backend, or by several at the same time in different threads:
      its scheduled and running calls are per run, nothing is shared across runs.

    Example::

        save_later = anyconc.Debouncer(0.5)

        async def on_keystroke(doc):
            save_later(save, doc)   # saved once, 0.5 s after the typing stops

    :param delay: seconds of quiet before the run (a non-negative finite number)
    :param name: a name, used in the repr and as the name of its runs' background
        tasks (so in their log lines and events)
    :raises TypeError: if ``delay`` is not a number
    :raises ValueError: if ``delay`` is negative or not finite

    """

    __slots__ = ("_delay", "_name", "_runs")

    def __init__(self, delay: float, *, name: str | None = None) -> None:
        self._delay = float(
            check_number("Debouncer()", "delay", delay, minimum=0, finite=True)
        )
        check_optional_str("Debouncer()", "name", name)
        self._name = name
        self._runs: PerRun[_DebounceState] = PerRun(_DebounceState)

    @property
    def delay(self) -> float:
        """Seconds of quiet before the run."""
        return self._delay

    @property
    def pending(self) -> bool:
        """
        ``True`` if a run is scheduled and has not started yet.

        Outside any event-loop run (plain code, a worker thread), it tells about the
        latest run to use the debouncer, in any thread (``False`` once that run has
        ended: its scheduled call was cancelled with it).
        """
        state = self._runs.get_or_none()
        if state is None:
            state = self._runs.latest()
        pending = None if state is None else state.pending
        return (
            pending is not None
            and pending.handle is not None
            and not pending.handle.done()
        )

    @property
    def name(self) -> str | None:
        """The debouncer's name (also its runs' task name), or ``None``."""
        return self._name

    def __repr__(self) -> str:
        return (
            f"<{type(self).__qualname__} name={self._name!r} delay={self._delay!r} "
            f"pending={self.pending}>"
        )

    def cancel(self) -> bool:
        """
        Drop the scheduled run, if it has not started yet.

        The scheduled run belongs to its event-loop run: drop it from a task of that
        run. Outside any run there is nothing to drop (``False``), unless the latest
        run to use the debouncer, in another thread, has a run scheduled: then the call
        is refused (the run's tasks are not thread-safe).

        :return: ``True`` if a scheduled run was dropped
        :raises RuntimeError: if called outside any run (a worker thread, plain code)
            while a run scheduled by a running event loop is pending

        """
        state = self._runs.get_or_none()
        if state is None:
            if self.pending:
                raise RuntimeError(
                    "Debouncer.cancel() must be called from a task of the event-loop "
                    "run that scheduled the call (no event loop runs in this thread); "
                    "from a worker thread, use anyio.from_thread.run_sync("
                    "debouncer.cancel)"
                )
            return False

        pending = state.pending
        if pending is None:
            return False

        state.pending = None
        return pending.handle is not None and pending.handle.cancel()

    def __call__(
        self, func: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """
        Schedule ``func(*args, **kwargs)`` to run ``delay`` seconds from now, replacing
        the run scheduled before if it has not started. If ``func`` returns an
        awaitable, it is awaited.

        :raises TypeError: if ``func`` is not callable (a coroutine object passed
            instead of the function is closed)
        :raises RuntimeError: if no event loop is running

        """
        check_callable("Debouncer.__call__()", "func", func, usage="debouncer({}, ...)")

        try:
            state = self._runs.get()
        except NoEventLoopError:
            raise RuntimeError(
                "a Debouncer must be called from a task of a running event loop"
            ) from None

        previous = state.pending
        if previous is not None and previous.handle is not None:
            previous.handle.cancel()

        scheduled = _Run()
        scheduled.handle = create_background_task(
            self._fire(state, scheduled, partial(func, *args, **kwargs)),
            name=f"anyconc.Debouncer({callable_name(func)})"
            if self._name is None
            else self._name,
        )
        state.pending = scheduled

    async def _fire(
        self, state: _DebounceState, scheduled: _Run, call: Callable[[], object]
    ) -> None:
        await anyio.sleep(self._delay)
        while state.running is not None:
            assert state.running.finished is not None
            await state.running.finished.wait()

        if state.pending is scheduled:
            state.pending = None

        scheduled.finished = anyio.Event()
        state.running = scheduled
        try:
            result = call()
            if inspect.isawaitable(result):
                await result
        finally:
            state.running = None
            scheduled.finished.set()
