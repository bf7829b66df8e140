"""Draw a report's figures from its content and save each as PNG and SVG.

Example:
    >>> import tempfile
    >>> from nasmix.report.content import compute_content
    >>> files = draw_figures(compute_content([]), tempfile.mkdtemp())
    >>> sorted(f.name for f in files)
    ['budgets', 'marginal', 'pareto', 'ranking']
"""

from __future__ import annotations

import io
import multiprocessing
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from nasmix.report.content import ReportContent
from nasmix.report.layout import figure_layout
from nasmix.report.plots import cell_figure, grid_figure, panel_title
from nasmix.report.plots_arch import arch_figure
from nasmix.report.plots_summary import budget_figure, marginal_figure, pareto_figure, ranking_figure

DPI = 110


@dataclass(frozen=True)
class FigureFile:
    """One saved figure.

    Attributes:
        name: its file stem (figures/<name>.png and .svg).
        kind: "grid", "cell", "budgets", "ranking", "marginal", "pareto" or "arch".
        title: a caption title.
        key: what it shows (a cell id, a dataset, an arch string).
        png: the PNG bytes (embedded in the HTML).
        layout: where its legends, data and texts are in the PNG (`layout.figure_layout`).
    """

    name: str
    kind: str
    title: str
    key: str
    png: bytes
    layout: dict = field(default_factory=dict, compare=False, repr=False)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "x"


def save(fig, folder: Path, name: str, kind: str, title: str, key: str = "") -> FigureFile:
    """Write a figure as folder/name.png and folder/name.svg; returns its FigureFile with its layout."""
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # one rendering gives both the PNG's pixels and the layout read from it
    layout = figure_layout(fig, canvas.get_renderer())
    buf = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="png")
    png = buf.getvalue()
    (folder / f"{name}.png").write_bytes(png)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: editable and searchable
        fig.savefig(folder / f"{name}.svg", format="svg")
    fig.clear()
    return FigureFile(name, kind, title, key, png, layout)


def _figure_jobs(content: ReportContent, shared_time_axis: bool) -> list[tuple]:
    """(draw function, its arguments, name, kind, title, key) of every figure, in report order."""
    jobs: list[tuple] = []
    ms = content.metrics
    for dataset in dict.fromkeys(m.dataset for m in ms):
        mine = [m for m in ms if m.dataset == dataset]
        rows = list(dict.fromkeys(m.space for m in mine))
        cols = list(dict.fromkeys(m.method for m in mine))
        panels: dict = {}
        for m in mine:
            panels.setdefault((m.space, m.method), []).append((content.curves[m.id], m))
        devs = tuple(dict.fromkeys(d for m in mine for d in m.devices))
        title = f"{', '.join(content.studies) or 'study'} on {dataset}: test accuracy over runtime"
        jobs.append(
            (
                grid_figure,
                (panels, rows, cols, shared_time_axis, title, devs),
                f"grid_{_slug(dataset)}",
                "grid",
                f"All cells on {dataset}",
                dataset,
            )
        )
    jobs.append(
        (
            budget_figure,
            (_budget_groups(content), content.devices),
            "budgets",
            "budgets",
            "Accuracy within equal budgets",
            "",
        )
    )
    jobs.append(
        (ranking_figure, (content.combos, content.devices), "ranking", "ranking", "Headline ranking", "")
    )
    jobs.append(
        (
            marginal_figure,
            (content.marginals, content.basis, content.devices),
            "marginal",
            "marginal",
            "Per module",
            "",
        )
    )
    jobs.append(
        (
            pareto_figure,
            (content.paretos, content.basis, content.devices),
            "pareto",
            "pareto",
            "Pareto fronts",
            "",
        )
    )
    for m in ms:
        jobs.append((cell_figure, (content.curves[m.id], m), f"cell_{m.id}", "cell", panel_title(m), m.id))
    for i, a in enumerate(content.archs, start=1):
        footer = (
            (f"{a.params:,} parameters" if a.params is not None else "parameters unknown")
            + ", "
            + (f"{a.flops / 1e6:,.1f} MFLOPs" if a.flops is not None else "FLOPs unknown")
        )
        footer += f"; drawn from {a.source or 'the text'}; device: {'; '.join(a.devices) or 'not recorded'}"
        title = f"Architecture {i}: chosen by {', '.join(a.cells[:3])}" + (" ..." if len(a.cells) > 3 else "")
        jobs.append(
            (
                arch_figure,
                (list(a.graphs), title, footer, a.text),
                f"arch_{i}",
                "arch",
                f"Architecture {i}",
                a.arch,
            )
        )
    return jobs


def _budget_groups(content: ReportContent) -> list[tuple]:
    """(group, budgets, [(combination, [curves in rank order])]) of each group with ranked cells."""
    out = []
    for g in dict.fromkeys(m.group for m in content.metrics):
        ranked = sorted(
            (m for m in content.metrics if m.group == g and m.rank is not None), key=lambda m: m.rank or 0
        )
        if not ranked:
            continue
        combos: dict[str, list] = {}
        for m in ranked:
            combos.setdefault(f"{m.space} / {m.method}", []).append(content.curves[m.id])
        out.append((g, ranked[0].budgets_h, list(combos.items())))
    return out


_JOBS: list[tuple] = []  # the jobs of the current draw_figures call, inherited by forked workers
_FOLDER: list[Path] = []


def _run(i: int) -> FigureFile:
    draw, args, name, kind, title, key = _JOBS[i]
    return save(draw(*args), _FOLDER[0], name, kind, title, key)


def draw_figures(
    content: ReportContent, out: str | Path, shared_time_axis: bool = False, workers: int = 1
) -> list[FigureFile]:
    """Every figure of a report, saved under `out` (created if needed).

    Args:
        content: the report's content.
        out: the figure folder.
        shared_time_axis: one time axis for every panel of the grid figures.
        workers: processes drawing figures at once (1: all in this process,
            the default: on a loaded machine extra processes only compete).
            Workers are forked, so they exist only where the platform forks.

    Returns:
        The saved figures in report order: grids, budgets, ranking, marginal, Pareto, cells, archs.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = _figure_jobs(content, shared_time_axis)
    _JOBS[:], _FOLDER[:] = jobs, [folder]
    try:
        if workers > 1 and len(jobs) > 6 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                return pool.map(_run, range(len(jobs)), chunksize=1)
        return [_run(i) for i in range(len(jobs))]
    finally:
        _JOBS.clear()
        _FOLDER.clear()
