"""Every workload, in the order they are run and reported."""

from __future__ import annotations

from benchmarks._harness import Workload
from benchmarks.workloads import (
    background_limits,
    fanout,
    imports,
    queues,
    races,
    runs,
    scaling,
    sync,
    tasks,
    threads,
)

WORKLOADS: list[Workload] = [
    *tasks.WORKLOADS,
    *threads.WORKLOADS,
    *races.WORKLOADS,
    *sync.WORKLOADS,
    *queues.WORKLOADS,
    *fanout.WORKLOADS,
    *runs.WORKLOADS,
    *scaling.WORKLOADS,
    *background_limits.WORKLOADS,
    *imports.WORKLOADS,
]
