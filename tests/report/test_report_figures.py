"""The figures as drawn: nothing overlaps (legends, data, texts, tick labels), time axes in readable
units, store text drawn literally. Checked on the layout each figure records when it is saved."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nasmix.report.aggregate import ParetoSet
from nasmix.report.figures import DPI, save
from nasmix.report.layout import figure_layout, overlaps
from nasmix.report.metrics import CellMetrics, Curve, Point
from nasmix.report.plots import cell_figure, grid_figure, time_unit
from nasmix.report.plots_summary import pareto_figure


def drawn(fig: Figure, tmp_path=None, name: str = "f") -> dict:
    """The figure's layout as `figures.save` records it, drawn once (no files: faster)."""
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return figure_layout(fig, canvas.get_renderer())


def ticks(layout: dict, kind: str = "xtick") -> list[str]:
    return [t["text"] for t in layout["texts"] if t["kind"] == kind]


def cell(**kw) -> CellMetrics:
    """A CellMetrics with the given fields, the rest empty."""
    base = {f.name: None for f in dataclasses.fields(CellMetrics) if f.default is dataclasses.MISSING}
    base.update(
        id="i",
        label="l",
        space="s",
        strategy="t",
        estimator="e",
        dataset="d",
        seed=0,
        method="t",
        state="finished",
        cost_basis="wall",
        target=0.9,
        devices=("cpu",),
        epochs_done=0,
        eval_h=0.0,
        runtime_h=0.0,
    )
    return CellMetrics(**{**base, **kw})


def curve(seconds: float, top1=(0.2, 0.3, 0.35), projected: float | None = None) -> Curve:
    """A search of a third of `seconds`, then checkpoints evenly to the end, the last one final."""
    h = seconds / 3600
    n = len(top1)
    pts = tuple(
        Point(h / 3 + 2 * h / 3 * (i + 1) / n, t, min(1.0, t + 0.3), i + 1) for i, t in enumerate(top1)
    )
    search = tuple((h / 3 * (i + 1) / 4, 0.1 + 0.05 * i) for i in range(4))
    return Curve(
        search,
        "search: supernet validation top-1",
        h / 3,
        None,
        pts,
        pts[-1],
        h,
        None if projected is None else projected / 3600,
    )


def test_every_figure_of_the_fixture_report_is_free_of_overlaps(rendered):
    out, files, _ = rendered
    layouts = json.loads(files["layout"].read_text())
    assert set(layouts) == {p.stem for p in (out / "figures").glob("*.png")}
    for name, layout in layouts.items():
        assert layout["texts"], name
        assert overlaps(layout) == [], name
    # the legends exist and were checked against data: the cell figures' one sits right of the axes
    for name, layout in layouts.items():
        if name.startswith("cell_"):
            (legend,) = layout["legends"]
            assert legend[0] > max(a["box"][2] for a in layout["axes"]), name


@pytest.mark.parametrize(
    ("seconds", "unit"),
    [(6, "seconds"), (42, "seconds"), (600, "minutes"), (5000, "minutes"), (30 * 3600, "hours")],
)
def test_time_axes_read_in_seconds_minutes_or_hours(tmp_path, seconds, unit):
    assert time_unit(seconds * 1.2 / 3600)[0] == unit
    layout = drawn(cell_figure(curve(seconds), None, title="a cell", devices=("cpu",)), tmp_path)
    labels = [t["text"] for t in layout["texts"]]
    assert f"runtime ({unit}, measured)" in labels
    xt = [t for t in ticks(layout) if t.strip()]
    assert len(xt) >= 3
    for t in xt:  # short plain numbers: no 1e-3, no x10^k multiplier, no offset
        assert "e" not in t and "times" not in t and "10^" not in t and len(t) <= 5, xt
    assert overlaps(layout) == []


def test_projected_and_failed_cells_draw_clear_of_their_data(tmp_path):
    layout = drawn(cell_figure(curve(3600, projected=9000), None, title="capped", devices=("cpu",)), tmp_path)
    assert "projected" in [t["text"] for t in layout["texts"]] and overlaps(layout) == []
    failed = cell(state="failed", peak_gpu_gb=15.9, reason="out of GPU memory", failed_in="search")
    low = Curve(((0.01, 0.3), (0.02, 0.35)), "search", None, None, (), None, 0.02, None)
    high = Curve(((0.01, 0.7), (0.02, 0.8)), "search", None, None, (), None, 0.02, None)
    for c in (low, high):
        layout = drawn(cell_figure(c, failed, devices=("cpu",)), tmp_path)
        assert any("FAILED" in t["text"] for t in layout["texts"]) and overlaps(layout) == []


