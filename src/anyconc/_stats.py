"""
What ``statistics()`` returns: one frozen dataclass per stateful primitive.

As AnyIO's and trio's ``statistics()``, each is a snapshot taken at the call, on the
event-loop thread; it never changes afterwards and holds no reference to the object.
Counts that belong to one event-loop run (waiters, slots in use) are those of the
current run, or of the latest run outside any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AsyncEventStatistics",
    "AsyncLazyStatistics",
    "BackgroundTasksStatistics",
    "BarrierStatistics",
    "CircuitBreakerStatistics",
    "QueueStatistics",
    "RateLimiterStatistics",
    "ThreadPoolStatistics",
]


@dataclass(frozen=True)
class QueueStatistics:
    """
    :attr name: the queue's name, or ``None``
    :attr maxsize: the bound given (``0`` or less: unbounded)
    :attr size: items in the queue (``qsize()``)
    :attr unfinished_tasks: items put and not yet marked done (``task_done()``)
    :attr waiting_getters: tasks waiting in ``get()``
    :attr waiting_putters: tasks waiting in ``put()``
    :attr waiting_joiners: tasks waiting in ``join()``
    :attr shutdown: whether ``shutdown()`` was called
    """

    name: str | None
    maxsize: float
    size: int
    unfinished_tasks: int
    waiting_getters: int
    waiting_putters: int
    waiting_joiners: int
    shutdown: bool


@dataclass(frozen=True)
class BarrierStatistics:
    """
    :attr name: the barrier's name, or ``None``
    :attr parties: the number of tasks the barrier waits for
    :attr n_waiting: tasks waiting now
    :attr broken: whether the barrier is broken
    """

    name: str | None
    parties: int
    n_waiting: int
    broken: bool


@dataclass(frozen=True)
class AsyncEventStatistics:
    """
    :attr name: the event's name, or ``None``
    :attr is_set: whether the event is set
    :attr waiters: tasks waiting in ``wait()``
    """

    name: str | None
    is_set: bool
    waiters: int


@dataclass(frozen=True)
class AsyncLazyStatistics:
    """
    :attr name: the lazy value's name, or ``None``
    :attr state: ``"cached"`` (a value is cached, maybe expired: see ``is_set``),
        ``"computing"`` (a call of ``func`` is in flight) or ``"unset"``
    :attr is_set: a value is cached and not expired (``is_set()``)
    :attr waiters: callers waiting for the computation in flight
    :attr ttl: the time to live, in seconds, or ``None``
    """

    name: str | None
    state: Literal["cached", "computing", "unset"]
    is_set: bool
    waiters: int
    ttl: float | None


@dataclass(frozen=True)
class CircuitBreakerStatistics:
    """
    :attr name: the breaker's name, or ``None``
    :attr state: ``"closed"``, ``"open"`` or ``"half-open"``, now (as ``state``)
    :attr failure_count: consecutive expected failures counted while closed
    :attr failure_threshold: the failures that open it
    :attr half_open_calls: trial calls in flight
    :attr recovery_timeout: seconds it stays open
    :attr retry_after: seconds until it lets a trial call through (``0.0`` unless open)
    :attr times_opened: how many times it has opened since it was made
    """

    name: str | None
    state: Literal["closed", "open", "half-open"]
    failure_count: int
    failure_threshold: int
    half_open_calls: int
    recovery_timeout: float
    retry_after: float
    times_opened: int


@dataclass(frozen=True)
class RateLimiterStatistics:
    """
    :attr name: the limiter's name, or ``None``
    :attr rate: entries allowed per ``per`` seconds
    :attr per: the window, in seconds
    :attr admitted: entries let in within the current window (this run)
    :attr waiting: tasks waiting for their turn (this run)
    """

    name: str | None
    rate: float
    per: float
    admitted: int
    waiting: int


@dataclass(frozen=True)
class ThreadPoolStatistics:
    """
    :attr name: the pool's name, or ``None``
    :attr max_workers: the limit on its concurrent calls
    :attr running: calls holding a slot now (this run)
    :attr waiting: calls waiting for a slot (this run)
    :attr cancellable: whether a cancelled caller abandons its call
    """

    name: str | None
    max_workers: int
    running: int
    waiting: int
    cancellable: bool


@dataclass(frozen=True)
class BackgroundTasksStatistics:
    """
    :attr name: the supervisor's name, or ``None``
    :attr accepting: whether it accepts new tasks now (entered, not draining)
    :attr active: tasks running now (or about to start)
    :attr waiting: tasks waiting for room under its ``limit`` (not started yet)
    :attr started: tasks started since it was made, in every block and run (a task
        waiting under ``limit`` counts when it leaves the line)
    :attr finished: tasks that have ended, whatever the outcome
    :attr failed: of those, tasks that raised (not cancelled)
    :attr cancelled_at_shutdown: tasks still running at the end of a grace period,
        cancelled by the supervisor
    """

    name: str | None
    accepting: bool
    active: int
    waiting: int
    started: int
    finished: int
    failed: int
    cancelled_at_shutdown: int
