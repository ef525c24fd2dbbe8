"""The scaling view: per-operation cost as the work grows, anyconc against raw AnyIO.

Three kinds of work, each measured at 1,000, 10,000 and 100,000 operations per sample
(and 1,000,000 with ``--huge``): spawning tasks into a task group, fire-and-forget
background tasks, and items through a bounded queue. Every size is its own workload
(``scale-<kind>-<size>``), so each size gets its own interleaved rounds and per-round
ratios; the report gathers them into one table and one chart per kind, and checks that
anyconc's per-operation cost grows no faster than raw AnyIO's.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from benchmarks._harness import Impl, Sample, Workload
from benchmarks.workloads import queues, tasks

#: (operations per sample, with --quick, label, measured rounds, warm-up rounds, heavy)
SIZES: tuple[tuple[int, int, str, int, int, bool], ...] = (
    (1_000, 10, "1k", 15, 1, False),
    (10_000, 40, "10k", 7, 1, False),
    (100_000, 160, "100k", 5, 0, False),
    (1_000_000, 640, "1m", 2, 0, True),
)

#: kind -> (title, what one operation is, the competitors)
KINDS: dict[str, tuple[str, str, Callable[[], tuple[Impl, ...]]]] = {}


def _spawn() -> tuple[Impl, ...]:
    return (
        Impl("anyconc TaskGroup.start_soon", tasks.anyconc_start_soon),
        Impl("anyconc TaskGroup.create_task", tasks.anyconc_create_task),
        Impl("anyio start_soon", tasks.anyio_start_soon, baseline=True),
        Impl("anyio create_task", tasks.anyio_create_task),
    )


def _background() -> tuple[Impl, ...]:
    return (
        Impl("anyconc create_background_task", tasks.bg_anyconc_default),
        Impl("anyconc BackgroundTasks.create_task", tasks.bg_anyconc_supervisor),
        Impl("anyio task group start_soon", tasks.bg_anyio_task_group, baseline=True),
    )


def _anyconc_queue() -> Sample:
    from anyconc import Queue

    return queues._queue(Queue, 1)


def _queue() -> tuple[Impl, ...]:
    return (
        Impl("anyconc Queue", _anyconc_queue),
        Impl(
            "anyio memory object stream",
            lambda: queues._channel(anyio.create_memory_object_stream, 1),
            baseline=True,
        ),
    )


KINDS["spawn"] = (
    "Spawn and join",
    "one sample spawns N trivial tasks into one task group and waits for them; per "
    "op = per task",
    _spawn,
)
KINDS["background"] = (
    "Fire-and-forget background tasks",
    "one sample starts N background tasks (each yields once, then counts down) and "
    "waits until the last has run; per op = per task",
    _background,
)
KINDS["queue"] = (
    "Queue items, 1 producer x 1 consumer (maxsize 100)",
    "one sample sends N items through a queue bounded at 100; per op = per item",
    _queue,
)


def _workloads() -> list[Workload]:
    out = []
    for kind, (title, description, impls) in KINDS.items():
        for n, quick_n, label, rounds, warmup, heavy in SIZES:
            out.append(
                Workload(
                    f"scale-{kind}-{label}",
                    f"Scaling: {title}, N = {n:,}",
                    f"Scaling view: {description}.",
                    impls(),
                    n=n,
                    # --quick only checks that every size runs: one small round.
                    quick_n=quick_n,
                    rounds=rounds,
                    quick_rounds=1,
                    warmup=warmup,
                    heavy=heavy,
                    scaling=(kind, title),
                )
            )
    return out


WORKLOADS = _workloads()
