"""Pieces shared by the cell spaces (darts, simple_cell): the arch-string
grammar, node sums over mixed edges, drop-path and option checks.

Arch-string grammar (both spaces): cells are separated by `;`, each written
`name=node|node|...`; a node lists its incoming edges joined by `+`, each
edge written `op~input`, where `input` is the number of the node the edge
comes from (the NAS-Bench-201 `op~input` notation). `+` reads "summed", `|`
"next node".

Example:
    >>> text = "normal=sep_conv_3x3~0+skip_connect~1;reduce=max_pool_3x3~0+max_pool_3x3~1"
    >>> cells = parse_cells(text, ("normal", "reduce"), ("sep_conv_3x3", "skip_connect", "max_pool_3x3"))
    >>> cells["normal"]
    [[('sep_conv_3x3', 0), ('skip_connect', 1)]]
    >>> format_cells([(name, cells[name]) for name in ("normal", "reduce")]) == text
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from nasmix.errors import ConfigError
from nasmix.spaces.supernet import EdgeContext, MixedEdge

Term = tuple[str, int]
_TERM = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")


def format_cells(cells: Sequence[tuple[str, Sequence[Sequence[Term]]]]) -> str:
    """The arch string of named cells, each a list of nodes of (op, input) terms.

    Args:
        cells: (name, nodes) pairs, written in the order given.

    Returns:
        e.g. `normal=a~0+b~1|c~0+d~2;reduce=...`.
    """
    return ";".join(
        f"{name}=" + "|".join("+".join(f"{op}~{i}" for op, i in node) for node in nodes)
        for name, nodes in cells
    )


def parse_cells(text: str, names: Sequence[str], ops: Sequence[str]) -> dict[str, list[list[Term]]]:
    """Split an arch string into its cells, nodes and (op, input) terms.

    Only the grammar is checked here (every cell named once, known ops,
    integer inputs); each space checks its own topology.

    Args:
        text: the payload; whitespace is ignored.
        names: the cell names the space expects, each exactly once.
        ops: the valid op names.

    Returns:
        cell name -> nodes, each node a list of (op, input) in the written order.

    Raises:
        ConfigError: with what is wrong and what is valid.
    """
    text = "".join(str(text).split())
    if not text:
        raise ConfigError(f"empty arch string; expected {_shape(names)}")
    cells: dict[str, list[list[Term]]] = {}
    for part in text.split(";"):
        name, eq, body = part.partition("=")
        if not eq or name not in names:
            raise ConfigError(f"bad cell {part!r}: expected {_shape(names)}")
        if name in cells:
            raise ConfigError(f"cell {name!r} is given twice")
        nodes = []
        for node in body.split("|"):
            terms = []
            for term in node.split("+"):
                match = _TERM.match(term)
                if match is None:
                    raise ConfigError(
                        f"bad edge {term!r} in cell {name!r}: expected op~input, e.g. sep_conv_3x3~0"
                    )
                if match.group(1) not in ops:
                    raise ConfigError(
                        f"unknown op {match.group(1)!r} in cell {name!r}; valid: {', '.join(ops)}"
                    )
                terms.append((match.group(1), int(match.group(2))))
            nodes.append(terms)
        cells[name] = nodes
    missing = [n for n in names if n not in cells]
    if missing:
        raise ConfigError(f"arch string lacks cell(s) {', '.join(missing)}; expected {_shape(names)}")
    return cells


def _shape(names: Sequence[str]) -> str:
    return ";".join(f"{n}=op~input+op~input|..." for n in names)


def node_sum(
    ctx: EdgeContext, group: str, terms: Sequence[tuple[int, nn.Module, torch.Tensor]]
) -> torch.Tensor:
    """The sum of the mixed edges entering one node.

    Edges that `ctx.active` switches off (an empty op list) are not called at
    all, so running one discrete arch costs only its own edges; a node whose
    edges are all off still gets its zeros from one of them.

    Args:
        ctx: the arch weights of this forward call.
        group: the weight group of the cell ("normal" or "reduce").
        terms: (edge index, mixed edge, input tensor) per incoming edge.
    """
    live = terms
    if ctx.active is not None:
        rows = ctx.active[group]
        live = [t for t in terms if (row := rows[t[0]]) is None or len(row) > 0] or list(terms[:1])
    out: torch.Tensor | None = None
    for index, module, x in live:
        # the edges come from an nn.ModuleList, whose entries are typed nn.Module
        y = ctx.edge(group, index, cast(MixedEdge, module), x)
        out = y if out is None else out + y
    assert out is not None, "a node has at least one incoming edge"
    return out


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples with probability `prob` and rescale the rest
    (DARTS's drop_path, out of place so autograd and torch.compile stay safe)."""
    if prob <= 0.0:
        return x
    keep = 1.0 - prob
    mask = torch.empty((x.shape[0], 1, 1, 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * (mask / keep)


def check_partial(partial: int, channels: Sequence[int], space: str) -> int:
    """`partial` (PC-DARTS's K) if it divides every mixed edge's channels, else a ConfigError."""
    if not isinstance(partial, int) or partial < 1 or any(c % partial for c in channels):
        raise ConfigError(
            f"space {space!r}: partial channels K={partial!r} must be a positive integer "
            f"dividing the edge channels {sorted(set(channels))}"
        )
    return partial


def check_weights(weights, shapes: dict[str, tuple[int, int]], space: str) -> dict[str, torch.Tensor]:
    """The weight groups as detached CPU float tensors, checked against their shapes."""
    out = {}
    for group, shape in shapes.items():
        if group not in weights:
            raise ConfigError(
                f"space {space!r}: arch weights lack group {group!r}; expected {sorted(shapes)}"
            )
        w = torch.as_tensor(weights[group]).detach().float().cpu()
        if tuple(w.shape) != tuple(shape):
            raise ConfigError(
                f"space {space!r}: weights of group {group!r} have shape {tuple(w.shape)}, expected {shape}"
            )
        out[group] = w
    return out
