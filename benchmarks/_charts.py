"""PNG bar charts (matplotlib, from the ``bench`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402

from benchmarks._harness import BACKENDS, Results, Workload  # noqa: E402

COLORS = {"asyncio": "#4C72B0", "uvloop": "#55A868", "trio": "#C44E52"}


def _workload_chart(results: Results, wl: Workload, path: Path) -> None:
    rows = [r for r in results.rows if r.workload == wl.key and r.ok]
    impls = [i.name for i in wl.impls if any(r.impl == i.name for r in rows)]
    backends = [b for b in BACKENDS if any(r.backend == b for r in rows)]
    if not impls:
        return
    height = 0.8 / max(len(backends), 1)
    fig, ax = plt.subplots(figsize=(9, 0.26 * len(impls) * max(len(backends), 1) + 1.4))
    top = 0.0
    for b_index, backend in enumerate(backends):
        ys, widths, lo, hi, labels = [], [], [], [], []
        for i_index, impl in enumerate(impls):
            row = results.find(wl.key, impl, backend)
            if row is None or not row.ok:
                continue
            q1, q3 = row.quartiles
            ys.append(i_index + (b_index - (len(backends) - 1) / 2) * height)
            widths.append(row.median)
            lo.append(max(row.median - q1, 0.0))
            hi.append(max(q3 - row.median, 0.0))
            ratio = results.ratio(wl.key, impl, wl.baseline, backend)
            labels.append(f" {ratio:.2f}x" if ratio is not None else "")
            top = max(top, q3)
        bars = ax.barh(
            ys,
            widths,
            height=height,
            xerr=[lo, hi],
            color=COLORS.get(backend),
            label=backend,
            error_kw={"elinewidth": 0.8, "capsize": 2},
        )
        ax.bar_label(bars, labels=labels, fontsize=7, padding=3)
    ax.set_yticks(range(len(impls)), impls, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.25 or 1)
    ax.set_xlabel(f"median {wl.unit} (error bars: IQR; labels: ratio vs raw AnyIO)")
    ax.set_title(f"{wl.key}: {wl.title}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _summary_chart(results: Results, workloads: Sequence[Workload], path: Path) -> None:
    entries: list[tuple[str, str, str]] = []  # (label, workload, impl)
    for wl in workloads:
        for impl in wl.impls:
            if impl.name.startswith("anyconc"):
                entries.append(
                    (f"{wl.key}: {impl.name[len('anyconc ') :]}", wl.key, impl.name)
                )
    backends = [b for b in BACKENDS if b in results.backends]
    if not entries or not backends:
        return
    height = 0.8 / len(backends)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(entries) + 1.5))
    for b_index, backend in enumerate(backends):
        ys, widths = [], []
        for e_index, (_, key, name) in enumerate(entries):
            baseline = results.workloads[key]["baseline"]
            ratio = results.ratio(key, name, baseline, backend)
            if ratio is None:
                continue
            ys.append(e_index + (b_index - (len(backends) - 1) / 2) * height)
            widths.append(ratio)
        ax.barh(ys, widths, height=height, color=COLORS.get(backend), label=backend)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(entries)), [e[0] for e in entries], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(
        "ratio vs the raw-AnyIO baseline on the same backend (1.0 = same cost)"
    )
    ax.set_title("anyconc against raw AnyIO", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scaling_chart(
    results: Results, workloads: Sequence[Workload], kind: str, path: Path
) -> None:
    from benchmarks._report import scaling_sizes

    sizes = scaling_sizes(results, kind)
    if not sizes:
        return
    first = next(wl for wl in workloads if wl.key == sizes[0][0])
    backends = [b for b in BACKENDS if b in results.backends]
    fig, axes = plt.subplots(
        1, len(backends), figsize=(4 * len(backends), 3.6), sharey=True, squeeze=False
    )
    for ax, backend in zip(axes[0], backends, strict=True):
        for impl in first.impls:
            xs, ys = [], []
            for key, n in sizes:
                row = results.find(key, impl.name, backend)
                if row is not None and row.ok:
                    xs.append(n)
                    ys.append(row.median)
            if xs:
                ax.plot(
                    xs,
                    ys,
                    marker="o",
                    linestyle="--" if impl.baseline else "-",
                    label=impl.name + (" (baseline)" if impl.baseline else ""),
                )
        ax.set_xscale("log")
        ax.set_title(backend, fontsize=9)
        ax.set_xlabel("N (operations per sample)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"median {first.unit}")
    axes[0][0].set_ylim(bottom=0)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Scaling: {first.scaling[1] if first.scaling else kind}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(results: Results, workloads: Sequence[Workload], directory: Path) -> None:
    """One chart per workload, one per scaling kind, and ``summary.png``."""
    directory.mkdir(parents=True, exist_ok=True)
    kinds: list[str] = []
    for wl in workloads:
        if wl.scaling:
            if wl.scaling[0] not in kinds:
                kinds.append(wl.scaling[0])
            continue
        _workload_chart(results, wl, directory / f"{wl.key}.png")
    for kind in kinds:
        _scaling_chart(results, workloads, kind, directory / f"scaling-{kind}.png")
    _summary_chart(
        results, [wl for wl in workloads if not wl.scaling], directory / "summary.png"
    )
