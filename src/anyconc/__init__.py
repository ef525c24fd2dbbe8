"""
anyconc: backend-agnostic concurrency utilities on AnyIO.

Write the async code once; run it unchanged on asyncio, asyncio + uvloop and trio.
Every public object can be created at import time and used from any number of
event-loop runs, one after another, on any backend.
"""

from __future__ import annotations

# Each family lives in its own private module; this file only re-exports.
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
]
