"""Study-level metrics from per-cell metrics: marginal efficiency per module,
per-combination spread over seeds, Pareto fronts, projected and failed cells.

All functions are pure: CellMetrics in, plain values out.

Example:
    >>> pareto_front([(1.0, 0.5), (2.0, 0.4), (3.0, 0.9)])
    [0, 2]
    >>> stat([1.0, 3.0])
    Stat(mean=2.0, std=1.4142135623730951, n=2, failed=0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nasmix.report.metrics import CellMetrics

# The marginal tables of a report: each module axis, across the axes it is compared over.
MARGINALS = (
    ("strategy", ("space",)),
    ("space", ("strategy",)),
    ("estimator", ("space", "strategy")),
    ("dataset", ("space",)),
)
METRIC_NAMES = {
    "top1_at_budget": "top-1 at the common budget",
    "top1_per_cost_h": "top-1 per cost-hour",
    "top1": "test top-1",
    "cost_h": "cost (hours)",
    "auc": "anytime AUC",
    "time_to_target_h": "hours to target",
    "gain_vs_random": "gain over random search",
}
HEADLINE = "top1_at_budget"  # the marginal tables' and combinations' default metric (see efficiency.py)
ENDED_WITH_RESULT = ("finished", "projected")


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (None below 2 values) and count of values;
    `failed` counts the failed cells that gave no value."""

    mean: float | None
    std: float | None
    n: int
    failed: int = 0


def stat(values: Sequence[float], failed: int = 0) -> Stat:
    """The Stat of some values (sample std, ddof=1).

    Example:
        >>> stat([], failed=1)
        Stat(mean=None, std=None, n=0, failed=1)
    """
    n = len(values)
    if n == 0:
        return Stat(None, None, 0, failed)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Stat(mean, std, n, failed)


def _key(m: CellMetrics, axes: Sequence[str]) -> str:
    return " / ".join(str(getattr(m, a)) for a in axes)


def _values(group: Sequence[CellMetrics], metric: str) -> Stat:
    vals = [
        getattr(m, metric) for m in group if m.state in ENDED_WITH_RESULT and getattr(m, metric) is not None
    ]
    return stat(vals, failed=sum(1 for m in group if m.state == "failed"))


@dataclass(frozen=True)
class MarginalTable:
    """One module axis against the axes it is compared across.

    Attributes:
        axis: the module axis ("strategy", "space", "estimator", "dataset").
        across: the axes of the columns.
        metric: the CellMetrics field summarised.
        rows: the axis's values.
        columns: the across-values, then "all".
        cells: (row, column) -> Stat over seeds (and any other pooled axis).
    """

    axis: str
    across: tuple[str, ...]
    metric: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict


def marginal(
    metrics: Sequence[CellMetrics], axis: str, across: Sequence[str], metric: str = HEADLINE
) -> MarginalTable:
    """Each value of a module axis, per value of the axes it is compared across, and overall.

    Cells that ended with a result (finished or projected) give a value;
    failed cells are counted in `Stat.failed`; pending and running cells
    are left out.

    Args:
        metrics: the study's CellMetrics.
        axis: the module axis of the rows.
        across: the axes of the columns (several are joined with " / ").
        metric: the CellMetrics field to summarise.

    Returns:
        The MarginalTable.

    Example:
        >>> marginal([], "strategy", ("space",)).rows
        ()
    """
    rows = tuple(dict.fromkeys(str(getattr(m, axis)) for m in metrics))
    cols = tuple(dict.fromkeys(_key(m, across) for m in metrics))
    cells = {}
    for r in rows:
        mine = [m for m in metrics if str(getattr(m, axis)) == r]
        for c in cols:
            group = [m for m in mine if _key(m, across) == c]
            if group:
                cells[(r, c)] = _values(group, metric)
        cells[(r, "all")] = _values(mine, metric)
    return MarginalTable(axis, tuple(across), metric, rows, cols + ("all",), cells)


def marginal_tables(metrics: Sequence[CellMetrics], metric: str = HEADLINE) -> list[MarginalTable]:
    """The report's marginal tables: every axis of MARGINALS the study varies (estimator always,
    since one-shot and discrete methods differ there; dataset only when several)."""
    out = []
    for axis, across in MARGINALS:
        if axis == "dataset" and len({m.dataset for m in metrics}) < 2:
            continue
        out.append(marginal(metrics, axis, across, metric))
    return out


def combo_stats(metrics: Sequence[CellMetrics], metric: str = HEADLINE) -> list[tuple[str, Stat]]:
    """Each combination (space / method / dataset) with its Stat over seeds, highest mean first; equal
    means as the headline breaks ties: the earlier mean time the cells reached their accuracy first."""
    groups: dict[str, list[CellMetrics]] = {}
    for m in metrics:
        groups.setdefault(f"{m.space} / {m.method} / {m.dataset}", []).append(m)
    reach = {k: stat([m.reach_h for m in g if m.reach_h is not None]).mean for k, g in groups.items()}
    out = [(k, _values(g, metric)) for k, g in groups.items()]
    late = {k: float("inf") if r is None else r for k, r in reach.items()}
    return sorted(out, key=lambda kv: (kv[1].mean is None, -(kv[1].mean or 0.0), late[kv[0]], kv[0]))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower or equal x and higher or equal y,
    strictly better in one; sorted by x.

    Args:
        points: (cost, accuracy) pairs.
    """
    front = []
    for i, (x, y) in enumerate(points):
        if not any(xo <= x and yo >= y and (xo < x or yo > y) for j, (xo, yo) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


@dataclass(frozen=True)
class ParetoSet:
    """Accuracy against one cost of every cell with both, and which are on the front."""

    x: str
    labels: tuple[str, ...]
    points: tuple[tuple[float, float], ...]
    front: tuple[int, ...]


def pareto(metrics: Sequence[CellMetrics], x: str = "cost_h") -> ParetoSet:
    """The Pareto front of test top-1 against a cost ("cost_h", "params" or "flops").

    Example:
        >>> pareto([], "params").front
        ()
    """
    use = [
        m
        for m in metrics
        if m.state in ENDED_WITH_RESULT and m.top1 is not None and getattr(m, x) is not None
    ]
    pts = tuple((float(getattr(m, x)), float(m.top1)) for m in use if m.top1 is not None)  # all of `use`
    return ParetoSet(x, tuple(m.label for m in use), pts, tuple(pareto_front(pts)))


def projected_rows(metrics: Sequence[CellMetrics]) -> list[dict]:
    """The cells a cap stopped: measured and projected hours and how far they got."""
    return [
        {
            "label": m.label,
            "id": m.id,
            "measured_h": m.runtime_h,
            "projected_h": m.projected_h,
            "epochs_done": m.epochs_done,
            "epochs": m.epochs,
            "top1": m.top1,
        }
        for m in metrics
        if m.projected_h is not None
    ]


def failed_rows(metrics: Sequence[CellMetrics]) -> list[dict]:
    """The failed cells: phase, reason and (out of memory) the peak GPU memory reached."""
    return [
        {
            "label": m.label,
            "id": m.id,
            "failed_in": m.failed_in,
            "reason": m.reason or "unknown",
            "peak_gpu_gb": m.peak_gpu_gb,
            "device": "; ".join(m.devices),
        }
        for m in metrics
        if m.state == "failed"
    ]


def study_devices(metrics: Sequence[CellMetrics]) -> tuple[str, ...]:
    """Every device the study's cells ran on, in order of appearance."""
    return tuple(dict.fromkeys(d for m in metrics for d in m.devices))
