"""The report's headline: accuracy per compute, measured so that a cheap, useless run cannot win.

"Test top-1 per cost-hour" is a ratio, and a ratio rewards doing nothing
quickly: 10% top-1 after 6 s scores 60 per hour, 35% after 42 s only 30, and
a chance-level run that costs nothing scores without bound. The measures
here compare cells at *equal budgets* instead, within a comparison group
(one dataset on one device: `metrics.group_key`):

- the anytime curve a(t): the test top-1 of the cell's latest evaluated
  checkpoint at or before measured runtime t (none before the first; held
  after the cell ended, since that is what the run delivered);
- the common budget B (`metrics.group_budgets`): the longest measured
  runtime of the group's cells with a result;
- the budget grid b_1 < ... < b_K = B (`budget_grid`) and a(b_k);
- the headline accuracy a(B), and `reach`, the runtime at which the cell
  first reached it;
- the time to targets: the report's absolute target (`metrics.time_to_target`)
  and REL_TARGETS of the group's best a(B);
- the anytime AUC over [0, B] (`metrics.anytime_auc`);
- the Pareto layer of (cost, a(B)) (non-dominated sorting);
- the gain over random search of the same budget, per cost-hour.

Headline order within a group (`headline_key`): a(B), highest first; ties by
reach, earliest first; then by AUC, highest first; then by label. A cell can
rank above another only by delivering more accuracy within the same budget,
or the same accuracy sooner. Cells without a result (failed, running) are
not ranked.

Example:
    >>> from nasmix.report.metrics import Curve, Point
    >>> fast = Curve((), None, 0.0, None, (), Point(6 / 3600, 0.10, None), 6 / 3600, None)
    >>> accuracy_at(fast, 1 / 3600), accuracy_at(fast, 1.0)
    (None, 0.1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from nasmix.report.aggregate import ENDED_WITH_RESULT, pareto_front
from nasmix.report.metrics import CellMetrics, Curve, time_to_target

GRID_POINTS = 4  # budgets of the equal-budget grid, B included
REL_TARGETS = (0.5, 0.9)  # time-to-target thresholds as fractions of the group's best a(B)
RANDOM_SEARCH = "random"  # the strategy whose cells are the baseline of the same space and dataset
_EPS = 1e-12  # hours: a checkpoint at exactly the budget counts as within it


def checkpoints(curve: Curve) -> list[tuple[float, float]]:
    """The cell's tested checkpoints and final test as (hours, top-1), in time order.

    Example:
        >>> from nasmix.report.metrics import Point
        >>> c = Curve((), None, 0.0, None, (Point(1.0, 0.4, None),), Point(2.0, 0.5, None), 2.0, None)
        >>> checkpoints(c)
        [(1.0, 0.4), (2.0, 0.5)]
    """
    pts = list(curve.points) + ([curve.final] if curve.final else [])
    return sorted(((p.x_h, p.top1) for p in pts), key=lambda p: p[0])


def accuracy_at(curve: Curve, t_h: float) -> float | None:
    """a(t): the top-1 of the latest checkpoint at or before `t_h` hours; None before the first.

    Args:
        curve: the cell's curve.
        t_h: the budget in hours of measured runtime.

    Returns:
        The accuracy (a fraction), held after the cell's last checkpoint.
    """
    out = None
    for x, y in checkpoints(curve):
        if x > t_h + _EPS:
            break
        out = y
    return out


def budget_grid(start_h: float, budget_h: float, points: int = GRID_POINTS) -> tuple[float, ...]:
    """`points` budgets spaced evenly in log time from `start_h` to `budget_h` (both included).

    b_k = start * (budget / start) ** (k / (points - 1)), k = 0 .. points - 1. A start
    that is not positive or not below the budget gives the budget alone.

    Example:
        >>> [round(b, 6) for b in budget_grid(1.0, 8.0)]
        [1.0, 2.0, 4.0, 8.0]
    """
    if budget_h <= 0:
        return ()
    if not 0 < start_h < budget_h or points < 2:
        return (budget_h,)
    ratio = budget_h / start_h
    return tuple(start_h * ratio ** (k / (points - 1)) for k in range(points - 1)) + (budget_h,)


def pareto_layers(points: Sequence[tuple[float, float]]) -> list[int]:
    """Non-dominated sorting of (cost, accuracy) points: layer 1 is the Pareto front, layer 2 the front
    of the rest, and so on.

    Example:
        >>> pareto_layers([(1.0, 0.5), (2.0, 0.4), (3.0, 0.9)])
        [1, 2, 1]
    """
    layer = [0] * len(points)
    left = list(range(len(points)))
    n = 0
    while left:
        n += 1
        front = pareto_front([points[i] for i in left])
        for j in front:
            layer[left[j]] = n
        left = [i for k, i in enumerate(left) if k not in set(front)]
    return layer


def random_baseline(curves: Sequence[Curve], t_h: float) -> float | None:
    """The random-search baseline at budget `t_h`: the mean a(t_h) of its cells; None when one of
    them had no tested result yet (a baseline that had nothing is not counted as 0)."""
    values = [accuracy_at(c, t_h) for c in curves]
    present = [v for v in values if v is not None]
    if not values or len(present) < len(values):
        return None
    return sum(present) / len(present)


def headline_key(m: CellMetrics) -> tuple:
    """The sort key of the headline order (see the module docstring); unranked cells last."""
    ranked = m.top1_at_budget is not None
    return (
        not ranked,
        -(m.top1_at_budget or 0.0),
        m.reach_h if m.reach_h is not None else float("inf"),
        -(m.auc if m.auc is not None else -1.0),
        m.label,
        m.id,
    )


def _gain(m: CellMetrics, curve: Curve, top1: float, base: Sequence[tuple[CellMetrics, Curve]]):
    """(baseline note, gain, gain per cost-hour) of one cell against the random-search cells."""
    if m.strategy == RANDOM_SEARCH:
        return "is the baseline", None, None
    if not base:
        return "absent", None, None
    b = random_baseline([c for _, c in base], curve.end_h)
    note = f"random search, {len(base)} cell{'s' if len(base) > 1 else ''}"
    if b is None:
        return note + ": no result within this budget", None, None
    gain = top1 - b
    return note, gain, (gain / m.cost_h if m.cost_h else None)


def _score_group(group: Sequence[CellMetrics], curves: Mapping[str, Curve]) -> dict[str, dict]:
    """The headline fields of one comparison group's cells with a result, by cell id."""
    scored = [m for m in group if m.state in ENDED_WITH_RESULT and checkpoints(curves[m.id])]
    if not scored:
        return {}
    budget = max(m.budget_h or 0.0 for m in scored)
    firsts = [checkpoints(curves[m.id])[0][0] for m in scored]
    grid = budget_grid(min((x for x in firsts if x > 0), default=budget), budget)
    at_budget = {m.id: accuracy_at(curves[m.id], budget) for m in scored}
    # A cell whose first checkpoint comes after the group's budget (a horizon_h shorter than its
    # run) has no result at that budget: it keeps its curve on the grid but is not scored there
    # (no top1_at_budget, rank, Pareto layer or gain), and does not set the best.
    valued = {k: v for k, v in at_budget.items() if v is not None}
    best = max(valued.values(), default=None)
    costed = [(m.id, (m.cost_h, valued[m.id])) for m in scored if m.cost_h is not None and m.id in valued]
    layers = dict(zip((k for k, _ in costed), pareto_layers([p for _, p in costed])))
    out: dict[str, dict] = {}
    for m in scored:
        c, top1 = curves[m.id], at_budget[m.id]
        fields: dict[str, object] = dict(
            budgets_h=grid,
            top1_at_budgets=tuple(accuracy_at(c, b) for b in grid),
            best_top1=best,
        )
        if best is not None:
            fields["time_to_rel_h"] = tuple(time_to_target(c, q * best) for q in REL_TARGETS)
        if top1 is not None:
            base = [(r, curves[r.id]) for r in scored if r.strategy == RANDOM_SEARCH and r.space == m.space]
            note, gain, per_h = _gain(m, c, top1, base)
            fields.update(
                top1_at_budget=top1,
                reach_h=time_to_target(c, top1),
                pareto_layer=layers.get(m.id),
                baseline=note,
                gain_vs_random=gain,
                gain_per_cost_h=per_h,
            )
        out[m.id] = fields
    return out


