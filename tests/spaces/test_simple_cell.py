"""The Simple Cell space: NASLib's network sizes, arch strings, argmax decoding,
`none` edges, drop-path and supernet modes. (The generic contract runs in
tests/test_contracts.py.)"""

import pytest
import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces import ops
from nasmix.spaces.base import get_space
from nasmix.spaces.simple_cell import EDGES, OPS, SEED, WideMixedEdge, wide_op
from nasmix.timing import count_params

TASK = Task("synthetic", 10, (3, 32, 32))


@pytest.fixture(scope="module")
def space():
    return get_space("simple_cell")


def test_search_network_weights_against_naslib(space):
    sn = space.supernet(TASK, "search")
    assert sn.arch_shapes == {"normal": (5, 5), "reduce": (5, 5)}  # 50 arch weights, as NASLib's
    # NASLib's search network has 48,906 weights; ours has the same layers but, like every
    # nasmix supernet (DARTS's convention), no affine parameters in the mixed ops' batch norms.
    assert count_params(sn) == 46_122
    affine = 16 * 3 * 9 + 2 * 16 + 32 * 10 + 10  # stem and classifier
    for c_in, c_out in ((16, 16), (16, 32), (32, 32)):
        for u, _ in EDGES:
            for op in OPS[1:]:
                m = (
                    wide_op(op, c_in, c_out, 2, True)
                    if (c_in != c_out and u < 3)
                    else ops.make_op(op, c_out, 1, True)
                )
                affine += sum(p.numel() for p in m.parameters())
        affine += 2 * c_out * c_out + 2 * c_out  # node 5: 1x1 conv + BN
    assert affine == 48_906


def test_seed_architecture(space):
    arch = space.parse(SEED)
    assert arch.to_str() == "simple_cell:" + SEED
    assert arch.genotype == (
        ("max_pool_3x3", "dil_conv_3x3", "sep_conv_3x3", "dil_conv_3x3", "skip_connect"),
        ("none", "dil_conv_3x3", "none", "sep_conv_3x3", "dil_conv_3x3"),
    )
    assert space.decode(space.arch_weights(arch)) == arch
    text = space.describe(arch)
    assert "(reduction_cell-edge(1,3)): none" in text and "(normal_cell-edge(3,4)): skip_connect" in text
    net = space.build(arch, TASK)
    assert count_params(net) == 16_042
    net.train()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # node 3 of the reduction cell is all zeros


@pytest.mark.parametrize(
    "bad",
    [
        SEED.replace("max_pool_3x3~1", "max_pool_3x3~2"),  # input 2 twice into node 3
        SEED.replace("+skip_connect~3", ""),  # node 4 lacks its edge from node 3
        SEED.replace("none~1", "avg_pool_3x3~1"),  # not one of the five ops
        SEED.split(";")[1],  # no normal cell
        SEED + ";reduce=" + SEED.split("reduce=")[1],  # a cell twice
    ],
)
def test_parse_refuses(space, bad):
    with pytest.raises(ConfigError):
        space.parse(bad)


def test_decode_is_argmax_per_edge_including_none(space):
    w = {g: torch.zeros(5, 5) for g in ("normal", "reduce")}
    w["normal"][0, OPS.index("none")] = 1.0
    w["normal"][4, OPS.index("dil_conv_3x3")] = 0.5
    w["reduce"] += torch.tensor([0.0, 0.1, 0.2, 0.3, 0.2])
    arch = space.decode(w)
    assert arch.genotype[0] == ("none", "none", "none", "none", "dil_conv_3x3")  # ties: the first op
    assert arch.genotype[1] == ("sep_conv_3x3",) * 5
    with pytest.raises(ConfigError):
        space.decode({"normal": w["normal"], "reduce": torch.zeros(4, 5)})


def test_widening_edges(space):
    edge = WideMixedEdge(8, 16, 2)
    x = torch.randn(2, 8, 9, 9)
    assert edge(x, torch.full((5,), 0.2)).shape == (2, 16, 5, 5)
    zeros = edge(x, torch.tensor([1.0, 0, 0, 0, 0]), ops=[0])
    assert zeros.shape == (2, 16, 5, 5) and not zeros.any()


def test_supernet_modes(space):
    x = torch.randn(2, 3, 32, 32)
    for partial in (1, 4):
        sn = space.supernet(TASK, "tiny", partial=partial)
        w = {g: v.requires_grad_() for g, v in sn.uniform_weights().items()}
        sn(x, w).sum().backward()
        assert all(v.grad is not None for v in w.values())
    arch = space.parse(SEED)
    out = sn(x, space.arch_weights(arch), active=space.active(arch))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    with pytest.raises(ConfigError):
        space.supernet(TASK, "tiny", partial=3)


def test_drop_path_and_sizes(space):
    torch.manual_seed(0)
    net = space.build(space.parse(SEED), TASK, "tiny").train()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(net(x), net(x))
    net.drop_path_prob = 0.5
    assert not torch.equal(net(x), net(x))
    wide = get_space("simple_cell").__class__(get_space("simple_cell").Config(eval_channels=32))
    assert wide.build(wide.parse(SEED), TASK, "eval").classifier.in_features == 64
    assert isinstance(space.build(space.parse(SEED), TASK).cells[0].edges[4], nn.Identity)
    assert len(space.neighbors(space.parse(SEED))) == 10 * 4
