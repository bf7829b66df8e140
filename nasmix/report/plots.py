"""Figures of a cell's accuracy over runtime, after the seed study's graphs.

One panel per cell: test accuracy (%) of the chosen arch over measured
runtime (in seconds, minutes or hours, whichever the figure's range reads
best in: `time_unit`), a gray divider where the search ended, top-1 and top-5 at
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

from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from nasmix.report.metrics import CellMetrics, Curve

TOP1, TOP5, SEARCH, DIVIDER = "#1f77b4", "#ff7f0e", "#2ca02c", "#808080"
RIGHT_ROOM = 1.2  # the time axis runs this far past the data: room for the final-test label right of its star


def time_unit(hours: float | None) -> tuple[str, float]:
    """The unit a time axis reaching `hours` reads best in, and the factor from hours to it.

    Seconds below two minutes, minutes below two hours, else hours: tick labels
    stay short plain numbers (no 1e-3 multipliers).

    Example:
        >>> time_unit(42 / 3600), time_unit(0.5), time_unit(30.0)
        (('seconds', 3600.0), ('minutes', 60.0), ('hours', 1.0))
    """
    seconds = (hours or 0.0) * 3600
    if seconds < 120:
        return "seconds", 3600.0
    if seconds < 7200:
        return "minutes", 60.0
    return "hours", 1.0


def plain(text: str) -> str:
    """Text from the store as matplotlib draws it literally: a `$` would start math mode.

    Example:
        >>> plain("cost $5")
        'cost \\\\$5'
    """
    return str(text).replace("$", r"\$")


def plain_time_axis(axis) -> None:
    """Few, plain tick labels on a linear time axis: no offset, no scientific notation."""
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    axis.set_major_formatter(fmt)
    axis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))


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


def device_note(fig: Figure, devices: Sequence[str]) -> None:
    """The figure's device line in its bottom right corner, inside the image."""
    fig.text(
        0.99,
        0.04 / fig.get_figheight(),
        plain(device_line(devices)),
        ha="right",
        va="bottom",
        fontsize=7,
        color="#555555",
    )


def curve_extent(curve: Curve) -> float:
    """The rightmost time a curve's drawing needs, in hours."""
    return max(
        [curve.end_h, curve.projected_h or 0.0, curve.search_projected_h or 0.0]
        + [x for x, _ in curve.search]
    )


def footer(curve: Curve, m: CellMetrics | None) -> str:
    """The line under a cell's graph: total runtime (H:MM:SS) and final top-5 (and the projection)."""
    top5 = curve.final.top5 if curve.final else (m.top5 if m else None)
    text = f"Total runtime: {hms(curve.end_h)}, Top-5: {'-' if top5 is None else f'{100 * top5:.2f}%'}"
    if curve.projected_h is not None:
        text += f"; projected {hms(curve.projected_h)}"
    if m is not None and m.peak_gpu_gb:
        text += f"; peak GPU {m.peak_gpu_gb:.1f} GB"
    return text


def _failed_panel(ax, m: CellMetrics, curve: Curve) -> None:
    peak = f"\npeak GPU memory {m.peak_gpu_gb:.2f} GB" if m.peak_gpu_gb else ""
    ys = [y for _, y in curve.search if y is not None] + [p.top1 for p in curve.points]
    y = 0.5 if not ys else (0.78 if max(ys) < 0.5 else 0.22)  # the half of the panel the curve leaves free
    ax.text(
        0.5,
        y,
        plain(f"FAILED in {m.failed_in or 'setup'}\n{_wrap(m.reason or 'unknown reason')}{peak}"),
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=9,
        color="#a00000",
        bbox={"boxstyle": "round", "facecolor": "#fdecea", "edgecolor": "#a00000"},
    )


def _wrap(text: str, width: int = 38) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])


