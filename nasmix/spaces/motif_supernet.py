"""The hierarchical space's supernet (NASLib's and the light design).

Every edge of every cell holds a `MixedMotif`: one `SuperMotif` per level-2
motif, each a DAG of primitive `MixedEdge`s and the design's motif end. All
instances of motif m, in every cell edge and every cell, are driven by the
weights of group "motif<m>"; the cell weights (group "cell") are shared by
the cells, as NASLib shares them (312 architecture parameters for its network).

Memory: in the weighted-sum mode every primitive of every motif keeps its
activations for the backward pass (NASLib's network: 43 GB at batch 64). A
motif instance may instead be recomputed in the backward pass
(`torch.utils.checkpoint`): only its input and output are kept. Which cells
recompute is decided per forward call by `nasmix.spaces.motif_memory`: from
an estimate of what each cell keeps and the device's free memory (or a fixed
`memory_gib`), or forced on or off. This is the space's only memory plan: the
supernet says so (`own_memory_plan`), and a one-shot search does not run
its own plan (nasmix.spaces.memory, which checkpoints whole cells of the
other spaces through `Supernet.call_cell`) on it.

Example:
    >>> import torch
    >>> from nasmix.spaces.motifs import LIGHT, Macro
    >>> macro = Macro(4, stages=1, stem_stride=2)
    >>> sn = HierarchicalSupernet(Task("t", 10, (3, 8, 8)), macro, LIGHT, motifs=2)
    >>> tuple(sn(torch.zeros(2, 3, 8, 8), sn.uniform_weights()).shape)
    (2, 10)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import cast

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as recompute

from nasmix.data.base import Task
from nasmix.spaces.motif_memory import MemoryPlanner, computes_many
from nasmix.spaces.motifs import (
    CELL_NODES,
    MOTIF_NODES,
    Design,
    Macro,
    dag_edges,
    macro_layers,
    motif_end,
    run_dag,
)
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet


def cell_options(design: Design, motifs: int) -> tuple[str, ...]:
    """The options of a cell edge: the motifs, after `none` where the design allows it."""
    return (("none",) if design.cell_none else ()) + tuple(f"motif{m}" for m in range(motifs))


class SuperMotif(nn.Module):
    """One instance of a level-2 motif in the supernet: a DAG of primitive MixedEdges and the motif end."""

    def __init__(self, c: int, design: Design, partial: int = 1):
        super().__init__()
        edges = dag_edges(MOTIF_NODES)
        self.edges = nn.ModuleList(MixedEdge(c, 1, design.ops, partial, pool_bn=False) for _ in edges)
        self.end = motif_end(design, c, affine=False)

    def forward(self, x: torch.Tensor, ctx: EdgeContext, group: str) -> torch.Tensor:
        return run_dag(x, MOTIF_NODES, lambda k, h: ctx.edge(group, k, self.edges[k], h), self.end)


@contextlib.contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Keep batch-norm running statistics unchanged (for a checkpoint's recomputation)."""
    kind = nn.modules.batchnorm._BatchNorm
    bns = [m for m in module.modules() if isinstance(m, kind) and m.track_running_stats]
    # num_batches_tracked is a buffer (typed Optional) that every norm tracking statistics has
    saved = [(m.momentum, cast(torch.Tensor, m.num_batches_tracked).clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved):
            m.momentum = momentum
            cast(torch.Tensor, m.num_batches_tracked).copy_(tracked)


class MixedMotif(nn.Module):
    """A level-3 mixed edge: its candidates are the motifs (after `none` in the light design).

    Same semantics as `MixedEdge`: the weighted sum of the candidates listed in
    `ops` (all when None), `none` skipped.

    Args:
        c: channels in and out.
        motifs: the number of level-2 motifs.
        design: NASLIB or LIGHT.
        partial: PC-DARTS's K, applied to the primitive edges.
    """

    def __init__(self, c: int, motifs: int, design: Design, partial: int = 1):
        super().__init__()
        self.motifs = nn.ModuleList(SuperMotif(c, design, partial) for _ in range(motifs))
        self.op_names = cell_options(design, motifs)
        self.first = 1 if design.cell_none else 0  # the option index of motif 0

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        ops: Sequence[int] | None = None,
        *,
        ctx: EdgeContext,
        checkpoint: bool = False,
    ) -> torch.Tensor:
        out = None
        for i in range(len(self.op_names)) if ops is None else ops:
            if i < self.first:  # `none` adds zeros
                continue
            term = w[i] * self._motif(i - self.first, x, ctx, checkpoint)
            out = term if out is None else out + term
        return x * 0.0 if out is None else out

    def _motif(self, m: int, x: torch.Tensor, ctx: EdgeContext, checkpoint: bool) -> torch.Tensor:
        motif, group = self.motifs[m], f"motif{m}"
        if not (checkpoint and torch.is_grad_enabled() and computes_many(ctx, group)):
            return motif(x, ctx, group)
        contexts = lambda: (contextlib.nullcontext(), frozen_bn_stats(motif))  # noqa: E731
        return recompute(motif, x, ctx, group, use_reentrant=False, context_fn=contexts)


