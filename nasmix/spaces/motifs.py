"""The networks of the hierarchical space (Liu et al. 2018, "Hierarchical
Representations for Efficient Architecture Search", ICLR 2018, section 2.2 and
appendix A) in its two weight-sharing designs, and what all designs share.

- Level 1: the primitives (`Design.ops`, `none` first).
- Level 2: a motif, a DAG of MOTIF_NODES nodes; every edge j -> i (j < i)
  applies a primitive.
- Level 3: the cell, a DAG of CELL_NODES nodes; every edge applies a motif.

Node 0 of a DAG is its input and the last node its output. A `Design` says
how a motif ends and what surrounds the cells:

- `NASLIB` (the network the seed study ran, automl/NASLib
  `HierarchicalSearchSpace`): intermediate nodes sum, the motif's output node
  concatenates its three inputs and applies a 1x1 convolution and an affine
  batch norm (NASLib's `Concat1x1`); DARTS's double separable convolution;
  cell edges choose among the motifs only (no `none`); a conv + BN stem
  without ReLU; DARTS separable convolutions between the stages.
- `LIGHT` (nasmix's cheaper design): every node sums, the motif's output is
  followed by a 1x1 conv-BN-ReLU, a single depthwise-pointwise separable
  convolution, `none` at the cell level, a conv-BN-ReLU stem, single
  separable conv-BN-ReLU layers between the stages.

The paper's own network (depthwise concatenation at every node) has
architecture-dependent widths and lives in `nasmix.spaces.motifs_paper`; the
supernets are in `nasmix.spaces.motif_supernet`.

Example:
    >>> import torch
    >>> motif = Motif(8, ("sep_conv_3x3_h", "conv_1x1", "identity", "none", "none", "max_pool_3x3"), LIGHT)
    >>> tuple(motif(torch.zeros(2, 8, 16, 16)).shape)
    (2, 8, 16, 16)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.spaces.ops import HIERARCHICAL_OPS, ConvBNReLU, SepConv, make_op

MOTIF_NODES = 4  # |G^(2)| of the paper's CIFAR search
CELL_NODES = 5  # |G^(3)|

# NASLib's seven level-1 options (its `_set_cell_ops`), in nasmix's order: DARTS's double
# separable convolution where the light design has a single one.
NASLIB_OPS = ("none", "conv_1x1", "dw_conv_3x3", "sep_conv_3x3", "max_pool_3x3", "avg_pool_3x3", "identity")


@dataclass(frozen=True)
class Design:
    """How a variant of the hierarchical space builds its networks.

    Attributes:
        name: the variant ("naslib", "light" or "paper").
        ops: the level-1 options, `none` first (nasmix.spaces.ops names).
        cell_none: whether a cell edge may choose `none`.
        motif_end: "concat" (the output node concatenates its inputs, then a
            1x1 conv and an affine BN: NASLib), "sum_conv" (it sums them, then
            a 1x1 conv-BN-ReLU: light) or "concat_all" (every node
            concatenates: the paper; standalone networks only).
        stem_relu: follow the stem's conv-BN by a ReLU.
        darts_sep: the macro separable convolutions are DARTS's double ones
            (else one depthwise-pointwise-BN-ReLU).
        op_affine: the standalone network's primitives have affine batch norms.
        motifs: the default M (number of level-2 motifs).
    """

    name: str
    ops: tuple[str, ...]
    cell_none: bool
    motif_end: str
    stem_relu: bool
    darts_sep: bool
    op_affine: bool
    motifs: int


NASLIB = Design("naslib", NASLIB_OPS, False, "concat", False, darts_sep=True, op_affine=False, motifs=6)
LIGHT = Design("light", HIERARCHICAL_OPS, True, "sum_conv", True, darts_sep=False, op_affine=True, motifs=4)
PAPER = Design("paper", HIERARCHICAL_OPS, True, "concat_all", True, darts_sep=False, op_affine=True, motifs=6)
DESIGNS = {d.name: d for d in (NASLIB, LIGHT, PAPER)}


def dag_edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """The edges (j, i), j < i, of a dense DAG, ordered by target then source.

    Example:
        >>> dag_edges(3)
        ((0, 1), (0, 2), (1, 2))
    """
    return tuple((j, i) for i in range(1, nodes) for j in range(i))


def live_edges(nodes: int, used: Sequence[bool]) -> list[bool]:
    """Which used edges reach the output: the others cannot change it.

    Args:
        nodes: the number of nodes of the DAG.
        used: per edge (dag_edges order), whether its op is not `none`.

    Returns:
        Per edge, whether it is used and its target reaches the output node.
    """
    edges = dag_edges(nodes)
    reaches = [False] * nodes
    reaches[-1] = True
    for node in reversed(range(nodes - 1)):
        reaches[node] = any(used[k] and reaches[i] for k, (j, i) in enumerate(edges) if j == node)
    return [used[k] and reaches[i] for k, (_, i) in enumerate(edges)]


Edge = Callable[[int, torch.Tensor], "torch.Tensor | None"]
Sink = Callable[[list["torch.Tensor | None"], torch.Tensor], torch.Tensor]


def run_dag(x: torch.Tensor, nodes: int, edge: Edge, sink: Sink | None = None) -> torch.Tensor:
    """Evaluate a dense DAG: node i sums edge(k, node j) over its edges k = (j, i).

    Args:
        x: the input (node 0).
        nodes: the number of nodes.
        edge: edge(k, h) is edge k's output for input h, or None for an absent edge.
        sink: when given, the output node is sink(outputs of its edges, x) instead of their sum.

    Returns:
        The output node; a node without inputs is zero.
    """
    states: list[torch.Tensor | None] = [x]
    zero: torch.Tensor | None = None
    k = 0
    for i in range(1, nodes):
        outs = []
        for j in range(i):
            h = states[j]
            if h is None:
                zero = torch.zeros_like(x) if zero is None else zero
                h = zero
            outs.append(edge(k, h))
            k += 1
        if i == nodes - 1 and sink is not None:
            return sink(outs, x)
        present = [o for o in outs if o is not None]
        states.append(sum(present[1:], present[0]) if present else None)
    return states[-1] if states[-1] is not None else torch.zeros_like(x)


class ConcatEnd(nn.Module):
    """NASLib's `Concat1x1`: concatenate the inputs, 1x1 convolution back to C channels, batch norm.

    Args:
        c: channels of each input and of the output.
        inputs: how many inputs are concatenated.
        affine: the batch norm's affine parameters (NASLib: yes).
    """

    def __init__(self, c: int, inputs: int, affine: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(inputs * c, c, 1, bias=False)
        self.bn = nn.BatchNorm2d(c, affine=affine)

    def forward(self, outs: Sequence[torch.Tensor | None], x: torch.Tensor) -> torch.Tensor:
        zero = None
        parts = []
        for o in outs:
            if o is None:  # an absent edge adds zeros to its slot (NASLib's Zero op)
                zero = torch.zeros_like(x) if zero is None else zero
                o = zero
            parts.append(o)
        return self.bn(self.conv(torch.cat(parts, dim=1)))


class SumEnd(nn.Module):
    """The light design's motif end: the sum of the inputs, then a 1x1 conv-BN-ReLU."""

    def __init__(self, c: int, affine: bool = True):
        super().__init__()
        self.post = ConvBNReLU(c, 1, 1, "conv", affine)

    def forward(self, outs: Sequence[torch.Tensor | None], x: torch.Tensor) -> torch.Tensor:
        present = [o for o in outs if o is not None]
        return self.post(sum(present[1:], present[0]) if present else torch.zeros_like(x))


