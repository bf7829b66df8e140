"""Everything a report shows, computed once from a study's records.

`compute_content` gathers the per-cell metrics, study-level tables and the
chosen architectures' descriptions into one `ReportContent` value that the
figures and the HTML/Markdown renderers read; nothing here draws or writes.

Example:
    >>> content = compute_content([], target=0.9)
    >>> content.metrics, content.basis
    ([], 'wall')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nasmix import registry
from nasmix.arch import Arch
from nasmix.report import aggregate, efficiency, metrics
from nasmix.report.archgraph import ArchGraph, arch_graphs
from nasmix.report.checklist import ChecklistItem, checklist
from nasmix.report.data import CellRecord
from nasmix.report.metrics import CellMetrics, Curve


@dataclass(frozen=True)
class ArchEntry:
    """One distinct chosen architecture and the cells that chose it.

    Attributes:
        arch: its canonical string.
        cells: labels of the cells that chose it.
        text: the space's describe() text (the arch string when the space cannot read it).
        graphs: its graphs for drawing; empty: draw the text.
        source: where the graphs came from (see `archgraph.arch_graphs`).
        params, flops: of the evaluation network.
        devices: the devices of the cells that chose it.
    """

    arch: str
    cells: tuple[str, ...]
    text: str
    graphs: tuple[ArchGraph, ...]
    source: str
    params: int | None
    flops: int | None
    devices: tuple[str, ...]


@dataclass
class ReportContent:
    """A report's numbers and texts (see the module docstring)."""

    records: list[CellRecord]
    metrics: list[CellMetrics]
    curves: dict[str, Curve]
    basis: str
    target: float
    summary: list[dict]
    combos: list[tuple[str, aggregate.Stat]]
    marginals: list[aggregate.MarginalTable]
    marginals_auc: list[aggregate.MarginalTable]
    marginals_cost: list[aggregate.MarginalTable]
    paretos: list[aggregate.ParetoSet]
    projected: list[dict]
    failed: list[dict]
    checklist: list[ChecklistItem]
    archs: list[ArchEntry]
    settings: list[tuple[str, tuple[str, ...]]]
    devices: tuple[str, ...]
    studies: tuple[str, ...] = field(default_factory=tuple)


def default_space_for(rec: CellRecord):
    """The registered space of a cell, with the cell's space options."""
    return registry.create("space", rec.space, **((rec.settings.get("options") or {}).get("space") or {}))


def describe_arch(
    rec: CellRecord | None, arch: str, space_for: Callable
) -> tuple[str, tuple[ArchGraph, ...], str]:
    """(describe text, graphs, graph source) of a cell's chosen arch; the bare string when unreadable."""
    try:
        space = space_for(rec)
        value = Arch.from_str(arch, space)
        if not isinstance(value, Arch):
            raise TypeError("parse did not return an Arch")
        graphs, source = arch_graphs(space, value)
        return space.describe(value), tuple(graphs), source
    except Exception as err:  # an unknown space or a changed notation: show the string only
        return f"{arch}\n(cannot describe: {type(err).__name__}: {err})", (), ""


def _archs(records: Sequence[CellRecord], ms: Sequence[CellMetrics], space_for: Callable) -> list[ArchEntry]:
    by_arch: dict[str, list[tuple[CellRecord, CellMetrics]]] = {}
    for rec, m in zip(records, ms):
        if m.arch:
            by_arch.setdefault(m.arch, []).append((rec, m))
    out = []
    for arch, items in by_arch.items():
        text, graphs, source = describe_arch(items[0][0], arch, space_for)
        m = items[0][1]
        devs = tuple(dict.fromkeys(d for _, mm in items for d in mm.devices))
        out.append(
            ArchEntry(arch, tuple(mm.label for _, mm in items), text, graphs, source, m.params, m.flops, devs)
        )
    return out


def _settings(records: Sequence[CellRecord]) -> list[tuple[str, tuple[str, ...]]]:
    """Distinct (search, eval, data, device) settings and the cells using each."""
    groups: dict[str, list[str]] = {}
    for r in records:
        part = {k: r.settings.get(k) for k in ("data", "search", "eval", "device")}
        groups.setdefault(json.dumps(part, indent=1, sort_keys=True, default=str), []).append(r.label)
    return [(text, tuple(labels)) for text, labels in groups.items()]


def compute_content(
    records: Sequence[CellRecord],
    target: float = 0.9,
    basis: str = "auto",
    space_for: Callable | None = None,
    studies: Sequence[str] = (),
) -> ReportContent:
    """Compute everything a report shows.

    Args:
        records: the study's cells (`data.load_records`).
        target: the accuracy of the time-to-target metric (fraction).
        basis: the cost basis: "auto", "gpu" or "wall".
        space_for: record -> SearchSpace, to describe and draw chosen archs
            (default: the registered space with the cell's options).
        studies: the study names, for the title.

    Returns:
        The ReportContent.
    """
    records = list(records)
    curves = {r.id: metrics.runtime_curve(r) for r in records}
    ms = efficiency.score(metrics.study_metrics(records, target=target, basis=basis), curves)
    return ReportContent(
        records=records,
        metrics=ms,
        curves=curves,
        basis=ms[0].cost_basis if ms else metrics.cost_basis(records),
        target=target,
        summary=efficiency.summary_rows(ms),
        combos=aggregate.combo_stats(ms),
        marginals=aggregate.marginal_tables(ms),
        marginals_auc=aggregate.marginal_tables(ms, "auc"),
        marginals_cost=aggregate.marginal_tables(ms, "cost_h"),
        paretos=[aggregate.pareto(ms, x) for x in ("cost_h", "params", "flops")],
        projected=aggregate.projected_rows(ms),
        failed=aggregate.failed_rows(ms),
        checklist=checklist(records, ms),
        archs=_archs(records, ms, space_for or default_space_for),
        settings=_settings(records),
        devices=aggregate.study_devices(ms),
        studies=tuple(studies) or tuple(dict.fromkeys(r.study for r in records if r.study)),
    )
