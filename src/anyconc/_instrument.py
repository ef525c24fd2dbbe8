"""
The one instrumentation hook point of anyconc: typed events and their observers.

Every lifecycle event of the library (a retry scheduled or given up, a circuit breaker
changing state, a background task started or failed, a supervisor's drain, fan-out
progress) is a small frozen dataclass, handed to every observer subscribed to its kind.
Logging is an observer like any other (:data:`logging_observer`, subscribed at import).

Cost on the hot paths: a call site looks its kind up in :data:`listeners` (one dict
lookup) and builds the event only if somebody listens.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from . import _util
from ._util import (
    DEBUG,
    callable_name,
    check_iterable,
    check_sync_callable,
    close_unstarted,
    logger,
)

if TYPE_CHECKING:
    import logging

__all__ = [
    "BackgroundDrainFinished",
    "BackgroundDrainStarted",
    "BackgroundTaskFailed",
    "BackgroundTaskStarted",
    "CircuitStateChanged",
    "FanOutProgress",
    "InstrumentEvent",
    "LoggingObserver",
    "Observer",
    "RetryGaveUp",
    "RetryScheduled",
    "emit",
    "listeners",
    "logging_observer",
    "subscribe",
    "unsubscribe",
]


@dataclass(frozen=True)
class InstrumentEvent:
    """The base class of anyconc's instrumentation events; ``kind`` names each."""

    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class RetryScheduled(InstrumentEvent):
    """
    A :func:`retry`-wrapped call failed and will be attempted again after ``delay``.

    :attr function: the qualified name of the wrapped function
    :attr attempt: the number of the attempt that failed (1 for the first call)
    :attr attempts: the maximum number of attempts
    :attr delay: the backoff sleep before the next attempt, in seconds
    :attr error: the exception the attempt raised
    """

    kind: ClassVar[str] = "retry.scheduled"
    function: str
    attempt: int
    attempts: int
    delay: float
    error: BaseException


@dataclass(frozen=True)
class RetryGaveUp(InstrumentEvent):
    """
    A :func:`retry`-wrapped call failed for the last time: ``error`` is raised.

    :attr function: the qualified name of the wrapped function
    :attr attempt: the number of the attempt that failed last
    :attr attempts: the maximum number of attempts
    :attr reason: ``"attempts"`` (all used up), ``"not retryable"`` (``on`` declined)
        or ``"timeout"`` (the next attempt could not start within ``timeout``)
    :attr error: the exception that is raised to the caller
    """

    kind: ClassVar[str] = "retry.gave_up"
    function: str
    attempt: int
    attempts: int
    reason: Literal["attempts", "not retryable", "timeout"]
    error: BaseException


@dataclass(frozen=True)
class CircuitStateChanged(InstrumentEvent):
    """
    A :class:`CircuitBreaker` changed state.

    :attr breaker: the breaker's ``name`` (``None`` if it has none)
    :attr previous: the state it left
    :attr state: the state it entered: ``"open"``, ``"half-open"`` or ``"closed"``
    :attr reason: why, in words (``"3 consecutive failures"``, ``"a trial call
        failed"``, ``"recovery timeout elapsed"``, ``"a trial call succeeded"``)
    :attr recovery_timeout: the breaker's ``recovery_timeout``, in seconds
    """

    kind: ClassVar[str] = "circuit.state_changed"
    breaker: str | None
    previous: Literal["closed", "open", "half-open"]
    state: Literal["closed", "open", "half-open"]
    reason: str
    recovery_timeout: float


@dataclass(frozen=True)
class BackgroundTaskStarted(InstrumentEvent):
    """
    A background task was created (:func:`create_background_task`,
    :meth:`BackgroundTasks.create_task`).

    :attr supervisor: the name of the supervisor that owns it
    :attr task: the task's name
    """

    kind: ClassVar[str] = "background.task_started"
    supervisor: str | None
    task: str


