"""The hierarchical supernet's memory plan: which cells recompute their motifs in the backward pass.

In the weighted-sum mode (DARTS, DrNAS) every primitive of every motif
instance keeps its activations for the backward pass; NASLib's network needs
43 GB for that at batch 64. A cell can instead run each weighted motif under
`torch.utils.checkpoint`: the motif keeps only its output, and its inside is
recomputed in the backward pass, one motif at a time. Recomputing costs a
second forward pass of those motifs, so the plan recomputes only where the
memory requires it.

Estimate (bytes per image): one motif instance of each width is run once on
the meta device (shapes only, nothing computed) under
`torch.autograd.graph.saved_tensors_hooks`, adding up the distinct storages
autograd keeps, its input excluded (the cell keeps that anyway), with the
`active` ops of that forward call. A cell keeps the sum over its edges and
the motifs they compute; recomputing, it keeps the motifs' outputs plus the
largest inside (the recomputation). Motifs whose edges each compute one op
(sampled mode, GDAS) are never recomputed: they keep about what one network
keeps. Estimates are in float32, an upper bound under bf16 autocast.

Plan: if everything fits in the budget, nothing is recomputed (fastest);
otherwise the cells that save the most by recomputing recompute first, until
the rest fits (or all recompute). The budget is `memory_gib` when given, else
FREE_SHARE of the device's free memory (CUDA: free plus what torch's cache
holds unused; CPU: MemAvailable) at the first call with a given batch shape
and set of active ops; the plan is then reused for that shape and set.

Example:
    >>> from nasmix.spaces.motifs import Macro
    >>> MemoryPlanner(lambda c: None, Macro(16), motifs=6, cell_first=0).cell_shapes((64, 3, 32, 32))
    [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasmix.spaces.memory import free_bytes  # the device probe both memory plans share
from nasmix.spaces.motifs import CELL_NODES, Macro, dag_edges
from nasmix.spaces.supernet import EdgeContext

# The share of the free memory the activations may fill; the rest covers gradients, workspaces, fragmentation.
FREE_SHARE = 0.7
GIB = 2**30
# (planner key, shape, active ops) -> (kept, output) bytes per image, measured once per process
_COSTS: dict[tuple, tuple[int, int]] = {}


def computes_many(ctx: EdgeContext, group: str) -> bool:
    """Whether some edge of the group computes several ops in this forward call."""
    return ctx.active is None or any(ops is None or len(ops) > 1 for ops in ctx.active[group])


def _frozen(active) -> tuple:
    """A group's active op lists as a hashable value."""
    return tuple(None if a is None else tuple(a) for a in active)


@dataclass(frozen=True)
class Estimate:
    """One plan and what it rests on.

    Attributes:
        kept: per cell, bytes per image kept for the backward pass without recomputation.
        recomputed: per cell, bytes per image kept when its motifs recompute.
        batch: the batch size.
        budget: the bytes the activations may fill (None: unknown, so every cell recomputes).
        plan: per cell, whether it recomputes.
    """

    kept: tuple[int, ...]
    recomputed: tuple[int, ...]
    batch: int
    budget: int | None
    plan: tuple[bool, ...]

    def need(self) -> int:
        """The bytes the cells keep under the plan, for the whole batch."""
        return self.batch * sum(r if p else k for k, r, p in zip(self.kept, self.recomputed, self.plan))


