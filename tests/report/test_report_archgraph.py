"""Architectures as graphs: the built-in spaces' describe() texts, the graph() convention, the text
fallback."""

from __future__ import annotations

import numpy as np
import pytest

from nasmix.report.archgraph import (
    ArchGraph,
    arch_graphs,
    graphs_from_choices,
    graphs_from_describe,
)
from nasmix.report.plots_arch import arch_figure
from nasmix.spaces.base import get_space


@pytest.mark.parametrize(
    ("space", "groups"),
    [
        ("nb201", ["cell"]),
        ("darts", ["normal", "reduce"]),
        ("simple_cell", ["normal_cell", "reduction_cell"]),
        ("hierarchical", ["m0", "m1", "m2", "m3", "m4", "m5", "cell"]),
        ("chain", ["network"]),
    ],
)
def test_builtin_spaces_draw_as_graphs(space, groups):
    s = get_space(space)
    arch = s.sample(np.random.default_rng(0))
    graphs, source = arch_graphs(s, arch)
    assert source == "describe()" and [g.name for g in graphs] == groups
    for g in graphs:
        assert all(a in g.nodes and b in g.nodes for a, b, _ in g.edges)
        assert all(op.lower() not in ("none", "zero", "x") for _, _, op in g.edges)


def test_darts_edges_match_the_genotype():
    s = get_space("darts")
    arch = s.sample(np.random.default_rng(1))
    normal = arch_graphs(s, arch)[0][0]
    payload = arch.to_str().split("normal=")[1].split(";")[0]
    expected = []
    for node, pair in enumerate(payload.split("|"), start=2):
        for item in pair.split("+"):
            op, src = item.split("~")
            expected.append((src, str(node), op))
    assert sorted(normal.edges) == sorted(e for e in expected if e[2] != "none")


def test_graph_convention_and_fallbacks():
    class WithGraph:
        def graph(self, arch):
            return {"name": "cell", "edges": [(0, 1, "conv"), (1, 2, "pool")]}

    graphs, source = arch_graphs(WithGraph(), None)
    assert source == "graph()" and graphs == [
        ArchGraph("cell", ("0", "1", "2"), (("0", "1", "conv"), ("1", "2", "pool")))
    ]

    class TextOnly:
        def describe(self, arch):
            return "a network\n  width: 64"

        def choices(self):
            raise NotImplementedError

    assert arch_graphs(TextOnly(), None) == ([], "")
    g = graphs_from_choices(["motif0 0->1", "motif0 1->2", "depth"], ["conv", "none", "3"])
    assert g == [ArchGraph("motif0", ("0", "1", "2"), (("0", "1", "conv"),))]
    assert graphs_from_describe("  layer 0: conv3x3, 16 channels")[0].edges == (
        ("in", "1", "conv3x3, 16 ch"),
    )
    fig = arch_figure([], "text only", text="a network\n  width: 64")
    assert fig.texts  # drawn as text
