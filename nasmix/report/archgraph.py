"""Architectures as labelled graphs for drawing (nodes, and edges labelled with ops).

A space may define `graph(arch)` returning its cells as graphs: a list of
`{"name": str, "nodes": [node, ...], "edges": [(src, dst, op), ...]}` (a
single dict is one graph). Spaces without it are read from their
`describe()` text, which the built-in spaces write in a few regular forms
(`(normal-edge(0,2)): op`, `edge 0->1: op`, `layer 0: op`, `m0: 1 <- 0:op`),
and failing that from choices named like edges (`motif0 0->1`). An arch
none of these fit gets no graph: the report prints its text instead.

Example:
    >>> g = graphs_from_describe("nb201 architecture\\n  edge 0->1: nor_conv_3x3\\n  edge 0->2: none")
    >>> g[0].edges
    (('0', '1', 'nor_conv_3x3'),)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Ops that mean "no edge": they are left out of the drawing.
NO_EDGE = ("none", "zero", "x")

_PAREN_EDGE = re.compile(r"\((?P<g>[\w.-]+?)-edge\((?P<a>\w+),\s*(?P<b>\w+)\)\):\s*(?P<op>\S+)")
_ARROW_EDGE = re.compile(r"^\s*(?:(?P<g>[\w.]+)\s+)?edge\s+(?P<a>\w+)\s*->\s*(?P<b>\w+):\s*(?P<op>\S+)\s*$")
_LAYER = re.compile(r"^\s*layer\s+(?P<i>\d+):\s*(?P<op>.+?)\s*$")
_INPUTS = re.compile(r"^\s*(?P<g>[\w.]+):\s*(?P<body>\w+\s*<-.*)$")
_CHOICE_EDGE = re.compile(r"^(?P<g>.*?)\s*(?:edge\s*)?\(?(?P<a>\d+)\s*(?:,|->)\s*(?P<b>\d+)\)?$")


@dataclass(frozen=True)
class ArchGraph:
    """One graph of an arch (a cell, a motif, the whole network)."""

    name: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str, str], ...]


def _node_order(node: str):
    """Inputs first, then numbered nodes in number order, then other names."""
    if node.lower() in ("in", "input"):
        return (0, 0, node)
    return (1, int(node), "") if node.isdigit() else (2, 0, node)


def _build(groups: dict[str, list[tuple[str, str, str]]]) -> list[ArchGraph]:
    out = []
    for name, edges in groups.items():
        nodes = sorted({n for a, b, _ in edges for n in (a, b)}, key=_node_order)
        kept = tuple((a, b, op) for a, b, op in edges if op.lower() not in NO_EDGE)
        out.append(ArchGraph(name, tuple(nodes), kept))
    return out


def graphs_from_describe(text: str) -> list[ArchGraph]:
    """The graphs a space's describe() text spells out; [] when it spells none.

    Args:
        text: the describe() text.

    Returns:
        One ArchGraph per group (cell, motif...), in the order met.
    """
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for line in text.splitlines():
        for pat in (_PAREN_EDGE, _ARROW_EDGE):
            m = pat.search(line)
            if m:
                groups.setdefault(m.group("g") or "cell", []).append(
                    (m.group("a"), m.group("b"), m.group("op"))
                )
                break
        else:
            m = _LAYER.match(line)
            if m:
                i = int(m.group("i"))
                op = m.group("op").replace(" channels", " ch")
                groups.setdefault("network", []).append((str(i), str(i + 1), op))
                continue
            m = _INPUTS.match(line)
            if m:
                edges = groups.setdefault(m.group("g"), [])
                for part in m.group("body").split("|"):
                    node, _, inputs = part.partition("<-")
                    for item in inputs.split(","):
                        src, sep, op = item.strip().partition(":")
                        # a node without inputs ("zero") still belongs in the drawing: a dropped self-edge
                        edges.append(
                            (src.strip(), node.strip(), op.strip())
                            if sep
                            else (node.strip(),) * 2 + ("none",)
                        )
    for name, edges in groups.items():
        if name == "network":  # the input is node 0; number layers from 1
            groups[name] = [("in" if a == "0" else a, b, op) for a, b, op in edges]
    return _build(groups)


def graphs_from_choices(names: Sequence[str], values: Sequence[str]) -> list[ArchGraph]:
    """Graphs from choices named like edges ("motif0 0->1", "normal edge (1,3)") and their options.

    Args:
        names: the choice names.
        values: the chosen option of each.

    Returns:
        The graphs, or [] when no choice name looks like an edge.
    """
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for name, value in zip(names, values):
        m = _CHOICE_EDGE.match(name.strip())
        if m:
            groups.setdefault(m.group("g").strip() or "cell", []).append((m.group("a"), m.group("b"), value))
    return _build(groups)


def _from_convention(raw) -> list[ArchGraph]:
    items = [raw] if isinstance(raw, dict) else list(raw)
    out = []
    for i, g in enumerate(items):
        edges = tuple((str(a), str(b), str(op)) for a, b, op in g["edges"])
        nodes = tuple(str(n) for n in g.get("nodes") or sorted({n for a, b, _ in edges for n in (a, b)}))
        out.append(ArchGraph(str(g.get("name", f"graph {i}")), nodes, edges))
    return out


def arch_graphs(space, arch) -> tuple[list[ArchGraph], str]:
    """An arch's graphs and where they came from.

    Args:
        space: the arch's SearchSpace (or any object with describe/choices).
        arch: the Arch.

    Returns:
        (graphs, source) with source "graph()", "describe()", "choices()" or
        "" (no graph: draw the text).
    """
    if callable(getattr(space, "graph", None)):
        return _from_convention(space.graph(arch)), "graph()"
    graphs = graphs_from_describe(space.describe(arch))
    if graphs:
        return graphs, "describe()"
    try:
        choices = space.choices()
        values = space.to_choices(arch)
        graphs = graphs_from_choices(
            [c.name for c in choices], [c.options[v] for c, v in zip(choices, values)]
        )
    except Exception:  # a space without categorical choices: no graph
        graphs = []
    return graphs, "choices()" if graphs else ""