class MemoryPlanner:
    """Chooses, per forward call, which cells of a hierarchical supernet recompute their motifs.

    Args:
        make_motif: builds one SuperMotif of the given channels.
        macro: the supernet's layout (cell widths and strides).
        motifs: M, the number of level-2 motifs.
        cell_first: the cell option index of motif 0 (1 when `none` comes first).
        memory_gib: a fixed budget in GiB (None: a share of the free memory).
        key: what identifies `make_motif`'s motifs (design, partial channels): motif costs
            are measured once per process for each key, shape and set of active ops.
    """

    def __init__(
        self,
        make_motif: Callable[[int], nn.Module],
        macro: Macro,
        motifs: int,
        cell_first: int,
        memory_gib: float | None = None,
        key: tuple = (),
    ):
        self.make_motif = make_motif
        self.macro = macro
        self.motifs = motifs
        self.cell_first = cell_first
        self.memory_gib = memory_gib
        self.key = key
        self._plans: dict[tuple, Estimate] = {}
        self.last: Estimate | None = None

    def cell_shapes(self, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
        """(channels, height, width) of every cell's input, for an input batch of this shape."""
        h, w = shape[-2:]
        s = self.macro.stem_stride
        h, w = (h - 1) // s + 1, (w - 1) // s + 1  # the stem's 3x3 conv, padding 1
        out, stage_of = [], None
        for stage, c in self.macro.cell_widths():
            if stage_of is not None and stage != stage_of:  # a stride-2 separable conv between stages
                h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
            stage_of = stage
            out.append((c, h, w))
        return out

    def motif_cost(self, c: int, h: int, w: int, group: str, ctx: EdgeContext) -> tuple[int, int]:
        """(kept, output) bytes per image of one motif instance of group `group` at this shape."""
        active = None if ctx.active is None else _frozen(ctx.active[group])
        key = (self.key, c, h, w, active)
        if key not in _COSTS:
            _COSTS[key] = self._measure(c, h, w, group, active)
        return _COSTS[key]

    def _measure(self, c: int, h: int, w: int, group: str, active) -> tuple[int, int]:
        with torch.device("meta"):
            motif = self.make_motif(c)
        edges: Any = motif.edges  # a ModuleList of MixedEdges, read by structure
        rows, cols = len(edges), len(edges[0].ops)
        weights = {group: torch.zeros(rows, cols, device="meta", requires_grad=True)}
        meta_ctx = EdgeContext(weights, None if active is None else {group: [list(a) for a in active]})
        x = torch.zeros(1, c, h, w, device="meta", requires_grad=True)
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            saved[storage._cdata] = storage.nbytes()
            return t

        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = motif(x, meta_ctx, group)
            _ = weights[group][0, 0] * y  # the mixed edge keeps the motif's output for its weight's gradient
        saved.pop(x.untyped_storage()._cdata, None)
        return sum(saved.values()), y.numel() * y.element_size()

    def _signature(self, ctx: EdgeContext) -> tuple:
        if ctx.active is None:
            return ()
        return tuple((g, _frozen(ctx.active[g])) for g in sorted(ctx.active))

    def budget(self, device: torch.device) -> int | None:
        """The bytes the cells' activations may fill."""
        if self.memory_gib is not None:
            return int(self.memory_gib * GIB)
        free = free_bytes(device)
        return None if free is None else int(FREE_SHARE * free)

    def plan(self, x: torch.Tensor, ctx: EdgeContext) -> tuple[bool, ...]:
        """Per cell, whether it recomputes its weighted motifs in this forward call.

        Args:
            x: the supernet's input batch.
            ctx: the forward call's weights and active ops.

        Returns:
            One flag per cell, in order.
        """
        cells = len(self.macro.cell_widths())
        if not any(computes_many(ctx, f"motif{m}") for m in range(self.motifs)):
            # one op per edge (sampled mode): nothing worth recomputing, and no estimate needed;
            # not cached, since a sampled search's active ops differ on nearly every step
            self.last = Estimate((0,) * cells, (0,) * cells, int(x.shape[0]), None, (False,) * cells)
            return self.last.plan
        key = (tuple(x.shape), str(x.device), self._signature(ctx))
        if key in self._plans:
            self.last = self._plans[key]
            return self.last.plan
        first, cell_active = self.cell_first, None if ctx.active is None else ctx.active["cell"]
        kept, recomputed = [], []
        for c, h, w in self.cell_shapes(tuple(x.shape)):
            full = outs = inside = 0
            for e in range(len(dag_edges(CELL_NODES))):
                picked = None if cell_active is None else cell_active[e]
                options = range(first + self.motifs) if picked is None else picked
                for i in options:
                    if i < first:  # `none` keeps nothing
                        continue
                    group = f"motif{i - first}"
                    k, o = self.motif_cost(c, h, w, group, ctx)
                    full += k
                    if computes_many(ctx, group):
                        outs, inside = outs + o, max(inside, k - o)
                    else:
                        outs += k
            kept.append(full)
            recomputed.append(outs + inside)
        batch, budget = int(x.shape[0]), self.budget(x.device)
        flags = [budget is None] * len(kept)
        if budget is not None:
            need = batch * sum(kept)
            # the cells that save the most recompute first
            for i in sorted(range(len(kept)), key=lambda i: recomputed[i] - kept[i]):
                if need <= budget:
                    break
                flags[i] = True
                need -= batch * (kept[i] - recomputed[i])
        self.last = Estimate(tuple(kept), tuple(recomputed), batch, budget, tuple(flags))
        self._plans[key] = self.last
        return self.last.plan
