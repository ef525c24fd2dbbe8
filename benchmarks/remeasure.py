"""Re-measure some workloads alone and merge them into RESULTS.md and results.json.

``python -m benchmarks.remeasure import [--rounds N]``

A full run (``python -m benchmarks``) re-measures everything and rewrites both files;
this adds or refreshes one workload without re-running the others (about 7 minutes on
an idle machine, far more on a busy one). The other workloads keep their numbers and
the header of the run they came from; the targets table is recomputed from the merged
results, and each re-measured workload's section says when it was measured, at which
revision and under what load, since that was not in the run described at the top.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _report
from benchmarks._harness import (
    HERE,
    Results,
    Row,
    Workload,
    _load,
    _select,
    all_workloads,
    print_rows,
    run_workload,
)

_ROW_FIELDS = {f.name for f in dataclasses.fields(Row)}


def load_results(path: Path) -> Results:
    """Read a ``results.json`` written by ``python -m benchmarks``."""
    data: dict[str, Any] = json.loads(path.read_text())
    rows = [Row(**{k: v for k, v in raw.items() if k in _ROW_FIELDS}) for raw in data["rows"]]
    return Results(
        quick=data["quick"],
        backends=data["backends"],
        rows=rows,
        workloads=data["workloads"],
        skipped_backends=data.get("skipped_backends", {}),
        seconds=data.get("seconds", 0.0),
        load=data.get("load", []),
    )


def _section(wl: Workload, results: Results, note: str, charts: bool) -> list[str]:
    """The workload's section of RESULTS.md, as ``_report.render`` writes it, plus a note."""
    rows = [r for r in results.rows if r.workload == wl.key]
    n = results.workloads[wl.key]["n"]
    lines = [
        f"### `{wl.key}`: {wl.title}",
        "",
        f"{wl.description} Baseline: {wl.baseline}. Operations per sample: {n:,}; "
        f"rounds: {max((len(r.values) for r in rows), default=0)}.",
        "",
        f"*{note}*",
        "",
    ]
    if charts:
        lines += [f"![{wl.key}](charts/{wl.key}.png)", ""]
    return [*lines, *_report._table(wl, rows, results), ""]


def _replace_between(text: str, start: str, end: str, new: str) -> str:
    i, j = text.index(start), text.index(end)
    return text[:i] + new + text[j:]


def merge_markdown(
    markdown: str, results: Results, chosen: Sequence[Workload], notes: dict[str, str],
    charts: bool,
) -> str:
    """Recompute the targets table; replace or append the chosen workloads' sections."""
    targets = "\n".join(_report._targets(results)) + "\n"
    markdown = _replace_between(markdown, "## Targets", "## Workloads", targets)
    for wl in chosen:
        section = "\n".join(_section(wl, results, notes[wl.key], charts)) + "\n"
        heading = re.compile(rf"^### `{re.escape(wl.key)}`:.*$", re.M)
        match = heading.search(markdown)
        if match is None:
            markdown = markdown.rstrip("\n") + "\n\n" + section
            continue
        following = re.compile(r"^### `", re.M).search(markdown, match.end())
        end = following.start() if following else len(markdown)
        markdown = markdown[: match.start()] + section + markdown[end:]
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remeasure")
    parser.add_argument("workloads", nargs="+", help="workload keys (or prefixes)")
    parser.add_argument("--rounds", type=int, help="override the measured rounds")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--output", type=Path, default=HERE)
    args = parser.parse_args(argv)

    results_path = args.output / "results.json"
    report_path = args.output / "RESULTS.md"
    results = load_results(results_path)
    everything = all_workloads()
    chosen = _select(everything, args.workloads)
    notes: dict[str, str] = {}
    for wl in chosen:
        load_before = _load()
        rows: list[Row] = []
        for backend in results.backends:
            if any(backend in impl.backends for impl in wl.impls):
                rows += run_workload(
                    wl, backend, quick=False, rounds=args.rounds, timeout=args.timeout
                )
        results.rows = [r for r in results.rows if r.workload != wl.key] + rows
        results.workloads[wl.key] = {
            "title": wl.title,
            "description": wl.description,
            "unit": wl.unit,
            "baseline": wl.baseline,
            "n": wl.n,
            "impls": [i.name for i in wl.impls],
        }
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        notes[wl.key] = (
            f"Measured separately (`python -m benchmarks.remeasure {wl.key}`) on {now}, "
            f"anyconc source git {_report._git_revision()}, 1-minute load average "
            f"{load_before:.2f} / {_load():.2f}; not part of the run described at the top."
        )
        print_rows(wl, rows, results, sys.stdout)

    # Keep the order of the workloads as a full run writes them.
    order = {wl.key: i for i, wl in enumerate(everything)}
    results.rows.sort(key=lambda r: order.get(r.workload, len(order)))
    results.workloads = dict(
        sorted(results.workloads.items(), key=lambda kv: order.get(kv[0], len(order)))
    )
    results_path.write_text(json.dumps(results.to_json(), indent=1))

    charts = (args.output / "charts").is_dir()
    if charts:
        try:
            from benchmarks import _charts
        except ImportError as exc:
            print(f"no charts: {exc}", file=sys.stderr)
            charts = False
        else:
            for wl in chosen:
                _charts._workload_chart(results, wl, args.output / "charts" / f"{wl.key}.png")
            in_report = [wl for wl in everything if wl.key in results.workloads]
            _charts._summary_chart(results, in_report, args.output / "charts" / "summary.png")
    report_path.write_text(
        merge_markdown(report_path.read_text(), results, chosen, notes, charts)
    )
    print(f"merged into {report_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
