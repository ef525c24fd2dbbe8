"""A circuit breaker: stop calling a failing dependency for a while."""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar

import anyio
from anyio import NoEventLoopError, get_cancelled_exc_class
from anyio.lowlevel import checkpoint

from . import _instrument
from ._instrument import CircuitStateChanged
from ._lowlevel import PerRun
from ._stats import CircuitBreakerStatistics
from ._util import (
    check_async_callable,
    check_int,
    check_number,
    check_optional_str,
    not_awaitable_error,
)

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

__all__ = ["CircuitBreaker", "CircuitOpenError", "CircuitState"]

P = ParamSpec("P")
T = TypeVar("T")

CircuitState: TypeAlias = Literal["closed", "open", "half-open"]

class _RunClock:
    """When the breaker opened, on one run's clock (the clocks of two runs are unrelated)."""

    __slots__ = ("opened", "opened_at")

    def __init__(self) -> None:
        self.opened = -1  # which opening (the breaker's count of them) opened_at is of
        self.opened_at = 0.0


# Guards the state of every breaker: runs in several threads may share one.
_lock = threading.RLock()

# A call's admission: the breaker's generation when it was let in, and whether it is a
# half-open trial call. Outcomes of calls let in under an earlier generation (before the
# breaker last changed state) are ignored.
_Ticket: TypeAlias = "tuple[int, bool]"

# The tickets of the ``async with breaker:`` blocks each task is in, innermost last. Kept
# per task (a context variable) because one breaker serves many tasks at once.
_entered: contextvars.ContextVar[tuple[tuple[CircuitBreaker, _Ticket], ...]] = (
    contextvars.ContextVar("anyconc_circuit_breakers", default=())
)


class CircuitOpenError(Exception):
    """
    Raised instead of calling through a :class:`CircuitBreaker` that is open.

    :attr retry_after: seconds until the breaker lets a trial call through; ``0.0`` when
        it is half-open and all its trial slots are taken (their outcome decides, soon)
    """

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        if message is None:
            message = f"circuit breaker is open; retry after {retry_after:.3f} seconds"

        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[Self], tuple[float, str]]:
        return type(self), (self.retry_after, str(self))


