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

from nasmix.report.aggregate import METRIC_NAMES, MarginalTable, Stat
from nasmix.report.checklist import ChecklistItem
from nasmix.report.content import ReportContent
from nasmix.report.figures import FigureFile
from nasmix.report.plots import device_line
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


def _summary_table(c: ReportContent) -> Table:
    unit = basis_words(c.basis)
    headers = ("rank", "cell", "state", "top-1", "top-5", "runtime h", "projected h", f"cost ({unit}s)",
               f"top-1 per {unit}", f"h to {pct(c.target)}", "AUC", "energy kJ", "params", "MFLOPs", "peak GPU GB",
               "note")  # fmt: skip
    by_id = {m.id: m for m in c.metrics}
    rows = []
    for r in c.summary:
        m = by_id[r["id"]]
        rows.append((str(r["rank"] or "-"), m.label, m.state, pct(m.top1), pct(m.top5), num(m.runtime_h),
                     num(m.projected_h), num(m.cost_h), num(m.top1_per_cost_h), num(m.time_to_target_h),
                     num(m.auc, 3), num(m.energy_kj), big(m.params), num(m.flops / 1e6 if m.flops else None),
                     num(m.peak_gpu_gb, 3), m.reason or ""))  # fmt: skip
    return Table(headers, tuple(rows))


def marginal_table(t: MarginalTable, fmt=num) -> Table:
    """A MarginalTable as rows of 'mean ± std (n)' texts."""
    rows = tuple((r,) + tuple(stat_text(t.cells.get((r, col)), fmt) for col in t.columns) for r in t.rows)
    return Table((t.axis + " \\ " + " / ".join(t.across),) + t.columns, rows)


def _checklist_note(items: Sequence[ChecklistItem]) -> str:
    auto = sum(1 for i in items if i.status is not None)
    return (f"After Lindauer and Hutter (2020), \"Best Practices for Scientific Research on Neural Architecture "
            f"Search\", JMLR 21. {auto} of {len(items)} items are answered from the study's data; the unticked "
            "rest is for the author.")  # fmt: skip


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
    b.append(Para(f"Store {out_name or '-'}: {len(c.metrics)} cells ("
                  + (", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none") + "). "
                  + device_line(c.devices) + "."))  # fmt: skip
    why = "GPU seconds, recorded for every cell" if c.basis == "gpu" else "wall seconds: not every cell has GPU time"
    b.append(Para(f"Cost is measured in {unit}s ({why}); "
                  f"runtime is the search's wall time plus the final training's; the anytime AUC is taken "
                  f"over {num(c.horizon_h)} h; the target accuracy is {pct(c.target)}. "
                  "Definitions: docs/reports.md."))  # fmt: skip
    b += [Heading(2, "Summary"), _summary_table(c)]
    b.append(Heading(2, "Accuracy over runtime, all cells"))
    b += [Fig(f, "Spaces in rows, methods in columns; seeds overlaid. Gray line: end of search; stars: final "
                 "test; dashed: projected.") for f in figs.get("grid", [])]  # fmt: skip
    b.append(Heading(2, "Efficiency"))
    b += [Fig(f, f"Test top-1 per {unit}, mean ± std over seeds per combination.") for f in figs.get("ranking", [])]
    b.append(Heading(3, "Marginal efficiency per module"))
    b += [Fig(f, "Each module value over all cells that use it.") for f in figs.get("marginal", [])]
    for t, t1, tc in zip(c.marginals, c.marginals_top1, c.marginals_cost):
        across = " / ".join(t.across)
        b.append(Para(f"Per {t.axis}, across {across}: {METRIC_NAMES[t.metric].replace('cost-hour', unit)}"
                      " (mean ± std over seeds, n cells with a result)."))  # fmt: skip
        b.append(marginal_table(t))
        b.append(Para(f"Per {t.axis}, across {across}: test top-1."))
        b.append(marginal_table(t1, fmt=pct))
        b.append(Para(f"Per {t.axis}, across {across}: cost ({unit}s, measured; projected cells as far as they ran)."))
        b.append(marginal_table(tc))
    b.append(Heading(2, "Pareto fronts"))
    b += [Fig(f, "Cells on the front: none is both cheaper and more accurate.") for f in figs.get("pareto", [])]
    rows = []
    for p in c.paretos:
        for i in p.front:
            x = p.points[i][0]
            rows.append((X_NAMES[p.x], p.labels[i], num(x) if p.x == "cost_h" else big(int(x)), pct(p.points[i][1])))
    b.append(Table(("cost", "cell on the front", "cost value", "top-1"), tuple(rows)))
    b.append(Heading(2, "Projected runtimes"))
    if c.projected:
        b.append(Table(("cell", "measured h", "projected h", "epochs done", "top-1 so far"), tuple(
            (r["label"], num(r["measured_h"]), num(r["projected_h"]), f"{r['epochs_done']}/{r['epochs'] or '?'}",
             pct(r["top1"])) for r in c.projected)))  # fmt: skip
    else:
        b.append(Para("No cell was stopped by a cap."))
    b.append(Heading(2, "Failed cells"))
    if c.failed:
        b.append(Table(("cell", "phase", "reason", "peak GPU GB", "device"), tuple(
            (r["label"], r["failed_in"] or "-", r["reason"], num(r["peak_gpu_gb"], 3), r["device"] or "-")
            for r in c.failed)))  # fmt: skip
    else:
        b.append(Para("No cell failed."))
    b.append(Heading(2, "Each cell"))
    b += [Fig(f, f.title) for f in figs.get("cell", [])]
    b += [Heading(2, "NAS best-practices checklist"), Para(_checklist_note(c.checklist)), Checklist(tuple(c.checklist))]
    b.append(Heading(2, "Appendix A: chosen architectures"))
    arch_figs = figs.get("arch", [])
    for i, a in enumerate(c.archs):
        b.append(Heading(3, f"Architecture {i + 1}"))
        b.append(Para(f"Chosen by {', '.join(a.cells)}; {big(a.params)} parameters, "
                      f"{num(a.flops / 1e6 if a.flops else None)} MFLOPs."))  # fmt: skip
        if i < len(arch_figs):
            b.append(Fig(arch_figs[i], f"Drawn from the space's {a.source}" if a.source else "No graph: its text"))
        b.append(Pre(a.text))
    if not c.archs:
        b.append(Para("No cell chose an architecture."))
    b.append(Heading(2, "Appendix B: settings"))
    for text, labels in c.settings:
        b.append(Para("Used by " + ", ".join(labels) + ":"))
        b.append(Pre(text))
    return b
