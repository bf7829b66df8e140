"""Supernets: mixed edges driven by architecture weights passed in from outside.

The supernet never knows which algorithm drives it. Each forward call gets
  - `weights[group]`: a (edges, ops) tensor of op weights per edge;
  - optionally `active[group][e]`: the op indices edge e computes (None: all).
    One index per edge is the sampled-op mode (GDAS): only that op runs,
    forward and backward, and its weight (a straight-through one-hot) still
    carries the gradient. An empty list skips the edge;
  - optionally `edge_weights[group]`: an (edges,) tensor scaling each edge's
    output (PC-DARTS edge normalisation);
  - `unit_weights`: in the sampled-op mode, the weight of an edge's one op
    is exactly 1 and carries no gradient (GDAS's weight step, RS-WS's
    paths): the op's output is used as it is (1 x y is y);
  - `add_unsampled`: in the sampled-op mode, also add the weights of the ops
    an edge does not compute to its output (xautodl's and NASLib's GDAS: the
    values are the zeros of a hard one-hot, and the add passes those ops'
    weights the sum of the output's gradient).
Partial channels (PC-DARTS) are a construction option: only 1/K of the
channels go through the mixed ops, the rest bypass, then channels shuffle.

Cells compute the edges that leave one node together (`EdgeContext.edges`,
nasmix.spaces.groups) when every edge computes every op; edge by edge otherwise.
Batch norms inside mixed ops keep no running statistics: a supernet always
normalises with batch statistics (searches and weight-sharing scores alike),
so nothing would read them.

Example:
    >>> import torch
    >>> edge = MixedEdge(8, 1, ("none", "skip_connect", "sep_conv_3x3"))
    >>> x = torch.randn(2, 8, 4, 4)
    >>> y = edge(x, torch.tensor([0.2, 0.3, 0.5]))           # weighted sum
    >>> y1 = edge(x, torch.tensor([0.0, 1.0, 0.0]), ops=[1])  # one op computed
    >>> torch.allclose(y1, x)
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
import torch.utils.checkpoint
from torch import nn

from nasmix.spaces.groups import batchable, channel_shuffle, mixed_edges, others, rows_of
from nasmix.spaces.ops import DilConv, cat_channels, make_op

Weights = Mapping[str, torch.Tensor]
Active = Mapping[str, Sequence[Sequence[int] | None]]
_M = TypeVar("_M", bound=nn.Module)
# What EdgeContext.edge calls: a mixed edge, (x, op weights, op indices or None) -> output.
EdgeFn = Callable[[torch.Tensor, torch.Tensor, Sequence[int] | None], torch.Tensor]


def without_running_stats(module: _M) -> _M:
    """Make every batch norm in `module` normalise with batch statistics only, keeping none."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


def search_ops(module: _M) -> _M:
    """A supernet's candidate ops: batch norms without running statistics (`without_running_stats`)
    and dilated convolutions with the CPU's faster input gradient (`ops.DilConv.fast_backward`)."""
    for m in module.modules():
        if isinstance(m, DilConv):
            m.fast_backward = True
    return without_running_stats(module)


class MixedEdge(nn.Module):
    """One edge holding every candidate op.

    Args:
        c: channels in and out.
        stride: 1, or 2 on a reducing edge.
        op_names: the candidate operations (nasmix.spaces.ops names).
        partial: K of PC-DARTS: 1/K of the channels pass through the ops (1: all).
        pool_bn: follow pooling ops by a non-affine batch norm, as DARTS's search does.
    """

    def __init__(self, c: int, stride: int, op_names: Sequence[str], partial: int = 1, pool_bn: bool = True):
        super().__init__()
        if partial < 1 or c % partial:
            raise ValueError(f"partial channels K={partial} must divide the {c} channels")
        self.stride, self.partial, self.op_names = stride, partial, tuple(op_names)
        c_op = c // partial
        ops = []
        for name in self.op_names:
            op = make_op(name, c_op, stride, affine=False)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c_op, affine=False))
            ops.append(op)
        self.ops = search_ops(nn.ModuleList(ops))
        self._skip = {i for i, n in enumerate(self.op_names) if n == "none"}
        self.bypass_pool = nn.MaxPool2d(2, 2) if (partial > 1 and stride == 2) else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, ops: Sequence[int] | None = None) -> torch.Tensor:
        if ops is not None and len(ops) == 0:  # a skipped edge adds nothing, bypass channels included
            return x[:, :, :: self.stride, :: self.stride] * 0.0
        if self.partial > 1:
            k = x.shape[1] // self.partial
            x, rest = x[:, :k], x[:, k:]
        indices = range(len(self.ops)) if ops is None else ops
        out = None
        for i in indices:
            if i in self._skip:  # `none` adds zeros: its weight's gradient is zero anyway
                continue
            term = w[i] * self.ops[i](x)
            out = term if out is None else out + term
        if out is None:  # only `none`, or a skipped edge
            out = x[:, :, :: self.stride, :: self.stride] * 0.0
        if self.partial > 1:
            rest = self.bypass_pool(rest) if self.bypass_pool is not None else rest
            out = channel_shuffle(cat_channels([out, rest]), self.partial)
        return out


