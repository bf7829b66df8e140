"""The networks of the hierarchical space (Liu et al. 2018, "Hierarchical
Representations for Efficient Architecture Search", ICLR 2018, section 2.2 and
appendix A): motifs, cells, the macro network, and their supernet.

- Level 1: the primitives (`nasmix.spaces.ops.HIERARCHICAL_OPS`, with `none`).
- Level 2: a motif, a DAG of MOTIF_NODES nodes; every edge j -> i (j < i) applies
  a primitive. The motif's output (its sink) is followed by a 1x1 convolution,
  batch norm and ReLU, as the paper's section 4.1 does after every level-2 motif.
- Level 3: the cell, a DAG of CELL_NODES nodes; every edge applies a motif.

Node 0 of a DAG is its input and the last node its output. A node sums its
inputs (the paper concatenates depthwise; see docs/spaces/hierarchical.md), and
a node whose inputs are all `none` is zero.

Example:
    >>> import torch
    >>> motif = Motif(8, ("sep_conv_3x3_h", "conv_1x1", "identity", "none", "none", "max_pool_3x3"))
    >>> tuple(motif(torch.zeros(2, 8, 16, 16)).shape)
    (2, 8, 16, 16)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from nasmix.data.base import Task
from nasmix.spaces.ops import HIERARCHICAL_OPS, ConvBNReLU, make_op
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet

MOTIF_NODES = 4  # |G^(2)| of the paper's CIFAR search
CELL_NODES = 5  # |G^(3)|


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


def run_dag(x: torch.Tensor, nodes: int, edge: Callable[[int, torch.Tensor], torch.Tensor | None]) -> torch.Tensor:
    """Evaluate a dense DAG: node i sums edge(k, node j) over its edges k = (j, i).

    `edge` returns None for an absent edge; a node without inputs is zero.
    """
    states: list[torch.Tensor | None] = [x]
    zero: torch.Tensor | None = None
    k = 0
    for i in range(1, nodes):
        acc = None
        for j in range(i):
            h = states[j]
            if h is None:
                zero = torch.zeros_like(x) if zero is None else zero
                h = zero
            out = edge(k, h)
            k += 1
            if out is not None:
                acc = out if acc is None else acc + out
        states.append(acc)
    return states[-1] if states[-1] is not None else torch.zeros_like(x)


class SepConvBNReLU(nn.Module):
    """The macro network's 3x3 separable convolution (depthwise, pointwise, BN, ReLU)."""

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
    """

    def __init__(self, c: int, ops: Sequence[str]):
        super().__init__()
        live = live_edges(MOTIF_NODES, [o != "none" for o in ops])
        self.edges = nn.ModuleDict({str(k): make_op(o, c) for k, o in enumerate(ops) if live[k]})
        self.post = ConvBNReLU(c, 1, 1, "conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        edges = self.edges
        return self.post(run_dag(x, MOTIF_NODES, lambda k, h: edges[str(k)](h) if str(k) in edges else None))


class Cell(nn.Module):
    """The level-3 motif: a DAG whose edges are instances of level-2 motifs.

    Args:
        c: channels in and out.
        motifs: the primitives of each level-2 motif.
        cell: per cell edge, "none" or "motif<m>".
    """

    def __init__(self, c: int, motifs: Sequence[Sequence[str]], cell: Sequence[str]):
        super().__init__()
        live = live_edges(CELL_NODES, [o != "none" for o in cell])
        self.edges = nn.ModuleDict(
            {str(k): Motif(c, motifs[int(o[len("motif"):])]) for k, o in enumerate(cell) if live[k]}
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


def macro_layers(c_img: int, macro: Macro, make_cell: Callable[[int], nn.Module]) -> tuple[nn.ModuleList, int]:
    """The paper's CIFAR macro network, without its head (appendix A, figure 2).

    3x3 conv stem of C channels, then the stages of N cells at C, 2C, 4C
    channels; within a stage a stride-1 separable convolution separates the
    cells, between stages a stride-2 separable convolution doubles the
    channels; a last stride-1 separable convolution ends the body.

    Returns:
        The layers and the channels of the last one.
    """
    c = macro.channels
    stem = nn.Sequential(nn.Conv2d(c_img, c, 3, macro.stem_stride, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
    layers: list[nn.Module] = [stem]
    for stage in range(macro.stages):
        width = c * 2**stage
        if stage:
            layers.append(SepConvBNReLU(width // 2, width, 2))
        for n in range(macro.cells):
            if n:
                layers.append(SepConvBNReLU(width, width, 1))
            layers.append(make_cell(width))
    layers.append(SepConvBNReLU(width, width, 1))
    return nn.ModuleList(layers), width


class HierarchicalNet(nn.Module):
    """The standalone network of one hierarchical arch: macro layers, global pooling, linear head."""

    def __init__(self, task: Task, macro: Macro, motifs: Sequence[Sequence[str]], cell: Sequence[str]):
        super().__init__()
        self.layers, c_out = macro_layers(task.shape[0], macro, lambda w: Cell(w, motifs, cell))
        self.head = nn.Linear(c_out, task.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


# ---- supernet -----------------------------------------------------------------
class SuperMotif(nn.Module):
    """One instance of a level-2 motif in the supernet: a DAG of primitive MixedEdges."""

    def __init__(self, c: int, partial: int):
        super().__init__()
        self.edges = nn.ModuleList(
            MixedEdge(c, 1, HIERARCHICAL_OPS, partial, pool_bn=False) for _ in dag_edges(MOTIF_NODES)
        )
        self.post = ConvBNReLU(c, 1, 1, "conv", affine=False)

    def forward(self, x: torch.Tensor, ctx: EdgeContext, group: str) -> torch.Tensor:
        return self.post(run_dag(x, MOTIF_NODES, lambda k, h: ctx.edge(group, k, self.edges[k], h)))


@contextlib.contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Keep batch-norm running statistics unchanged (for a checkpoint's recomputation)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


class MixedMotif(nn.Module):
    """A level-3 mixed edge: candidates `none`, motif0..motif{M-1}, each an own SuperMotif.

    Same semantics as `MixedEdge`: the weighted sum of the candidates listed in
    `ops` (all when None), `none` skipped. Every instance of motif m is driven by
    the weights of group "motif<m>", shared across cell edges and cells.

    Args:
        c: channels in and out.
        motifs: the number of level-2 motifs.
        partial: PC-DARTS's K, applied to the primitive edges.
        checkpoint: recompute a motif in the backward pass, instead of storing its
            inside, when one of its primitive edges computes several ops
            (weighted-sum mode); see docs/spaces/hierarchical.md.
    """

    def __init__(self, c: int, motifs: int, partial: int = 1, checkpoint: bool = True):
        super().__init__()
        self.motifs = nn.ModuleList(SuperMotif(c, partial) for _ in range(motifs))
        self.op_names = ("none",) + tuple(f"motif{m}" for m in range(motifs))
        self.checkpoint = checkpoint

    def forward(self, x: torch.Tensor, w: torch.Tensor, ops: Sequence[int] | None = None, *,
                ctx: EdgeContext) -> torch.Tensor:  # fmt: skip
        out = None
        for i in range(len(self.op_names)) if ops is None else ops:
            if i == 0:  # `none` adds zeros
                continue
            term = w[i] * self._motif(i - 1, x, ctx)
            out = term if out is None else out + term
        return x * 0.0 if out is None else out

    def _motif(self, m: int, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        motif, group = self.motifs[m], f"motif{m}"
        if not (self.checkpoint and torch.is_grad_enabled() and _computes_many(ctx, group)):
            return motif(x, ctx, group)
        return checkpoint(motif, x, ctx, group, use_reentrant=False,
                          context_fn=lambda: (contextlib.nullcontext(), frozen_bn_stats(motif)))  # fmt: skip


def _computes_many(ctx: EdgeContext, group: str) -> bool:
    """Whether some edge of the group computes several ops in this forward call."""
    return ctx.active is None or any(ops is None or len(ops) > 1 for ops in ctx.active[group])


class SuperCell(nn.Module):
    """The supernet's cell: CELL_NODES nodes, every edge a MixedMotif (group "cell")."""

    def __init__(self, c: int, motifs: int, partial: int = 1, checkpoint: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(MixedMotif(c, motifs, partial, checkpoint) for _ in dag_edges(CELL_NODES))

    def forward(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        return run_dag(x, CELL_NODES, lambda k, h: ctx.edge("cell", k, functools.partial(self.edges[k], ctx=ctx), h))


class HierarchicalSupernet(Supernet):
    """The hierarchical supernet: the macro network with SuperCells.

    Groups: "motif0".."motif{M-1}", each (edges of a motif, 7 primitives), and
    "cell", (edges of the cell, M + 1).
    """

    def __init__(self, task: Task, macro: Macro, motifs: int, partial: int = 1, checkpoint: bool = True):
        super().__init__()
        if partial < 1 or macro.channels % partial:
            raise ValueError(f"partial channels K={partial} must divide the {macro.channels} channels")
        self.layers, c_out = macro_layers(task.shape[0], macro, lambda w: SuperCell(w, motifs, partial, checkpoint))
        self.head = nn.Linear(c_out, task.num_classes)
        self.op_names = {f"motif{m}": HIERARCHICAL_OPS for m in range(motifs)}
        self.op_names["cell"] = ("none",) + tuple(f"motif{m}" for m in range(motifs))
        self.arch_shapes = {g: (len(dag_edges(CELL_NODES if g == "cell" else MOTIF_NODES)), len(names))
                            for g, names in self.op_names.items()}  # fmt: skip
        self.edge_nodes = {g: tuple(i for _, i in dag_edges(CELL_NODES if g == "cell" else MOTIF_NODES))
                           for g in self.op_names}  # fmt: skip

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, ctx) if isinstance(layer, SuperCell) else layer(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