def test_grid_figure_with_mixed_cells(tmp_path):
    panels = {
        ("darts", "gdas"): [(curve(40), cell(seed=0)), (curve(50, (0.25, 0.3, 0.32)), cell(seed=1))],
        ("darts", "drnas"): [(curve(90, projected=200), cell())],
        ("nb201", "gdas"): [(curve(20), cell())],
    }
    layout = drawn(
        grid_figure(panels, ["darts", "nb201"], ["gdas", "drnas"], title="t", devices=("cpu",)), tmp_path
    )
    # one unit for the figure, fit to its longest panel: 200 s projected
    assert any("measured runtime in minutes" in t["text"] for t in layout["texts"])
    assert layout["legends"] and overlaps(layout) == []


@pytest.mark.parametrize(
    "flops",
    [[1.2e8, 1.5e8, 1.9e8], [2.1e7, 2.6e7, 3.3e7, 4.4e7, 5.9e7], [3e6, 9e7, 4e8], [5e5, 5e9], [7e7, 7e7]],
    ids=["narrow", "decade", "two-decades", "four-decades", "one-value"],
)
def test_pareto_tick_labels_never_print_over_each_other(tmp_path, flops):
    labels = tuple(f"space{i} / strategy{i} / cifar10 / seed 0" for i in range(len(flops)))
    acc = [0.2 + 0.05 * i for i in range(len(flops))]
    costs = [f / 1e9 for f in flops]  # hours: the same spread as the FLOPs, from 1.8 s to 5 h
    sets = [
        ParetoSet("cost_h", labels, tuple(zip(costs, acc)), tuple(range(len(acc)))),
        ParetoSet("params", labels, tuple((f / 100, a) for f, a in zip(flops, acc)), (0,)),
        ParetoSet("flops", labels, tuple(zip(flops, acc)), tuple(range(len(flops)))),
    ]
    layout = drawn(pareto_figure(sets, "gpu", ("cpu",)), tmp_path)
    assert overlaps(layout) == []
    unit = time_unit(max(costs))[0]
    assert any(f"cost (GPU-{unit})" == t["text"] for t in layout["texts"])
    assert all(len(t) <= 6 for t in ticks(layout))  # engineering notation: 150M, 2.5G


def test_the_checks_catch_what_the_old_figures_did(tmp_path):
    """The overlap check fails on the faults issue 13 found: a legend on the curves, tick labels on
    each other, a label past the image's edge."""
    fig = Figure(figsize=(6, 3.9))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [10, 50, 90], "o-", label="top-1 (checkpoints)")
    ax.plot([0, 2], [5, 5], label="search")
    ax.legend(loc="lower right")  # the old cell figures' place: on the search line
    assert any("a legend covers" in o for o in overlaps(drawn(fig, tmp_path, "legend")))
    fig = Figure(figsize=(12.6, 3.8))
    ax = fig.subplots(1, 3)[2]
    ax.scatter([1.2e8, 1.5e8, 1.9e8], [1, 2, 3])
    ax.set_xscale("log")  # the old Pareto panel: matplotlib labels every minor tick of a narrow range
    assert any("overlap" in o for o in overlaps(drawn(fig, tmp_path, "ticks")))
    fig = Figure(figsize=(4, 3))
    fig.add_subplot().annotate("nb201 / gdas / seed 0", (1, 1), xytext=(3, 3), textcoords="offset points")
    assert any("cut off" in o for o in overlaps(drawn(fig, tmp_path, "edge")))


def test_store_text_is_drawn_literally(tmp_path):
    hostile = "$x$ </text><script>alert(1)</script> & \\bad"
    c = curve(42)
    fig = cell_figure(c, None, title=f"space {hostile}", devices=(hostile,))
    layout = save(fig, tmp_path, "hostile", "test", "hostile").layout
    assert overlaps(layout) == []
    svg = (tmp_path / "hostile.svg").read_text()
    root = ET.fromstring(svg)  # well-formed, and the script is text, not an element
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert "&lt;script&gt;" in svg and "$x$" in svg


def test_a_cell_with_nothing_measured_has_no_time_axis(tmp_path):
    empty = Curve((), None, None, None, (), None, 0.0, None)
    layout = drawn(cell_figure(empty, cell(state="pending"), devices=()))
    assert ticks(layout) == [] and "nothing measured yet" in [t["text"] for t in layout["texts"]]
    panels = {("darts", "gdas"): [(curve(40), cell())], ("darts", "drnas"): [(empty, cell(state="pending"))]}
    layout = drawn(grid_figure(panels, ["darts"], ["gdas", "drnas"], devices=("cpu",)))
    assert all("e-" not in t for t in ticks(layout)) and overlaps(layout) == []
