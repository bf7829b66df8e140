"""Study-level figures: accuracy within equal budgets, the headline ranking's bars, marginal
bars per module, Pareto fronts.

Each takes values computed in `nasmix.report.aggregate` / `efficiency` and
returns a matplotlib Figure (Agg backend) that names its device(s). Legends
and keys sit outside the axes, so they cover no data.

Example:
    >>> from nasmix.report.aggregate import Stat
    >>> fig = ranking_figure([("nb201 / random / synthetic", Stat(0.5, 0.1, 2))], ("cpu",))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from nasmix.report.aggregate import METRIC_NAMES, MarginalTable, ParetoSet, Stat
from nasmix.report.efficiency import accuracy_at, checkpoints
from nasmix.report.layout import clip_segment, hit, hit_point
from nasmix.report.plots import device_note, plain, time_unit

X_NAMES = {"cost_h": "cost (hours)", "params": "parameters", "flops": "FLOPs"}
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
PERCENT_METRICS = ("top1_at_budget", "top1", "auc", "gain_vs_random")


def basis_words(basis: str) -> str:
    """'GPU-hour' or 'wall-hour': the unit of a cost basis."""
    return "GPU-hour" if basis == "gpu" else "wall-hour"


def cost_words(basis: str, unit: str) -> str:
    """'GPU-minutes', 'wall-seconds'...: a cost basis in a time unit."""
    return f"{'GPU' if basis == 'gpu' else 'wall'}-{unit}"


def _bars(ax, labels: Sequence[str], stats: Sequence[Stat], xlabel: str, scale: float = 1.0) -> None:
    y = list(range(len(labels)))[::-1]
    means = [scale * (s.mean or 0.0) for s in stats]
    errs = [scale * (s.std or 0.0) for s in stats]
    ax.barh(y, means, xerr=errs, color="#4c72b0", alpha=0.85, capsize=3)
    for yi, m, e, s in zip(y, means, errs, stats):
        note = f"n={s.n}" + (f", {s.failed} failed" if s.failed else "")
        if s.mean is None:
            note = "no result" + (f" ({s.failed} failed)" if s.failed else "")
        ax.annotate(note, (m + e, yi), xytext=(5, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels([plain(v) for v in labels], fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.margins(x=0.5)  # room right of the longest bar for its note
    if all(m >= 0 for m in means):
        ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.grid(axis="x", alpha=0.3)


def ranking_figure(combos: Sequence[tuple[str, Stat]], devices: Sequence[str]) -> Figure:
    """The headline as bars: each combination's test top-1 within its group's common budget (mean and
    std over seeds), highest first.

    Args:
        combos: (label, Stat of top1_at_budget) pairs, best first (`aggregate.combo_stats`).
        devices: the devices the study ran on.
    """
    fig = Figure(figsize=(7.5, 0.42 * max(len(combos), 1) + 1.6))
    ax = fig.add_subplot()
    _bars(
        ax,
        [c for c, _ in combos],
        [s for _, s in combos],
        "test top-1 (%) within the common budget (mean ± std)",
        scale=100.0,
    )
    ax.set_title("Headline: accuracy within equal budgets", fontsize=10)
    device_note(fig, devices)
    _margins(fig, [c for c, _ in combos], top=0.4)
    return fig


def _margins(fig: Figure, labels: Sequence[str], top: float, wspace: float = 0.0) -> None:
    """Fixed margins fitting the longest bar label (tight_layout would draw the figure once more)."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    left = min(0.55, (0.065 * max((len(s) for s in labels), default=4) + 0.25) / w)
    fig.subplots_adjust(left=left, right=1 - 0.2 / w, top=1 - top / h, bottom=0.75 / h, wspace=wspace)


