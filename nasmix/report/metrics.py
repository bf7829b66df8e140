"""Per-cell metrics of a study: pure functions of `CellRecord` values.

Runtime is *measured* runtime: the search phase's wall seconds, then the
evaluation phase's training seconds (test evaluations are measurement, not
method, and are left out). Curves are in hours of that runtime. Costs use
GPU seconds when every measured cell recorded them, else wall seconds for
all cells (`cost_basis`), so every cell of a report is on the same footing.

Example:
    >>> from nasmix.report.data import CellRecord, EventRecord
    >>> ev = [EventRecord("arch_chosen", "arch_chosen", "search", {"search_s": 3600.0}),
    ...       EventRecord("eval/epoch/1", "eval_epoch", "eval",
    ...                   {"epoch": 1, "train_s": 3600.0, "test_top1": 0.5, "test_top5": 0.9})]
    >>> rec = CellRecord("c", "c", "s", "t", "e", "d", 0, "running", {}, tuple(ev))
    >>> curve = runtime_curve(rec)
    >>> curve.points[0].x_h, curve.search_end_h
    (2.0, 1.0)
    >>> anytime_auc(curve, horizon_h=4.0)
    0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from nasmix.report.data import ACCURACY_ESTIMATOR_KINDS, CellRecord

HOUR = 3600.0


@dataclass(frozen=True)
class Point:
    """One evaluated checkpoint of the chosen arch (x in hours of measured runtime)."""

    x_h: float
    top1: float
    top5: float | None
    epoch: int | None = None
    checkpoint: bool = False


@dataclass(frozen=True)
class Curve:
    """A cell's accuracy over measured runtime.

    Attributes:
        search: (hours, accuracy) during the search; accuracy is None where the
            estimator's score is not an accuracy (proxies, predictors).
        search_label: what the search accuracy is.
        search_end_h: measured end of the search (None: no arch chosen).
        search_projected_h: projected end of a capped search.
        points: the evaluated epochs of the chosen arch.
        final: the final test result, at the end of the measured runtime.
        end_h: the measured runtime.
        projected_h: the projected total runtime of a capped cell.
    """

    search: tuple[tuple[float, float | None], ...]
    search_label: str | None
    search_end_h: float | None
    search_projected_h: float | None
    points: tuple[Point, ...]
    final: Point | None
    end_h: float
    projected_h: float | None


@dataclass(frozen=True)
class CellMetrics:
    """Every per-cell number of a report (hours, fractions in [0, 1], joules as kJ)."""

    id: str
    label: str
    space: str
    strategy: str
    estimator: str
    dataset: str
    seed: int
    method: str
    state: str
    top1: float | None
    top5: float | None
    search_h: float | None
    eval_h: float
    runtime_h: float
    projected_h: float | None
    cost_h: float | None
    cost_basis: str
    top1_per_cost_h: float | None
    target: float
    time_to_target_h: float | None
    auc: float | None
    energy_kj: float | None
    params: int | None
    flops: int | None
    peak_gpu_gb: float | None
    devices: tuple[str, ...]
    epochs_done: int
    epochs: int | None
    reason: str | None
    failed_in: str | None
    arch: str | None
    # Filled by `efficiency.score` (the headline measures; see docs/reports.md), except
    # group and budget_h, which study_metrics sets.
    group: str = ""
    budget_h: float | None = None
    top1_at_budget: float | None = None
    reach_h: float | None = None
    budgets_h: tuple[float, ...] = ()
    top1_at_budgets: tuple[float | None, ...] = ()
    best_top1: float | None = None
    time_to_rel_h: tuple[float | None, ...] = ()
    pareto_layer: int | None = None
    baseline: str = ""
    gain_vs_random: float | None = None
    gain_per_cost_h: float | None = None
    rank: int | None = None


def group_key(dataset: str, devs: Sequence[str]) -> str:
    """The comparison group of a cell: its dataset and device(s); budgets are shared only within one.

    Example:
        >>> group_key("cifar10", ("cpu",))
        'cifar10 on cpu'
    """
    return f"{dataset} on {'; '.join(devs) or 'an unrecorded device'}"


def _search_seconds(rec: CellRecord) -> float:
    """Measured search seconds: the chosen arch's clock, else what the search events add up to."""
    chosen = rec.event("arch_chosen")
    if chosen and chosen.get("search_s") is not None:
        return float(chosen["search_s"])
    epochs = rec.of_kind("search_epoch")
    if epochs:
        return sum(e.get("epoch_s") or 0.0 for e in epochs)
    cands = [c for c in rec.of_kind("candidate") if not c.get("simulated")]
    return float(cands[-1].get("cumulative_cost_s") or 0.0) if cands else 0.0


