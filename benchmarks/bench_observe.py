"""
Short, targeted timing of the instrumentation hook point (issue 18).

Times the workloads whose code paths emit events - retry, CircuitBreaker, background
tasks, amap - with no observer at all, with the built-in logging observer (the default;
``anyconc`` logger at WARNING, so DEBUG lines are skipped), and with the logging observer
plus a counting observer subscribed to every kind (every event built and delivered).
Interleaved rounds after a warm-up round, each mode first in turn, median of each, in CPU time of the process (``time.process_time``:
less sensitive than wall time to the other processes of a shared machine); run it with
the code before and after a change to compare (``PYTHONPATH=<old checkout>/src``).

    python benchmarks/bench_observe.py [--backend asyncio|trio] [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

import anyconc

N_RETRY = 20_000
N_BREAKER = 20_000
N_BACKGROUND = 10_000
N_AMAP = 10_000


async def retry_ok() -> None:
    @anyconc.retry(attempts=3, delay=0)
    async def ok() -> int:
        return 1

    for _ in range(N_RETRY):
        await ok()


async def retry_one_failure() -> None:
    state = {"n": 0}

    @anyconc.retry(attempts=3, delay=0)
    async def flaky() -> int:
        state["n"] += 1
        if state["n"] % 2:
            raise OSError
        return 1

    for _ in range(N_RETRY // 4):
        await flaky()


async def breaker_calls() -> None:
    named: dict[str, Any] = {"name": "b"} if hasattr(anyconc, "subscribe") else {}  # older code: none
    breaker = anyconc.CircuitBreaker(failure_threshold=1, recovery_timeout=0, **named)

    async def ok() -> int:
        return 1

    async def bad() -> int:
        raise OSError

    for i in range(N_BREAKER):
        if i % 100 == 0:  # an open / half-open / closed cycle now and then
            with contextlib.suppress(OSError):
                await breaker.call(bad)
        await breaker.call(ok)


async def background() -> None:
    async def job() -> None:
        await anyio.lowlevel.checkpoint()

    async with anyconc.BackgroundTasks(name="bench") as tasks:
        for _ in range(N_BACKGROUND):
            tasks.create_task(job())


async def amap_10k() -> None:
    async def job(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x

    await anyconc.amap(job, range(N_AMAP), limit=100)


WORKLOADS: dict[str, Callable[[], Awaitable[None]]] = {
    "retry-ok-20k": retry_ok,
    "retry-1fail-5k": retry_one_failure,
    "breaker-20k": breaker_calls,
    "background-10k": background,
    "amap-10k": amap_10k,
}


def count(event: object) -> None:
    count.n += 1  # type: ignore[attr-defined]


count.n = 0  # type: ignore[attr-defined]


def configure(mode: str) -> Callable[[], None]:
    has_hook = hasattr(anyconc, "subscribe")
    if mode == "none" and has_hook:
        anyconc.unsubscribe(anyconc.logging_observer)

        def restore() -> None:
            anyconc.subscribe(
                anyconc.logging_observer, kinds=anyconc.LoggingObserver.kinds
            )

        return restore
    if mode == "all" and has_hook:
        return anyconc.subscribe(count)
    return lambda: None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--modes", default="none,logging,all")
    parser.add_argument("--json", action="store_true", help="raw times, as JSON")
    args = parser.parse_args()
    # The log records are made (as with any handler) but not written anywhere.
    anyconc_logger = logging.getLogger("anyconc")
    anyconc_logger.addHandler(logging.NullHandler())
    anyconc_logger.propagate = False
    modes = args.modes.split(",")
    if not hasattr(anyconc, "subscribe"):
        modes = ["before"]
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds + 1):  # round 0 warms up: not recorded
        for name, workload in WORKLOADS.items():
            shift = round_ % len(modes)  # each mode in turn runs first
            for mode in modes[shift:] + modes[:shift]:
                restore = configure(mode)
                try:
                    start = time.process_time()
                    anyio.run(workload, backend=args.backend)
                    elapsed = time.process_time() - start
                    if round_:
                        times.setdefault((name, mode), []).append(elapsed)
                finally:
                    restore()
    if args.json:
        import json

        print(json.dumps({f"{n}|{m}": v for (n, m), v in times.items()}))
        return
    print(f"backend={args.backend} rounds={args.rounds} (median CPU ms)")
    for name in WORKLOADS:
        cells = [
            f"{mode}={statistics.median(times[name, mode]) * 1000:8.1f}"
            for mode in modes
        ]
        print(f"{name:16} " + "  ".join(cells))


if __name__ == "__main__":
    main()
