"""The benchmark harness: a small, explicit alternative to pyperf.

Why not pyperf: pyperf runs each benchmark in its own worker processes, one after the
other, while the point here is a *ratio* measured side by side. So every
implementation of a workload runs in the same process and the same event-loop run,
interleaved round by round (the order is rotated every round so no implementation
always runs first or last), after warm-up rounds that are thrown away.

Model:

* A :class:`Workload` is one measured job (e.g. "spawn and join 10,000 tasks"),
  with ``n`` operations per sample and a list of :class:`Impl` (the competitors).
* An :class:`Impl` loads a *sample function* ``async def sample(n) -> float``: it
  performs the job once for ``n`` operations and returns the measured total (seconds,
  or bytes for the memory workload). Loading imports what the implementation needs; an
  ``ImportError`` or ``AttributeError`` (e.g. an anyconc primitive that has not landed)
  makes it "not available" and the run goes on without it.
* For each backend (asyncio, asyncio + uvloop, trio) a workload gets one
  ``anyio.run()``; inside it, ``warmup + rounds`` rounds each take one sample of every
  implementation that applies to that backend.
* Reported per implementation: the median per operation, the interquartile range and
  min-max over rounds, and the ratio against the workload's baseline (raw AnyIO) on
  the same backend, computed as the median of the per-round ratios (each round's two
  samples were taken back to back, so slow drift of the machine cancels out).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

BACKENDS: tuple[str, ...] = ("asyncio", "uvloop", "trio")
ALL: tuple[str, ...] = BACKENDS
ASYNCIO: tuple[str, ...] = ("asyncio", "uvloop")
TRIO: tuple[str, ...] = ("trio",)

#: ``async def sample(n) -> total``: one measurement of ``n`` operations.
Sample = Callable[[int], Awaitable[float]]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Impl:
    """One competitor in a workload.

    :param name: label in the tables and charts
    :param load: returns the sample function; raises ``ImportError`` /
        ``AttributeError`` when the implementation is not available
    :param backends: the backends it applies to
    :param baseline: this is the raw-AnyIO reference the ratios are taken against
    """

    name: str
    load: Callable[[], Sample]
    backends: tuple[str, ...] = ALL
    baseline: bool = False


@dataclass(frozen=True)
class Workload:
    """A measured job and its competitors.

    :param key: short id used by ``--only`` and for file names
    :param title: heading in RESULTS.md
    :param description: what one sample does, for RESULTS.md
    :param impls: the competitors; exactly one should be the baseline
    :param n: operations per sample in a full run (the per-op value is total / n)
    :param quick_n: operations per sample with ``--quick``
    :param rounds: measured rounds in a full run
    :param quick_rounds: measured rounds with ``--quick``
    :param warmup: rounds run first and discarded (full run; ``--quick`` uses 1)
    :param unit: the unit of the per-op value
    :param scale: factor from "total / n" to ``unit``
    :param heavy: run only with ``--huge`` (e.g. a million tasks per sample)
    :param scaling: ``(kind, title)`` if this workload is one size of the scaling
        view (see ``workloads/scaling.py``), reported together with the other sizes
    """

    key: str
    title: str
    description: str
    impls: tuple[Impl, ...]
    n: int
    quick_n: int
    rounds: int = 7
    quick_rounds: int = 2
    warmup: int = 1
    unit: str = "µs/op"
    scale: float = 1e6
    heavy: bool = False
    scaling: tuple[str, str] | None = None

    @property
    def baseline(self) -> str:
        return next(i.name for i in self.impls if i.baseline)


@dataclass
class Row:
    """The result of one implementation of one workload on one backend."""

    workload: str
    impl: str
    backend: str
    baseline: bool
    status: str = "ok"  # "ok", "not available: ...", "error: ..."
    values: list[float] = field(default_factory=list)  # per op, one per round

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.values) < 2:
            return self.values[0], self.values[0]
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3


@dataclass
class Results:
    """Everything one run produced, plus how it was run."""

    quick: bool
    backends: list[str]
    rows: list[Row] = field(default_factory=list)
    workloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_backends: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: 1-minute load average before and after the run (other jobs on the machine)
    load: list[float] = field(default_factory=list)

    def find(self, workload: str, impl: str, backend: str) -> Row | None:
        for row in self.rows:
            if (row.workload, row.impl, row.backend) == (workload, impl, backend):
                return row
        return None

    def ratio(self, workload: str, impl: str, other: str, backend: str) -> float | None:
        """Median of the per-round ratios ``impl / other`` (None if either is missing)."""
        a = self.find(workload, impl, backend)
        b = self.find(workload, other, backend)
        if a is None or b is None or not a.ok or not b.ok:
            return None
        pairs = [x / y for x, y in zip(a.values, b.values, strict=False) if y > 0]
        return statistics.median(pairs) if pairs else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for row, raw in zip(self.rows, data["rows"], strict=True):
            if row.ok:
                q1, q3 = row.quartiles
                raw.update(median=row.median, q1=q1, q3=q3)
                wl = self.workloads[row.workload]
                raw["ratio"] = self.ratio(
                    row.workload, row.impl, wl["baseline"], row.backend
                )
        return data


def _run_options(backend: str) -> tuple[str, dict[str, Any]]:
    if backend == "trio":
        return "trio", {}
    if backend == "uvloop":
        return "asyncio", {"use_uvloop": True}
    return "asyncio", {}


def _backend_unavailable(backend: str) -> str | None:
    module = {"trio": "trio", "uvloop": "uvloop"}.get(backend)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as exc:
        return f"{module} is not installed ({exc})"
    return None


def _short(exc: BaseException) -> str:
    # "cannot import name 'Queue' from 'anyconc' (/path/...)": the path is noise.
    message = str(exc).split(" (/")[0]
    text = f"{type(exc).__name__}: {message}".strip().rstrip(":")
    return text if len(text) <= 160 else text[:157] + "..."


async def _measure(
    samples: dict[str, Sample],
    n: int,
    rounds: int,
    warmup: int,
    timeout: float,
    rows: dict[str, Row],
    scale: float,
) -> None:
    """Interleave the implementations round by round, filling ``rows`` in place."""
    active = list(samples)
    for round_no in range(warmup + rounds):
        # Rotate the order each round: nobody always runs first (cold) or last.
        shift = round_no % len(active) if active else 0
        for name in active[shift:] + active[:shift]:
            gc.collect()
            try:
                with anyio.fail_after(timeout):
                    total = await samples[name](n)
            except Exception as exc:
                rows[name].status = f"error: {_short(exc)}"
                rows[name].values.clear()
                traceback.print_exc(file=sys.stderr)
                continue
            if round_no >= warmup:
                rows[name].values.append(total / n * scale)
        active = [name for name in active if rows[name].status == "ok"]
        if not active:
            return


def run_workload(
    wl: Workload, backend: str, *, quick: bool, rounds: int | None, timeout: float
) -> list[Row]:
    """Measure every implementation of ``wl`` that applies to ``backend``."""
    rows: dict[str, Row] = {}
    samples: dict[str, Sample] = {}
    for impl in wl.impls:
        if backend not in impl.backends:
            continue
        row = rows[impl.name] = Row(wl.key, impl.name, backend, impl.baseline)
        try:
            samples[impl.name] = impl.load()
        except (ImportError, AttributeError) as exc:
            row.status = f"not available: {_short(exc)}"
    if samples:
        n = wl.quick_n if quick else wl.n
        n_rounds = rounds or (wl.quick_rounds if quick else wl.rounds)
        warmup = min(1, wl.warmup) if quick else wl.warmup
        name, options = _run_options(backend)
        anyio.run(
            _measure,
            samples,
            n,
            n_rounds,
            warmup,
            timeout,
            rows,
            wl.scale,
            backend=name,
            backend_options=options,
        )
    return list(rows.values())


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        return -1.0


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def print_rows(wl: Workload, rows: Sequence[Row], results: Results, out: Any) -> None:
    print(f"\n== {wl.key}: {wl.title}", file=out)
    width = max(len(r.impl) for r in rows) if rows else 10
    for row in rows:
        if not row.ok:
            print(f"  {row.impl:<{width}}  {row.backend:<7}  {row.status}", file=out)
            continue
        q1, q3 = row.quartiles
        ratio = results.ratio(wl.key, row.impl, wl.baseline, row.backend)
        ratio_s = f"{ratio:.2f}x" if ratio is not None else "-"
        print(
            f"  {row.impl:<{width}}  {row.backend:<7}  {_fmt(row.median):>9} {wl.unit}"
            f"  IQR {_fmt(q1)}-{_fmt(q3)}  {ratio_s:>6}",
            file=out,
        )


def all_workloads() -> list[Workload]:
    from benchmarks import workloads

    return workloads.WORKLOADS


def _select(workloads: list[Workload], only: Sequence[str]) -> list[Workload]:
    if not only:
        return workloads
    wanted = [w.strip() for item in only for w in item.split(",") if w.strip()]
    chosen = [wl for wl in workloads if any(wl.key.startswith(w) for w in wanted)]
    if not chosen:
        keys = ", ".join(wl.key for wl in workloads)
        raise SystemExit(f"--only matched no workload (known: {keys})")
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="anyconc side by side with raw AnyIO, the native backends and "
        "the peer libraries, on asyncio, asyncio+uvloop and trio.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and 2 rounds: checks that everything runs (~15 s)",
    )
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "all"],
        default="all",
        help="run on one backend only (default: all)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORKLOAD",
        help="run only workloads whose key starts with this (repeatable, or "
        "comma-separated); see --list",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads")
    parser.add_argument(
        "--huge",
        action="store_true",
        help="also run the heavy workloads in a full run (the scaling view at "
        "1,000,000 operations per sample: several minutes and a few GiB of memory; "
        "--quick runs them at its small sizes anyway)",
    )
    parser.add_argument("--rounds", type=int, help="override the measured rounds")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one sample may take before the implementation is marked as "
        "an error (default 120, 30 with --quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="directory for RESULTS.md, charts/ and results.json (default: "
        "benchmarks/ for a full run of everything, nothing written otherwise)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write raw results here"
    )
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workloads = _select(all_workloads(), args.only)
    if args.list:
        for wl in workloads:
            names = ", ".join(i.name for i in wl.impls)
            heavy = " (full run: only with --huge)" if wl.heavy else ""
            print(f"{wl.key:<18} {wl.title}{heavy}\n{'':<18} {names}")
        return 0
    if not (args.quick or args.huge):
        # A --quick run keeps them: its sizes are small.
        workloads = [wl for wl in workloads if not wl.heavy]
        if not workloads:
            raise SystemExit("--only matched only heavy workloads: add --huge")

    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    results = Results(quick=args.quick, backends=backends)
    for backend in list(backends):
        reason = _backend_unavailable(backend)
        if reason:
            results.skipped_backends[backend] = reason
            backends.remove(backend)
            print(f"skipping backend {backend}: {reason}", file=sys.stderr)

    timeout = args.timeout or (30.0 if args.quick else 120.0)
    results.load.append(_load())
    started = time.perf_counter()
    for wl in workloads:
        results.workloads[wl.key] = {
            "title": wl.title,
            "description": wl.description,
            "unit": wl.unit,
            "baseline": wl.baseline,
            "n": wl.quick_n if args.quick else wl.n,
            "impls": [i.name for i in wl.impls],
            "scaling": list(wl.scaling) if wl.scaling else None,
        }
        rows: list[Row] = []
        for backend in backends:
            t0 = time.perf_counter()
            rows += run_workload(
                wl, backend, quick=args.quick, rounds=args.rounds, timeout=timeout
            )
            print(
                f"[{wl.key} on {backend}: {time.perf_counter() - t0:.1f}s]",
                file=sys.stderr,
            )
        results.rows += rows
        print_rows(wl, rows, results, sys.stdout)
        sys.stdout.flush()
    results.seconds = time.perf_counter() - started
    results.load.append(_load())
    print(f"\ntotal: {results.seconds:.1f}s", file=sys.stderr)

    output = args.output
    if output is None and not (args.quick or args.only or args.backend != "all"):
        output = HERE
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results.to_json(), indent=1))
    if output is not None:
        from benchmarks import _report

        output.mkdir(parents=True, exist_ok=True)
        (output / "results.json").write_text(json.dumps(results.to_json(), indent=1))
        _report.write(results, workloads, output, charts=not args.no_charts)
        print(f"wrote {output / 'RESULTS.md'}", file=sys.stderr)
    return 0
