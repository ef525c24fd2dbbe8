"""
The anyconc demo: ``python -m anyconc [--backend asyncio|trio|all]``.

It runs the seeds' headline use cases on each backend and prints what each did and how
long it took: a parallel fan-out (three sources: the time is about the slowest, not the
sum), a blocking call offloaded to a thread (the event loop keeps ticking meanwhile), and
a race between redundant sources (the first success wins; the failing one does not end
the race; the losers are cancelled).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import anyio
import sniffio

from . import (
    AsyncLazy,
    TaskGroup,
    create_background_task,
    run_in_threadpool,
    run_until_first_complete,
)

SOURCES = {"user": 0.3, "posts": 0.2, "stats": 0.1}


async def fetch(source: str) -> str:
    await anyio.sleep(SOURCES[source])
    return f"{source} data"


async def fan_out() -> str:
    async with TaskGroup() as group:
        tasks = {name: group.create_task(fetch(name)) for name in SOURCES}
    results = {name: task.result() for name, task in tasks.items()}
    return f"fetched {sorted(results)} in parallel (sum of parts: {sum(SOURCES.values()):.1f} s)"


def blocking_work(n: int) -> int:
    time.sleep(0.2)  # stands for CPU or disk work that would block the event loop
    return n * n


async def thread_offload() -> str:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with TaskGroup() as group:
        ticking = group.create_task(ticker())
        result = await run_in_threadpool(blocking_work, 12)
        ticking.cancel()
    return f"blocking_work(12) = {result} in a thread; the loop ticked {ticks} times meanwhile"


async def search_primary() -> list[str]:
    await anyio.sleep(0.2)
    return ["primary result"]


async def search_backup() -> list[str]:
    await anyio.sleep(0.4)
    return ["backup result"]


async def search_broken() -> list[str]:
    await anyio.sleep(0.05)
    raise ConnectionError("fallback is down")


async def race() -> str:
    result = await run_until_first_complete(
        search_primary, search_backup, search_broken, timeout=2.0
    )
    return (
        f"winner: {result} (the broken source failed first, the backup was cancelled)"
    )


async def lazy_and_background() -> str:
    computations = 0

    async def compute_stats() -> str:
        nonlocal computations
        computations += 1
        return await fetch("stats")

    daily_stats = AsyncLazy(compute_stats)
    async with TaskGroup() as group:
        for _ in range(5):
            group.start_soon(daily_stats.get)
    task = create_background_task(fetch("posts"), name="notify")
    return (
        f"5 concurrent AsyncLazy.get() calls ran {computations} computation; "
        f"background task {task.name!r} returned {await task!r}"
    )


DEMOS = [
    ("parallel fan-out (TaskGroup)", fan_out),
    ("thread offload (run_in_threadpool)", thread_offload),
    ("redundant sources (run_until_first_complete)", race),
    ("lazy value + background task", lazy_and_background),
]


async def run_demos() -> None:
    backend = sniffio.current_async_library()
    for title, demo in DEMOS:
        start = anyio.current_time()
        outcome = await demo()
        elapsed = anyio.current_time() - start
        print(f"  [{backend}] {title}: {outcome}  ({elapsed:.2f} s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m anyconc", description="Show anyconc on asyncio and on trio."
    )
    parser.add_argument(
        "--backend",
        choices=["asyncio", "trio", "all"],
        default="all",
        help="the backend(s) to run the demo on (default: all)",
    )
    args = parser.parse_args(argv)
    backends = ["asyncio", "trio"] if args.backend == "all" else [args.backend]
    for backend in backends:
        print(f"anyconc demo on {backend}:")
        try:
            anyio.run(run_demos, backend=backend)
        except ModuleNotFoundError as exc:
            print(
                f"  skipped: {exc.name} is not installed (pip install 'anyconc[trio]')"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
