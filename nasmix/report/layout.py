"""Where a drawn figure put its legends, data and texts, and what overlaps what.

`figure_layout` reads a figure right after it was rendered (the same
rendering that becomes its PNG) and returns plain boxes, points and segments
in the PNG's pixels, origin top left, as a browser places them. `overlaps`
checks them: no legend on data or on a text, no two texts on each other, no
data label on the data of its axes, and no text cut off by the image's edge.
A report writes every figure's layout to figures/layout.json, so tests (the
browser test among them) can check each figure as drawn.

Example:
    >>> from matplotlib.backends.backend_agg import FigureCanvasAgg
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(3, 2), dpi=50)
    >>> ax = fig.add_subplot()
    >>> _ = ax.plot([0, 1], [0, 1], label="line")
    >>> _ = ax.legend(loc="upper left")  # on the line's empty side
    >>> canvas = FigureCanvasAgg(fig)
    >>> canvas.draw()
    >>> overlaps(figure_layout(fig, canvas.get_renderer()))
    []
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import cbook
from matplotlib.container import BarContainer
from matplotlib.text import Text

_NO_LINE = (None, "None", "none", "", " ")
TOLERANCE = 1.0  # pixels two boxes may share (anti-aliased edges touch)


def on_data(text: Text) -> Text:
    """Mark a text as meant to sit on its data (an arc's op, a node's name): `overlaps` lets it."""
    text.nasmix_on_data = True  # type: ignore[attr-defined]  # a mark of our own on matplotlib's Text
    return text


def _box(bb, height: float) -> list[float]:
    """A matplotlib display Bbox as [x0, y0, x1, y1] with y measured down from the top."""
    return [
        round(float(bb.x0), 1),
        round(height - float(bb.y1), 1),
        round(float(bb.x1), 1),
        round(height - float(bb.y0), 1),
    ]


def _text_box(t: Text, renderer, height: float) -> list[float] | None:
    if not t.get_visible() or not t.get_text().strip():
        return None
    bb = t.get_window_extent(renderer)
    patch = t.get_bbox_patch()
    if patch is not None:
        bb = type(bb).union([bb, patch.get_window_extent(renderer)])
    return _box(bb, height)


def _tick_labels(axis) -> list[Text]:
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if tick.label1.get_visible() and lo - span <= tick.get_loc() <= hi + span:
            out.append(tick.label1)
    return out


def clip_segment(seg: Sequence[float], box: Sequence[float]) -> list[float] | None:
    """The part of a segment inside a box (Liang-Barsky); None when it misses the box."""
    x0, y0, x1, y1 = seg
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - box[0]), (dx, box[2] - x0), (-dy, y0 - box[1]), (dy, box[3] - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        r = q / p
        if p < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
        if t0 > t1:
            return None
    return [x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy]


def _line_data(line, height: float, clip: list[float], dpi: float) -> tuple[list, list]:
    xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) == 0:
        return [], []
    xy[:, 1] = height - xy[:, 1]
    points = []
    if line.get_marker() not in _NO_LINE:
        r = line.get_markersize() * dpi / 72 / 2
        points = [[round(x, 1), round(y, 1), round(r, 1)] for x, y in xy if _inside(x, y, clip)]
    segments = []
    if line.get_linestyle() not in _NO_LINE and len(xy) > 1:
        step = cbook.STEP_LOOKUP_MAP.get(line.get_drawstyle())
        if step is not None and line.get_drawstyle() != "default":
            xs, ys = step(xy[:, 0], xy[:, 1])
            xy = np.column_stack([xs, ys])
        for a, b in itertools.pairwise(xy):
            s = clip_segment([a[0], a[1], b[0], b[1]], clip)
            if s is not None:
                segments.append([round(v, 1) for v in s])
    return points, segments


def _inside(x: float, y: float, box: Sequence[float]) -> bool:
    return box[0] - 0.5 <= x <= box[2] + 0.5 and box[1] - 0.5 <= y <= box[3] + 0.5


def figure_layout(fig, renderer) -> dict:
    """The legends, data and texts of a rendered figure, in PNG pixels (origin top left).

    Args:
        fig: a matplotlib Figure, drawn with `renderer` (at the PNG's dpi).
        renderer: the renderer of that drawing.

    Returns:
        {"width", "height", "axes": [{"box", "points": [[x, y, r]], "segments": [[x0, y0, x1, y1]],
        "bars": [box]}], "legends": [box], "texts": [{"kind", "text", "box", "axes"}]}, where "axes" of a
        text is the index of the axes whose data it labels (None: not a data label).
    """
    width, height = (float(v) for v in fig.canvas.get_width_height())
    dpi = fig.dpi
    out: dict = {"width": width, "height": height, "axes": [], "legends": [], "texts": []}

    def add_text(t: Text, kind: str, axes: int | None = None) -> None:
        box = _text_box(t, renderer, height)
        if box is not None:
            out["texts"].append({"kind": kind, "text": t.get_text(), "box": box, "axes": axes})

    for ax in fig.axes:
        if not ax.get_visible():
            continue
        clip = _box(ax.get_window_extent(renderer), height)
        entry: dict = {"box": clip, "points": [], "segments": [], "bars": []}
        for line in ax.get_lines():
            if line.get_visible():
                pts, segs = _line_data(line, height, clip, dpi)
                entry["points"] += pts
                entry["segments"] += segs
        for coll in ax.collections:
            if not coll.get_visible():
                continue
            if hasattr(coll, "get_segments"):  # error bars and other line collections
                for seg in coll.get_segments():
                    xy = coll.get_transform().transform(np.asarray(seg, dtype=float))
                    for a, b in itertools.pairwise(xy):
                        s = clip_segment([a[0], height - a[1], b[0], height - b[1]], clip)
                        if s is not None:
                            entry["segments"].append([round(v, 1) for v in s])
            elif len(coll.get_offsets()):  # scatter points
                xy = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
                sizes = coll.get_sizes()
                for k, (x, y) in enumerate(xy):
                    r = math.sqrt(sizes[k % len(sizes)] if len(sizes) else 36.0) * dpi / 72 / 2
                    if _inside(x, height - y, clip):
                        entry["points"].append([round(x, 1), round(height - y, 1), round(r, 1)])
        for container in ax.containers:
            if isinstance(container, BarContainer):
                entry["bars"] += [_box(p.get_window_extent(renderer), height) for p in container.patches]
        out["axes"].append(entry)
        for t in ax.texts:  # a text drawn on its data on purpose (a node's name in its circle) says so
            add_text(t, "note", None if getattr(t, "nasmix_on_data", False) else len(out["axes"]) - 1)
        for t in (ax.title, ax._left_title, ax._right_title):
            add_text(t, "title")
        if ax.axison:
            for axis, kind in ((ax.xaxis, "xtick"), (ax.yaxis, "ytick")):
                for t in _tick_labels(axis):
                    add_text(t, kind)
                add_text(axis.get_label(), "axis label")
                add_text(axis.get_offset_text(), "offset")  # a "1e-3" multiplier: it should stay empty
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            out["legends"].append(_box(legend.get_window_extent(renderer), height))
    for legend in fig.legends:
        out["legends"].append(_box(legend.get_window_extent(renderer), height))
    for t in dict.fromkeys(fig.texts + ([fig._suptitle] if fig._suptitle is not None else [])):
        add_text(t, "figure")
    return out


def hit(a: Sequence[float], b: Sequence[float], tol: float = TOLERANCE) -> bool:
    """Whether two boxes [x0, y0, x1, y1] share more than `tol` pixels each way."""
    return min(a[2], b[2]) - max(a[0], b[0]) > tol and min(a[3], b[3]) - max(a[1], b[1]) > tol


def hit_point(box: Sequence[float], p: Sequence[float]) -> bool:
    """Whether a box and a marker [x, y, radius] overlap."""
    dx = max(box[0] - p[0], 0.0, p[0] - box[2])
    dy = max(box[1] - p[1], 0.0, p[1] - box[3])
    return math.hypot(dx, dy) < p[2] - TOLERANCE / 2


def hit_segment(box: Sequence[float], s: Sequence[float]) -> bool:
    """Whether a segment [x0, y0, x1, y1] crosses a box (its outer pixel of tolerance aside)."""
    shrunk = [box[0] + TOLERANCE, box[1] + TOLERANCE, box[2] - TOLERANCE, box[3] - TOLERANCE]
    return shrunk[0] < shrunk[2] and shrunk[1] < shrunk[3] and clip_segment(s, shrunk) is not None


def _data_hits(box: Sequence[float], axes: dict) -> str | None:
    for p in axes["points"]:
        if hit_point(box, p):
            return f"the point at ({p[0]:.0f}, {p[1]:.0f})"
    for s in axes["segments"]:
        if hit_segment(box, s):
            return f"the line from ({s[0]:.0f}, {s[1]:.0f}) to ({s[2]:.0f}, {s[3]:.0f})"
    for b in axes["bars"]:
        if hit(box, b):
            return "a bar"
    return None


def overlaps(layout: dict) -> list[str]:
    """Every overlap in a figure's layout, in words; empty when nothing overlaps.

    Checked: each legend against every axes' data and every text; each pair of
    texts; each data label (a "note") against its axes' data; each text
    against the image's edges.

    Example:
        >>> overlaps({"width": 10, "height": 10, "axes": [], "legends": [],
        ...           "texts": [{"kind": "figure", "text": "a", "box": [8, 0, 14, 4], "axes": None}]})
        ["text 'a' is cut off by the image's edge"]
    """
    found = []
    texts = layout["texts"]
    for lg in layout["legends"]:
        for ax in layout["axes"]:
            what = _data_hits(lg, ax)
            if what:
                found.append(f"a legend covers {what}")
        found += [f"a legend covers the text {t['text']!r}" for t in texts if hit(lg, t["box"])]
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            if hit(a["box"], b["box"]):
                found.append(f"texts {a['text']!r} and {b['text']!r} overlap")
        if a["axes"] is not None:
            what = _data_hits(a["box"], layout["axes"][a["axes"]])
            if what:
                found.append(f"the label {a['text']!r} covers {what}")
        x0, y0, x1, y1 = a["box"]
        if (
            x0 < -TOLERANCE
            or y0 < -TOLERANCE
            or x1 > layout["width"] + TOLERANCE
            or y1 > layout["height"] + TOLERANCE
        ):
            found.append(f"text {a['text']!r} is cut off by the image's edge")
    return found
