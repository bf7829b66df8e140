"""BANANAS's path encoding (White et al. 2021) in NASLib's layout: darts and simple_cell, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.spaces.darts import DARTS_V2
from nasmix.spaces.paths import block_size, cell_paths, path_index
from nasmix.spaces.simple_cell import SEED

# NASLib's encodings_darts.OPS, in its order
DARTS_OPS7 = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5")
DARTS_OPS7 += ("dil_conv_3x3", "dil_conv_5x5")


def test_index_is_naslibs_minus_the_empty_path():
    # NASLib: index = sum_j 7^j (o_j + 1), blocks of 1 + 7 + ... + 7^4 = 2801 slots (slot 0: empty path)
    assert path_index(("sep_conv_3x3",), DARTS_OPS7) == 4 - 1
    assert path_index(("sep_conv_3x3", "dil_conv_3x3"), DARTS_OPS7) == (3 + 1) + 7 * (5 + 1) - 1
    assert block_size(7, 4) == 2801 - 1 and block_size(7, 3) == 400 - 1


def test_darts_v2_paths_by_hand():
    """DARTS V2 normal cell: input 0 reaches sep3 (nodes 2, 3), skip (4, 5) and sep3 -> dil3 (2 -> 5);
    input 1 reaches sep3 and sep3 -> dil3. Reduction cell: max and max -> skip from both inputs."""
    space = registry.create("space", "darts")
    arch = space.parse(DARTS_V2)
    normal0, normal1 = [2, 3, 45], [3, 45]  # skip, sep3, (sep3, dil3) = 4 + 7 * 6 - 1
    reduce = [0, 21]  # max, (max, skip) = 1 + 7 * 3 - 1
    full = space.encode(arch, "path")
    expected = normal0 + [2800 + i for i in normal1] + [5600 + i for i in reduce] + [8400 + i for i in reduce]
    assert len(full) == 4 * 2800 and np.flatnonzero(full).tolist() == expected
    trunc = space.encode(arch, "trunc_path")  # paths of at most 3 ops: 4 blocks of 399
    expected = normal0 + [399 + i for i in normal1] + [798 + i for i in reduce] + [1197 + i for i in reduce]
    assert len(trunc) == 4 * 399 and np.flatnonzero(trunc).tolist() == expected
    assert len(space.encode(arch)) == 152  # one-hot unchanged


def test_simple_cell_paths_by_hand():
    """The seed's cell: normal input 1 -> max (node 3), dil (node 4), max -> skip (3 -> 4); input 2 -> sep,
    dil, sep -> skip. Reduction: node 3 has only `none` inputs, so only input 1 -> dil and input 2 -> sep."""
    space = registry.create("space", "simple_cell")
    enc = space.encode(space.parse(SEED), "path")  # ops skip, max, sep, dil; blocks of 4 + 16
    assert len(enc) == 80 and np.flatnonzero(enc).tolist() == [1, 3, 5, 22, 23, 26, 43, 62]
    assert np.array_equal(space.encode(space.parse(SEED), "trunc_path"), enc)


def test_paths_follow_routes_and_none_cuts():
    edges = [(0, 2, "a"), (1, 2, "none"), (2, 3, "b"), (0, 3, "b")]
    assert sorted(cell_paths(edges, 2)) == [(0, ("a",)), (0, ("a", "b")), (0, ("b",))]


def test_long_paths_are_rare_in_random_darts_archs():
    """What truncation drops: paths of 4 ops are a few percent of a random arch's paths."""
    space = registry.create("space", "darts")
    rng = np.random.default_rng(0)
    lengths = []
    for _ in range(300):
        for nodes in space.sample(rng).genotype:
            edges = [(i, n + 2, op) for n, node in enumerate(nodes) for op, i in node]
            lengths += [len(p) for _, p in cell_paths(edges, 2)]
    assert 0.01 < np.mean(np.array(lengths) == 4) < 0.04


def test_unknown_encoding_and_fallbacks():
    for name in ("chain", "hierarchical"):  # no path encoding: one-hot
        space = registry.create("space", name)
        arch = space.sample(np.random.default_rng(0))
        assert np.array_equal(space.encode(arch, "path"), space.encode(arch))
        assert np.array_equal(space.encode(arch, "trunc_path"), space.encode(arch))
    nb201 = registry.create("space", "nb201")
    with pytest.raises(ConfigError, match="trunc_path"):
        nb201.encode(nb201.sample(np.random.default_rng(0)), "adj")