def score(metrics: Sequence[CellMetrics], curves: Mapping[str, Curve]) -> list[CellMetrics]:
    """The cells with their headline measures and rank filled in.

    Args:
        metrics: the study's CellMetrics (`metrics.study_metrics`: it sets each
            cell's group and common budget).
        curves: each cell's Curve, by cell id.

    Returns:
        New CellMetrics in the same order; `rank` counts within each group,
        from 1, cells with a result only.

    Example:
        >>> score([], {})
        []
    """
    fields: dict[str, dict] = {}
    for g in dict.fromkeys(m.group for m in metrics):
        fields.update(_score_group([m for m in metrics if m.group == g], curves))
    out = [dataclasses.replace(m, **fields.get(m.id, {})) for m in metrics]
    ranks: dict[str, int] = {}
    for g in dict.fromkeys(m.group for m in out):
        ranked = sorted((m for m in out if m.group == g and m.top1_at_budget is not None), key=headline_key)
        ranks.update({m.id: i for i, m in enumerate(ranked, start=1)})
    return [dataclasses.replace(m, rank=ranks.get(m.id)) for m in out]


def ranking(metrics: Sequence[CellMetrics]) -> list[CellMetrics]:
    """Scored cells in report order: groups in order of appearance, each in headline order.

    Example:
        >>> ranking([])
        []
    """
    groups = list(dict.fromkeys(m.group for m in metrics))
    return sorted(metrics, key=lambda m: (groups.index(m.group), headline_key(m)))