def _search_curve(rec: CellRecord, search_s: float) -> tuple[tuple, str | None]:
    """The search phase's points and what their accuracy means."""
    label: str | None
    epochs = rec.of_kind("search_epoch")
    if epochs:
        t, xs = 0.0, []
        for e in epochs:
            t += e.get("epoch_s") or 0.0
            xs.append(t)
        ys, label = [e.get("valid_top1") for e in epochs], "search: supernet validation top-1"
    else:
        cands = rec.of_kind("candidate")
        if not cands:
            return (), None
        n, last = len(cands), cands[-1].get("cumulative_cost_s")
        if all(c.get("elapsed_s") is not None for c in cands) and not any(c.get("simulated") for c in cands):
            xs = [float(c["elapsed_s"]) for c in cands]  # the study's own clock since the search started
        elif any(c.get("simulated") for c in cands) or not last:
            xs = [search_s * (i + 1) / n for i in range(n)]  # looked-up costs were not spent here
        else:  # set-up (a supernet, a predictor) runs before the candidates: align their costs to the end
            xs = [max(0.0, search_s - (last - (c.get("cumulative_cost_s") or 0.0))) for c in cands]
        ys, label = [c.get("best_score") for c in cands], "search: best candidate score"
    if rec.estimator_kind not in ACCURACY_ESTIMATOR_KINDS or any(y is None or not 0 <= y <= 1 for y in ys):
        ys, label = [None] * len(xs), None
    return tuple((x / HOUR, y) for x, y in zip(xs, ys)), label


def runtime_curve(rec: CellRecord) -> Curve:
    """A cell's accuracy over measured runtime: search, then each evaluated epoch, then the final test.

    Args:
        rec: the cell.

    Returns:
        The Curve (hours on x, accuracies in [0, 1]).

    Example:
        >>> runtime_curve(CellRecord("c", "c", "s", "t", "e", "d", 0, "pending", {}, ())).end_h
        0.0
    """
    chosen = rec.event("arch_chosen")
    end = rec.event("end") or {}
    search_s = _search_seconds(rec)
    search, label = _search_curve(rec, search_s)
    t, points = search_s, []
    for e in rec.of_kind("eval_epoch"):
        t += e.get("train_s") or 0.0
        if e.get("test_top1") is not None:
            points.append(
                Point(t / HOUR, e["test_top1"], e.get("test_top5"), e.get("epoch"), "checkpoint" in e)
            )
    final = None
    if end.get("test_top1") is not None:
        final = Point(t / HOUR, end["test_top1"], end.get("test_top5"), end.get("epochs_done"), True)
    projected = None
    search_projected = end.get("search_projected_s") or (chosen or {}).get("search_projected_s")
    if rec.state == "projected" or end.get("eval_projected_s") or search_projected:
        projected = ((search_projected or search_s) + (end.get("eval_projected_s") or (t - search_s))) / HOUR
    return Curve(
        search,
        label,
        search_s / HOUR if chosen else None,
        search_projected / HOUR if search_projected else None,
        tuple(points),
        final,
        t / HOUR,
        projected,
    )


def final_accuracy(rec: CellRecord) -> tuple[float | None, float | None]:
    """(top-1, top-5) of the final test: the end event's, else the last evaluated epoch's."""
    end = rec.event("end") or {}
    if end.get("test_top1") is not None:
        return end["test_top1"], end.get("test_top5")
    tested = [e for e in rec.of_kind("eval_epoch") if e.get("test_top1") is not None]
    return (tested[-1]["test_top1"], tested[-1].get("test_top5")) if tested else (None, None)


