"""Study-level figures: efficiency ranking bars, marginal efficiency bars, Pareto fronts.

Each takes the values computed in `nasmix.report.aggregate` and returns a
matplotlib Figure (Agg backend) that names its device(s).

Example:
    >>> from nasmix.report.aggregate import Stat
    >>> fig = ranking_figure([("nb201 / random / synthetic", Stat(2.0, 0.5, 2))], "wall", ("cpu",))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from nasmix.report.aggregate import METRIC_NAMES, MarginalTable, ParetoSet, Stat
from nasmix.report.plots import device_line

X_NAMES = {"cost_h": "cost (hours)", "params": "parameters", "flops": "FLOPs"}


def basis_words(basis: str) -> str:
    """'GPU-hour' or 'wall-hour': the unit of a cost basis."""
    return "GPU-hour" if basis == "gpu" else "wall-hour"


def _bars(ax, labels: Sequence[str], stats: Sequence[Stat], xlabel: str) -> None:
    y = list(range(len(labels)))[::-1]
    means = [s.mean or 0.0 for s in stats]
    errs = [s.std or 0.0 for s in stats]
    ax.barh(y, means, xerr=errs, color="#4c72b0", alpha=0.85, capsize=3)
    for yi, s in zip(y, stats):
        note = f" n={s.n}" + (f", {s.failed} failed" if s.failed else "")
        if s.mean is None:
            note = " no result" + (f" ({s.failed} failed)" if s.failed else "")
        ax.text((s.mean or 0.0) + (s.std or 0.0), yi, note, va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.margins(x=0.3)
    if all(m >= 0 for m in means):
        ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)


def ranking_figure(combos: Sequence[tuple[str, Stat]], basis: str, devices: Sequence[str]) -> Figure:
    """Horizontal bars of top-1 per cost-hour per combination (mean and std over seeds).

    Args:
        combos: (label, Stat) pairs, best first (`aggregate.combo_stats`).
        basis: the cost basis ("gpu" or "wall").
        devices: the devices the study ran on.
    """
    fig = Figure(figsize=(7.5, 0.42 * max(len(combos), 1) + 1.6))
    ax = fig.add_subplot()
    _bars(ax, [c for c, _ in combos], [s for _, s in combos], f"test top-1 per {basis_words(basis)} (mean ± std)")
    ax.set_title("Efficiency ranking", fontsize=10)
    fig.text(0.99, 0.005, device_line(devices), ha="right", fontsize=7, color="#555555")
    _margins(fig, [c for c, _ in combos], top=0.4)
    return fig


def _margins(fig: Figure, labels: Sequence[str], top: float, wspace: float = 0.0) -> None:
    """Fixed margins fitting the longest bar label (tight_layout would draw the figure once more)."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    left = min(0.55, (0.065 * max((len(s) for s in labels), default=4) + 0.25) / w)
    fig.subplots_adjust(left=left, right=1 - 0.2 / w, top=1 - top / h, bottom=0.75 / h, wspace=wspace)


def marginal_figure(tables: Sequence[MarginalTable], basis: str, devices: Sequence[str]) -> Figure:
    """One bar panel per module axis: each value's efficiency over everything else (the "all" column)."""
    n = max(len(tables), 1)
    height = max((len(t.rows) for t in tables), default=1)
    fig = Figure(figsize=(3.6 * n, 0.45 * height + 1.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, t in zip(axes, tables):
        _bars(ax, list(t.rows), [t.cells[(r, "all")] for r in t.rows],
              f"{METRIC_NAMES.get(t.metric, t.metric)}".replace("cost-hour", basis_words(basis)))  # fmt: skip
        ax.set_title(f"per {t.axis}", fontsize=9)
    fig.suptitle("Marginal efficiency (mean ± std over all cells of each module)", fontsize=10)
    fig.text(0.99, 0.005, device_line(devices), ha="right", fontsize=7, color="#555555")
    labels = [r for t in tables for r in t.rows]
    longest = max((len(r) for r in labels), default=4)
    _margins(fig, labels, top=0.6, wspace=(0.065 * longest + 0.5) / (fig.get_figwidth() / n))
    return fig


def pareto_figure(sets: Sequence[ParetoSet], basis: str, devices: Sequence[str]) -> Figure:
    """Test top-1 against each cost, every cell a point, the Pareto front a line.

    Args:
        sets: one ParetoSet per cost axis (`aggregate.pareto`).
        basis: the cost basis of "cost_h".
        devices: the devices the study ran on.
    """
    n = max(len(sets), 1)
    fig = Figure(figsize=(4.2 * n, 3.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, s in zip(axes, sets):
        if not s.points:
            ax.text(0.5, 0.5, "no cell with this cost", ha="center", va="center", transform=ax.transAxes)
            continue
        xs, ys = [p[0] for p in s.points], [100 * p[1] for p in s.points]
        ax.scatter(xs, ys, s=18, color="#999999", label="cells")
        fx, fy = [xs[i] for i in s.front], [ys[i] for i in s.front]
        ax.step(fx, fy, where="post", color="#c44e52", lw=1.5)
        ax.scatter(fx, fy, s=30, color="#c44e52", label="Pareto front", zorder=3)
        for i in s.front:
            ax.annotate(_short(s.labels[i]), (xs[i], ys[i]), textcoords="offset points", xytext=(3, 3), fontsize=6)
        if s.x in ("params", "flops") and min(xs) > 0:
            ax.set_xscale("log")
        name = f"cost ({basis_words(basis)}s)" if s.x == "cost_h" else X_NAMES.get(s.x, s.x)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("test top-1 (%)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("Pareto fronts: accuracy against cost", fontsize=10)
    fig.text(0.99, 0.005, device_line(devices), ha="right", fontsize=7, color="#555555")
    w = fig.get_figwidth()
    fig.subplots_adjust(left=0.7 / w, right=1 - 0.2 / w, top=0.88, bottom=0.16, wspace=0.3)
    return fig


def _short(label: str) -> str:
    """'space / strategy / estimator / dataset / seed N' without the dataset, for point labels."""
    parts = label.split(" / ")
    return " / ".join(parts[:-2] + parts[-1:]) if len(parts) >= 4 else label