@dataclass(frozen=True)
class BackgroundTaskFailed(InstrumentEvent):
    """
    A background task ended with an exception (not a cancellation).

    Emitted whether or not somebody retrieves the failure later; the log line of a
    failure nobody retrieves is written apart from the events (it is anyconc's
    guarantee that no failure is lost, not an observation).

    :attr supervisor: the name of the supervisor that owned it
    :attr task: the task's name
    :attr error: its exception
    """

    kind: ClassVar[str] = "background.task_failed"
    supervisor: str | None
    task: str
    error: BaseException


@dataclass(frozen=True)
class BackgroundDrainStarted(InstrumentEvent):
    """
    A :class:`BackgroundTasks` supervisor stopped accepting tasks and waits for its own.

    :attr supervisor: its name
    :attr active: how many tasks were still running
    :attr timeout: the grace period (``shutdown_timeout``; ``None``: no limit; ``0.0``
        when the exit is a cancellation, which cancels the tasks at once)
    """

    kind: ClassVar[str] = "background.drain_started"
    supervisor: str | None
    active: int
    timeout: float | None


@dataclass(frozen=True)
class BackgroundDrainFinished(InstrumentEvent):
    """
    A supervisor's drain ended: every task has finished or been cancelled.

    :attr supervisor: its name
    :attr finished: tasks that ended on their own during the grace period
    :attr cancelled: tasks still running at its end, which were cancelled
    :attr elapsed: seconds from the start of the drain until every task had ended (the
        event-loop clock)
    """

    kind: ClassVar[str] = "background.drain_finished"
    supervisor: str | None
    finished: int
    cancelled: int
    elapsed: float


@dataclass(frozen=True)
class FanOutProgress(InstrumentEvent):
    """
    One child of :func:`gather`, :func:`amap` or :func:`as_completed` finished.

    Not emitted for children that were cancelled.

    :attr operation: ``"gather"``, ``"amap"`` or ``"as_completed"``
    :attr done: children finished so far (this one included), failures included
    :attr failed: of those, how many raised
    :attr total: how many children there are (``None`` for :func:`amap` over an
        iterable without a length)
    :attr child_failed: whether the child that just finished raised
    """

    kind: ClassVar[str] = "fanout.progress"
    operation: Literal["gather", "amap", "as_completed"]
    done: int
    failed: int
    total: int | None
    child_failed: bool


#: An observer: any callable taking one event. Its return value is ignored.
Observer = Callable[[InstrumentEvent], object]

EVENT_KINDS: tuple[type[InstrumentEvent], ...] = (
    RetryScheduled,
    RetryGaveUp,
    CircuitStateChanged,
    BackgroundTaskStarted,
    BackgroundTaskFailed,
    BackgroundDrainStarted,
    BackgroundDrainFinished,
    FanOutProgress,
)

# Copy-on-write, replaced whole under _lock: readers (any thread, any run) never lock.
_subscriptions: tuple[tuple[Observer, frozenset[type[InstrumentEvent]]], ...] = ()
_lock = threading.Lock()

#: For each event class, the observers subscribed to it, in subscription order.
listeners: dict[type[InstrumentEvent], tuple[Observer, ...]] = dict.fromkeys(
    EVENT_KINDS, ()
)


def _rebuild() -> None:
    global listeners
    listeners = {
        kind: tuple(obs for obs, kinds in _subscriptions if kind in kinds)
        for kind in EVENT_KINDS
    }


