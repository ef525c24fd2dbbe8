"""Import time: ``import anyconc`` against ``import anyio``, each in a fresh interpreter.

One operation is one fresh ``python -c`` process that times its own import statement
with ``time.perf_counter()`` (interpreter start-up is not counted) and prints it. The
implementations are interleaved round by round like every other workload, so both sides
see the same machine load; the warm-up round also warms the bytecode caches.

The event loop plays no part (the sample blocks it while the subprocesses run), so the
workload is measured on one backend only.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._harness import Impl, Sample, Workload

_TIMED = (
    "import time\n"
    "t0 = time.perf_counter()\n"
    "{statement}\n"
    "print(time.perf_counter() - t0)\n"
)


def _imports(statement: str) -> Sample:
    code = _TIMED.format(statement=statement)

    async def sample(n: int) -> float:
        total = 0.0
        for _ in range(n):
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            total += float(out.split()[-1])
        return total

    return sample


def anyio_import() -> Sample:
    return _imports("import anyio")


def anyconc_import() -> Sample:
    return _imports("import anyconc")


def anyconc_task_group() -> Sample:
    return _imports("from anyconc import TaskGroup")


ONE_BACKEND = ("asyncio",)

WORKLOADS = [
    Workload(
        key="import",
        title="Import time in a fresh interpreter",
        description=(
            "One sample starts fresh `python -c` processes that each time one import "
            "statement (start-up excluded); per op = per process. `import anyconc` "
            "loads a family on first use of one of its names: the "
            "`from anyconc import TaskGroup` row is what the first use of the task "
            "family costs (AnyIO's core included). Measured on one backend: no event "
            "loop is involved."
        ),
        impls=(
            Impl("anyio (import anyio)", anyio_import, ONE_BACKEND, baseline=True),
            Impl("anyconc (import anyconc)", anyconc_import, ONE_BACKEND),
            Impl(
                "anyconc (from anyconc import TaskGroup)",
                anyconc_task_group,
                ONE_BACKEND,
            ),
        ),
        n=10,
        quick_n=1,
        rounds=9,
        quick_rounds=1,
        unit="ms/op",
        scale=1e3,
    ),
]