def marginal_figure(tables: Sequence[MarginalTable], basis: str, devices: Sequence[str]) -> Figure:
    """One bar panel per module axis: each value's headline measure over everything else (the "all"
    column)."""
    n = max(len(tables), 1)
    height = max((len(t.rows) for t in tables), default=1)
    fig = Figure(figsize=(3.8 * n, 0.45 * height + 1.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, t in zip(axes, tables):
        pct = t.metric in PERCENT_METRICS
        name = METRIC_NAMES.get(t.metric, t.metric).replace("cost-hour", basis_words(basis))
        _bars(
            ax,
            list(t.rows),
            [t.cells[(r, "all")] for r in t.rows],
            name + (" (%)" if pct else ""),
            scale=100.0 if pct else 1.0,
        )
        ax.set_title(f"per {t.axis}", fontsize=9)
    fig.suptitle("Per module: mean ± std over all cells that use it", fontsize=10)
    device_note(fig, devices)
    labels = [r for t in tables for r in t.rows]
    longest = max((len(r) for r in labels), default=4)
    _margins(fig, labels, top=0.6, wspace=(0.065 * longest + 0.9) / (fig.get_figwidth() / n))
    return fig


def budget_figure(groups: Sequence[tuple], devices: Sequence[str]) -> Figure:
    """Accuracy within equal budgets: every cell's anytime curve a(t) on its group's common log time axis,
    coloured by combination; the ticks are the budgets of the report's equal-budget table.

    Args:
        groups: (group name, budgets in hours (the last is the common budget), [(combination label,
            [Curve, one per seed])]) per comparison group.
        devices: the devices the study ran on.

    Returns:
        A matplotlib Figure: one panel per group, the legend outside on the right.
    """
    n = max(len(groups), 1)
    longest = max((len(label) for _, _, items in groups for label, _ in items), default=10)
    legend_w = 0.6 + 0.065 * longest
    fig = Figure(figsize=(6.0 + legend_w, 3.2 * n + 0.6))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (name, budgets, items) in zip(axes, groups):
        if not budgets:
            ax.text(0.5, 0.5, "no cell with a result", ha="center", va="center", transform=ax.transAxes)
            continue
        unit, scale = time_unit(budgets[-1])
        left, right = scale * budgets[0] / 1.6, scale * budgets[-1] * 1.25
        for k, (label, curves) in enumerate(items):
            color = COLORS[k % len(COLORS)]
            for i, c in enumerate(curves):
                pts = checkpoints(c)
                xs = [max(scale * x, left) for x, _ in pts]
                ys = [100 * y for _, y in pts]
                alpha = 1.0 if i == 0 else 0.5
                ax.plot(
                    xs + [scale * budgets[-1]],
                    ys + [100 * (accuracy_at(c, budgets[-1]) or 0.0)],
                    drawstyle="steps-post",
                    color=color,
                    lw=1.4,
                    alpha=alpha,
                    label=plain(label) if i == 0 else None,
                )
                ax.plot(
                    xs, ys, "o", color=color, ms=3, alpha=alpha
                )  # the checkpoints: equal curves stay told apart
        for b in budgets:
            ax.axvline(scale * b, color="#999999", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        names = [f"b{k}" for k in range(1, len(budgets))] + ["B"]
        ax.set_xticks([scale * b for b in budgets], [f"{n}\n{scale * b:.3g}" for n, b in zip(names, budgets)])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(0, 102)
        ax.set_xlabel(f"measured runtime ({unit}, log scale) at the budgets of the ranking table", fontsize=8)
        ax.set_ylabel("test top-1 (%)", fontsize=8)
        ax.set_title(plain(name), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        if items:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.suptitle("Accuracy within equal budgets (the latest tested checkpoint at each runtime)", fontsize=10)
    device_note(fig, devices)
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(
        left=0.6 / w, right=1 - (legend_w + 0.1) / w, top=1 - 0.55 / h, bottom=0.6 / h, hspace=0.55
    )
    return fig


def _eng(v: float, _=None) -> str:
    return EngFormatter(sep="")(v).replace("μ", "u") if v else "0"


def _plain_number(v: float, _=None) -> str:
    return f"{v:g}"


def _cost_axis(ax, values: Sequence[float], label=_eng) -> None:
    """A cost axis (parameters, FLOPs, time) whose tick labels never print over each other: a log axis
    with few 1-2-5 ticks when the values span a decade or more, else a linear one with four; no minor
    labels. `label` writes a tick (default: engineering notation, 2.5M)."""
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo >= 10:
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.6, hi * 1.6)
        ax.xaxis.set_major_locator(
            LogLocator(base=10, subs=(1.0, 2.0, 5.0) if hi / lo < 1e3 else (1.0,), numticks=5)
        )
    else:
        pad = (hi - lo) * 0.15 or abs(hi) * 0.1 or 1.0
        ax.set_xlim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.xaxis.set_minor_formatter(NullFormatter())


def pareto_figure(sets: Sequence[ParetoSet], basis: str, devices: Sequence[str]) -> Figure:
    """Test top-1 against each cost, every cell a point, the Pareto front a red step line; the cells on
    the front are numbered, the key under each panel.

    Args:
        sets: one ParetoSet per cost axis (`aggregate.pareto`).
        basis: the cost basis of "cost_h".
        devices: the devices the study ran on.
    """
    n = max(len(sets), 1)
    keys = [min(len(s.front), KEY_LINES + 1) for s in sets]
    key_h = 0.13 * max(keys, default=0)
    fig = Figure(figsize=(4.3 * n, 3.3 + key_h))
    axes = fig.subplots(1, n, squeeze=False)[0]
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(
        left=0.7 / w, right=1 - 0.25 / w, top=1 - 0.6 / h, bottom=(0.75 + key_h) / h, wspace=0.35
    )
    for ax, s in zip(axes, sets):
        if not s.points:
            ax.text(0.5, 0.5, "no cell with this cost", ha="center", va="center", transform=ax.transAxes)
            continue
        scale, name = 1.0, X_NAMES.get(s.x, s.x)
        if s.x == "cost_h":
            unit, scale = time_unit(max(p[0] for p in s.points))
            name = f"cost ({cost_words(basis, unit)})"
        xs, ys = [scale * p[0] for p in s.points], [100 * p[1] for p in s.points]
        ax.scatter(xs, ys, s=18, color="#999999")
        fx, fy = [xs[i] for i in s.front], [ys[i] for i in s.front]
        ax.step(fx, fy, where="post", color="#c44e52", lw=1.5)
        ax.scatter(fx, fy, s=30, color="#c44e52", zorder=3)
        _cost_axis(ax, xs, _plain_number if s.x == "cost_h" else _eng)
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.15 or 2.0
        ax.set_ylim(max(0.0, lo - pad), min(102.0, hi + pad))
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("test top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        _number_front(ax, xs, ys, list(s.front))
        lines = [f"{k}  {plain(_short(s.labels[i]))}" for k, i in enumerate(s.front[:KEY_LINES], start=1)]
        if len(s.front) > KEY_LINES:
            lines.append(f"... and {len(s.front) - KEY_LINES} more (the report's table lists them all)")
        ax.text(
            0.0,
            -0.55 / ax.get_position().height / h,
            "\n".join(lines),
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=6.5,
            linespacing=1.25,
        )
    fig.suptitle(
        "Pareto fronts: accuracy against cost (red: on the front, numbered as in the key; gray: dominated)",
        fontsize=10,
    )
    device_note(fig, devices)
    return fig


KEY_LINES = 10  # cells named in a Pareto panel's key; the report's table lists the rest
_OFFSETS = (
    (5, 4, "left", "bottom"),
    (5, -4, "left", "top"),
    (-5, 4, "right", "bottom"),
    (-5, -4, "right", "top"),
    (0, 7, "center", "bottom"),
    (0, -7, "center", "top"),
    (8, 0, "left", "center"),
    (-8, 0, "right", "center"),
)


def _number_front(ax, xs: Sequence[float], ys: Sequence[float], front: Sequence[int]) -> None:
    """Number the front's points 1, 2, ... at the first spot beside each that covers no point, no part of
    the front's line and no earlier number (sizes estimated from the font; the layout check verifies)."""
    fig = ax.get_figure()
    px = fig.dpi / 72
    disp = ax.transData.transform(list(zip(xs, ys)))
    points = [[x, y, 4.0 * px] for x, y in disp]
    fd = [disp[i] for i in front]
    segs = []
    for a, b in itertools.pairwise(fd):  # the steps-post line: across, then up
        segs += [[a[0], a[1], b[0], a[1]], [b[0], a[1], b[0], b[1]]]
    box_ax = ax.get_window_extent()
    placed: list = []
    for k, i in enumerate(front, start=1):
        text = str(k)
        tw, th = 0.62 * 7 * px * len(text) + 2, 7 * px + 2
        x, y = disp[i]
        best = _OFFSETS[0]
        for dx, dy, ha, va in _OFFSETS:
            x0 = x + dx * px - (tw if ha == "right" else tw / 2 if ha == "center" else 0)
            y0 = y + dy * px - (th if va == "top" else th / 2 if va == "center" else 0)
            box = [x0, y0, x0 + tw, y0 + th]
            inside = (
                box_ax.x0 <= box[0] and box[2] <= box_ax.x1 and box_ax.y0 <= box[1] and box[3] <= box_ax.y1
            )
            clear = (
                not any(hit_point(box, p) for p in points)
                and not any(hit(box, b) for b in placed)
                and not any(clip_segment(sg, box) for sg in segs)
            )
            if inside and clear:
                best = (dx, dy, ha, va)
                break
        dx, dy, ha, va = best
        x0 = x + dx * px - (tw if ha == "right" else tw / 2 if ha == "center" else 0)
        y0 = y + dy * px - (th if va == "top" else th / 2 if va == "center" else 0)
        placed.append([x0, y0, x0 + tw, y0 + th])
        ax.annotate(
            text,
            (xs[i], ys[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=7,
            color="#8b1a1a",
            weight="bold",
        )


def _short(label: str) -> str:
    """'space / strategy / estimator / dataset / seed N' without the dataset, for point labels."""
    parts = label.split(" / ")
    return " / ".join(parts[:-2] + parts[-1:]) if len(parts) >= 4 else label
