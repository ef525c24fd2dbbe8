"""RESULTS.md, the targets from issues 8 and 19, and the PNG charts."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks._harness import BACKENDS, HERE, Results, Row, Workload, _fmt


@dataclass(frozen=True)
class Target:
    """``impl`` / ``other`` (per-op time, or bytes) must be at most ``limit``."""

    key: str
    text: str
    workload: str
    impl: str
    other: str
    limit: float
    backends: tuple[str, ...] = BACKENDS
    strict: bool = False  # "<" rather than "<="


@dataclass(frozen=True)
class GrowthTarget:
    """
    In the scaling view of ``kind``, ``impl``'s per-op cost must grow no faster than
    ``other``'s from the smallest size measured to the largest: the ratio ``impl /
    other`` (median of per-round ratios) at the largest size, over the same ratio at
    the smallest, must be at most ``limit``.
    """

    key: str
    text: str
    kind: str
    impl: str
    other: str
    limit: float
    backends: tuple[str, ...] = BACKENDS
    strict: bool = False


def scaling_sizes(results: Results, kind: str) -> list[tuple[str, int]]:
    """``(workload key, n)`` of every measured size of the scaling view of ``kind``."""
    sizes = [
        (key, int(info["n"]))
        for key, info in results.workloads.items()
        if (info.get("scaling") or [None])[0] == kind
    ]
    return sorted(sizes, key=lambda item: item[1])


def growth(
    results: Results, kind: str, impl: str, other: str, backend: str
) -> float | None:
    """``impl / other`` at the largest measured size over the same at the smallest."""
    sizes = scaling_sizes(results, kind)
    if len(sizes) < 2:
        return None
    first = results.ratio(sizes[0][0], impl, other, backend)
    last = results.ratio(sizes[-1][0], impl, other, backend)
    if first is None or last is None or first <= 0:
        return None
    return last / first


TARGETS: tuple[Target | GrowthTarget, ...] = (
    *(
        Target(
            f"taskgroup-{variant}-{wl}",
            f"`anyconc.TaskGroup.{variant}` ≤ 1.10x raw AnyIO `{variant}` ({wl})",
            wl,
            f"anyconc TaskGroup.{variant}",
            f"anyio {variant}",
            1.10,
        )
        for wl in ("spawn-10k", "spawn-100k")
        for variant in ("start_soon", "create_task")
    ),
    *(
        Target(
            f"taskgroup-{variant}-soonify-{wl}",
            f"`anyconc.TaskGroup.{variant}` faster than asyncer's `soonify` ({wl})",
            wl,
            f"anyconc TaskGroup.{variant}",
            "asyncer soonify",
            1.0,
            strict=True,
        )
        for wl in ("spawn-10k", "spawn-100k")
        for variant in ("start_soon", "create_task")
    ),
    Target(
        "threadpool-threads-seq",
        "`run_in_threadpool` ≤ 1.05x `anyio.to_thread.run_sync` (threads-seq)",
        "threads-seq",
        "anyconc run_in_threadpool",
        "anyio.to_thread.run_sync",
        1.05,
    ),
    Target(
        "threadpool-threads-par8",
        "`run_in_threadpool` ≤ 1.10x `anyio.to_thread.run_sync` (threads-par8, "
        "issue 19)",
        "threads-par8",
        "anyconc run_in_threadpool",
        "anyio.to_thread.run_sync",
        1.10,
    ),
    Target(
        "race",
        "`run_until_first_complete` ≤ 1.10x the hand-written task-group race",
        "race-3",
        "anyconc run_until_first_complete",
        "hand-written task-group race",
        1.10,
    ),
    Target(
        "lazy",
        "cached `AsyncLazy.get()` ≤ 1.5x Nexios's `AsyncLazy.get()` on asyncio",
        "lazy-get",
        "anyconc AsyncLazy.get",
        "nexios AsyncLazy.get",
        1.5,
        backends=("asyncio",),
    ),
    *(
        Target(
            f"queue-stream-{wl}",
            f"`Queue` throughput ≥ AnyIO memory object stream ({wl})",
            wl,
            "anyconc Queue",
            "anyio memory object stream",
            1.0,
        )
        for wl in ("queue-1x1", "queue-4x4")
    ),
    Target(
        "barrier",
        "`Barrier.wait()` ≤ 1.30x the hand-written AnyIO barrier (issue 19)",
        "barrier-100x100",
        "anyconc Barrier",
        "hand-written anyio barrier",
        1.30,
    ),
    *(
        Target(
            f"background-{variant}-{wl}",
            f"`{impl}` ≤ 1.10x raw AnyIO `start_soon` ({wl}, issue 19)",
            wl,
            f"anyconc {impl}",
            "anyio task group start_soon",
            1.10,
        )
        for wl in ("background-1k", "background-10k")
        for variant, impl in (
            ("default", "create_background_task"),
            ("supervisor", "BackgroundTasks.create_task"),
        )
    ),
    *(
        Target(
            f"memory-{variant}",
            f"memory per sleeping task ≤ 1.15x raw AnyIO (`{variant}`)",
            "memory-100k",
            f"anyconc TaskGroup.{variant}",
            f"anyio {variant}",
            1.15,
        )
        for variant in ("start_soon", "create_task")
    ),
    *(
        GrowthTarget(
            f"growth-{kind}-{impl.split()[-1]}",
            f"scaling: `{impl.split(' ', 1)[1]}` per-op cost grows no faster than "
            f"`{other}`'s ({kind}, smallest to largest N; issue 19)",
            kind,
            impl,
            other,
            1.10,
        )
        for kind, impl, other in (
            ("spawn", "anyconc TaskGroup.start_soon", "anyio start_soon"),
            ("spawn", "anyconc TaskGroup.create_task", "anyio create_task"),
            (
                "background",
                "anyconc create_background_task",
                "anyio task group start_soon",
            ),
            (
                "background",
                "anyconc BackgroundTasks.create_task",
                "anyio task group start_soon",
            ),
            ("queue", "anyconc Queue", "anyio memory object stream"),
        )
    ),
    Target(
        "import",
        "`import anyconc` ≤ 1.5x `import anyio`, fresh interpreter (issue 17)",
        "import",
        "anyconc (import anyconc)",
        "anyio (import anyio)",
        1.5,
        backends=("asyncio",),
    ),
)

#: Why a target is missed, from profiling (see /work/notes/benchmarks.md); shown only
#: next to a miss. Keyed by the start of Target.key.
MISS_CAUSES: dict[str, str] = {
    "race": (
        "Profiled (cProfile call counts against the hand-written race): since the "
        "timeout moved onto the group's own cancel scope (no `fail_after(None)` "
        "scope per race, which had cost 5-10 %), both make the same backend calls; "
        "what remains is anyconc's own per-race work: validating and normalising the "
        "candidates (`_as_factory`), the failures list and the per-candidate "
        "try/except wrapper, a few µs on a ~100 µs race. Within noise of the limit."
    ),
    "taskgroup-create_task": (
        "Structural: each anyconc task is an AnyIO task plus a `Task` handle and a "
        "`Task._run` wrapper coroutine (one more frame per task, +225 B per task "
        "against AnyIO's `create_task` in memory-100k). spawn-100k has only 2 "
        "rounds (each sample spawns 100,000 tasks), so its ratio is the noisiest; "
        "spawn-10k (9 rounds) is the steadier figure."
    ),
    "threadpool": (
        "Profiled: the extra `await checkpoint_if_cancelled()` after each call "
        "(~1-2 µs of event-loop time per call, which is what bounds the 8-way "
        "parallel case). Measured with it removed: 1.01-1.02x on uvloop (21 rounds). "
        "The sync-callable check (`inspect.iscoroutinefunction`) costs ~0.5 µs and "
        "made no measurable difference. Thread-call timings on this shared 2-core "
        "machine are noisy: see the IQR."
    ),
    "background": (
        "Profiled (cProfile, 10,000 tasks, asyncio and trio; micro-timed parts, issue "
        "19): AnyIO 4.16's own `start_soon` already builds a `TaskHandle` per task "
        "(cancel scope, event, wrapper coroutine), so the gap is anyconc's own "
        "per-task work, about 3-4 µs on 15-20 µs: `BackgroundTask.__init__` 1.2-1.9 "
        "µs, mostly `started_at = current_time()` (0.8-1.0 µs: a sniffio lookup and "
        "the loop clock per task); `_run_state()` 1.1-1.4 µs per "
        "`create_background_task` (`current_run()` and a WeakKeyDictionary lookup); "
        "the `Task._run` wrapper frame with its `_finish()` bookkeeping; "
        "`check_coroutine` 0.1-0.2 µs. Being reworked with the background-task "
        "rewrite (issue 19, item 2)."
    ),
    "barrier": (
        "What remains over the hand-written barrier (whose non-last parties only "
        "count and wait on one event) is anyconc's per-task bookkeeping for "
        "`asyncio.Barrier` semantics: a ticket per waiting task (for its index and "
        "for cancellation), the drain state, and admitting the tasks that arrived "
        "during a drain. One event wait per task, as the hand-written one."
    ),
    "queue-stream": (
        "Since issue 19 every `put()`/`get()` runs in trio's order: a cancellation "
        "check, the operation, then a cancel-shielded yield (the memory stream yields "
        "first, through AnyIO's backend lookup, then operates). On asyncio the check "
        "walks AnyIO's cancel scopes of the task (its current task, a weak-reference "
        "lookup, one step per enclosing scope: ~0.45 µs a call here), which is what "
        "the new order costs: measured in one process against the previous "
        "yield-first queue, 1.15-1.45x on asyncio and uvloop (more in queue-4x4), "
        "1.06-1.12x on trio, whose own check is O(1). Without the check (measured): "
        "0.93-1.10x of the previous queue. Parity with the stream is then within "
        "noise."
    ),
}


def _cause(target: Target | GrowthTarget) -> str:
    for prefix, text in MISS_CAUSES.items():
        if target.key.startswith(prefix):
            return text
    return ""


def evaluate(
    results: Results, target: Target | GrowthTarget
) -> list[tuple[str, float | None, str]]:
    """``(backend, ratio, verdict)`` for each backend the target applies to."""
    out: list[tuple[str, float | None, str]] = []
    for backend in target.backends:
        if backend not in results.backends:
            continue
        if isinstance(target, GrowthTarget):
            if len(scaling_sizes(results, target.kind)) < 2:
                continue
            ratio = growth(results, target.kind, target.impl, target.other, backend)
            if ratio is None:
                out.append((backend, None, "not measured"))
                continue
        elif target.workload not in results.workloads:
            continue
        else:
            ratio = results.ratio(target.workload, target.impl, target.other, backend)
        if ratio is None:
            assert isinstance(target, Target)
            row = results.find(target.workload, target.impl, backend)
            verdict = "not measured" + (
                f" ({row.status})" if row and not row.ok else ""
            )
        elif ratio < target.limit or (not target.strict and ratio == target.limit):
            verdict = "met"
        else:
            verdict = "**missed**"
        out.append((backend, ratio, verdict))
    return out


def _versions() -> list[str]:
    out = []
    for dist in ("anyconc", "anyio", "trio", "uvloop", "asyncer", "aiometer", "nexios"):
        try:
            out.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return out


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" + uncommitted changes in src/" if dirty else "")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _header(results: Results) -> list[str]:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = (
        "`--quick` (smoke run: sizes too small to mean much)"
        if results.quick
        else "full"
    )
    lines = [
        "# anyconc benchmarks",
        "",
        "Generated by `python -m benchmarks` — do not edit by hand, re-run it. "
        f"Run: {now}, {mode}, {results.seconds / 60:.1f} min.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {_cpu()}, {os.cpu_count()} cores; {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.implementation.name})",
        f"- {', '.join(_versions())}",
        f"- anyconc source: git {_git_revision()}",
        f"- 1-minute load average before / after the run: "
        f"{' / '.join(f'{x:.2f}' for x in results.load)} (the benchmark alone keeps "
        "it near 1; more means other jobs shared the machine)",
        f"- backends: {', '.join(results.backends)}"
        + "".join(f"; {b} skipped: {r}" for b, r in results.skipped_backends.items()),
        "",
        "## How to read this",
        "",
        "- Every implementation of a workload runs in the same process and the same "
        "event-loop run, interleaved round by round (the order rotates every round), "
        "after a discarded warm-up round.",
        "- **median** is the median over rounds of the time per operation; **IQR** is "
        "the interquartile range over rounds and **min–max** the extremes, so a wide "
        "spread says how much to trust a small difference.",
        "- **vs raw AnyIO** is the median of the per-round ratios against the "
        "workload's raw-AnyIO baseline on the same backend (marked *baseline*); below "
        "1.00x is faster. Ratios are comparable across backends, absolute times are "
        "not comparable across machines.",
        "- Native asyncio/trio and the peer libraries appear only on the backends where "
        "they apply (Nexios and `asyncio.*` need an asyncio loop: asyncio and uvloop).",
        "- Memory is tracemalloc's peak (Python allocations only: uvloop's C-level "
        "handles are not seen) from the first spawn until every task sleeps.",
        "",
    ]
    return lines


def _targets(results: Results) -> list[str]:
    backends = [b for b in BACKENDS if b in results.backends]
    lines = [
        "## Targets (issue 8)",
        "",
        "With the targets added by issue 19 (marked so), which also withdrew the "
        "`Queue` ≤ 3x `asyncio.Queue` target. A scaling target's ratio is anyconc's "
        "ratio to raw AnyIO at the largest N of the scaling view over the same ratio "
        "at the smallest (1.00x: both grow alike); its limit leaves 10 % for the "
        "noise of this shared machine.",
        "",
        "Each cell: the measured ratio of time (or bytes) per operation, anyconc over "
        "the reference (median of per-round ratios), and whether the target is met on "
        'that backend. A throughput target "≥ X" is a time ratio "≤ 1.00x".',
        "",
        "| Target | Limit | " + " | ".join(backends) + " |",
        "|---|---:|" + "---|" * len(backends),
    ]
    causes: list[str] = []
    for target in TARGETS:
        verdicts = {b: (r, v) for b, r, v in evaluate(results, target)}
        if not verdicts:
            continue
        cells, missed = [], []
        for backend in backends:
            if backend not in verdicts:
                cells.append("n/a")
                continue
            ratio, verdict = verdicts[backend]
            if ratio is None:
                cells.append(verdict.split(" (")[0])
                continue
            cells.append(f"{ratio:.2f}x {verdict}")
            if verdict == "**missed**":
                missed.append(f"{backend} {ratio:.2f}x")
        if missed:
            cause = _cause(target) or "Cause not profiled yet."
            causes.append(f"- {target.text}: {', '.join(missed)}. {cause}")
        op = "<" if target.strict else "≤"
        lines.append(
            f"| {target.text} | {op} {target.limit:.2f}x | " + " | ".join(cells) + " |"
        )
    lines.append("")
    if causes:
        lines += ["### Misses and their measured causes", "", *causes, ""]
    return lines


def _table(wl: Workload, rows: Sequence[Row], results: Results) -> list[str]:
    lines = [
        f"| Implementation | Backend | Median {wl.unit} | IQR | min–max | vs raw AnyIO |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = row.impl + (" *(baseline)*" if row.baseline else "")
        if not row.ok:
            lines.append(f"| {name} | {row.backend} | {row.status} | | | |")
            continue
        q1, q3 = row.quartiles
        ratio = results.ratio(wl.key, row.impl, wl.baseline, row.backend)
        ratio_s = "–" if ratio is None else f"{ratio:.2f}x"
        lines.append(
            f"| {name} | {row.backend} | {_fmt(row.median)} | {_fmt(q1)}–{_fmt(q3)} "
            f"| {_fmt(min(row.values))}–{_fmt(max(row.values))} | {ratio_s} |"
        )
    return lines


def _scaling(
    results: Results, workloads: Sequence[Workload], charts: bool
) -> list[str]:
    kinds: dict[str, str] = {}
    for wl in workloads:
        if wl.scaling and wl.key in results.workloads:
            kinds.setdefault(*wl.scaling)
    if not kinds:
        return []
    lines = [
        "## Scaling",
        "",
        "Per-operation cost as the work grows: each N is its own workload "
        "(`scale-<kind>-<N>`, interleaved rounds as everywhere), gathered here. "
        "**growth** is the median per-op cost at the largest N over the same at the "
        "smallest; **vs raw AnyIO** is the ratio to the raw-AnyIO baseline at each N "
        "(median of per-round ratios), and **growth vs raw AnyIO** that ratio at the "
        "largest N over the same at the smallest (the scaling targets: at most 1.10x). "
        "N = 1,000,000 is measured only with `python -m benchmarks --huge`.",
        "",
    ]
    backends = [b for b in BACKENDS if b in results.backends]
    for kind, title in kinds.items():
        sizes = scaling_sizes(results, kind)
        keys = [key for key, _ in sizes]
        wl0 = next(wl for wl in workloads if wl.key == keys[0])
        baseline = wl0.baseline
        lines += [f"### Scaling: {title}", "", f"{wl0.description} Baseline: "
                  f"{baseline}.", ""]
        if charts:
            lines += [f"![scaling-{kind}](charts/scaling-{kind}.png)", ""]
        head = " | ".join(f"N = {_n_label(n)}" for _, n in sizes)
        lines += [
            f"| Implementation | Backend | {head} | growth | growth vs raw AnyIO |",
            "|---|---|" + "---:|" * (len(sizes) + 2),
        ]
        for backend in backends:
            for impl in wl0.impls:
                cells = []
                medians = []
                for key, _ in sizes:
                    row = results.find(key, impl.name, backend)
                    if row is None or not row.ok:
                        cells.append("–")
                        continue
                    medians.append(row.median)
                    ratio = results.ratio(key, impl.name, baseline, backend)
                    cells.append(
                        _fmt(row.median)
                        + ("" if impl.baseline or ratio is None else f" ({ratio:.2f}x)")
                    )
                grown = (
                    f"{medians[-1] / medians[0]:.2f}x"
                    if len(medians) == len(sizes) and medians[0] > 0
                    else "–"
                )
                relative = (
                    "–"
                    if impl.baseline
                    else _opt(growth(results, kind, impl.name, baseline, backend))
                )
                name = impl.name + (" *(baseline)*" if impl.baseline else "")
                lines.append(
                    f"| {name} | {backend} | {' | '.join(cells)} | {grown} | "
                    f"{relative} |"
                )
        lines += ["", "<details><summary>Per-size details</summary>", ""]
        for key, _ in sizes:
            wl = next(w for w in workloads if w.key == key)
            rows = [r for r in results.rows if r.workload == key]
            lines += [
                f"#### `{key}`: {wl.title}",
                "",
                f"Rounds: {max((len(r.values) for r in rows), default=0)}.",
                "",
                *_table(wl, rows, results),
                "",
            ]
        lines += ["</details>", ""]
    return lines


def _n_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000:,}k"
    return f"{n:,}"


def _opt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def render(results: Results, workloads: Sequence[Workload], charts: bool) -> str:
    lines = _header(results) + _targets(results)
    lines += ["## Workloads", ""]
    if charts:
        lines += [
            "Summary: ![anyconc against raw AnyIO](charts/summary.png)",
            "",
        ]
    for wl in workloads:
        if wl.scaling:
            continue
        rows = [r for r in results.rows if r.workload == wl.key]
        n = results.workloads[wl.key]["n"]
        lines += [
            f"### `{wl.key}`: {wl.title}",
            "",
            f"{wl.description} Baseline: {wl.baseline}. Operations per sample: {n:,}; "
            f"rounds: {max((len(r.values) for r in rows), default=0)}.",
            "",
        ]
        if charts:
            lines += [f"![{wl.key}](charts/{wl.key}.png)", ""]
        lines += [*_table(wl, rows, results), ""]
    lines += _scaling(results, workloads, charts)
    return "\n".join(lines)


def write(
    results: Results, workloads: Sequence[Workload], output: Path, charts: bool
) -> None:
    made_charts = False
    if charts:
        try:
            from benchmarks import _charts
        except ImportError as exc:
            print(f"no charts: {exc}", file=sys.stderr)
        else:
            _charts.draw(results, workloads, output / "charts")
            made_charts = True
    (output / "RESULTS.md").write_text(render(results, workloads, made_charts))