def motif_end(design: Design, c: int, affine: bool) -> nn.Module:
    """The module that turns a motif's output node into its C-channel output."""
    if design.motif_end == "concat":
        return ConcatEnd(c, MOTIF_NODES - 1, affine=True)  # NASLib's Concat1x1 keeps affine BN everywhere
    return SumEnd(c, affine)


class SepConvBNReLU(nn.Module):
    """The light design's macro separable convolution (depthwise, pointwise, BN, ReLU)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.op = nn.Sequential(
            nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


# ---- standalone networks ------------------------------------------------------
class Motif(nn.Module):
    """A level-2 motif of fixed primitives (edges that cannot reach the output are not built).

    Args:
        c: channels in and out.
        ops: one primitive name per edge, in `dag_edges(MOTIF_NODES)` order.
        design: NASLIB or LIGHT.
    """

    def __init__(self, c: int, ops: Sequence[str], design: Design):
        super().__init__()
        live = live_edges(MOTIF_NODES, [o != "none" for o in ops])
        affine = design.op_affine
        self.edges = nn.ModuleDict({str(k): make_op(o, c, 1, affine) for k, o in enumerate(ops) if live[k]})
        self.end = motif_end(design, c, design.op_affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        edges = self.edges
        return run_dag(x, MOTIF_NODES, lambda k, h: edges[str(k)](h) if str(k) in edges else None, self.end)


class Cell(nn.Module):
    """The level-3 motif: a DAG whose edges are instances of level-2 motifs.

    Args:
        c: channels in and out.
        motifs: the primitives of each level-2 motif.
        cell: per cell edge, "none" or "motif<m>".
        design: NASLIB or LIGHT.
    """

    def __init__(self, c: int, motifs: Sequence[Sequence[str]], cell: Sequence[str], design: Design):
        super().__init__()
        live = live_edges(CELL_NODES, [o != "none" for o in cell])
        self.edges = nn.ModuleDict(
            {str(k): Motif(c, motifs[int(o[len("motif") :])], design) for k, o in enumerate(cell) if live[k]}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        edges = self.edges
        return run_dag(x, CELL_NODES, lambda k, h: edges[str(k)](h) if str(k) in edges else None)


@dataclass(frozen=True)
class Macro:
    """The layout of the macro network.

    Attributes:
        channels: C, the stem's channels (stage s has C * 2**s).
        stages: how many stages (the paper: 3).
        cells: N, cells per stage.
        stem_stride: 1 as in the paper; 2 shrinks the tiny test network.
    """

    channels: int
    stages: int = 3
    cells: int = 1
    stem_stride: int = 1

    def cell_widths(self) -> list[tuple[int, int]]:
        """(stage, channels) of every cell, in order."""
        return [(s, self.channels * 2**s) for s in range(self.stages) for _ in range(self.cells)]


def macro_sep(design: Design, c_in: int, c_out: int, stride: int) -> nn.Module:
    """A separable convolution of the macro network (between cells, and before the pooling)."""
    if design.darts_sep:
        return SepConv(c_in, c_out, 3, stride, 1, affine=True)
    return SepConvBNReLU(c_in, c_out, stride)


def macro_layers(
    c_img: int,
    macro: Macro,
    design: Design,
    make_cell: Callable[[int], nn.Module],
    cell_out: Callable[[nn.Module, int], int] = lambda cell, width: width,
) -> tuple[nn.ModuleList, int]:
    """The paper's CIFAR macro network, without its head (appendix A, figure 2, as NASLib reads it).

    3x3 conv stem of C channels, then the stages of N cells at C, 2C, 4C
    channels; within a stage a stride-1 separable convolution separates the
    cells, between stages a stride-2 separable convolution doubles the
    channels; a last stride-1 separable convolution ends the body.

    Args:
        c_img: image channels.
        macro: the layout.
        design: the variant (stem ReLU, kind of separable convolution).
        make_cell: builds a cell of the given channels.
        cell_out: the output channels of a built cell (its input's, except in the paper's design).

    Returns:
        The layers and the channels of the last one.
    """
    c = macro.channels
    stem: list[nn.Module] = [nn.Conv2d(c_img, c, 3, macro.stem_stride, 1, bias=False), nn.BatchNorm2d(c)]
    layers: list[nn.Module] = [nn.Sequential(*stem, *([nn.ReLU()] if design.stem_relu else []))]
    prev = c
    for stage in range(macro.stages):
        width = c * 2**stage
        if stage:
            layers.append(macro_sep(design, prev, width, 2))
            prev = width
        for n in range(macro.cells):
            if n:
                layers.append(macro_sep(design, prev, width, 1))
            cell = make_cell(width)
            layers.append(cell)
            prev = cell_out(cell, width)
    layers.append(macro_sep(design, prev, width, 1))
    return nn.ModuleList(layers), width


class HierarchicalNet(nn.Module):
    """The standalone network of one hierarchical arch: macro layers, global pooling, linear head."""

    def __init__(
        self, task: Task, macro: Macro, design: Design, motifs: Sequence[Sequence[str]], cell: Sequence[str]
    ):
        super().__init__()
        make_cell = lambda w: Cell(w, motifs, cell, design)  # noqa: E731
        self.layers, c_out = macro_layers(task.shape[0], macro, design, make_cell)
        self.head = nn.Linear(c_out, task.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
