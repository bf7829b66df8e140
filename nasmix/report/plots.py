"""Figures of a cell's accuracy over runtime, after the seed study's graphs.

One panel per cell: test accuracy (%) of the chosen arch over hours of
measured runtime, a gray divider where the search ended, top-1 and top-5 at
each evaluated checkpoint, the final test point, and the runtime and final
top-5 under the graph. Projected parts are dashed and labelled; a failed
cell is a labelled panel with its reason. `grid_figure` lays every cell out
as spaces x methods. Figures are `matplotlib.figure.Figure` objects, not pyplot
ones: no global state, no display, and saving renders them with Agg.

Example:
    >>> from nasmix.report.metrics import Curve, Point
    >>> curve = Curve((), None, 0.5, None, (Point(1.0, 0.6, 0.9),), Point(1.0, 0.6, 0.9), 1.0, None)
    >>> fig = cell_figure(curve, None, title="nb201 & random", devices=("cpu",))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from nasmix.report.metrics import CellMetrics, Curve

TOP1, TOP5, SEARCH, DIVIDER = "#1f77b4", "#ff7f0e", "#2ca02c", "#808080"


def hms(hours: float | None) -> str:
    """Hours as H:MM:SS ('-' for None).

    Example:
        >>> hms(8.2589)
        '8:15:32'
    """
    if hours is None:
        return "-"
    s = round(hours * 3600)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def device_line(devices: Sequence[str]) -> str:
    """'device: X', or 'devices: X; Y (not comparable)' when a figure mixes devices."""
    devices = list(dict.fromkeys(devices))
    if not devices:
        return "device: not recorded"
    if len(devices) == 1:
        return f"device: {devices[0]}"
    return f"devices: {'; '.join(devices)} (timings not comparable across devices)"


def curve_extent(curve: Curve) -> float:
    """The rightmost time a curve's drawing needs, in hours."""
    return max([curve.end_h, curve.projected_h or 0.0, curve.search_projected_h or 0.0]
               + [x for x, _ in curve.search])  # fmt: skip


def footer(curve: Curve, m: CellMetrics | None) -> str:
    """The line under a cell's graph: total runtime and final top-5 (and the projection)."""
    top5 = curve.final.top5 if curve.final else (m.top5 if m else None)
    text = f"Total runtime: {hms(curve.end_h)}, Top-5: {'-' if top5 is None else f'{100 * top5:.2f}%'}"
    if curve.projected_h is not None:
        text += f"; projected {hms(curve.projected_h)}"
    if m is not None and m.peak_gpu_gb:
        text += f"; peak GPU {m.peak_gpu_gb:.1f} GB"
    return text


def _failed_panel(ax, m: CellMetrics) -> None:
    peak = f"\npeak GPU memory {m.peak_gpu_gb:.2f} GB" if m.peak_gpu_gb else ""
    ax.text(0.5, 0.5, f"FAILED in {m.failed_in or 'setup'}\n{_wrap(m.reason or 'unknown reason')}{peak}",
            ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#a00000",
            bbox={"boxstyle": "round", "facecolor": "#fdecea", "edgecolor": "#a00000"})  # fmt: skip


def _wrap(text: str, width: int = 38) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])


def draw_cell(ax, curve: Curve, m: CellMetrics | None = None, xlim: float | None = None, alpha: float = 1.0,
              legend: bool = True, annotate: bool = True) -> None:  # fmt: skip
    """Draw one cell's accuracy over runtime into `ax`.

    Args:
        ax: the matplotlib axes.
        curve: the cell's Curve.
        m: its CellMetrics (for a failed cell's reason); optional.
        xlim: the right end of the time axis (None: fit the curve).
        alpha: opacity (several seeds in one panel).
        legend: draw the legend.
        annotate: label the final values, divider and projection.
    """
    pct = 100.0
    if curve.search:
        xs = [x for x, y in curve.search if y is not None]
        ys = [pct * y for _, y in curve.search if y is not None]
        if xs:
            ax.plot(xs, ys, ".-", color=SEARCH, ms=4, lw=1, alpha=0.8 * alpha, label=curve.search_label or "search")
        elif curve.search_end_h:
            ax.axvspan(0, curve.search_end_h, color=SEARCH, alpha=0.08 * alpha, label="search (score not an accuracy)")
    if curve.search_end_h is not None:
        ax.axvline(curve.search_end_h, color=DIVIDER, lw=2, alpha=0.7 * alpha, label="end of search")
    if curve.search_projected_h is not None:
        ax.axvline(curve.search_projected_h, color=DIVIDER, lw=1.5, ls="--", alpha=alpha,
                   label="projected end of search")  # fmt: skip
    pts = list(curve.points)
    if pts:
        ax.plot([p.x_h for p in pts], [pct * p.top1 for p in pts], "o-", color=TOP1, ms=3, lw=1.2, alpha=alpha,
                label="top-1 (checkpoints)")  # fmt: skip
        five = [p for p in pts if p.top5 is not None]
        ax.plot([p.x_h for p in five], [pct * p.top5 for p in five], "s-", color=TOP5, ms=3, lw=1.2, alpha=alpha,
                label="top-5 (checkpoints)")  # fmt: skip
    if curve.final is not None:
        f = curve.final
        ax.plot([f.x_h], [pct * f.top1], "*", color=TOP1, ms=11, mec="black", mew=0.5, alpha=alpha, label="final test")
        if f.top5 is not None:
            ax.plot([f.x_h], [pct * f.top5], "*", color=TOP5, ms=11, mec="black", mew=0.5, alpha=alpha)
        if annotate:
            ax.annotate(f"{pct * f.top1:.1f}%", (f.x_h, pct * f.top1), textcoords="offset points", xytext=(-4, -12),
                        ha="right", fontsize=7, color=TOP1)  # fmt: skip
    if curve.projected_h is not None and pts:
        last = pts[-1]
        ax.plot([curve.end_h, curve.projected_h], [pct * last.top1] * 2, "--", color=TOP1, lw=1, alpha=alpha,
                label="projected (measured pace)")  # fmt: skip
        if last.top5 is not None:
            ax.plot([curve.end_h, curve.projected_h], [pct * last.top5] * 2, "--", color=TOP5, lw=1, alpha=alpha)
        if annotate:
            ax.annotate("projected", (curve.projected_h, pct * last.top1), textcoords="offset points",
                        xytext=(0, 5), ha="right", fontsize=7, style="italic")  # fmt: skip
    if m is not None and m.state == "failed" and annotate:
        _failed_panel(ax, m)
    ax.set_ylim(0, 102)
    right = xlim if xlim is not None else curve_extent(curve)
    ax.set_xlim(0, (right or 1e-6) * 1.05)
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_powerlimits((-3, 4))
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # small panels: few, readable ticks
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="lower right", framealpha=0.8)