def subscribe(
    observer: Observer, *, kinds: Iterable[type[InstrumentEvent]] | None = None
) -> Callable[[], None]:
    """
    Call ``observer(event)`` for every instrumentation event from now on.

    Observers are process-wide (every event-loop run, every thread, every backend),
    called synchronously, in subscription order, on the thread and in the task where the
    event happens (the event-loop thread): keep them quick and non-blocking (hand the
    event to a queue for slow work). An observer that raises an :exc:`Exception` is
    logged, once per exception, with its traceback, on the ``anyconc`` logger; the
    primitive that emitted the event and the other observers are not affected, and the
    observer stays subscribed. The same observer can be subscribed once at a time.

    Example::

        def count_retries(event: anyconc.InstrumentEvent) -> None:
            if isinstance(event, anyconc.RetryScheduled):
                RETRIES[event.function] += 1

        unsubscribe = anyconc.subscribe(count_retries, kinds=[anyconc.RetryScheduled])

    :param observer: a callable taking one event
    :param kinds: the event classes it wants (``None``: all of them). Events of other
        kinds are not even built for it: the hot paths (background task started,
        fan-out progress) cost nothing for an observer that does not ask for them
    :return: a function that unsubscribes the observer (like :func:`unsubscribe`, but
        doing nothing if it already was)
    :raises TypeError: if ``observer`` is not callable or is an async function (an
        observer returning a coroutine object at an event has it closed, and is logged
        as failing), or ``kinds`` is not iterable or contains something that is not an
        event class
    :raises ValueError: if ``observer`` is already subscribed

    """
    global _subscriptions
    check_sync_callable(
        "subscribe()",
        "observer",
        observer,
        fix="observers are called synchronously: use a plain 'def' that hands the "
        "event to a task (e.g. through a Queue)",
    )

    if kinds is None:
        wanted = frozenset(EVENT_KINDS)
    else:
        wanted_list = (
            list(check_iterable("subscribe()", "kinds", kinds))
            if not isinstance(kinds, type)
            else [kinds]
        )
        for kind in wanted_list:
            if not (isinstance(kind, type) and issubclass(kind, InstrumentEvent)):
                raise TypeError(
                    f"subscribe() argument 'kinds' must hold event classes such as "
                    f"anyconc.RetryScheduled, got {kind!r}"
                )
        # A base class (InstrumentEvent itself) selects its subclasses.
        wanted = frozenset(
            k for k in EVENT_KINDS if any(issubclass(k, w) for w in wanted_list)
        )

    with _lock:
        if any(obs == observer for obs, _ in _subscriptions):
            raise ValueError(
                f"subscribe() argument 'observer' {observer!r} is already subscribed; "
                f"unsubscribe it first"
            )
        _subscriptions = (*_subscriptions, (observer, wanted))
        _rebuild()

    def cancel() -> None:
        with contextlib.suppress(ValueError):
            unsubscribe(observer)

    return cancel


def unsubscribe(observer: Observer) -> None:
    """
    Stop calling ``observer``.

    Unsubscribing :data:`logging_observer` silences anyconc's event log lines (the
    failure of a background task nobody retrieves is still logged: see
    :class:`BackgroundTaskFailed`).

    :param observer: an observer passed to :func:`subscribe`
    :raises ValueError: if it is not subscribed

    """
    global _subscriptions
    with _lock:
        remaining = tuple((o, k) for o, k in _subscriptions if o != observer)
        if len(remaining) == len(_subscriptions):
            raise ValueError(
                f"unsubscribe() argument 'observer' {observer!r} is not subscribed"
            )
        _subscriptions = remaining
        _rebuild()


def emit(observers: tuple[Observer, ...], event: InstrumentEvent) -> None:
    """
    Hand ``event`` to each of ``observers`` (``listeners[type(event)]``).

    An observer's :exc:`Exception` is logged once and swallowed; anything else (an
    interrupt) propagates.
    """
    for observer in observers:
        try:
            result = observer(event)
            if inspect.iscoroutine(result):
                # ``lambda event: handle(event)`` with an async ``handle``: nothing
                # would ever await it. Closed, and logged below like a failure.
                result.close()
                raise TypeError(
                    f"observer {callable_name(observer)!r} returned a coroutine "
                    f"object, which is never awaited: observers are called "
                    f"synchronously"
                )
        except Exception:
            logger.exception(
                "instrumentation observer %r raised on %s; ignored",
                observer,
                event.kind,
            )


