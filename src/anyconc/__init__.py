"""
anyconc: backend-agnostic concurrency utilities on AnyIO.

Write the async code once; run it unchanged on asyncio, asyncio + uvloop and trio.
Every public object can be created at import time and used from any number of
event-loop runs, one after another, on any backend.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

# Each family lives in its own private module; this file only re-exports. The modules are
# imported on first use of one of their names (PEP 562), so that ``import anyconc`` costs
# no more than ``import anyio``, and a program pays only for the families it uses: a
# trio program never imports asyncio, one that never runs a process never imports
# concurrent.futures or pickle. Once loaded, a name is a plain module attribute.
# Keep the three lists in step: _LAZY (name -> module), the TYPE_CHECKING imports (for
# type checkers and IDEs) and __all__; tests/test_imports.py checks that they agree.
_LAZY: dict[str, str] = {
    # --- tasks (task groups and handles) ---
    "Task": "._tasks",
    "TaskCancelled": "._tasks",
    "TaskGroup": "._tasks",
    "TaskNotFinished": "._tasks",
    "create_task_group": "._tasks",
    # --- threads ---
    "ThreadPool": "._threads",
    "iterate_in_threadpool": "._threads",
    "run_in_threadpool": "._threads",
    # --- races ---
    "AllFailedError": "._race",
    "run_until_first_complete": "._race",
    # --- background tasks ---
    "BackgroundTask": "._background",
    "BackgroundTasks": "._background",
    "BackgroundTasksFull": "._background",
    "create_background_task": "._background",
    # --- lazy values and events ---
    "AsyncEvent": "._event",
    "AsyncLazy": "._lazy",
    # --- coordination ---
    "Barrier": "._barrier",
    "BrokenBarrierError": "._barrier",
    "LifoQueue": "._queue",
    "PriorityQueue": "._queue",
    "Queue": "._queue",
    "QueueEmpty": "._queue",
    "QueueFull": "._queue",
    "QueueShutDown": "._queue",
    "CapacityLimiter": "._sync",
    "Condition": "._sync",
    "Lock": "._sync",
    "Semaphore": "._sync",
    # --- fan-out ---
    "amap": "._fanout",
    "as_completed": "._fanout",
    "gather": "._fanout",
    # --- resilience ---
    "CircuitBreaker": "._circuit",
    "CircuitOpenError": "._circuit",
    "Debouncer": "._pacing",
    "RateLimiter": "._pacing",
    "every": "._pacing",
    "retry": "._retry",
    "Timeout": "._timeouts",
    "shield": "._timeouts",
    "timeout": "._timeouts",
    # --- processes and executors ---
    "AsyncExecutor": "._processes",
    "run_in_executor": "._processes",
    "run_in_process": "._processes",
    # --- thread bridge ---
    "asyncify": "._bridge",
    "run_from_thread": "._bridge",
    "syncify": "._bridge",
    # --- instrumentation ---
    "BackgroundDrainFinished": "._instrument",
    "BackgroundDrainStarted": "._instrument",
    "BackgroundTaskFailed": "._instrument",
    "BackgroundTaskStarted": "._instrument",
    "CircuitStateChanged": "._instrument",
    "FanOutProgress": "._instrument",
    "InstrumentEvent": "._instrument",
    "LoggingObserver": "._instrument",
    "Observer": "._instrument",
    "RetryGaveUp": "._instrument",
    "RetryScheduled": "._instrument",
    "logging_observer": "._instrument",
    "subscribe": "._instrument",
    "unsubscribe": "._instrument",
    # --- statistics ---
    "AsyncEventStatistics": "._stats",
    "AsyncLazyStatistics": "._stats",
    "BackgroundTasksStatistics": "._stats",
    "BarrierStatistics": "._stats",
    "CircuitBreakerStatistics": "._stats",
    "QueueStatistics": "._stats",
    "RateLimiterStatistics": "._stats",
    "ThreadPoolStatistics": "._stats",
}

if TYPE_CHECKING:
    # --- tasks (task groups and handles) ---
    from ._tasks import Task as Task
    from ._tasks import TaskCancelled as TaskCancelled
    from ._tasks import TaskGroup as TaskGroup
    from ._tasks import TaskNotFinished as TaskNotFinished
    from ._tasks import create_task_group as create_task_group

    # --- threads ---
    from ._threads import ThreadPool as ThreadPool
    from ._threads import iterate_in_threadpool as iterate_in_threadpool
    from ._threads import run_in_threadpool as run_in_threadpool

    # --- races ---
    from ._race import AllFailedError as AllFailedError
    from ._race import run_until_first_complete as run_until_first_complete

    # --- background tasks ---
    from ._background import BackgroundTask as BackgroundTask
    from ._background import BackgroundTasks as BackgroundTasks
    from ._background import BackgroundTasksFull as BackgroundTasksFull
    from ._background import create_background_task as create_background_task

    # --- lazy values and events ---
    from ._event import AsyncEvent as AsyncEvent
    from ._lazy import AsyncLazy as AsyncLazy

    # --- coordination ---
    from ._barrier import Barrier as Barrier
    from ._barrier import BrokenBarrierError as BrokenBarrierError
    from ._queue import LifoQueue as LifoQueue
    from ._queue import PriorityQueue as PriorityQueue
    from ._queue import Queue as Queue
    from ._queue import QueueEmpty as QueueEmpty
    from ._queue import QueueFull as QueueFull
    from ._queue import QueueShutDown as QueueShutDown
    from ._sync import CapacityLimiter as CapacityLimiter
    from ._sync import Condition as Condition
    from ._sync import Lock as Lock
    from ._sync import Semaphore as Semaphore

    # --- fan-out ---
    from ._fanout import amap as amap
    from ._fanout import as_completed as as_completed
    from ._fanout import gather as gather

    # --- resilience ---
    from ._circuit import CircuitBreaker as CircuitBreaker
    from ._circuit import CircuitOpenError as CircuitOpenError
    from ._pacing import Debouncer as Debouncer
    from ._pacing import RateLimiter as RateLimiter
    from ._pacing import every as every
    from ._retry import retry as retry
    from ._timeouts import Timeout as Timeout
    from ._timeouts import shield as shield
    from ._timeouts import timeout as timeout

    # --- processes and executors ---
    from ._processes import AsyncExecutor as AsyncExecutor
    from ._processes import run_in_executor as run_in_executor
    from ._processes import run_in_process as run_in_process

    # --- thread bridge ---
    from ._bridge import asyncify as asyncify
    from ._bridge import run_from_thread as run_from_thread
    from ._bridge import syncify as syncify

    # --- instrumentation ---
    from ._instrument import BackgroundDrainFinished as BackgroundDrainFinished
    from ._instrument import BackgroundDrainStarted as BackgroundDrainStarted
    from ._instrument import BackgroundTaskFailed as BackgroundTaskFailed
    from ._instrument import BackgroundTaskStarted as BackgroundTaskStarted
    from ._instrument import CircuitStateChanged as CircuitStateChanged
    from ._instrument import FanOutProgress as FanOutProgress
    from ._instrument import InstrumentEvent as InstrumentEvent
    from ._instrument import LoggingObserver as LoggingObserver
    from ._instrument import Observer as Observer
    from ._instrument import RetryGaveUp as RetryGaveUp
    from ._instrument import RetryScheduled as RetryScheduled
    from ._instrument import logging_observer as logging_observer
    from ._instrument import subscribe as subscribe
    from ._instrument import unsubscribe as unsubscribe

    # --- statistics ---
    from ._stats import AsyncEventStatistics as AsyncEventStatistics
    from ._stats import AsyncLazyStatistics as AsyncLazyStatistics
    from ._stats import BackgroundTasksStatistics as BackgroundTasksStatistics
    from ._stats import BarrierStatistics as BarrierStatistics
    from ._stats import CircuitBreakerStatistics as CircuitBreakerStatistics
    from ._stats import QueueStatistics as QueueStatistics
    from ._stats import RateLimiterStatistics as RateLimiterStatistics
    from ._stats import ThreadPoolStatistics as ThreadPoolStatistics

else:
    # Not seen by type checkers: with a module __getattr__, mypy would accept any name
    # (a typo in ``anyconc.TaskGrup`` would pass).

    def __getattr__(name: str) -> Any:
        """Import the module that defines ``name`` on first use; cache the attribute."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        importlib.import_module(module, __name__)
        # Bind every public name of each anyconc module loaded by now (this one, and
        # those it imported), each made public (see _set_public_module) once.
        namespace = globals()
        for other, where in _LAZY.items():
            if other not in namespace:
                loaded = sys.modules.get(__name__ + where)
                if loaded is not None:
                    value = getattr(loaded, other)
                    _set_public_module(value)
                    namespace[other] = value
        return namespace[name]

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