def has_gpu_time(rec: CellRecord) -> bool:
    """True when the search and every evaluated epoch recorded GPU seconds."""
    chosen = rec.event("arch_chosen")
    epochs = rec.of_kind("eval_epoch")
    return (
        chosen is not None
        and chosen.get("search_gpu_s") is not None
        and all(e.get("train_gpu_s") is not None for e in epochs)
    )


def cost_basis(records: Sequence[CellRecord]) -> str:
    """ "gpu" when every cell with a chosen arch recorded GPU seconds, else "wall".

    Example:
        >>> cost_basis([])
        'wall'
    """
    measured = [r for r in records if r.event("arch_chosen")]
    return "gpu" if measured and all(has_gpu_time(r) for r in measured) else "wall"


def cost_seconds(rec: CellRecord, basis: str) -> float | None:
    """The compute a cell spent: search plus evaluation training, in GPU or wall seconds.

    Args:
        rec: the cell.
        basis: "gpu" or "wall".

    Returns:
        Seconds, or None when the basis is "gpu" and the cell lacks GPU time.
    """
    if basis == "gpu":
        chosen = rec.event("arch_chosen")
        if chosen is None or not has_gpu_time(rec):
            return None
        return chosen["search_gpu_s"] + sum(e["train_gpu_s"] for e in rec.of_kind("eval_epoch"))
    return _search_seconds(rec) + sum(e.get("train_s") or 0.0 for e in rec.of_kind("eval_epoch"))


def time_to_target(curve: Curve, target: float) -> float | None:
    """Hours of measured runtime until a checkpoint's test top-1 first reaches `target`; None if never.

    Example:
        >>> c = Curve((), None, 1.0, None, (Point(2.0, 0.5, 0.9), Point(3.0, 0.95, 1.0)), None, 3.0, None)
        >>> time_to_target(c, 0.9)
        3.0
    """
    for p in curve.points + ((curve.final,) if curve.final else ()):
        if p.top1 >= target:
            return p.x_h
    return None


def anytime_auc(curve: Curve, horizon_h: float) -> float | None:
    """Normalised area under the accuracy-over-time step curve, in [0, 1].

    The accuracy at time t is the test top-1 of the latest evaluated
    checkpoint at or before t (0 before the first; the last one held after
    the cell ends); the area over [0, horizon] is divided by the horizon.
    None when the cell has no evaluated checkpoint or the horizon is 0.

    Args:
        curve: the cell's curve.
        horizon_h: the common horizon in hours (a report uses its group's
            common budget, so every cell is scored over the same time).
    """
    pts = sorted(curve.points + ((curve.final,) if curve.final else ()), key=lambda p: p.x_h)
    if not pts or horizon_h <= 0:
        return None
    area = 0.0
    for p, nxt in zip(pts, pts[1:] + [None]):
        start, stop = min(p.x_h, horizon_h), min(nxt.x_h if nxt else horizon_h, horizon_h)
        area += p.top1 * max(0.0, stop - start)
    return area / horizon_h


def energy_joules(rec: CellRecord) -> float | None:
    """GPU energy of search and evaluation training where the GPU reported it; None if never."""
    values = [e.get("energy_j") for e in [rec.event("arch_chosen") or {}] + rec.of_kind("eval_epoch")]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def peak_gpu_bytes(rec: CellRecord) -> int | None:
    """The highest GPU memory any event of the cell recorded (a failed cell's end included)."""
    values = [e.data.get("peak_gpu_bytes") for e in rec.events]
    present = [v for v in values if v]
    return max(present) if present else None


def devices(rec: CellRecord) -> tuple[str, ...]:
    """The devices the cell's events name, in order of appearance."""
    out: list[str] = []
    for e in rec.events:
        d = e.data.get("device")
        if d and d not in out:
            out.append(d)
    return tuple(out)


