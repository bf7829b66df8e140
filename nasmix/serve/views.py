"""The study page's data as JSON values: pure functions of the store's `CellRecord`s.

The figures are the report's: each cell's accuracy over measured runtime
(`metrics.runtime_curve`), its CellMetrics (`metrics.study_metrics`), and the
headline measures, ranking and Pareto layers of `efficiency.score` (accuracy
within equal budgets per comparison group; docs/reports.md). Progress, elapsed
time and ETA come from `progress.cell_progress`.

Every value is JSON (numbers that are not finite become null: `jsonable`).
Strings from the store (names, arch strings, reasons) are passed on as they are:
the page writes them as text, never as markup.

Example:
    >>> data = study_data([])
    >>> study_view(data, now=0.0)["cells"]
    []
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from nasmix.report import efficiency, metrics
from nasmix.report.metrics import CellMetrics, Curve, Point
from nasmix.serve.progress import CellProgress, cell_progress
from nasmix.study.schema import STATES, CellRecord


def jsonable(value):
    """`value` with tuples as lists and non-finite floats as None (JSON has no NaN).

    Example:
        >>> jsonable({"a": (1.0, float("nan"))})
        {'a': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class StudyData:
    """What the pages show of one snapshot of the store, computed once.

    Attributes:
        records: the cells, in the order added.
        metrics: their CellMetrics with the headline measures (`efficiency.score`), same order.
        curves: each cell's Curve, by id.
    """

    records: tuple[CellRecord, ...]
    metrics: tuple[CellMetrics, ...]
    curves: Mapping[str, Curve]

    def index(self, cell: str) -> int:
        """The position of a cell id (KeyError when the store has no such cell)."""
        for i, r in enumerate(self.records):
            if r.id == cell:
                return i
        raise KeyError(cell)


def study_data(records: Sequence[CellRecord]) -> StudyData:
    """Curves and scored metrics of every cell (the report's functions).

    Args:
        records: the study's cells.

    Returns:
        The StudyData.
    """
    records = tuple(records)
    curves = {r.id: metrics.runtime_curve(r) for r in records}
    scored = efficiency.score(metrics.study_metrics(records), curves) if records else []
    return StudyData(records, tuple(scored), curves)


def _point(p: Point | None) -> dict | None:
    if p is None:
        return None
    return {
        "x_h": p.x_h,
        "top1": p.top1,
        "top5": p.top5,
        "epoch": p.epoch,
        "checkpoint": p.checkpoint,
    }


def curve_json(curve: Curve) -> dict:
    """A Curve as JSON: search points [hours, accuracy or null], tested epochs, final test, ends."""
    return {
        "search": [[x, y] for x, y in curve.search],
        "search_label": curve.search_label,
        "search_end_h": curve.search_end_h,
        "search_projected_h": curve.search_projected_h,
        "points": [_point(p) for p in curve.points],
        "final": _point(curve.final),
        "end_h": curve.end_h,
        "projected_h": curve.projected_h,
    }


def progress_json(p: CellProgress) -> dict:
    """A CellProgress as JSON, with each phase's fraction done."""
    out = dataclasses.asdict(p)
    out["search_fraction"] = p.fraction("search")
    out["eval_fraction"] = p.fraction("eval")
    return out


def cell_summary(rec: CellRecord, m: CellMetrics, now: float) -> dict:
    """One cell as the study page's grid and the API's cell list show it.

    Args:
        rec: the cell.
        m: its scored CellMetrics.
        now: the time to measure elapsed time and ETA to.

    Returns:
        A dict of JSON values (see docs/serve.md).
    """
    return {
        "id": rec.id,
        "label": rec.label,
        "study": rec.study,
        "space": rec.space,
        "strategy": rec.strategy,
        "estimator": rec.estimator,
        "dataset": rec.dataset,
        "seed": rec.seed,
        "method": rec.method,
        "state": rec.state,
        "seq": max((e.seq for e in rec.events), default=0),
        "events": len(rec.events),
        "progress": progress_json(cell_progress(rec, now)),
        "top1": m.top1,
        "top5": m.top5,
        "runtime_h": m.runtime_h,
        "search_h": m.search_h,
        "projected_h": m.projected_h,
        "cost_h": m.cost_h,
        "devices": list(m.devices),
        "params": m.params,
        "flops": m.flops,
        "peak_gpu_gb": m.peak_gpu_gb,
        "reason": m.reason,
        "failed_in": m.failed_in,
        "arch": m.arch,
        "group": m.group,
        "rank": m.rank,
        "top1_at_budget": m.top1_at_budget,
        "pareto_layer": m.pareto_layer,
    }


def _group_json(group: str, ms: Sequence[CellMetrics]) -> dict:
    """One comparison group: its ranking in headline order and the Pareto layers of (cost, a(B))."""
    ranked = [m for m in efficiency.ranking(ms) if m.rank is not None]
    rows = [
        {
            "rank": m.rank,
            "id": m.id,
            "label": m.label,
            "method": m.method,
            "space": m.space,
            "state": m.state,
            "top1_at_budget": m.top1_at_budget,
            "reach_h": m.reach_h,
            "auc": m.auc,
            "cost_h": m.cost_h,
            "top1": m.top1,
            "pareto_layer": m.pareto_layer,
            "gain_vs_random": m.gain_vs_random,
        }
        for m in ranked
    ]
    front = sorted(
        # Pareto layers are given to costed cells only: cost_h is a float here
        (r for r in rows if r["pareto_layer"] == 1),
        key=lambda r: cast(float, r["cost_h"]),
    )
    return {
        "group": group,
        "budget_h": max((m.budget_h or 0.0 for m in ms), default=0.0),
        "cost_basis": ms[0].cost_basis if ms else "wall",
        "ranking": rows,
        "unranked": len(ms) - len(rows),
        "front": [r["id"] for r in front],
    }


def study_view(data: StudyData, now: float) -> dict:
    """The study page's data: every cell with its progress and curve, counts by state, and
    each comparison group's ranking and Pareto front.

    Args:
        data: the snapshot's StudyData.
        now: the time to measure elapsed times and ETAs to.

    Returns:
        A dict of JSON values (see docs/serve.md, GET /api/study).
    """
    cells = []
    for rec, m in zip(data.records, data.metrics):
        summary = cell_summary(rec, m, now)
        summary["curve"] = curve_json(data.curves[rec.id])
        cells.append(summary)
    counts = {s: 0 for s in STATES}
    for rec in data.records:
        counts[rec.state] = counts.get(rec.state, 0) + 1
    groups = list(dict.fromkeys(m.group for m in data.metrics))
    return jsonable(
        {
            "studies": list(dict.fromkeys(r.study for r in data.records if r.study)),
            "counts": counts,
            "cost_basis": data.metrics[0].cost_basis if data.metrics else "wall",
            "cells": cells,
            "groups": [_group_json(g, [m for m in data.metrics if m.group == g]) for g in groups],
        }
    )
