"""A report's sections as format-neutral blocks (headings, text, tables,
figures, preformatted text, checklists) that `render` writes as HTML and
Markdown alike, so both outputs always hold the same content.

Example:
    >>> from nasmix.report.content import compute_content
    >>> blocks = report_blocks(compute_content([]), [])
    >>> blocks[0]
    Heading(level=1, text='nasmix report: study')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nasmix.report.aggregate import MarginalTable, Stat
from nasmix.report.checklist import ChecklistItem
from nasmix.report.content import ReportContent
from nasmix.report.efficiency import REL_TARGETS, ranking
from nasmix.report.figures import FigureFile
from nasmix.report.metrics import CellMetrics
from nasmix.report.plots import device_line, hms
from nasmix.report.plots_summary import X_NAMES, basis_words


@dataclass(frozen=True)
class Heading:
    """A heading of level 1-3."""

    level: int
    text: str


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of texts."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Fig:
    """A saved figure with its caption."""

    file: FigureFile
    caption: str


@dataclass(frozen=True)
class Pre:
    """Preformatted text (architecture descriptions, settings)."""

    text: str


@dataclass(frozen=True)
class Checklist:
    """The best-practices checklist."""

    items: tuple[ChecklistItem, ...]


def pct(v: float | None) -> str:
    """0.4912 -> '49.12%'; None -> '-'."""
    return "-" if v is None else f"{100 * v:.2f}%"


def num(v: float | None, digits: int = 4) -> str:
    """A number with `digits` significant digits; None -> '-'."""
    return "-" if v is None else f"{v:.{digits}g}"


def big(v: int | None) -> str:
    """An integer with thousands separators; None -> '-'."""
    return "-" if v is None else f"{v:,}"


def stat_text(s: Stat | None, fmt=num) -> str:
    """'mean ± std (n=N)', with failed cells counted; '-' for no cell."""
    if s is None:
        return ""
    if s.mean is None:
        return f"no result ({s.failed} failed)" if s.failed else "-"
    spread = f" ± {fmt(s.std)}" if s.std is not None else ""
    return f"{fmt(s.mean)}{spread} (n={s.n}{f', {s.failed} failed' if s.failed else ''})"


def dur(hours: float | None) -> str:
    """A duration in the unit it reads best in: '42 s', '3.5 min', '2.1 h'; None -> '-'.

    Example:
        >>> dur(42 / 3600), dur(0.05), dur(12.0)
        ('42 s', '3 min', '12 h')
    """
    if hours is None:
        return "-"
    if hours * 3600 < 120:
        return f"{hours * 3600:.3g} s"
    if hours * 60 < 120:
        return f"{hours * 60:.3g} min"
    return f"{hours:.3g} h"


def pp(v: float | None) -> str:
    """A difference of two accuracies in percentage points, signed; None -> '-'."""
    return "-" if v is None else f"{100 * v:+.2f} pp"


def _headline_table(c: ReportContent, group: str) -> Table:
    unit = basis_words(c.basis)
    ms = [m for m in ranking(c.metrics) if m.group == group and m.rank is not None]
    grid = ms[0].budgets_h if ms else ()
    rel = tuple(f"to {round(100 * q)}% of best" for q in REL_TARGETS)
    headers = (
        "rank",
        "cell",
        *(f"top-1 at b{k} = {dur(b)}" for k, b in enumerate(grid[:-1], start=1)),
        f"top-1 at B = {dur(grid[-1]) if grid else '-'}",
        "reached at",
        f"to {pct(c.target)}",
        *rel,
        "AUC",
        "Pareto layer",
        "gain vs random",
        f"gain per {unit} (pp)",
        f"top-1 per {unit}",
    )
    rows = []
    for m in ms:  # the grid's last budget is B: its column is "top-1 at B"
        rows.append(
            (
                str(m.rank),
                m.label,
                *(pct(v) for v in m.top1_at_budgets[:-1]),
                pct(m.top1_at_budget),
                dur(m.reach_h),
                dur(m.time_to_target_h),
                *(dur(t) for t in m.time_to_rel_h),
                num(m.auc, 3),
                str(m.pareto_layer or "-"),
                pp(m.gain_vs_random),
                num(None if m.gain_per_cost_h is None else 100 * m.gain_per_cost_h),
                num(m.top1_per_cost_h),
            )
        )
    return Table(headers, tuple(rows))


def _baseline_note(ms: Sequence[CellMetrics]) -> str:
    notes = dict.fromkeys(m.baseline for m in ms if m.baseline)
    if any(n.startswith("random search") for n in notes):
        return (
            "Gain vs random: the cell's top-1 minus the mean top-1 that the random-search cells of the "
            "same space had reached within the cell's own runtime (percentage points); per cost-hour, "
            "divided by the cell's cost. A dash: the baseline had no tested result yet within that runtime."
        )
    return (
        "No random-search cell ran on the same space, dataset and device, so the gain over random search is "
        'absent (nasmix does not invent a baseline). To add one, put "random" in [study] strategies with '
        'estimators = ["train"], give it a search budget like the other cells\' ([search] max_seconds or '
        "candidates), and run the study again on the same store: finished cells are not run again."
    )


def _summary_table(c: ReportContent) -> Table:
    unit = basis_words(c.basis)
    headers = (
        "group",
        "rank",
        "cell",
        "state",
        "top-1",
        "top-5",
        "runtime",
        "projected",
        f"cost ({unit}s)",
        "energy kJ",
        "params",
        "MFLOPs",
        "peak GPU GB",
        "note",
    )
    by_id = {m.id: m for m in c.metrics}
    rows = []
    for r in c.summary:
        m = by_id[r["id"]]
        rows.append(
            (
                m.group,
                str(m.rank or "-"),
                m.label,
                m.state,
                pct(m.top1),
                pct(m.top5),
                dur(m.runtime_h),
                dur(m.projected_h),
                num(m.cost_h),
                num(m.energy_kj),
                big(m.params),
                num(m.flops / 1e6 if m.flops else None),
                num(m.peak_gpu_gb, 3),
                m.reason or "",
            )
        )
    return Table(headers, tuple(rows))


def marginal_table(t: MarginalTable, fmt=num) -> Table:
    """A MarginalTable as rows of 'mean ± std (n)' texts."""
    rows = tuple((r,) + tuple(stat_text(t.cells.get((r, col)), fmt) for col in t.columns) for r in t.rows)
    return Table((t.axis + " \\ " + " / ".join(t.across),) + t.columns, rows)


def _checklist_note(items: Sequence[ChecklistItem]) -> str:
    auto = sum(1 for i in items if i.status is not None)
    return (
        f'After Lindauer and Hutter (2020), "Best Practices for Scientific Research on Neural Architecture '
        f"Search\", JMLR 21. {auto} of {len(items)} items are answered from the study's data; the unticked "
        "rest is for the author."
    )


def report_blocks(c: ReportContent, figures: Sequence[FigureFile], out_name: str = "") -> list:
    """Every section of the report, in order.

    Args:
        c: the report's content.
        figures: the saved figures (`figures.draw_figures`).
        out_name: the store's path, for the header.

    Returns:
        A list of Heading, Para, Table, Fig, Pre and Checklist blocks.
    """
    figs = {f.kind: [g for g in figures if g.kind == f.kind] for f in figures}
    unit = basis_words(c.basis)
    states: dict[str, int] = {}
    for m in c.metrics:
        states[m.state] = states.get(m.state, 0) + 1
    b: list = [Heading(1, f"nasmix report: {', '.join(c.studies) or 'study'}")]
    b.append(
        Para(
            f"Store {out_name or '-'}: {len(c.metrics)} cells ("
            + (", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none")
            + "). "
            + device_line(c.devices)
            + "."
        )
    )
    why = (
        "GPU seconds, recorded for every cell"
        if c.basis == "gpu"
        else "wall seconds: not every cell has GPU time"
    )
    b.append(
        Para(
            f"Cost is measured in {unit}s ({why}); runtime is the search's wall time plus the final "
            "training's. Cells are compared within a group: one dataset on one device. Definitions: "
            "docs/reports.md."
        )
    )
    b.append(Heading(2, "Headline: accuracy within equal budgets"))
    b.append(
        Para(
            "Each cell is judged by the test top-1 it had reached within the same budget as every other "
            "cell of its group: B, the longest measured runtime in the group (a cell that ended sooner keeps "
            "its result). Rank: top-1 at B, highest first; ties by the time it was reached, earliest first; "
            "then by the anytime AUC over [0, B], highest first. b1, b2 and b3 are smaller budgets, evenly "
            "spaced with B in log time from the group's first tested checkpoint. Top-1 per "
            f"{unit} is shown, not ranked by: a ratio rewards cheap, useless runs."
        )
    )
    groups = list(dict.fromkeys(m.group for m in c.metrics))
    for g in groups:
        mine = [m for m in c.metrics if m.group == g]
        ranked = [m for m in mine if m.rank is not None]
        if not ranked:
            b.append(Para(f"{g}: no cell ended with a tested result, so none is ranked."))
            continue
        m0 = ranked[0]
        b.append(
            Para(
                f"{g}: {len(ranked)} ranked cell{'s' if len(ranked) > 1 else ''} of {len(mine)}; "
                f"common budget B = {dur(m0.budget_h)} ({hms(m0.budget_h)}); best top-1 at B "
                f"{pct(m0.best_top1)}."
            )
        )
        b.append(_headline_table(c, g))
        b.append(Para(_baseline_note(mine)))
    b += [
        Fig(
            f,
            "Every ranked cell's test top-1 over measured runtime (log scale), held after its end; one "
            "colour per combination, seeds lighter; dotted: the budgets b1, b2, b3 and B.",
        )
        for f in figs.get("budgets", [])
    ]
    b += [
        Fig(f, "Top-1 at the common budget per combination, mean ± std over seeds, in headline order.")
        for f in figs.get("ranking", [])
    ]
    b += [Heading(2, "Summary"), _summary_table(c)]
    b.append(Heading(2, "Accuracy over runtime, all cells"))
    b += [
        Fig(
            f,
            "Spaces in rows, methods in columns; seeds overlaid. Gray line: end of search; stars: final "
            "test; dashed: projected.",
        )
        for f in figs.get("grid", [])
    ]
    b.append(Heading(2, "Per module"))
    b += [
        Fig(f, "Each module value's top-1 at the common budget over all cells that use it.")
        for f in figs.get("marginal", [])
    ]
    for t, ta, tc in zip(c.marginals, c.marginals_auc, c.marginals_cost):
        across = " / ".join(t.across)
        b.append(
            Para(
                f"Per {t.axis}, across {across}: test top-1 at the common budget (mean ± std over seeds, "
                "n cells with a result)."
            )
        )
        b.append(marginal_table(t, fmt=pct))
        b.append(Para(f"Per {t.axis}, across {across}: anytime AUC over [0, B]."))
        b.append(marginal_table(ta))
        b.append(
            Para(
                f"Per {t.axis}, across {across}: cost ({unit}s, measured; projected cells as far as "
                "they ran)."
            )
        )
        b.append(marginal_table(tc))
    b.append(Heading(2, "Pareto fronts"))
    b += [
        Fig(
            f,
            "Cells on the front: none is both cheaper and more accurate. The numbers are those of the table.",
        )
        for f in figs.get("pareto", [])
    ]
    rows = []
    for p in c.paretos:
        for k, i in enumerate(p.front, start=1):
            x = p.points[i][0]
            value = f"{num(x)} ({dur(x)})" if p.x == "cost_h" else big(int(x))
            rows.append(
                (X_NAMES[p.x].replace("hours", f"{unit}s"), str(k), p.labels[i], value, pct(p.points[i][1]))
            )
    b.append(Table(("cost", "#", "cell on the front", "cost value", "top-1"), tuple(rows)))
    b.append(Heading(2, "Projected runtimes"))
    if c.projected:
        b.append(
            Table(
                ("cell", "measured h", "projected h", "epochs done", "top-1 so far"),
                tuple(
                    (
                        r["label"],
                        num(r["measured_h"]),
                        num(r["projected_h"]),
                        f"{r['epochs_done']}/{r['epochs'] or '?'}",
                        pct(r["top1"]),
                    )
                    for r in c.projected
                ),
            )
        )
    else:
        b.append(Para("No cell was stopped by a cap."))
    b.append(Heading(2, "Failed cells"))
    if c.failed:
        b.append(
            Table(
                ("cell", "phase", "reason", "peak GPU GB", "device"),
                tuple(
                    (
                        r["label"],
                        r["failed_in"] or "-",
                        r["reason"],
                        num(r["peak_gpu_gb"], 3),
                        r["device"] or "-",
                    )
                    for r in c.failed
                ),
            )
        )
    else:
        b.append(Para("No cell failed."))
    b.append(Heading(2, "Each cell"))
    b += [Fig(f, f.title) for f in figs.get("cell", [])]
    b += [
        Heading(2, "NAS best-practices checklist"),
        Para(_checklist_note(c.checklist)),
        Checklist(tuple(c.checklist)),
    ]
    b.append(Heading(2, "Appendix A: chosen architectures"))
    arch_figs = figs.get("arch", [])
    for i, a in enumerate(c.archs):
        b.append(Heading(3, f"Architecture {i + 1}"))
        b.append(
            Para(
                f"Chosen by {', '.join(a.cells)}; {big(a.params)} parameters, "
                f"{num(a.flops / 1e6 if a.flops else None)} MFLOPs."
            )
        )
        if i < len(arch_figs):
            b.append(
                Fig(arch_figs[i], f"Drawn from the space's {a.source}" if a.source else "No graph: its text")
            )
        b.append(Pre(a.text))
    if not c.archs:
        b.append(Para("No cell chose an architecture."))
    b.append(Heading(2, "Appendix B: settings"))
    for text, labels in c.settings:
        b.append(Para("Used by " + ", ".join(labels) + ":"))
        b.append(Pre(text))
    return b