def cell_metrics(
    rec: CellRecord, basis: str, target: float, horizon_h: float, group: str | None = None
) -> CellMetrics:
    """Every per-cell number of the report that needs no other cell.

    Args:
        rec: the cell.
        basis: "gpu" or "wall" (see `cost_basis`).
        target: the accuracy for `time_to_target` (a fraction, e.g. 0.9).
        horizon_h: the common horizon of `anytime_auc` (also kept as `budget_h`).
        group: its comparison group (`group_keys`); None: `group_key` of its own devices.

    Returns:
        The cell's CellMetrics (the headline fields empty: see `efficiency.score`).
    """
    curve = runtime_curve(rec)
    top1, top5 = final_accuracy(rec)
    end = rec.event("end") or {}
    chosen = rec.event("arch_chosen") or {}
    epochs = rec.of_kind("eval_epoch")
    cost = cost_seconds(rec, basis)
    cost_h = None if cost is None else cost / HOUR
    usable = top1 is not None and rec.state in ("finished", "projected")
    energy = energy_joules(rec)
    peak = peak_gpu_bytes(rec)
    failed_in = None
    if rec.state == "failed":
        failed_in = "eval" if chosen else "search"
    devs = devices(rec)
    return CellMetrics(
        rec.id,
        rec.label,
        rec.space,
        rec.strategy,
        rec.estimator,
        rec.dataset,
        rec.seed,
        rec.method,
        rec.state,
        top1,
        top5,
        curve.search_end_h,
        curve.end_h - _search_seconds(rec) / HOUR,
        curve.end_h,
        curve.projected_h,
        cost_h,
        basis,
        top1 / cost_h if top1 is not None and usable and cost_h else None,
        target,
        time_to_target(curve, target),
        anytime_auc(curve, horizon_h),
        None if energy is None else energy / 1000,
        chosen.get("params"),
        chosen.get("flops"),
        None if peak is None else peak / 1e9,
        devs,
        max((e.get("epoch") or 0 for e in epochs), default=0),
        end.get("epochs") or _planned_epochs(rec),
        end.get("reason"),
        failed_in,
        chosen.get("arch") or end.get("arch"),
        group=group if group is not None else group_key(rec.dataset, devs),
        budget_h=horizon_h,
    )


def _planned_epochs(rec: CellRecord) -> int | None:
    return ((rec.settings.get("eval") or {}).get("train") or {}).get("epochs")


def group_keys(records: Sequence[CellRecord]) -> list[str]:
    """Each cell's comparison group (`group_key`). A cell that recorded no device (one that has not
    run) joins its dataset's group when the dataset has only one.

    Example:
        >>> group_keys([CellRecord("c", "c", "s", "t", "e", "d", 0, "pending", {}, ())])
        ['d on an unrecorded device']
    """
    keys = [group_key(r.dataset, devices(r)) if devices(r) else None for r in records]
    for i, r in enumerate(records):
        if keys[i] is None:
            known = {k for k, o in zip(keys, records) if k is not None and o.dataset == r.dataset}
            keys[i] = known.pop() if len(known) == 1 else group_key(r.dataset, ())
    return cast(list[str], keys)  # the loop filled every None


def group_budgets(records: Sequence[CellRecord]) -> dict[str, float]:
    """The common budget of each comparison group, in hours of measured runtime.

    It is the longest measured runtime among the group's cells that ended with
    a tested result (finished or projected), so every such cell is judged over
    the same time; a group without one uses its longest runtime.

    Example:
        >>> group_budgets([])
        {}
    """
    out: dict[str, float] = {}
    scored: dict[str, float] = {}
    for r, key in zip(records, group_keys(records)):
        curve = runtime_curve(r)
        out[key] = max(out.get(key, 0.0), curve.end_h)
        if r.state in ("finished", "projected") and (curve.points or curve.final):
            scored[key] = max(scored.get(key, 0.0), curve.end_h)
    return {**out, **scored}


def study_metrics(
    records: Sequence[CellRecord], target: float = 0.9, basis: str = "auto", horizon_h: float | None = None
) -> list[CellMetrics]:
    """CellMetrics of every cell, on one cost basis and one AUC horizon per comparison group.

    Args:
        records: the study's cells.
        target: the accuracy of the time-to-target metric.
        basis: "auto" (see `cost_basis`), "gpu" or "wall".
        horizon_h: the AUC horizon for every cell; None: each group's common
            budget (see `group_budgets`).

    Returns:
        One CellMetrics per record, in the same order (headline fields empty:
        `efficiency.score` fills them).
    """
    basis = cost_basis(records) if basis == "auto" else basis
    budgets = group_budgets(records)
    return [
        cell_metrics(r, basis, target, horizon_h if horizon_h is not None else budgets[g], group=g)
        for r, g in zip(records, group_keys(records))
    ]