class CircuitBreaker:
    """
    Stop calling a failing dependency for a while, then probe it.

    The states:

    * ``"closed"``: calls go through. ``failure_threshold`` *consecutive* expected
      failures open the breaker; a success resets the count.
    * ``"open"``: every call is rejected at once with :exc:`CircuitOpenError`, whose
      ``retry_after`` is the time left until ``recovery_timeout`` has passed since the
      breaker opened.
    * ``"half-open"`` (once ``recovery_timeout`` has passed): up to
      ``half_open_max_calls`` trial calls are let through at the same time, the others
      are rejected (``retry_after=0.0``). The first trial to succeed closes the breaker;
      the first to fail with an expected exception opens it again, for another full
      ``recovery_timeout``.

    What counts:

    * an exception that is an instance of ``expected`` is a failure;
    * any other exception is *neutral*: it propagates, does not count as a failure,
      does not reset the failure count, and does not close a half-open breaker (an
      unexpected ``KeyError`` says nothing about the dependency's health);
    * a cancellation (of the caller or of the call) is neutral too, whatever
      ``expected`` says. A cancelled (or neutral) half-open trial gives its trial slot
      back, so the next caller becomes a trial;
    * the outcome of a call let in before the breaker last changed state is ignored:
      a slow call admitted while closed cannot re-open a breaker that has meanwhile
      been closed again by a trial, nor close one that has opened.

    Three ways to use it, all equivalent::

        breaker = anyconc.CircuitBreaker(failure_threshold=3, recovery_timeout=30)

        async with breaker:
            await client.get(url)

        await breaker.call(client.get, url)

        @breaker
        async def fetch(url: str) -> Response: ...

    Admission is checked after one checkpoint (so a rejected caller in a loop still
    lets other tasks run, and a cancelled caller never takes a trial slot), and is a
    single synchronous step, so any number of concurrent callers see a consistent state.

    Per run and shared across runs: the health (state, failure count, trial calls in
    flight) is shared by every run, one after another or at the same time in several
    threads, and is thread-safe: a breaker at module level protects a dependency for the
    whole process. Only the clock is per run: time is :func:`anyio.current_time`, which
    has no meaning across event-loop runs, so an open window carries over to another
    run *in full*: the first time a run touches an open breaker, its
    ``recovery_timeout`` restarts from that moment on that run's clock (never closing
    earlier than intended). A trial call gives its slot back when it ends, also when it
    is cancelled because its run ends.

    :param failure_threshold: consecutive expected failures that open the breaker
        (``>= 1``)
    :param recovery_timeout: seconds the breaker stays open before letting trial calls
        through (``>= 0``)
    :param half_open_max_calls: trial calls let through at the same time while half-open
        (``>= 1``)
    :param expected: the exception type, or tuple of types, that count as failures
    :param name: a name (the dependency it guards), used in logs, events
        (:class:`~anyconc.CircuitStateChanged`), statistics and the repr
    :raises TypeError: if an argument has the wrong type
    :raises ValueError: if a numeric argument is out of range

    """

    __slots__ = (
        "_expected",
        "_failure_threshold",
        "_failures",
        "_generation",
        "_half_open_max_calls",
        "_name",
        "_openings",
        "_recovery_timeout",
        "_runs",
        "_state",
        "_trials",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 1,
        expected: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        name: str | None = None,
    ) -> None:
        self._failure_threshold: int = check_int(
            "CircuitBreaker()", "failure_threshold", failure_threshold
        )
        self._recovery_timeout = float(
            check_number(
                "CircuitBreaker()", "recovery_timeout", recovery_timeout, minimum=0
            )
        )
        self._half_open_max_calls: int = check_int(
            "CircuitBreaker()", "half_open_max_calls", half_open_max_calls
        )
        types = expected if isinstance(expected, tuple) else (expected,)
        if not types or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in types
        ):
            raise TypeError(
                f"CircuitBreaker() argument 'expected' must be an exception type or a "
                f"non-empty tuple of them, got {expected!r}"
            )
        self._expected = expected
        check_optional_str("CircuitBreaker()", "name", name)
        self._name = name

        self._state: CircuitState = "closed"
        self._failures = 0
        self._openings = 0
        self._trials = 0
        self._generation = 0
        self._runs: PerRun[_RunClock] = PerRun(_RunClock)

    @property
    def name(self) -> str | None:
        """The breaker's name, or ``None``."""
        return self._name

    @property
    def failure_threshold(self) -> int:
        """Consecutive expected failures that open the breaker."""
        return self._failure_threshold

    @property
    def recovery_timeout(self) -> float:
        """Seconds the breaker stays open before trial calls are let through."""
        return self._recovery_timeout

    @property
    def half_open_max_calls(self) -> int:
        """Trial calls let through at the same time while half-open."""
        return self._half_open_max_calls

    @property
    def expected(self) -> type[BaseException] | tuple[type[BaseException], ...]:
        """The exception type(s) that count as failures."""
        return self._expected

    @property
    def failure_count(self) -> int:
        """Consecutive expected failures counted while closed."""
        return self._failures

    @property
    def state(self) -> CircuitState:
        """
        ``"closed"``, ``"open"`` or ``"half-open"``, now.

        An open breaker whose ``recovery_timeout`` has passed reads ``"half-open"``.
        Outside an event-loop run there is no clock: the state last reached in a run is
        returned (an open breaker reads ``"open"``).
        """
        try:
            now = anyio.current_time()
        except NoEventLoopError:
            return self._state

        with _lock:
            if (
                self._state == "open"
                and now >= self._opened_at(now) + self._recovery_timeout
            ):
                return "half-open"

            return self._state

    def statistics(self) -> CircuitBreakerStatistics:
        """
        Return a snapshot of the breaker's state.

        :return: its name, state (as :attr:`state`), failure count and threshold, trial
            calls in flight, recovery timeout, the seconds until it lets a trial call
            through, and how many times it has opened

        """
        state = self.state
        retry_after = 0.0
        if state == "open":
            try:
                now = anyio.current_time()
            except NoEventLoopError:
                retry_after = self._recovery_timeout  # restarts in full in a new run
            else:
                with _lock:
                    retry_after = max(
                        0.0, self._opened_at(now) + self._recovery_timeout - now
                    )

        return CircuitBreakerStatistics(
            self._name,
            state,
            self._failures,
            self._failure_threshold,
            self._trials if state == "half-open" else 0,
            self._recovery_timeout,
            retry_after,
            self._openings,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__qualname__} name={self._name!r} state={self._state!r} "
            f"failures={self._failures}/{self._failure_threshold}>"
        )

    # --- state machine (synchronous: each step is atomic on the event loop) ---

    def _opened_at(self, now: float) -> float:
        # When the breaker (open) opened, on this run's clock: a run that did not see
        # it open starts the window now (another run's clock means nothing here).
        clock = self._runs.get()
        if clock.opened != self._openings:
            clock.opened = self._openings
            clock.opened_at = now
        return clock.opened_at

    def _acquire(self) -> _Ticket:
        now = anyio.current_time()
        with _lock:
            return self._acquire_locked(now)

    def _acquire_locked(self, now: float) -> _Ticket:
        if self._state == "open":
            remaining = self._opened_at(now) + self._recovery_timeout - now
            if remaining > 0:
                raise CircuitOpenError(remaining)

            self._state = "half-open"
            self._trials = 0
            self._generation += 1
            self._changed("open", "recovery timeout elapsed")

        if self._state == "half-open":
            if self._trials >= self._half_open_max_calls:
                raise CircuitOpenError(
                    0.0,
                    "circuit breaker is half-open and all its trial calls are in "
                    "flight; retry after 0.000 seconds",
                )

            self._trials += 1
            return self._generation, True

        return self._generation, False

    def _release(
        self, ticket: _Ticket, exc: BaseException | None, *, neutral: bool = False
    ) -> None:
        with _lock:
            self._release_locked(ticket, exc, neutral)

    def _release_locked(
        self, ticket: _Ticket, exc: BaseException | None, neutral: bool
    ) -> None:
        generation, trial = ticket
        if generation != self._generation:
            return

        if trial:
            self._trials -= 1

        if neutral:
            return

        if exc is None:
            if trial:
                self._state = "closed"
                self._failures = 0
                self._trials = 0
                self._generation += 1
                self._changed("half-open", "a trial call succeeded")
            else:
                self._failures = 0
            return

        if isinstance(exc, get_cancelled_exc_class()) or not isinstance(
            exc, self._expected
        ):
            return

        if trial:
            self._open("a trial call failed")
        else:
            self._failures += 1
            if self._failures >= self._failure_threshold:
                self._open(f"{self._failures} consecutive failures")

    def _open(self, why: str) -> None:
        previous = self._state
        self._state = "open"
        self._openings += 1
        self._opened_at(anyio.current_time())  # this run's clock: from now
        self._failures = 0
        self._trials = 0
        self._generation += 1
        self._changed(previous, why)

    def _changed(self, previous: CircuitState, why: str) -> None:
        # Logged by the built-in logging observer, like every observer's.
        if observers := _instrument.listeners[CircuitStateChanged]:
            _instrument.emit(
                observers,
                CircuitStateChanged(
                    self._name, previous, self._state, why, self._recovery_timeout
                ),
            )

    # --- the three ways in ---

    async def __aenter__(self) -> Self:
        """
        Let the block run, or raise :exc:`CircuitOpenError`.

        The block's exception (or its success) is the call's outcome.
        """
        await checkpoint()
        ticket = self._acquire()
        _entered.set((*_entered.get(), (self, ticket)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        stack = _entered.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                break
        else:
            raise RuntimeError(
                "this circuit breaker was not entered by the current task"
            )

        ticket = stack[index][1]
        _entered.set(stack[:index] + stack[index + 1 :])
        self._release(ticket, exc_val)

    async def call(
        self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``await func(*args, **kwargs)`` through the breaker.

        :return: ``func``'s result
        :raises CircuitOpenError: if the breaker is open, or half-open with every trial
            slot taken (``func`` is not called)
        :raises TypeError: if ``func`` is not callable (e.g. a coroutine object was
            passed), or its call returns no awaitable (neutral for the breaker)

        """
        check_async_callable(
            "CircuitBreaker.call()", "func", func, usage="breaker.call({}, ...)"
        )
        await checkpoint()
        ticket = self._acquire()
        try:
            awaitable: object = func(*args, **kwargs)
            if inspect.isawaitable(awaitable):
                result: T = await awaitable
        except BaseException as exc:
            self._release(ticket, exc)
            raise

        if not inspect.isawaitable(awaitable):
            self._release(ticket, None, neutral=True)
            raise not_awaitable_error("CircuitBreaker.call()", func, awaitable)

        self._release(ticket, None)
        return result

    def __call__(
        self, func: Callable[P, Awaitable[T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """
        Decorate an async function so that each call goes through the breaker.

        :raises TypeError: if ``func`` is not callable, or is a synchronous function

        """
        check_async_callable(
            "CircuitBreaker.__call__()",
            "func",
            func,
            usage="breaker({})",
            decorating=True,
        )

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.call(func, *args, **kwargs)

        return wrapper
