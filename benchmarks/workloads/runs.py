"""
The per-run lookup every operation of a run-portable object makes (issue 14).

``anyconc._lowlevel.PerRun.get()`` against the one-slot ``PerRun`` it replaced (kept
here, with the ``current_run()`` it used, as it was before issue 14) and against raw
AnyIO's own per-run variable, :class:`anyio.lowlevel.RunVar`; in one run, and in four
runs at the same time in four threads (this run and three more on the same backend).
The one-slot ``PerRun`` gives wrong results with concurrent runs (one slot for the
latest run): its four-run row shows its cost only.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any

import anyio
import sniffio
from anyio.lowlevel import RunVar

from benchmarks._harness import Impl, Sample, Workload

# --- the one-slot PerRun of before issue 14 ------------------------------------------


def _old_current_run() -> object:
    library = sniffio.current_async_library()
    if library == "asyncio":
        return asyncio.get_running_loop()
    import trio

    return trio.lowlevel.current_trio_token()


class OneSlotPerRun:
    """``anyconc._runtoken.PerRun`` before issue 14: one slot, for the latest run."""

    __slots__ = ("_factory", "_run_ref", "_value")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._run_ref: weakref.ref[object] | None = None
        self._value: Any = None

    def get(self) -> Any:
        run = _old_current_run()
        ref = self._run_ref
        if ref is None or ref() is not run:
            self._value = self._factory()
            self._run_ref = weakref.ref(run)
        return self._value


class _RunVarLookup:
    """Raw AnyIO: a RunVar holding the value, set on first use in each run."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._var: RunVar[Any] = RunVar("bench")

    def get(self) -> Any:
        value = self._var.get(None)
        if value is None:
            value = self._factory()
            self._var.set(value)
        return value


def _make_new(factory: Callable[[], Any]) -> Any:
    from anyconc._lowlevel import PerRun

    return PerRun(factory)


# --- samples ---------------------------------------------------------------------------


def _lookups(per_run: Any, n: int) -> None:
    get = per_run.get
    for _ in range(n):
        get()


def _one_run(make: Callable[[Callable[[], Any]], Any]) -> Sample:
    async def sample(n: int) -> float:
        per_run = make(object)
        per_run.get()
        t0 = perf_counter()
        _lookups(per_run, n)
        return perf_counter() - t0

    return sample


def _run_options() -> tuple[str, dict[str, Any]]:
    if sniffio.current_async_library() == "trio":
        return "trio", {}
    uvloop = type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    return "asyncio", {"use_uvloop": True} if uvloop else {}


def _four_runs(make: Callable[[Callable[[], Any]], Any]) -> Sample:
    async def sample(n: int) -> float:
        per_run = make(object)
        backend, options = _run_options()
        share = n // 4
        start = threading.Barrier(4)

        async def other_run() -> None:
            per_run.get()
            start.wait()
            _lookups(per_run, share)

        threads = [
            threading.Thread(
                target=anyio.run,
                args=(other_run,),
                kwargs={"backend": backend, "backend_options": options},
            )
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        per_run.get()
        start.wait()  # the three other runs are up: all four go at once
        t0 = perf_counter()
        _lookups(per_run, n - 3 * share)
        for thread in threads:
            thread.join()
        return perf_counter() - t0

    return sample


_IMPLS: list[tuple[str, Callable[[Callable[[], Any]], Any], bool]] = [
    ("anyconc PerRun.get", _make_new, False),
    ("one-slot PerRun.get (before issue 14)", OneSlotPerRun, False),
    ("anyio RunVar.get", _RunVarLookup, True),
]

WORKLOADS = [
    Workload(
        "runs-lookup-1",
        "Per-run state lookup, one run",
        "One sample looks up an object's per-run value 100,000 times in one run; per "
        "op = per lookup. The one-slot PerRun is what anyconc used before issue 14.",
        tuple(
            Impl(name, partial(_one_run, make), baseline=baseline)
            for name, make, baseline in _IMPLS
        ),
        n=100_000,
        quick_n=2_000,
        rounds=9,
    ),
    Workload(
        "runs-lookup-4",
        "Per-run state lookup, four runs at once in four threads",
        "Four event-loop runs on the backend, in four threads, look up the same "
        "object's per-run value 25,000 times each, at the same time; per op = per "
        "lookup (wall time). The one-slot PerRun gives wrong results here (one slot "
        "for the latest run): its row is its cost only.",
        tuple(
            Impl(name, partial(_four_runs, make), baseline=baseline)
            for name, make, baseline in _IMPLS
        ),
        n=100_000,
        quick_n=2_000,
        rounds=7,
    ),
]
