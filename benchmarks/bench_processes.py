"""CPU-bound work: ``run_in_process`` against ``run_in_threadpool``.

Four calls of a pure-Python CPU-bound function, started together, are offloaded to
worker threads, then to worker processes. Threads take turns on the GIL, so the four
calls take about four times one call; processes run one call per core, so on a 2-core
machine they take about half as long as threads (one call per core at a time).

The worker processes are started before measuring (AnyIO keeps them for the rest of the
event-loop run), so the figures compare running the work, not starting interpreters:
start-up is printed separately.

Run it as a script, on every backend by default::

    python benchmarks/bench_processes.py
    python benchmarks/bench_processes.py --backend trio --calls 8 --rounds 5

The ``if __name__ == "__main__"`` guard matters: worker processes import the main
module (to find functions defined in it) and must not run the benchmark themselves.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from anyconc import run_in_process

try:
    from anyconc import run_in_threadpool
except ImportError:  # pragma: no cover - before the threads family landed
    from anyio.to_thread import run_sync as run_in_threadpool  # type: ignore[assignment]

BACKENDS = ("asyncio", "uvloop", "trio")
Offload = Callable[..., Awaitable[Any]]


def burn(n: int) -> int:
    """Pure-Python arithmetic: holds the GIL for the whole call."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


async def run_together(
    offload: Offload, calls: int, n: int, expected: int | None = None
) -> float:
    """Start ``calls`` calls of ``burn(n)`` at once; return the seconds until all end."""
    results: list[int] = []

    async def one() -> None:
        results.append(await offload(burn, n))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(one)
    elapsed = time.perf_counter() - start

    if expected is not None and results != [expected] * calls:
        raise AssertionError(f"unexpected results: {results}")
    return elapsed


async def bench(calls: int, n: int, rounds: int) -> tuple[float, float, float, float]:
    cpus = os.cpu_count() or 1
    # Start the worker processes first: as many as AnyIO's default process limiter
    # allows (one per CPU), the most the measured calls can occupy at once.
    start = time.perf_counter()
    await run_together(run_in_process, cpus, 1)
    startup = time.perf_counter() - start

    expected = burn(n)
    one_call = await run_together(run_in_threadpool, 1, n, expected)
    threads: list[float] = []
    processes: list[float] = []
    for _ in range(rounds):
        threads.append(await run_together(run_in_threadpool, calls, n, expected))
        processes.append(await run_together(run_in_process, calls, n, expected))

    return startup, one_call, statistics.median(threads), statistics.median(processes)


def calibrate(target: float) -> int:
    """The ``n`` for which ``burn(n)`` takes about ``target`` seconds here."""
    n = 100_000
    while True:
        start = time.perf_counter()
        burn(n)
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            return max(1, int(n * target / elapsed))
        n *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, action="append")
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls (4)")
    parser.add_argument(
        "--seconds", type=float, default=0.25, help="CPU time of one call (0.25)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="median of (3)")
    options = parser.parse_args()

    n = calibrate(options.seconds)
    cpus = os.cpu_count() or 1
    print(
        f"{options.calls} concurrent calls of burn({n:,}) (~{options.seconds:.2f} s "
        f"of CPU each), {cpus} CPUs, median of {options.rounds} rounds"
    )
    print(
        f"{'backend':<8} {'1 call':>8} {'threads':>9} {'processes':>10} "
        f"{'processes/threads':>18} {'start-up':>9}"
    )
    for backend in options.backend or BACKENDS:
        name, backend_options = backend, {}
        if backend == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                print(f"{backend:<8} (not installed)")
                continue
            name, backend_options = "asyncio", {"use_uvloop": True}

        startup, one_call, threads, processes = anyio.run(
            bench, options.calls, n, options.rounds,
            backend=name, backend_options=backend_options,
        )  # fmt: skip
        print(
            f"{backend:<8} {one_call:>7.3f}s {threads:>8.3f}s {processes:>9.3f}s "
            f"{processes / threads:>18.2f} {startup:>8.3f}s"
        )


if __name__ == "__main__":
    main()