def draw_cell(
    ax,
    curve: Curve,
    m: CellMetrics | None = None,
    xlim: float | None = None,
    alpha: float = 1.0,
    legend: bool = True,
    annotate: bool = True,
    scale: float = 1.0,
) -> None:
    """Draw one cell's accuracy over runtime into `ax`.

    Args:
        ax: the matplotlib axes.
        curve: the cell's Curve.
        m: its CellMetrics (for a failed cell's reason); optional.
        xlim: the right end of the data on the time axis, in hours (None: fit the curve).
        alpha: opacity (several seeds in one panel).
        legend: draw the legend, outside the axes on their right (it covers no data).
        annotate: label the final values, divider and projection.
        scale: hours to the axis's unit (`time_unit`).
    """
    pct = 100.0
    if curve.search:
        xs = [scale * x for x, y in curve.search if y is not None]
        ys = [pct * y for _, y in curve.search if y is not None]
        if xs:
            ax.plot(
                xs,
                ys,
                ".-",
                color=SEARCH,
                ms=4,
                lw=1,
                alpha=0.8 * alpha,
                label=curve.search_label or "search",
            )
        elif curve.search_end_h:
            ax.axvspan(
                0,
                scale * curve.search_end_h,
                color=SEARCH,
                alpha=0.08 * alpha,
                label="search (score not an accuracy)",
            )
    if curve.search_end_h is not None:
        ax.axvline(scale * curve.search_end_h, color=DIVIDER, lw=2, alpha=0.7 * alpha, label="end of search")
    if curve.search_projected_h is not None:
        ax.axvline(
            scale * curve.search_projected_h,
            color=DIVIDER,
            lw=1.5,
            ls="--",
            alpha=alpha,
            label="projected end of search",
        )
    pts = list(curve.points)
    if pts:
        ax.plot(
            [scale * p.x_h for p in pts],
            [pct * p.top1 for p in pts],
            "o-",
            color=TOP1,
            ms=3,
            lw=1.2,
            alpha=alpha,
            label="top-1 (checkpoints)",
        )
        five = [(p.x_h, p.top5) for p in pts if p.top5 is not None]
        ax.plot(
            [scale * x for x, _ in five],
            [pct * top5 for _, top5 in five],
            "s-",
            color=TOP5,
            ms=3,
            lw=1.2,
            alpha=alpha,
            label="top-5 (checkpoints)",
        )
    if curve.final is not None:
        f = curve.final
        ax.plot(
            [scale * f.x_h],
            [pct * f.top1],
            "*",
            color=TOP1,
            ms=11,
            mec="black",
            mew=0.5,
            alpha=alpha,
            label="final test",
        )
        if f.top5 is not None:
            ax.plot(
                [scale * f.x_h], [pct * f.top5], "*", color=TOP5, ms=11, mec="black", mew=0.5, alpha=alpha
            )
        if annotate:  # right of the star, where no curve goes (the time axis has RIGHT_ROOM for it); below
            # and right when a projection's dashed line goes on from the star
            off, va = ((6, -5), "top") if curve.projected_h is not None and pts else ((7, 0), "center")
            ax.annotate(
                f"{pct * f.top1:.1f}%",
                (scale * f.x_h, pct * f.top1),
                textcoords="offset points",
                xytext=off,
                ha="left",
                va=va,
                fontsize=7,
                color=TOP1,
            )
    if curve.projected_h is not None and pts:
        last = pts[-1]
        xs = [scale * curve.end_h, scale * curve.projected_h]
        ax.plot(
            xs, [pct * last.top1] * 2, "--", color=TOP1, lw=1, alpha=alpha, label="projected (measured pace)"
        )
        if last.top5 is not None:
            ax.plot(xs, [pct * last.top5] * 2, "--", color=TOP5, lw=1, alpha=alpha)
        if annotate:  # right of the dashed top-1 line's end
            ax.annotate(
                "projected",
                (scale * curve.projected_h, pct * last.top1),
                textcoords="offset points",
                xytext=(4, 0),
                ha="left",
                va="center",
                fontsize=7,
                style="italic",
            )
    if m is not None and m.state == "failed" and annotate:
        _failed_panel(ax, m, curve)
    ax.set_ylim(0, 102)
    right = xlim if xlim is not None else curve_extent(curve)
    ax.grid(alpha=0.3)
    if right > 0:
        ax.set_xlim(0, scale * right * RIGHT_ROOM)
        plain_time_axis(ax.xaxis)
    else:  # nothing measured yet: a time axis would only label a zero-width range
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        note = "nothing measured yet" if m is None or m.state != "failed" else ""
        if note and note not in [t.get_text() for t in ax.texts]:
            ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color="#999999")
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, framealpha=0.9)


def panel_title(m: CellMetrics) -> str:
    """'space & method (dataset, seed N)' with the state when it is not 'finished'."""
    state = "" if m.state == "finished" else f" [{m.state}]"
    return f"{m.space} & {m.method} ({m.dataset}, seed {m.seed}){state}"


