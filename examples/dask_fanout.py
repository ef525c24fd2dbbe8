"""
Fan CPU-bound work out over a Dask cluster with anyconc, on asyncio or trio.

Counting the primes below a few million, split into chunks: each chunk is one call of a
plain, CPU-bound function. :func:`anyconc.amap` fans the chunks out (at most
``--limit`` in flight), :func:`anyconc.run_in_executor` sends each one to the cluster
through the standard ``concurrent.futures`` interface of the Dask client, and the
results come back in order. The event loop never blocks, and no thread waits per call.

Run it with::

    python examples/dask_fanout.py                      # asyncio, 2 local workers
    python examples/dask_fanout.py --backend trio --workers 2 --limit 8
    python examples/dask_fanout.py --scheduler tcp://scheduler:8786   # a real cluster

Outgrowing one machine changes one line: the ``Client``. Here it is a
``LocalCluster`` of worker *processes* on this machine (one core each, free of the
GIL); ``Client("tcp://scheduler:8786")`` connects the very same code to a cluster
started with ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on other
machines (or by dask-kubernetes, dask-jobqueue, Coiled...). The workers there need
this module's dependencies installed; Dask ships the function itself (cloudpickle).

Two details that matter on every backend:

* Create the client *synchronously*, outside the event loop, as below. It then runs
  its own IO loop in a background thread, and its executor can be awaited from
  asyncio and from trio alike. ``Client(asynchronous=True)`` is asyncio-only.
* Dask assumes functions are pure: two calls with equal arguments share one result.
  For functions with side effects or randomness, use
  ``client.get_executor(pure=False)``.
"""

from __future__ import annotations

import argparse
from concurrent.futures import Executor

import anyio
import distributed

from anyconc import amap, run_in_executor


def count_primes(start: int, stop: int) -> int:
    """Count the primes in ``[start, stop)``, the slow way: pure CPU work."""
    count = 0
    for n in range(max(start, 2), stop):
        if n % 2 == 0:
            count += n == 2
            continue
        divisor = 3
        while divisor * divisor <= n:
            if n % divisor == 0:
                break
            divisor += 2
        else:
            count += 1
    return count


async def fan_out(
    executor: Executor, upto: int, chunks: int, limit: int
) -> tuple[int, float]:
    """Count the primes below ``upto`` in ``chunks`` calls on ``executor``."""
    size = -(-upto // chunks)
    ranges = [(lo, min(lo + size, upto)) for lo in range(0, upto, size)]

    async def count(bounds: tuple[int, int]) -> int:
        # Any failure inside count_primes is raised here, unwrapped, with the remote
        # traceback; amap raises it in an ExceptionGroup and cancels the chunks still
        # in flight (cancelling a Dask call releases its task on the cluster).
        return await run_in_executor(executor, count_primes, *bounds)

    start = anyio.current_time()
    counts = await amap(count, ranges, limit=limit)
    return sum(counts), anyio.current_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    parser.add_argument("--upto", type=int, default=2_000_000)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--limit", type=int, default=8, help="chunks in flight at once")
    options = parser.parse_args()

    if options.scheduler:
        # The same code, on a real cluster: only the client differs.
        client = distributed.Client(options.scheduler)  # type: ignore[no-untyped-call]
        cluster = None
    else:
        cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=options.workers,
            threads_per_worker=1,  # CPU-bound Python: one thread per process
            processes=True,
            dashboard_address=":0",
        )
        client = distributed.Client(cluster)  # type: ignore[no-untyped-call]

    with client:
        print(f"cluster: {client.dashboard_link} ({options.backend})")
        primes, elapsed = anyio.run(
            fan_out, client.get_executor(), options.upto, options.chunks,  # type: ignore[no-untyped-call]
            options.limit, backend=options.backend,
        )  # fmt: skip
        print(f"{primes:,} primes below {options.upto:,} in {elapsed:.2f} s")

    if cluster is not None:
        cluster.close()


if __name__ == "__main__":
    main()
