"""Mutations and neighbourhoods change one op or one input, in every space, as NASLib's do.

In the DARTS space an arch keeps two (op, input) edges per node, and NASLib's
mutation (naslib/search_spaces/darts/graph.py `mutate`, naszilla's `Cell301.mutate`)
changes the op or the input of one of them; in the other spaces every choice is
one edge's op (nb201, simple_cell, hierarchical) or one layer's op or width (chain).
"""

from __future__ import annotations

import numpy as np
import pytest

from nasmix import registry
from nasmix.arch import Arch
from nasmix.spaces.base import SearchSpace
from nasmix.spaces.darts import DARTS_V2


def _one_change(space: SearchSpace, parent: Arch, child: Arch) -> bool:
    """Whether child differs from parent in exactly one op or one input (one choice elsewhere)."""
    if space.registry_name != "darts":
        before, after = np.array(space.to_choices(parent)), np.array(space.to_choices(child))
        return int(np.count_nonzero(before != after)) == 1
    diffs = [(a, b) for pc, cc in zip(parent.genotype, child.genotype) for a, b in zip(pc, cc) if a != b]
    if len(diffs) != 1:  # one node of one cell
        return False
    before, after = diffs[0]
    gone, new = set(before) - set(after), set(after) - set(before)
    if len(gone) != 1 or len(new) != 1:  # one of its two edges
        return False
    (op_a, in_a), (op_b, in_b) = gone.pop(), new.pop()
    return (op_a != op_b) + (in_a != in_b) == 1  # its op or its input, not both


def _spaces() -> list[tuple[str, dict]]:
    out = [(name, {}) for name in registry.names("space")]
    return out + [("hierarchical", {"variant": "light"}), ("hierarchical", {"variant": "paper"})]


@pytest.mark.parametrize(("name", "cfg"), _spaces(), ids=lambda v: v if isinstance(v, str) else str(v))
def test_mutation_changes_one_op_or_one_input(name, cfg):
    space = registry.create("space", name, **cfg)
    rng = np.random.default_rng(0)
    for _ in range(4):
        parent = space.sample(rng)
        nbrs = set(space.neighbors(parent))
        assert parent not in nbrs and all(_one_change(space, parent, n) for n in nbrs)
        for _ in range(25):
            child = space.mutate(parent, rng)
            assert _one_change(space, parent, child), (parent.to_str(), child.to_str())
            assert child in nbrs  # neighbors() is the set of all mutations


def _inputs(arch: Arch) -> list[list[set[int]]]:
    return [[{i for _, i in node} for node in cell] for cell in arch.genotype]


def test_darts_moves_are_naslibs():
    """A DARTS arch has 16 edges: 6 other ops each, and 0, 1, 2, 3 free inputs per edge of nodes 2..5."""
    space = registry.create("space", "darts")
    parent = space.parse(DARTS_V2)
    nbrs = space.neighbors(parent)
    assert len(nbrs) == len(set(nbrs)) == 2 * (8 * 6 + 2 * (0 + 1 + 2 + 3))
    rng = np.random.default_rng(1)
    moved_input = sum(_inputs(space.mutate(parent, rng)) != _inputs(parent) for _ in range(400))
    # an input moves on half of the draws that hit nodes 3..5 (3/4 of the edges): 3/8 of the mutations
    assert 0.3 < moved_input / 400 < 0.45