def cell_figure(
    curve: Curve, m: CellMetrics | None, title: str | None = None, devices: Sequence[str] = ()
) -> Figure:
    """The seed-style graph of one cell, its legend on the right of the axes.

    Args:
        curve: the cell's Curve.
        m: its CellMetrics (title, failure reason, devices).
        title: overrides the title.
        devices: overrides the devices named under the graph.

    Returns:
        A matplotlib Figure.
    """
    fig = Figure(figsize=(8.2, 3.9))
    ax = fig.add_subplot()
    unit, scale = time_unit(curve_extent(curve) * RIGHT_ROOM)
    draw_cell(ax, curve, m, scale=scale)
    ax.set_title(plain(title or (panel_title(m) if m else "")), fontsize=10)
    ax.set_xlabel(f"runtime ({unit}, measured)")
    ax.set_ylabel("test accuracy (%)")
    left, right = 0.08, 0.7
    fig.text((left + right) / 2, 0.06, footer(curve, m), ha="center", fontsize=10, weight="bold")
    device_note(fig, devices or (m.devices if m else ()))
    fig.subplots_adjust(left=left, right=right, top=0.9, bottom=0.27)
    return fig


def grid_figure(
    panels: dict,
    rows: Sequence[str],
    cols: Sequence[str],
    shared_time_axis: bool = False,
    title: str = "",
    devices: Sequence[str] = (),
) -> Figure:
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
    gap, axes_h, top = 0.5 + 0.13 * lines, 2.0, 0.85  # inches
    fig = Figure(
        figsize=(3.3 * nc + 0.9, nr * axes_h + (nr - 1) * gap + top + 1.5)
    )  # the height is set below
    axes = fig.subplots(nr, nc, squeeze=False, sharex=shared_time_axis, sharey=True)
    shared = max((curve_extent(c) for items in panels.values() for c, _ in items), default=1e-6)
    unit, scale = time_unit(shared * RIGHT_ROOM)  # one unit per figure, fit to its longest panel
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            items = panels.get((row, col), [])
            if not items:
                ax.text(
                    0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="#999999"
                )
                ax.set_xticks([])
                ax.set_yticks([])
            right = shared if shared_time_axis else max((curve_extent(c) for c, _ in items), default=1e-6)
            for k, (curve, m) in enumerate(items):
                draw_cell(
                    ax,
                    curve,
                    m,
                    xlim=right,
                    alpha=1.0 if k == 0 else 0.55,
                    legend=False,
                    annotate=len(items) == 1 or m.state == "failed",
                    scale=scale,
                )
            if items:
                foot = [footer(c, m) for c, m in items[:3]] + (["..."] if len(items) > 3 else [])
                ax.set_xlabel("\n".join(foot), fontsize=6.5)
            if i == 0:
                ax.set_title(plain(col), fontsize=9, weight="bold")
            if j == 0:
                ax.set_ylabel(f"{plain(row)}\naccuracy (%)", fontsize=9)
    handles: dict[str, Artist] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    w = fig.get_figwidth()
    # the legend gets its own band under the panels' footers, as many columns as the width holds
    entry_w = 0.45 + 0.06 * max((len(k) for k in handles), default=0)  # inches at fontsize 7
    ncol = max(1, min(4, len(handles), int((w - 0.2) // entry_w)))
    legend_h = 0.17 * -(-len(handles) // ncol) if handles else 0.0
    foot_h, device_h = 0.42 + 0.12 * lines, 0.22
    h = nr * axes_h + (nr - 1) * gap + top + foot_h + legend_h + device_h
    fig.set_figheight(h)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles.keys()),
            loc="lower left",
            fontsize=7,
            ncol=ncol,
            bbox_to_anchor=(0.1 / w, device_h / h),
            frameon=False,
            borderaxespad=0.0,
        )
    axis = "shared time axis" if shared_time_axis else "independent time axes"
    fig.suptitle(f"{plain(title)}\n(x: measured runtime in {unit}; {axis})", fontsize=10, x=0.02, ha="left")
    device_note(fig, devices)
    # fixed margins: tight_layout would draw the figure once more
    fig.subplots_adjust(
        left=0.75 / w,
        right=1 - 0.15 / w,
        top=1 - top / h,
        bottom=(foot_h + legend_h + device_h) / h,
        wspace=0.12,
        hspace=gap / axes_h,
    )
    return fig
