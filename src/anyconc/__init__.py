"""
anyconc: backend-agnostic concurrency utilities on AnyIO.

Write the async code once; run it unchanged on asyncio, asyncio + uvloop and trio.
Every public object can be created at import time and used from any number of
event-loop runs, one after another, on any backend.
"""

from __future__ import annotations

import importlib
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
    "shield": "._timeouts",
    "timeout": "._timeouts",
    # --- processes and executors ---
    "AsyncExecutor": "._processes",
    "run_in_executor": "._processes",
    "run_in_process": "._processes",
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
    from ._timeouts import shield as shield
    from ._timeouts import timeout as timeout

    # --- processes and executors ---
    from ._processes import AsyncExecutor as AsyncExecutor
    from ._processes import run_in_executor as run_in_executor
    from ._processes import run_in_process as run_in_process

else:
    # Not seen by type checkers: with a module __getattr__, mypy would accept any name
    # (a typo in ``anyconc.TaskGrup`` would pass).

    def __getattr__(name: str) -> Any:
        """Import the module that defines ``name`` on first use; cache the attribute."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value

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
    # --- processes and executors ---
    "AsyncExecutor",
    "run_in_executor",
    "run_in_process",
]
