"""BANANAS's path encoding (White, Neiswanger and Savani, AAAI 2021, section 4) for cells
whose intermediate nodes all feed the output.

A path runs from one of a cell's inputs through edges to an intermediate node;
since the output concatenates (or combines) every intermediate node, each such
path reaches the output. A path is labelled by the ops along it, and the
encoding has one bit per (cell, input, labelling) that exists in the arch. A
`none` edge cuts the paths through it. The layout is NASLib's and naszilla's
DARTS path encoding (naslib/predictors/utils/encodings_darts.py
`get_path_indices`, naszilla `Cell301.get_path_indices`): blocks per cell,
then per input; within a block a path of ops o_0 o_1 ... (o_0 nearest the
input) has index sum_j n^j (o_j + 1) over the n path ops, which orders the
paths by length, shortest first. Here the index is one less (NASLib reserves
slot 0 of each block for the empty path, which never occurs), so the DARTS
encoding has 4 blocks of 7 + 49 + 343 + 2401 = 2,800 bits, 11,200 in all.

Truncation (the paper's section 4 and naszilla's `trunc_path`): the number of
paths grows exponentially with their length while long paths are rare, so the
encoding can keep the short paths only; `max_length` drops the longer ones,
block by block (naszilla's cutoff keeps a prefix of the whole vector instead,
which for DARTS covers the first block only).

Example:
    >>> edges = [(0, 2, "a"), (1, 2, "b"), (2, 3, "a")]  # inputs 0, 1; nodes 2, 3
    >>> sorted(cell_paths(edges, inputs=2))
    [(0, ('a',)), (0, ('a', 'a')), (1, ('b',)), (1, ('b', 'a'))]
    >>> encode_paths([edges], inputs=2, ops=("a", "b"), max_length=2).nonzero()[0].tolist()
    [0, 2, 7, 9]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CellEdges = Sequence[tuple[int, int, str]]


def cell_paths(edges: CellEdges, inputs: int) -> list[tuple[int, tuple[str, ...]]]:
    """Every path from an input to an intermediate node, as (input, ops along it).

    Args:
        edges: (source, target, op) per edge; nodes 0..inputs-1 are the inputs, the
            others intermediate; `none` edges are skipped.
        inputs: the number of input nodes.

    Returns:
        One entry per path (a labelling reached along two routes appears twice).
    """
    into: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
    out = []
    for source, target, op in sorted(edges, key=lambda e: (e[1], e[0])):
        if op == "none":
            continue
        new: list[tuple[int, tuple[str, ...]]]
        if source < inputs:
            new = [(source, (op,))]
        else:
            new = [(i, path + (op,)) for i, path in into.get(source, [])]
        into.setdefault(target, []).extend(new)
        out += new
    return out


def block_size(ops: int, max_length: int) -> int:
    """The bits of one (cell, input) block: labellings of length 1..max_length over `ops` ops."""
    return sum(ops**length for length in range(1, max_length + 1))


def path_index(path: Sequence[str], ops: Sequence[str]) -> int:
    """The index of a path within its block: sum_j n^j (o_j + 1) - 1, the op nearest the input first."""
    n = len(ops)
    return sum(n**j * (ops.index(op) + 1) for j, op in enumerate(path)) - 1


def encode_paths(cells: Sequence[CellEdges], inputs: int, ops: Sequence[str], max_length: int) -> np.ndarray:
    """The path encoding of an arch of several cells.

    Args:
        cells: each cell's edges, (source, target, op).
        inputs: input nodes per cell.
        ops: the ops that label paths (`none` excluded), in a fixed order.
        max_length: the longest path kept (shorter than the longest possible: truncation).

    Returns:
        A float32 vector of len(cells) * inputs * block_size(len(ops), max_length) bits.
    """
    block = block_size(len(ops), max_length)
    out = np.zeros(len(cells) * inputs * block, dtype=np.float32)
    for c, edges in enumerate(cells):
        for source, path in cell_paths(edges, inputs):
            if len(path) <= max_length:
                out[(c * inputs + source) * block + path_index(path, ops)] = 1.0
    return out