SUMMARY_COLUMNS = (
    "group",
    "rank",
    "id",
    "label",
    "space",
    "strategy",
    "estimator",
    "dataset",
    "seed",
    "state",
    "top1_at_budget",
    "budget_h",
    "reach_h",
    *(f"{k}{i}" for i in range(1, GRID_POINTS + 1) for k in ("budget_h_", "top1_at_budget_")),
    "best_top1",
    *(f"h_to_{round(100 * q)}pct_of_best" for q in REL_TARGETS),
    "target",
    "time_to_target_h",
    "auc",
    "pareto_layer",
    "baseline",
    "gain_vs_random",
    "gain_per_cost_h",
    "top1_per_cost_h",
    "cost_h",
    "cost_basis",
    "top1",
    "top5",
    "search_h",
    "eval_h",
    "runtime_h",
    "projected_h",
    "energy_kj",
    "params",
    "flops",
    "peak_gpu_gb",
    "epochs_done",
    "epochs",
    "device",
    "reason",
    "arch",
)


def summary_rows(metrics: Sequence[CellMetrics]) -> list[dict]:
    """The summary table: one dict per cell (keys SUMMARY_COLUMNS) in `ranking` order.

    Numbers stay numbers (None where unknown); the budget grid is spread over
    numbered columns (budget_h_k, top1_at_budget_k), empty past a group's grid.

    Example:
        >>> summary_rows([])
        []
    """
    rows = []
    for m in ranking(metrics):
        row = {k: getattr(m, k, None) for k in SUMMARY_COLUMNS}
        row["device"] = "; ".join(m.devices)
        for i in range(GRID_POINTS):
            has = i < len(m.budgets_h)
            row[f"budget_h_{i + 1}"] = m.budgets_h[i] if has else None
            row[f"top1_at_budget_{i + 1}"] = m.top1_at_budgets[i] if has else None
        for q, t in zip(REL_TARGETS, m.time_to_rel_h or (None,) * len(REL_TARGETS)):
            row[f"h_to_{round(100 * q)}pct_of_best"] = t
        rows.append(row)
    return rows