def _label(name: str | None, obj_id: int | None = None) -> str:
    if name is not None:
        return repr(name)
    return "(unnamed)" if obj_id is None else f"{obj_id:#x}"


class LoggingObserver:
    """
    The built-in observer: anyconc's log lines, on the ``anyconc`` logger.

    Subscribed at import as :data:`logging_observer`, for the kinds below only (the
    per-task and per-item events are not logged, so they cost nothing by default):

    * :class:`RetryScheduled`: DEBUG ``retrying f in 0.200s: attempt 1 of 3 raised ...``;
    * :class:`RetryGaveUp`: DEBUG ``giving up on f after attempt 3 of 3 (attempts): ...``;
    * :class:`CircuitStateChanged`: WARNING when it opens, INFO when it becomes
      half-open or closes, naming the breaker;
    * :class:`BackgroundDrainStarted` / :class:`BackgroundDrainFinished`: DEBUG.

    A log level disabled on the ``anyconc`` logger costs one ``isEnabledFor`` check.

    :param logger: the logger to write to (anything with the methods of a
        :class:`logging.Logger`, such as a :class:`logging.LoggerAdapter`)
    :raises TypeError: if ``logger`` has no ``isEnabledFor`` method
    """

    kinds: ClassVar[tuple[type[InstrumentEvent], ...]] = (
        RetryScheduled,
        RetryGaveUp,
        CircuitStateChanged,
        BackgroundDrainStarted,
        BackgroundDrainFinished,
    )

    def __init__(self, logger: logging.Logger = logger) -> None:
        # The default, anyconc's lazy logger, is not looked into: that would import
        # logging at anyconc's import.
        if logger is not _util.logger and not callable(
            getattr(logger, "isEnabledFor", None)
        ):
            close_unstarted([logger])  # a coroutine object given by mistake
            raise TypeError(
                f"LoggingObserver() argument 'logger' must be a logging.Logger, got "
                f"{type(logger).__qualname__}"
            )
        self.logger = logger

    def __repr__(self) -> str:
        return f"<LoggingObserver logger={self.logger.name!r}>"

    def __call__(self, event: InstrumentEvent) -> None:
        log = self.logger
        if isinstance(event, CircuitStateChanged):
            name = _label(event.breaker)
            if event.state == "open":
                log.warning(
                    "circuit breaker %s opened for %ss: %s",
                    name,
                    event.recovery_timeout,
                    event.reason,
                )
            elif event.state == "half-open":
                log.info("circuit breaker %s is half-open: %s", name, event.reason)
            else:
                log.info("circuit breaker %s closed: %s", name, event.reason)
        elif log.isEnabledFor(DEBUG):
            self._debug(event)

    def _debug(self, event: InstrumentEvent) -> None:
        log = self.logger
        if isinstance(event, RetryScheduled):
            log.debug(
                "retrying %s in %.3fs: attempt %d of %d raised %r",
                event.function,
                event.delay,
                event.attempt,
                event.attempts,
                event.error,
            )
        elif isinstance(event, RetryGaveUp):
            log.debug(
                "giving up on %s after attempt %d of %d (%s): %r",
                event.function,
                event.attempt,
                event.attempts,
                event.reason,
                event.error,
            )
        elif isinstance(event, BackgroundDrainStarted):
            log.debug(
                "background tasks %s: draining %d task(s), grace period %s",
                _label(event.supervisor),
                event.active,
                "unlimited" if event.timeout is None else f"{event.timeout}s",
            )
        elif isinstance(event, BackgroundDrainFinished):
            log.debug(
                "background tasks %s: drained in %.3fs, %d finished, %d cancelled",
                _label(event.supervisor),
                event.elapsed,
                event.finished,
                event.cancelled,
            )


#: The built-in logging observer, subscribed at import (unsubscribe it to silence it).
logging_observer: LoggingObserver = LoggingObserver()
subscribe(logging_observer, kinds=LoggingObserver.kinds)