__all__ = [
    # --- tasks ---
    "Task",
    "TaskCancelled",
    "TaskGroup",
    "TaskNotFinished",
    "create_task_group",
    # --- threads ---
    "ThreadPool",
    "iterate_in_threadpool",
    "run_in_threadpool",
    # --- races ---
    "AllFailedError",
    "run_until_first_complete",
    # --- background tasks ---
    "BackgroundTask",
    "BackgroundTasks",
    "BackgroundTasksFull",
    "create_background_task",
    # --- lazy values and events ---
    "AsyncEvent",
    "AsyncLazy",
    # --- coordination ---
    "Barrier",
    "BrokenBarrierError",
    "CapacityLimiter",
    "Condition",
    "LifoQueue",
    "Lock",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "Semaphore",
    # --- fan-out ---
    "amap",
    "as_completed",
    "gather",
    # --- resilience ---
    "CircuitBreaker",
    "CircuitOpenError",
    "Debouncer",
    "RateLimiter",
    "every",
    "retry",
    "shield",
    "timeout",
    "Timeout",
    # --- processes and executors ---
    "AsyncExecutor",
    "run_in_executor",
    "run_in_process",
    # --- thread bridge ---
    "asyncify",
    "run_from_thread",
    "syncify",
    # --- instrumentation ---
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
    "logging_observer",
    "subscribe",
    "unsubscribe",
    # --- statistics ---
    "AsyncEventStatistics",
    "AsyncLazyStatistics",
    "BackgroundTasksStatistics",
    "BarrierStatistics",
    "CircuitBreakerStatistics",
    "QueueStatistics",
    "RateLimiterStatistics",
    "ThreadPoolStatistics",
]


def _set_public_module(obj: object) -> None:
    # Every exported class and function says it lives in "anyconc" (what users import,
    # and what reprs, tracebacks, docs and pickles show), not in its private module.
    # Only anyconc's own objects: a class re-exported from AnyIO keeps its module. Done
    # when the name is first loaded (see __getattr__).
    import inspect
    import typing

    if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not getattr(
        obj, "__module__", ""
    ).startswith("anyconc._"):
        return

    own = inspect.get_annotations(obj) if inspect.isclass(obj) else {}
    if own:
        # typing.get_type_hints() resolves a class's string annotations in the
        # module its __module__ names: resolve them now, in their own module.
        try:
            hints = typing.get_type_hints(
                obj, vars(sys.modules[obj.__module__]), include_extras=True
            )
        except Exception:  # pragma: no cover - a name only known to type checkers
            pass
        else:
            obj.__annotations__ = {key: hints[key] for key in own if key in hints}
    obj.__module__ = __name__
