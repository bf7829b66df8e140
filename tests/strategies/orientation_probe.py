"""A search space whose data rewards exactly one op, for the one-shot correctness tests.

The task: two classes of striped images, horizontal stripes and vertical ones.
Class 1 is class 0 turned by 90 degrees, so both classes have the same pixel
values, only arranged differently. The probe supernet is a 1x1 convolution
stem, ONE mixed edge of the NAS-Bench-201 ops, then BN, ReLU, global average
pooling and a linear classifier. Everything but `nor_conv_3x3` commutes with a
90-degree turn: the 1x1 stem and `nor_conv_1x1` act on each pixel alone,
`avg_pool_3x3` has a square window, `skip_connect` and `none` do nothing.
After global pooling, a network built from those gives both classes the same
distribution of features, so it cannot beat chance (1/2). Only the 3x3
convolution's kernel can tell a horizontal edge from a vertical one: the data
rewards that one op, and no other path through the network can solve the task.
(NB-201's own network could not serve: its 3x3 stem and residual blocks solve
this task whatever the cell.)

`orientation_data` builds the data and `probe_space` registers the space for
the duration of a test (an unregistered space cannot print its arch strings).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import ImageArrays, Task
from nasmix.errors import ConfigError
from nasmix.search_types import SearchData
from nasmix.spaces import ops
from nasmix.spaces.base import Choice, SearchSpace
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet

NAME = "orientation_probe"
OPS = ops.NB201_OPS
REWARDED = "nor_conv_3x3"
CHANNELS = 8  # the ops' channels: all of them, or 1/K with PC-DARTS's partial channels (see `supernet`)


def orientation_images(n: int, side: int, rng: np.random.Generator) -> ImageArrays:
    """n images of random horizontal (label 0) or vertical (label 1) stripes, uint8, NHWC.

    Each row (column) of a class-0 (class-1) image takes one of two grey
    levels at random, plus pixel noise; a class-1 image is a class-0 image
    turned by 90 degrees.
    """
    levels = np.where(rng.random((n, side)) < 0.5, 70.0, 185.0)  # one level per stripe
    x = np.repeat(levels[:, :, None], side, axis=2)  # (n, rows, cols): horizontal stripes
    x = x + rng.normal(0.0, 12.0, size=x.shape)
    y = np.arange(n) % 2
    rng.shuffle(y)
    x[y == 1] = np.rot90(x[y == 1], axes=(1, 2))
    x = np.repeat(np.clip(x, 0, 255)[..., None], 3, axis=3)
    return ImageArrays(np.ascontiguousarray(x).astype(np.uint8), y.astype(np.int64))


def orientation_data(n: int = 256, side: int = 8, seed: int = 0) -> SearchData:
    """A CPU search split of `n` + `n` orientation images of `side` x `side` pixels."""
    rng = np.random.default_rng(seed)
    task = Task("orientation", 2, (3, side, side), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return SearchData(
        orientation_images(n, side, rng),
        orientation_images(n, side, rng),
        task,
        torch.device("cpu"),
        size="tiny",
    )


class ProbeSupernet(Supernet):
    """1x1 stem, one mixed edge, BN-ReLU, global average pooling, linear head."""

    def __init__(self, task: Task, c: int, partial: int):
        super().__init__()
        self.arch_shapes = {"edge": (1, len(OPS))}
        self.op_names = {"edge": OPS}
        self.edge_nodes = {"edge": (1,)}
        self.stem = nn.Sequential(nn.Conv2d(task.shape[0], c, 1, bias=False), nn.BatchNorm2d(c))
        self.edge = MixedEdge(c, 1, OPS, partial, pool_bn=False)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.classifier = nn.Linear(c, task.num_classes)

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        s = self.stem(x)
        h = s + ctx.edge("edge", 0, self.edge, s)  # a node summing the edge and a fixed identity path
        return self.classifier(self.head(h).mean((2, 3)))


class _Standalone(nn.Module):
    def __init__(self, task: Task, op: str, c: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(task.shape[0], c, 1, bias=False), nn.BatchNorm2d(c))
        self.op = ops.make_op(op, c, 1)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.classifier = nn.Linear(c, task.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        return self.classifier(self.head(s + self.op(s)).mean((2, 3)))


class OrientationProbe(SearchSpace):
    """A one-edge space of the NAS-Bench-201 ops on a 1x1 stem (tests only)."""

    def choices(self) -> tuple[Choice, ...]:
        return (Choice("edge", OPS),)

    def from_choices(self, values: Sequence[int]) -> Arch:
        (v,) = values
        return Arch(self.registry_name, (OPS[int(v)],))

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        return (OPS.index(self.check(arch).genotype[0]),)

    def format(self, genotype: tuple) -> str:
        return genotype[0]

    def parse(self, text: str) -> Arch:
        if text.strip() not in OPS:
            raise ConfigError(f"unknown op {text!r}")
        return Arch(self.registry_name, (text.strip(),))

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        return _Standalone(task, self.check(arch).genotype[0], CHANNELS)

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        # With partial channels the supernet widens so that its ops still see 4 channels or more:
        # PC-DARTS's K = 4 on 8 channels leaves its ops 2, too few to learn the task reliably.
        return ProbeSupernet(task, max(CHANNELS, 4 * partial), partial)

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        w = torch.zeros(1, len(OPS))
        w[0, self.to_choices(arch)[0]] = 1.0
        return {"edge": w}

    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        return self.from_choices([int(torch.as_tensor(weights["edge"]).detach().argmax())])


@contextlib.contextmanager
def probe_space() -> Iterator[SearchSpace]:
    """The probe space, registered while the block runs (and removed after, so that the
    contract suites never see it)."""
    # make_space caches per class, so the probe's class is built fresh without clearing.
    registry.register("space", NAME)(OrientationProbe)
    try:
        yield OrientationProbe()
    finally:
        registry._ENTRIES["space"].pop(NAME, None)