def panel_title(m: CellMetrics) -> str:
    """'space & method (dataset, seed N)' with the state when it is not 'finished'."""
    state = "" if m.state == "finished" else f" [{m.state}]"
    return f"{m.space} & {m.method} ({m.dataset}, seed {m.seed}){state}"


def cell_figure(curve: Curve, m: CellMetrics | None, title: str | None = None,
                devices: Sequence[str] = ()) -> Figure:  # fmt: skip
    """The seed-style graph of one cell.

    Args:
        curve: the cell's Curve.
        m: its CellMetrics (title, failure reason, devices).
        title: overrides the title.
        devices: overrides the devices named under the graph.

    Returns:
        A matplotlib Figure.
    """
    fig = Figure(figsize=(6.0, 3.9))
    ax = fig.add_subplot()
    draw_cell(ax, curve, m)
    ax.set_title(title or (panel_title(m) if m else ""), fontsize=10)
    ax.set_xlabel("runtime (hours, measured)")
    ax.set_ylabel("test accuracy (%)")
    fig.text(0.5, 0.06, footer(curve, m), ha="center", fontsize=10, weight="bold")
    fig.text(0.99, 0.01, device_line(devices or (m.devices if m else ())), ha="right", fontsize=7, color="#555555")
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.27)
    return fig


def grid_figure(panels: dict, rows: Sequence[str], cols: Sequence[str], shared_time_axis: bool = False,
                title: str = "", devices: Sequence[str] = ()) -> Figure:  # fmt: skip
    """All cells as a grid: one row per space, one column per method, seeds overlaid.

    Args:
        panels: (row, col) -> list of (Curve, CellMetrics), one per seed.
        rows: the row labels (spaces), top to bottom.
        cols: the column labels (methods), left to right.
        shared_time_axis: one time axis for every panel (else each its own).
        title: the figure title.
        devices: the devices named on the figure.

    Returns:
        A matplotlib Figure.
    """
    nr, nc = max(len(rows), 1), max(len(cols), 1)
    lines = max((min(len(items), 3) + (len(items) > 3) for items in panels.values()), default=1)
    gap, axes_h, top, bottom = 0.5 + 0.13 * lines, 2.0, 0.85, 1.2  # inches; bottom holds legend and device
    fig = Figure(figsize=(3.3 * nc + 0.9, nr * axes_h + (nr - 1) * gap + top + bottom + 0.13 * lines))
    axes = fig.subplots(nr, nc, squeeze=False, sharex=shared_time_axis, sharey=True)
    shared = max((curve_extent(c) for items in panels.values() for c, _ in items), default=1e-6)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            items = panels.get((row, col), [])
            if not items:
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="#999999")
                ax.set_xticks([])
                ax.set_yticks([])
            right = shared if shared_time_axis else max((curve_extent(c) for c, _ in items), default=1e-6)
            for k, (curve, m) in enumerate(items):
                draw_cell(ax, curve, m, xlim=right, alpha=1.0 if k == 0 else 0.55, legend=False,
                          annotate=len(items) == 1 or m.state == "failed")  # fmt: skip
            if items:
                foot = [footer(c, m) for c, m in items[:3]] + (["..."] if len(items) > 3 else [])
                ax.set_xlabel("\n".join(foot), fontsize=6.5)
            if i == 0:
                ax.set_title(col, fontsize=9, weight="bold")
            if j == 0:
                ax.set_ylabel(f"{row}\naccuracy (%)", fontsize=9)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        ncol = min(4, len(handles))
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower left", fontsize=7, ncol=ncol,
                   bbox_to_anchor=(0.01, 0.0), frameon=False)  # fmt: skip
    axis = "shared time axis" if shared_time_axis else "independent time axes"
    fig.suptitle(f"{title}\n(x: runtime hours, measured; {axis})", fontsize=10, x=0.02, ha="left")
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.text(
        0.99, 1 - 0.12 / h, device_line(devices), ha="right", va="top", fontsize=7, color="#555555"
    )  # fixed margins: tight_layout would draw the figure once more
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.15 / w, top=1 - top / h, bottom=(bottom + 0.13 * lines) / h,
                        wspace=0.12, hspace=gap / axes_h)  # fmt: skip
    return fig