class SuperCell(nn.Module):
    """The supernet's cell: CELL_NODES nodes, every edge a MixedMotif (group "cell").

    Attributes:
        checkpoint: recompute this cell's weighted motifs in the backward pass
            (set before each forward call by the supernet's memory plan).
    """

    def __init__(self, c: int, motifs: int, design: Design, partial: int = 1):
        super().__init__()
        self.edges = nn.ModuleList(MixedMotif(c, motifs, design, partial) for _ in dag_edges(CELL_NODES))
        self.checkpoint = False

    def forward(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        def edge(k: int, h: torch.Tensor) -> torch.Tensor:
            mixed = functools.partial(self.edges[k], ctx=ctx, checkpoint=self.checkpoint)
            return ctx.edge("cell", k, mixed, h)

        return run_dag(x, CELL_NODES, edge)


class HierarchicalSupernet(Supernet):
    """The hierarchical supernet: the macro network with SuperCells.

    Groups: "motif0".."motif{M-1}", each (edges of a motif, 7 primitives), and
    "cell", (edges of the cell, M options, or M + 1 with `none`).

    Args:
        task: classes and image shape.
        macro: the layout.
        design: NASLIB or LIGHT.
        motifs: M.
        partial: PC-DARTS's K on the primitive edges.
        checkpoint: True or False forces recomputation on or off in every cell;
            None lets the memory plan choose per forward call.
        memory_gib: the memory the plan may fill (None: a share of the device's free memory).
    """

    own_memory_plan = (
        True  # its MemoryPlanner, not the search's nasmix.spaces.memory (see the module docstring)
    )

    def __init__(
        self,
        task: Task,
        macro: Macro,
        design: Design,
        motifs: int,
        partial: int = 1,
        checkpoint: bool | None = None,
        memory_gib: float | None = None,
    ):
        super().__init__()
        if partial < 1 or macro.channels % partial:
            raise ValueError(f"partial channels K={partial} must divide the {macro.channels} channels")
        make_cell = lambda w: SuperCell(w, motifs, design, partial)  # noqa: E731
        self.layers, c_out = macro_layers(task.shape[0], macro, design, make_cell)
        self.head = nn.Linear(c_out, task.num_classes)
        self.op_names = {f"motif{m}": design.ops for m in range(motifs)}
        self.op_names["cell"] = cell_options(design, motifs)
        edges = {g: dag_edges(CELL_NODES if g == "cell" else MOTIF_NODES) for g in self.op_names}
        self.arch_shapes = {g: (len(edges[g]), len(names)) for g, names in self.op_names.items()}
        self.edge_nodes = {g: tuple(i for _, i in edges[g]) for g in self.op_names}
        self.checkpoint = checkpoint
        first = 1 if design.cell_none else 0
        make_motif = lambda c: SuperMotif(c, design, partial)  # noqa: E731
        self.planner = MemoryPlanner(make_motif, macro, motifs, first, memory_gib, key=(design.name, partial))
        self.last_plan: tuple[bool, ...] = ()

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        cells = [layer for layer in self.layers if isinstance(layer, SuperCell)]
        if torch.is_grad_enabled():
            plan = self.planner.plan(x, ctx) if self.checkpoint is None else (self.checkpoint,) * len(cells)
            for cell, flag in zip(cells, plan):
                cell.checkpoint = flag
            self.last_plan = tuple(plan)
        for layer in self.layers:
            x = layer(x, ctx) if isinstance(layer, SuperCell) else layer(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
