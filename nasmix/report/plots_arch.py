"""Drawings of chosen architectures: each graph (cell, motif, network) as an
arc diagram whose edges are labelled with their ops.

Nodes sit on a line in order; an edge is an arc above the line (below it
when its endpoints' sum is odd, which keeps labels of equal-span edges
apart), its op written at the arc's top. An arch without a graph is drawn
as its text.

Example:
    >>> from nasmix.report.archgraph import ArchGraph
    >>> g = ArchGraph("cell", ("0", "1", "2"), (("0", "1", "conv"), ("0", "2", "skip")))
    >>> fig = arch_figure([g], "nb201 cell", footer="1,000 parameters")
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Arc

from nasmix.report.archgraph import ArchGraph
from nasmix.report.layout import on_data
from nasmix.report.plots import plain

OP_COLORS = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
)


def _color(op: str, palette: dict) -> str:
    key = op.split(",")[0]
    if key not in palette:
        palette[key] = OP_COLORS[len(palette) % len(OP_COLORS)]
    return palette[key]


def draw_graph(ax, g: ArchGraph, palette: dict) -> None:
    """Draw one ArchGraph as an arc diagram into `ax`.

    Args:
        ax: the matplotlib axes.
        g: the graph.
        palette: op -> colour, shared by all graphs of a figure.
    """
    pos = {n: float(i) for i, n in enumerate(g.nodes)}
    top = 0.6
    for a, b, op in g.edges:
        if a not in pos or b not in pos:
            continue
        x0, x1 = sorted((pos[a], pos[b]))
        span = max(x1 - x0, 0.6)
        h = 0.35 + 0.3 * span
        up = (int(pos[a]) + int(pos[b])) % 2 == 0
        color = _color(op, palette)
        ax.add_patch(
            Arc(
                ((x0 + x1) / 2, 0),
                x1 - x0 or 0.6,
                2 * h,
                theta1=0 if up else 180,
                theta2=180 if up else 360,
                color=color,
                lw=1.6,
            )
        )
        y = h if up else -h
        sign = 1 if up else -1  # the arc meets its head node vertically: an arrow there shows the direction
        ax.annotate(
            "",
            xy=(pos[b], sign * 0.1),
            xytext=(pos[b], sign * 0.32),
            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2},
        )
        on_data(
            ax.text(
                (x0 + x1) / 2,
                y,
                plain(op),
                ha="center",
                va="center",
                fontsize=7,
                color="black",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": color, "lw": 0.8},
            )
        )
        top = max(top, h)
    for n, x in pos.items():
        ax.plot([x], [0], "o", ms=15, color="#f0f0f0", mec="black", mew=1, zorder=3)
        on_data(ax.text(x, 0, plain(n), ha="center", va="center", fontsize=7, zorder=4))
    ax.set_xlim(-0.6, max(len(g.nodes) - 1, 1) + 0.6)
    ax.set_ylim(-top - 0.3, top + 0.3)
    ax.set_title(plain(g.name), fontsize=9, loc="left")
    ax.axis("off")


def arch_figure(graphs: Sequence[ArchGraph], title: str, footer: str = "", text: str = "") -> Figure:
    """One chosen arch: each of its graphs in a row; its text when it has none.

    Args:
        graphs: the arch's graphs (`archgraph.arch_graphs`).
        title: the figure title (the cell).
        footer: a line under the drawing (parameters, FLOPs, device).
        text: the describe() text, drawn when there is no graph.

    Returns:
        A matplotlib Figure.
    """
    if not graphs:
        lines = (text or "(no description)").splitlines()[:40]
        fig = Figure(figsize=(7.5, 0.18 * len(lines) + 1.0))
        fig.text(0.02, 0.97, plain(title), fontsize=10, va="top", weight="bold")
        fig.text(
            0.02,
            0.9,
            plain("\n".join(line[:110] for line in lines)),
            fontsize=7,
            va="top",
            family="monospace",
        )
        fig.text(0.02, 0.01, plain(footer), fontsize=7, color="#555555")
        return fig
    widest = max(len(g.nodes) for g in graphs)
    fig = Figure(figsize=(max(4.0, 1.25 * widest + 1.0), 2.0 * len(graphs) + 0.7))
    axes = fig.subplots(len(graphs), 1, squeeze=False)[:, 0]
    palette: dict = {}
    for ax, g in zip(axes, graphs):
        draw_graph(ax, g, palette)
    fig.suptitle(plain(title), fontsize=10, x=0.02, ha="left")
    fig.text(0.02, 0.01, plain(footer), fontsize=7, color="#555555")
    h = fig.get_figheight()  # fixed margins: tight_layout would draw the figure once more
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.65 / h, bottom=0.3 / h, hspace=0.25)
    return fig