@dataclass
class EdgeContext:
    """The arch weights of one forward call; `edge()` applies them to a mixed edge."""

    weights: Weights
    active: Active | None = None
    edge_weights: Weights | None = None
    grouped: bool = False  # edges computed together use grouped convolutions (see groups.mixed_edges)
    add_unsampled: bool = False
    unit_weights: bool = False  # an edge's one sampled op has weight exactly 1, without gradient
    # Mixing weights the grouped edges have gathered in this forward, per group (see
    # groups.mixed_edges); None when cells are recomputed in backward (checkpointing replays a
    # cell's ops, so a cell may not reuse what another gathered).
    memo: dict | None = None

    def together(self, group: str) -> bool:
        """Whether the cells may compute `group`'s edges through `edges` (no edge is switched off)."""
        return self.active is None or all(ops is None or len(ops) > 0 for ops in self.active[group])

    def edge(self, group: str, index: int, module: EdgeFn, x: torch.Tensor) -> torch.Tensor:
        """The output of edge `index` of `group`."""
        ops = None if self.active is None else self.active[group][index]
        w = self.weights[group][index]
        out = module(x, w, ops)
        # The unsampled weights are zeros in value (a hard one-hot): without a gradient to pass, skip the add.
        if self.add_unsampled and ops is not None and len(ops) < w.shape[0] and w.requires_grad:
            out = out + w.index_select(0, others(w.shape[0], tuple(ops), w.device)).sum()
        if self.edge_weights is not None and group in self.edge_weights:
            out = out * self.edge_weights[group][index]
        return out

    def edges(
        self, group: str, indices: Sequence[int], modules: Sequence[nn.Module], x: torch.Tensor
    ) -> list[torch.Tensor]:
        """The outputs of edges `indices` of `group`, which all read x: together
        (nasmix.spaces.groups) when they are of one kind, else one by one through `edge`.
        Cells call it only when `together(group)` holds (cells.node_sum skips the
        switched-off edges of a discrete arch)."""
        if not batchable(modules):
            return [self.edge(group, i, m, x) for i, m in zip(indices, modules)]
        ew = None
        if self.edge_weights is not None and group in self.edge_weights:
            ew = self.edge_weights[group][rows_of(tuple(indices), self.weights[group].device)]
        ops = None if self.active is None else [self.active[group][i] for i in indices]
        memo = self.memo.setdefault(group, {}) if self.memo is not None else None
        return mixed_edges(
            modules,
            x,
            self.weights[group],
            ew,
            self.grouped,
            ops,
            self.unit_weights,
            self.add_unsampled,
            rows=indices,
            memo=memo,
        )


class _CellCounter(Protocol):
    """The memory plan's probe (nasmix.spaces.memory, which imports this module): the bytes
    autograd keeps, and where each cell starts and ends."""

    def pack(self, t: torch.Tensor) -> Any: ...
    def enter_cell(self) -> None: ...
    def leave_cell(self) -> None: ...


class Supernet(nn.Module, ABC):
    """A network of mixed edges. Subclasses build the edges and implement `run`.

    Attributes:
        arch_shapes: group -> (edges, ops): the shapes of the weights it takes.
        op_names: group -> the op names of that group's edges.
        edge_nodes: group -> the node each edge enters (edges entering the same
            node compete, e.g. in PC-DARTS's edge normalisation).
    """

    arch_shapes: dict[str, tuple[int, int]]
    op_names: dict[str, tuple[str, ...]]
    edge_nodes: dict[str, tuple[int, ...]]
    grouped_convs: bool = False  # set by the search (nasmix.accel.Accel): grouped convolutions on a GPU
    # Set by the memory plan (nasmix.spaces.memory): cells recomputed in backward.
    checkpoint_cells: bool = False
    # True: the supernet plans its own recomputation (the hierarchical space's motifs,
    # nasmix.spaces.motif_memory), and the search's plan (nasmix.spaces.memory) leaves it
    # alone: one plan per space.
    own_memory_plan: bool = False
    _saved_counter: _CellCounter | None = None  # the memory plan's probe, while it measures

    def forward(
        self,
        x: torch.Tensor,
        weights: Weights,
        active: Active | None = None,
        edge_weights: Weights | None = None,
        add_unsampled: bool = False,
        unit_weights: bool = False,
    ) -> torch.Tensor:
        """Logits for a batch under the given architecture weights (see the module docstring)."""
        ctx = EdgeContext(weights, active, edge_weights, self.grouped_convs, add_unsampled, unit_weights)
        ctx.memo = None if self.checkpoint_cells else {}
        return self.run(x, ctx)

    @abstractmethod
    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        """The network's computation; every mixed edge goes through `ctx.edge` (or `ctx.edges`),
        and every cell through `call_cell` (the memory plan's hook) unless `own_memory_plan`."""

    def call_cell(self, cell: nn.Module, *args):
        """`cell(*args)`, or its activation-checkpointed form when the memory plan says so
        (the backward pass recomputes the cell instead of keeping its activations)."""
        counter = self._saved_counter
        if self.checkpoint_cells and torch.is_grad_enabled():
            if counter is not None:  # checkpointing keeps the cell's inputs
                for a in args:
                    if isinstance(a, torch.Tensor):
                        counter.pack(a)
            return torch.utils.checkpoint.checkpoint(cell, *args, use_reentrant=False)
        if counter is not None:
            counter.enter_cell()
        out = cell(*args)
        if counter is not None:
            counter.leave_cell()
        return out

    def uniform_weights(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Equal weights on every op of every edge (a convenient default)."""
        return {g: torch.full(s, 1.0 / s[1], device=device) for g, s in self.arch_shapes.items()}
