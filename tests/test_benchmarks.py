"""The benchmarks still run: ``python -m benchmarks --quick`` on every backend.

Never a timing assertion: the quick mode's sizes are far too small to mean anything.
What is checked is that every workload ran on every backend, that every implementation
produced a row (measured, or "not available" when its library or anyconc primitive is
missing), that none failed, and that the report and the target verdicts come out right.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["asyncio", "uvloop", "trio"]


@pytest.fixture(autouse=True)
def _importable_benchmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    # benchmarks/ is a top-level folder of the repository, not part of the package.
    monkeypatch.syspath_prepend(str(ROOT))


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], Path, str]:
    output = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "benchmarks",
            "--quick",
            "--no-charts",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,  # ~20 s on a quiet machine; this one is shared by many jobs
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((output / "results.json").read_text()), output, proc.stderr


@pytest.mark.timeout(120)  # the quick run (module fixture) starts in this test
def test_quick_run_measures_every_workload_on_every_backend(
    quick_run: tuple[dict[str, Any], Path, str],
) -> None:
    from benchmarks.workloads import WORKLOADS

    results, _, _ = quick_run
    assert results["quick"] is True
    assert results["backends"] == BACKENDS
    assert list(results["workloads"]) == [wl.key for wl in WORKLOADS]
    rows = results["rows"]
    for wl in WORKLOADS:
        for backend in BACKENDS:
            expected = [i.name for i in wl.impls if backend in i.backends]
            got = [
                r for r in rows if r["workload"] == wl.key and r["backend"] == backend
            ]
            assert [r["impl"] for r in got] == expected, (wl.key, backend)
            if not expected:  # a workload measured on some backends only
                continue
            baseline = next(r for r in got if r["baseline"])
            assert baseline["status"] == "ok", (wl.key, backend, baseline["status"])
            assert len(baseline["values"]) == wl.quick_rounds
            assert baseline["ratio"] == 1.0
            for row in got:
                assert row["status"] == "ok" or row["status"].startswith(
                    "not available"
                ), (wl.key, backend, row["impl"], row["status"])
                if row["status"] == "ok":
                    assert len(row["values"]) == wl.quick_rounds
                    assert all(v > 0 for v in row["values"]), row
                    assert row["q1"] <= row["median"] <= row["q3"]


@pytest.mark.timeout(120)
def test_quick_run_is_clean_and_writes_the_report(
    quick_run: tuple[dict[str, Any], Path, str],
) -> None:
    results, output, stderr = quick_run
    assert "Traceback" not in stderr
    assert "Warning" not in stderr
    report = (output / "RESULTS.md").read_text()
    assert "## Targets (issue 8)" in report
    for key in results["workloads"]:
        assert f"### `{key}`" in report
    assert not (output / "charts").exists()  # --no-charts


def _results(values: dict[tuple[str, str], list[float]]) -> Any:
    from benchmarks._harness import Results, Row

    results = Results(quick=True, backends=["asyncio"])
    results.workloads["race-3"] = {
        "title": "race",
        "description": "",
        "unit": "µs/op",
        "baseline": "hand-written task-group race",
        "n": 10,
        "impls": [],
    }
    for (impl, backend), vals in values.items():
        results.rows.append(
            Row("race-3", impl, backend, impl.startswith("hand"), values=vals)
        )
    return results


def test_ratio_is_the_median_of_per_round_ratios() -> None:
    results = _results(
        {
            ("anyconc run_until_first_complete", "asyncio"): [2.0, 3.0, 30.0],
            ("hand-written task-group race", "asyncio"): [1.0, 2.0, 10.0],
        }
    )
    ratio = results.ratio(
        "race-3",
        "anyconc run_until_first_complete",
        "hand-written task-group race",
        "asyncio",
    )
    # per round 2.0, 1.5, 3.0 -> 2.0 (the ratio of medians would be 1.5)
    assert ratio == 2.0
    assert (
        results.ratio("race-3", "missing", "hand-written task-group race", "asyncio")
        is None
    )


@pytest.mark.parametrize(
    ("anyconc", "verdict"),
    [([1.0, 1.1], "met"), ([1.11, 1.2], "**missed**")],
)
def test_target_verdicts(anyconc: list[float], verdict: str) -> None:
    from benchmarks._report import TARGETS, evaluate

    results = _results(
        {
            ("anyconc run_until_first_complete", "asyncio"): anyconc,
            ("hand-written task-group race", "asyncio"): [1.0, 1.0],
        }
    )
    target = next(t for t in TARGETS if t.key == "race")
    [(backend, ratio, got)] = evaluate(results, target)
    assert (backend, got) == ("asyncio", verdict)
    assert ratio == pytest.approx(sum(anyconc) / 2)


def test_report_and_charts(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks import _report
    from benchmarks.workloads import WORKLOADS

    results = _results(
        {
            ("anyconc run_until_first_complete", "asyncio"): [1.3, 1.3],
            ("hand-written task-group race", "asyncio"): [1.0, 1.0],
            ("asyncio.wait FIRST_COMPLETED", "asyncio"): [0.5, 0.6],
        }
    )
    race = [wl for wl in WORKLOADS if wl.key == "race-3"]
    _report.write(results, race, tmp_path, charts=True)
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == [
        "race-3.png",
        "summary.png",
    ]
    for png in (tmp_path / "charts").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "RESULTS.md").read_text()
    assert "1.30x **missed**" in report
    assert "![race-3](charts/race-3.png)" in report
    assert "| asyncio.wait FIRST_COMPLETED | asyncio | 0.550 | " in report


def test_cli_rejects_an_unknown_workload() -> None:
    from benchmarks._harness import main

    with pytest.raises(SystemExit, match="--only matched no workload"):
        main(["--quick", "--only", "no-such-workload"])


def test_cli_lists_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks._harness import main
    from benchmarks.workloads import WORKLOADS

    assert main(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[::2]]
    assert listed == [wl.key for wl in WORKLOADS]


def test_scaling_growth_target_and_section() -> None:
    from benchmarks._harness import Results, Row
    from benchmarks._report import TARGETS, evaluate, render
    from benchmarks.workloads import WORKLOADS

    results = Results(quick=True, backends=["asyncio"])
    baseline = "anyio memory object stream"
    for key, n in (("scale-queue-1k", 1000), ("scale-queue-10k", 10000)):
        results.workloads[key] = {
            "title": key,
            "description": "",
            "unit": "µs/op",
            "baseline": baseline,
            "n": n,
            "impls": [],
            "scaling": ["queue", "Queue items"],
        }
    # anyconc: 1.00x the baseline at 1k, 1.20x at 10k, so it grows 1.20x as fast.
    for key, ours, theirs in (
        ("scale-queue-1k", 2.0, 2.0),
        ("scale-queue-10k", 3.6, 3.0),
    ):
        results.rows += [
            Row(key, "anyconc Queue", "asyncio", False, values=[ours, ours]),
            Row(key, baseline, "asyncio", True, values=[theirs, theirs]),
        ]
    target = next(t for t in TARGETS if t.key == "growth-queue-Queue")
    [(backend, ratio, verdict)] = evaluate(results, target)
    assert (backend, verdict) == ("asyncio", "**missed**")
    assert ratio == pytest.approx(1.2)

    workloads = [wl for wl in WORKLOADS if wl.key in results.workloads]
    report = render(results, workloads, charts=False)
    assert "## Scaling" in report
    assert "| N = 1k | N = 10k | growth | growth vs raw AnyIO |" in report
    assert (
        "| anyconc Queue | asyncio | 2.00 (1.00x) | 3.60 (1.20x) | 1.80x | 1.20x |"
        in report
    )
    assert f"| {baseline} *(baseline)* | asyncio | 2.00 | 3.00 | 1.50x | – |" in report
    assert "#### `scale-queue-10k`" in report
