"""The chain-structured space: readable strings, moves, networks and the op/width supernet."""

import numpy as np
import pytest
import torch
from torch import nn

from nasmix import registry, testing
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.chain import CHAIN_OPS, Chain, make_chain_op

TASK = Task("synthetic", 10, (3, 16, 16))
TEXT = "conv3x3-16/sep3x3-32/skip-64/maxpool3x3-64/dil3x3-16/conv5x5-32"


@pytest.fixture(scope="module")
def space():
    return Chain()


def test_contract():
    testing.check_space("chain")


def test_readable_string_round_trips(space):
    arch = space.parse(TEXT)
    assert len(arch.genotype) == space.config.layers == 6
    assert arch.genotype[2] == ("skip", 64) and space.format(arch.genotype) == TEXT
    assert Arch.from_str("chain:" + TEXT) == arch and arch.to_str() == "chain:" + TEXT
    assert "layer 2: skip, 64 channels, stride 2" in space.describe(arch)


@pytest.mark.parametrize(
    "bad",
    [
        "conv3x3-16/sep3x3-32",  # too few layers
        TEXT + "/skip-16",  # too many
        TEXT.replace("sep3x3", "sep7x7"),  # unknown op
        TEXT.replace("-32", "-48", 1),  # width outside the space
        TEXT.replace("/", ",", 1),  # bad separator
    ],
)
def test_parse_rejects(space, bad):
    with pytest.raises(ConfigError):
        space.parse(bad)


def test_options_and_validation():
    space = registry.create("space", "chain", layers=9, widths=[8, 24], ops=["conv3x3", "skip"])
    assert space.strides() == (1, 1, 1, 2, 1, 1, 2, 1, 1)
    assert len(space.choices()) == 18 and space.choices()[1].options == ("8", "24")
    for bad in ({"layers": 2}, {"ops": ["conv7x7"]}, {"widths": [16, 16]}, {"ops": ["skip"], "widths": [8]}):
        with pytest.raises(ConfigError):
            registry.create("space", "chain", **bad)


def test_sample_mutate_neighbors_decode(space):
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    assert arch == space.sample(np.random.default_rng(0))
    for _ in range(20):
        child = space.mutate(arch, rng)
        diff = [i for i, (p, q) in enumerate(zip(space.to_choices(arch), space.to_choices(child))) if p != q]
        assert len(diff) == 1
    assert len(space.neighbors(arch)) == 6 * ((len(CHAIN_OPS) - 1) + (3 - 1))
    assert space.decode(space.arch_weights(arch)) == arch
    w = {"op": torch.randn(6, 6), "width": torch.randn(6, 3)}
    values = space.to_choices(space.decode(w))
    assert values[::2] == tuple(w["op"].argmax(1).tolist()) and values[1::2] == tuple(
        w["width"].argmax(1).tolist()
    )


def test_network_shapes_and_projections(space):
    assert space.strides() == (1, 1, 2, 1, 2, 1)
    net = space.build(space.parse(TEXT), TASK, "tiny")
    x, sizes = torch.randn(2, *TASK.shape), []
    for layer in net:
        x = layer(x)
        if x.ndim == 4:
            sizes.append(tuple(x.shape[1:]))
    # stem 4 channels, then the widths scaled by 1/4; stride 2 at layers 2 and 4
    assert sizes == [
        (4, 16, 16),
        (4, 16, 16),
        (8, 16, 16),
        (16, 8, 8),
        (16, 8, 8),
        (4, 4, 4),
        (8, 4, 4),
        (8, 1, 1),
    ]
    assert x.shape == (2, 10)
    assert isinstance(make_chain_op("skip", 8, 8, 1), nn.Identity)
    for c_out, stride in ((16, 1), (8, 2)):
        conv = [m for m in make_chain_op("skip", 8, c_out, stride).modules() if isinstance(m, nn.Conv2d)]
        assert len(conv) == 1 and conv[0].kernel_size == (1, 1) and conv[0].stride == (stride, stride)
    assert not [m for m in make_chain_op("maxpool3x3", 8, 8, 2).modules() if isinstance(m, nn.Conv2d)]


def test_supernet_gets_op_and_width_gradients(space):
    torch.manual_seed(0)
    x = torch.randn(2, *TASK.shape)
    sn = space.supernet(TASK, "tiny")
    assert sn.arch_shapes == {"op": (6, 6), "width": (6, 3)}
    w = {g: v.requires_grad_() for g, v in sn.uniform_weights().items()}
    sn(x, w).sum().backward()
    assert w["op"].grad.abs().sum(1).gt(0).all() and w["width"].grad.abs().sum(1).gt(0).all()
    # a single sampled choice per layer: only it runs, the mask keeps its width, both weights get gradients
    arch = space.parse(TEXT)
    one = {g: v.requires_grad_() for g, v in space.arch_weights(arch).items()}
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in sn.masks]
    sn(x, one, active=space.active(arch)).sum().backward()
    for h in hooks:
        h.remove()
    for out, (_, width) in zip(outs, arch.genotype):
        kept = width // 4  # tiny widths
        assert out[:, kept:].abs().sum() == 0 and out[:, :kept].abs().sum() > 0
    for g in ("op", "width"):
        assert ((one[g].grad != 0) == (one[g] != 0)).all(), g


def test_supernet_partial_channels(space):
    sn = space.supernet(TASK, "tiny", partial=2)
    out = sn(torch.randn(2, *TASK.shape), sn.uniform_weights(), edge_weights={"op": torch.rand(6)})
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    with pytest.raises(ValueError):
        space.supernet(TASK, "tiny", partial=3)
