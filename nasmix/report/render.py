"""Write a study's report: report.html (self-contained: every figure embedded
as a base64 PNG, styles inline, no external resource), report.md (figures
linked from figures/), each figure as PNG and SVG with its layout
(figures/layout.json), and the summary table (summary.csv) and marginal
tables (marginal.csv) as CSV.

Everything from the store (names, labels, arch strings, reasons, settings)
is escaped for the format it lands in: HTML entities in report.html; in
report.md, HTML-significant characters as entities and Markdown's own
punctuation backslash-escaped, code blocks fenced longer than any backtick
run inside them; in the CSVs, text cells that a spreadsheet would run as a
formula (starting with =, +, -, @, tab or carriage return) get a leading
quote, while numbers (negative ones included) stay numbers.

Example:
    >>> import tempfile, os
    >>> from nasmix.study.store import Store
    >>> db = os.path.join(tempfile.mkdtemp(), "s.db"); Store(db).close()
    >>> out = write_report(db, tempfile.mkdtemp())
    >>> sorted(p.name for p in out.values() if p.suffix != "")
    ['layout.json', 'marginal.csv', 'report.html', 'report.md', 'summary.csv']
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from nasmix.report.content import ReportContent, compute_content
from nasmix.report.data import load_records
from nasmix.report.efficiency import SUMMARY_COLUMNS
from nasmix.report.figures import draw_figures
from nasmix.report.sections import (
    Checklist,
    Fig,
    Heading,
    Para,
    Pre,
    Table,
    report_blocks,
)

MARKS = {
    "yes": ("&#9745;", "[x]", "yes"),
    "partly": ("&#9680;", "[x]", "partly"),
    "no": ("&#9746;", "[ ]", "no"),
    None: ("&#9744;", "[ ]", "for the author"),
}

STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1300px;
color:#222;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;font-size:12px;margin:.8em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f2f2f2}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:12px;color:#555}
pre{background:#f6f6f6;padding:.6em;font-size:11px;overflow-x:auto}
ul.checklist{list-style:none;padding-left:0}ul.checklist li{margin:.35em 0}
.mark{font-size:16px;margin-right:.4em}.ev{color:#666;font-size:12px}
.yes .mark{color:#1a7f37}.no .mark{color:#b00}.partly .mark{color:#b58900}.author .mark{color:#888}
"""


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(v) -> str:
    """A value as a CSV cell a spreadsheet shows and never runs: None is empty, numbers stay numbers,
    text that could start a formula gets a leading quote (OWASP's CSV-injection advice).

    Example:
        >>> csv_cell(-0.25), csv_cell("-0.25"), csv_cell("=HYPERLINK(1)"), csv_cell(None)
        ('-0.25', '-0.25', "'=HYPERLINK(1)", '')
    """
    if v is None:
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v) if isinstance(v, float) else str(v)
    text = str(v)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(content: ReportContent, out: Path) -> tuple[Path, Path]:
    """summary.csv (SUMMARY_COLUMNS, raw numbers, ranking order) and marginal.csv (long format)."""
    summary = out / "summary.csv"
    with open(summary, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(SUMMARY_COLUMNS)
        for row in content.summary:
            w.writerow([csv_cell(row[k]) for k in SUMMARY_COLUMNS])
    marginal = out / "marginal.csv"
    with open(marginal, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("metric", "axis", "value", "across", "column", "mean", "std", "n", "failed"))
        for t in content.marginals + content.marginals_auc + content.marginals_cost:
            for (row, col), s in t.cells.items():
                w.writerow(
                    [
                        csv_cell(v)
                        for v in (
                            t.metric,
                            t.axis,
                            row,
                            " / ".join(t.across),
                            col,
                            s.mean,
                            s.std,
                            s.n,
                            s.failed,
                        )
                    ]
                )
    return summary, marginal


def to_html(blocks: Sequence, title: str) -> str:
    """The blocks as one self-contained HTML page."""
    e = html.escape
    parts = [
        (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head><body>"
        )
    ]
    for blk in blocks:
        if isinstance(blk, Heading):
            parts.append(f"<h{blk.level}>{e(blk.text)}</h{blk.level}>")
        elif isinstance(blk, Para):
            parts.append(f"<p>{e(blk.text)}</p>")
        elif isinstance(blk, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in blk.headers)
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in blk.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(blk, Fig):
            data = base64.b64encode(blk.file.png).decode()
            parts.append(
                f'<figure><img class="figure" data-figure="{e(blk.file.name)}" '
                f'alt="{e(blk.file.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(blk.caption)} "
                f"(figures/{e(blk.file.name)}.png, .svg)</figcaption></figure>"
            )
        elif isinstance(blk, Pre):
            parts.append(f"<pre>{e(blk.text)}</pre>")
        elif isinstance(blk, Checklist):
            items = []
            for i in blk.items:
                mark, _, word = MARKS[i.status]
                cls = i.status or "author"
                items.append(
                    f'<li class="{cls}"><span class="mark">{mark}</span>{e(i.text)} '
                    f'<span class="ev">({word}: {e(i.evidence)})</span></li>'
                )
            sections = dict.fromkeys(i.section for i in blk.items)
            for s in sections:
                chosen = [li for li, i in zip(items, blk.items) if i.section == s]
                parts.append(f'<h3>{e(s.capitalize())}</h3><ul class="checklist">{"".join(chosen)}</ul>')
    parts.append("</body></html>")
    return "\n".join(parts)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # what starts a link, code, emphasis, cell or strike mid-line


def md_text(text: str) -> str:
    """Text as Markdown shows it literally, on one line: HTML-significant characters as entities
    (no tag, script or entity from the store reaches the page), Markdown punctuation backslash-escaped
    (no link, image, emphasis, heading or table cell), newlines as spaces.

    Example:
        >>> print(md_text("<script>alert(1)</script> [x](javascript:y) | *z*"))
        &lt;script&gt;alert(1)&lt;/script&gt; \\[x\\](javascript:y) \\| \\*z\\*
    """
    text = html.escape(" ".join(str(text).splitlines()), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(text: str) -> str:
    """A fenced code block holding `text` verbatim: the fence is longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def to_markdown(blocks: Sequence) -> str:
    """The blocks as Markdown (figures linked from figures/), every text escaped (`md_text`)."""
    out = []
    for blk in blocks:
        if isinstance(blk, Heading):
            out.append("#" * blk.level + " " + md_text(blk.text))
        elif isinstance(blk, Para):
            out.append(md_text(blk.text))
        elif isinstance(blk, Table):
            out.append("| " + " | ".join(md_text(h) for h in blk.headers) + " |")
            out.append("|" + " --- |" * len(blk.headers))
            out += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in blk.rows]
        elif isinstance(blk, Fig):
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", blk.file.name)  # figure files are named by `figures._slug`
            out.append(
                f"![{md_text(blk.file.title)}](figures/{name}.png)\n\n*{md_text(blk.caption)}* "
                f"([SVG](figures/{name}.svg))"
            )
        elif isinstance(blk, Pre):
            out.append(md_code(blk.text))
        elif isinstance(blk, Checklist):
            for s in dict.fromkeys(i.section for i in blk.items):
                out.append(f"### {md_text(s.capitalize())}\n")
                for i in blk.items:
                    if i.section == s:
                        mark, word = MARKS[i.status][1], MARKS[i.status][2]
                        out.append(f"- {mark} {md_text(i.text)} ({word}: {md_text(i.evidence)})")
        out.append("")
    return "\n".join(out)


def write_report(
    db: str | os.PathLike,
    out: str | os.PathLike,
    target: float = 0.9,
    shared_time_axis: bool = False,
    basis: str = "auto",
    workers: int = 1,
) -> dict[str, Path]:
    """Read a study store and write its whole report.

    Args:
        db: the study's SQLite store.
        out: the output folder (created if needed; existing files are replaced).
        target: the accuracy of the time-to-target metric (fraction, e.g. 0.9).
        shared_time_axis: one time axis for every panel of the grid figures.
        basis: the cost basis: "auto", "gpu" or "wall".
        workers: processes drawing the figures (see `figures.draw_figures`).

    Returns:
        The written files: html, md, summary_csv, marginal_csv, figures (the folder), layout (its
        layout.json: each figure's `layout.figure_layout`).

    Raises:
        StoreError (a NasmixError): the store is missing or unreadable.
    """
    records = load_records(db)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    content = compute_content(records, target=target, basis=basis)
    figures = draw_figures(content, out / "figures", shared_time_axis=shared_time_axis, workers=workers)
    blocks = report_blocks(content, figures, str(db))
    title = blocks[0].text
    (out / "report.html").write_text(to_html(blocks, title), encoding="utf-8")
    (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    summary, marginal = write_csv(content, out)
    layout = out / "figures" / "layout.json"
    layout.write_text(json.dumps({f.name: f.layout for f in figures}), encoding="utf-8")
    return {
        "html": out / "report.html",
        "md": out / "report.md",
        "summary_csv": summary,
        "marginal_csv": marginal,
        "figures": out / "figures",
        "layout": layout,
    }
