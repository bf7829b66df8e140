"""The NAS-Bench-201 space: notation, enumeration, canonical forms, path encoding, networks."""

import numpy as np
import pytest
import torch

from nasmix import registry, testing
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.nb201 import NB201, PATH_FEATURES, expression
from nasmix.timing import count_params

TASK = Task("synthetic", 10, (3, 32, 32))
SMALL = Task("synthetic", 10, (3, 16, 16))  # keeps the forward passes cheap
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
FULL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
N = "none"


@pytest.fixture(scope="module")
def space():
    return NB201()


def arch_of(*ops):
    """An arch from its 6 ops in the benchmark's edge order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    return Arch("nb201", tuple(ops))


def test_contract():
    testing.check_space("nb201")


def test_registered_with_options():
    space = registry.create("space", "nb201", channels=8, cells=2, pool_bn=True)
    assert space.config == NB201.Config(8, 2, True)
    with pytest.raises(ConfigError):
        registry.create("space", "nb201", channels=0)


def test_enumerates_all_15625(space):
    archs = space.all_archs()
    assert len(archs) == 5**6 == len(set(archs)) == len({a.to_str() for a in archs})
    assert archs[0].genotype == ("none",) * 6 and archs[-1].genotype == ("avg_pool_3x3",) * 6


def test_notation_round_trips_exactly(space):
    arch = space.parse(BEST)
    assert arch.genotype == ("nor_conv_3x3",) * 3 + ("skip_connect",) + ("nor_conv_3x3",) * 2
    assert space.format(arch.genotype) == BEST
    assert arch.to_str() == "nb201:" + BEST and Arch.from_str("nb201:" + BEST) == arch
    assert all(space.parse(space.format(a.genotype)) == a for a in space.all_archs())


@pytest.mark.parametrize(
    "bad",
    [
        # edge order
        "|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        # unknown op
        "|conv~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",  # too few nodes
        # bars
        "nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",  # edge missing
    ],
)
def test_parse_rejects_other_forms(space, bad):
    with pytest.raises(ConfigError):
        space.parse(bad)


def test_canonical_identifies_isomorphic_archs(space):
    a, b, d, e = "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect"
    same = [
        # the two intermediate nodes swapped (no edge between them)
        (arch_of(a, b, N, "nor_conv_3x3", d, e), arch_of(b, a, N, "nor_conv_3x3", e, d)),
        # a dead branch: nodes 1 and 2 do not reach the output
        (arch_of(a, b, d, a, N, N), arch_of(N, N, N, a, N, N)),
        # an edge whose input is zero is dead too
        (arch_of(N, a, b, d, b, a), arch_of(N, a, N, d, N, a)),
        # skip_connect is the identity: conv(skip(x)) == conv(x)
        (arch_of(e, N, a, N, N, e), arch_of(N, a, N, N, N, e)),
        # every arch whose output is zero
        (arch_of(a, a, a, N, N, N), arch_of(*("none",) * 6)),
    ]
    for x, y in same:
        assert space.canonical(x) == space.canonical(y), (x, y)
    different = [
        # swapping the nodes is not an isomorphism when 1 -> 2 is an edge
        (arch_of(a, b, d, N, d, e), arch_of(b, a, d, N, e, d)),
        # the op matters
        (arch_of(N, N, N, a, N, N), arch_of(N, N, N, b, N, N)),
        # two parallel convolutions are not one
        (arch_of(a, N, N, a, e, N), arch_of(N, N, N, a, N, N)),
        # conv(conv(x)) is not conv(x)
        (arch_of(a, N, N, N, a, N), arch_of(N, N, N, a, N, N)),
    ]
    for x, y in different:
        assert space.canonical(x) != space.canonical(y), (x, y)


def test_canonical_classes(space):
    archs = space.all_archs()
    reps = {space.canonical(a) for a in archs}
    # 4,930 under this rule (NB201's own to_unique_str(consider_zero=True) gives 6,466; see the docs).
    assert len(reps) == 4930
    for rep in reps:
        assert space.canonical(rep) == rep and expression(rep.genotype) == expression(
            space.canonical(rep).genotype
        )
    # the representative has no dead edges: the fewest non-none edges of its class
    best = space.parse(BEST)
    assert space.canonical(best) == best
    zero = [a for a in archs if not expression(a.genotype)]
    assert {space.canonical(a) for a in zero} == {arch_of(*("none",) * 6)}


def test_path_encoding_by_hand(space):
    arch = space.parse(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    enc = space.encode(arch, "path")
    assert enc.shape == (PATH_FEATURES,) == (84,) and enc.dtype == np.float32
    # PATH_OPS = skip, conv1x1, conv3x3, avgpool = 0..3; length-2 paths start at 4, length-3 at 20.
    # 0->3 avg: 3; 0->1->3 conv3,conv1: 4 + 2*4 + 1 = 13; 0->2->3 skip,conv3: 4 + 0 + 2 = 6;
    # 0->1->2->3 cut by none.
    assert np.flatnonzero(enc).tolist() == [3, 6, 13]
    full = space.encode(space.parse(FULL), "path")
    assert np.flatnonzero(full).tolist() == [
        2,
        14,
        20 + 2 * 16 + 2 * 4 + 2,
    ]  # two length-2 paths share a label
    assert not space.encode(arch_of(*("none",) * 6), "path").any()
    assert space.encode(arch).shape == (30,)


def test_networks_match_the_benchmark_sizes(space):
    # NAS-Bench-201 lists 1.531546 M parameters for the all-conv3x3 cell and 0.073306 M for cells
    # without convolutions.
    assert count_params(space.build(space.parse(FULL), TASK, "search")) == 1_531_546
    assert count_params(space.build(arch_of(*("none",) * 6), TASK, "eval")) == 73_306
    net = space.build(space.parse(BEST), SMALL, "tiny")
    assert net(torch.randn(2, *SMALL.shape)).shape == (2, 10)


def test_supernet_modes(space):
    torch.manual_seed(0)
    x = torch.randn(2, *SMALL.shape)
    sn = space.supernet(SMALL, "tiny", partial=2)
    assert sn.arch_shapes == {"cell": (6, 5)}
    w = {"cell": torch.randn(6, 5).softmax(-1).requires_grad_()}
    sn(x, w, edge_weights={"cell": torch.rand(6)}).sum().backward()
    assert w["cell"].grad[:, 1:].abs().sum(dim=1).gt(0).all()  # every non-none op of every edge
    # sampled ops (GDAS): only the chosen op runs, and its weight gets the gradient
    arch = space.parse(BEST)
    one = {g: v.requires_grad_() for g, v in space.arch_weights(arch).items()}
    sn(x, one, active=space.active(arch)).sum().backward()
    assert (one["cell"].grad != 0).sum() == 6 and (one["cell"].grad[one["cell"] == 0] == 0).all()
    logits = torch.randn(6, 5)
    assert space.to_choices(space.decode({"cell": logits})) == tuple(logits.argmax(1).tolist())
    with pytest.raises(ConfigError):
        space.decode({"cell": torch.zeros(5, 6)})
