"""How much memory a supernet's search step needs, and whether its cells must be recomputed.

`plan_memory` measures, rather than guesses: it runs the supernet forward at
batches 1 and 2 with `torch.autograd.graph.saved_tensors_hooks` counting the
bytes autograd keeps for the backward pass (distinct storages only), fits
bytes = a x batch + b, and extrapolates to the search batch. To that it adds
the weights with their gradients and momentum, and the images the loaders
hold. If the total exceeds the device's budget, and the supernet runs its
cells through `Supernet.call_cell` (simple_cell, darts, nb201), the plan turns
on activation checkpointing of every cell: a cell's activations are then
recomputed during the backward pass instead of kept, so only the cells'
inputs stay, plus one cell's activations at a time. The search computes the
same numbers either way (the recomputation replays the same operations; the
supernet draws no random numbers).

The hook for a space: route each cell call in `Supernet.run` through
`self.call_cell(cell, *args)`; a supernet that routes none (chain) gets a
plan that says whether it fits and cannot help it. The hierarchical space
plans its own memory instead (nasmix.spaces.motif_memory: per forward call,
per cell, recomputing motifs rather than whole cells, since its memory lies
in the motifs and depends on the ops active in each call); its supernet sets
`own_memory_plan`, and the search does not run this plan on it. So every
space has exactly one plan.

The budget: on CUDA the card's memory less 10% (allocator and cuDNN
workspace); on a CPU the memory available when the search starts;
`Accel.memory_budget` overrides both (tests, or planning for a smaller card).

Example:
    >>> import torch
    >>> from nasmix import registry
    >>> from nasmix.testing import TINY_TASK
    >>> net = registry.create("space", "nb201").supernet(TINY_TASK, "tiny")
    >>> plan = plan_memory(net, TINY_TASK.shape, batch=64, budget=10**12)
    >>> plan.checkpoint, plan.fits
    (False, True)
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nasmix.events import MemoryPlanned
from nasmix.spaces.supernet import Supernet

MARGIN = 1.25  # headroom over the kept activations: the backward pass's transient gradients and buffers


@dataclass(frozen=True)
class MemoryPlan:
    """A supernet's estimated memory at one batch size, and the choice made.

    Attributes:
        batch: the batch size planned for.
        budget_bytes: what the device offers (None: unknown, no checkpointing).
        fixed_bytes: weights, their gradients and momentum, architecture parameters, held images.
        activation_bytes: kept for the backward pass without checkpointing (x MARGIN).
        checkpointed_bytes: the same with checkpointed cells (None: not needed, so not measured, or
            the supernet has no cells to checkpoint).
        checkpoint: whether the cells are checkpointed.
        fits: whether the chosen plan's total is within the budget.
    """

    batch: int
    budget_bytes: int | None
    fixed_bytes: int
    activation_bytes: int
    checkpointed_bytes: int | None
    checkpoint: bool
    fits: bool

    @property
    def total_bytes(self) -> int:
        """The estimated peak of the chosen plan."""
        chosen = self.checkpointed_bytes if self.checkpoint else self.activation_bytes
        return self.fixed_bytes + int(chosen or 0)

    def as_event(self, space: str) -> MemoryPlanned:
        """The `MemoryPlanned` event of this plan for a search of `space` (bytes as integers)."""
        return MemoryPlanned(space, **asdict(self), total_bytes=self.total_bytes)


class _SavedBytes:
    """Bytes autograd saves for backward while active, distinct storages only, split by cell."""

    def __init__(self) -> None:
        self.seen: set = set()
        self.total = 0
        self.cell_peak = 0  # the most bytes saved inside one `call_cell`
        self._cell_start: int | None = None

    def pack(self, t: torch.Tensor):
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in self.seen and not isinstance(t, nn.Parameter):
            self.seen.add(key)
            self.total += t.untyped_storage().nbytes()
        return t

    def enter_cell(self) -> None:
        self._cell_start = self.total

    def leave_cell(self) -> None:
        if self._cell_start is not None:
            self.cell_peak = max(self.cell_peak, self.total - self._cell_start)
        self._cell_start = None


def saved_bytes(net: Supernet, shape: tuple[int, ...], batch: int, autocast=None) -> tuple[int, int]:
    """(bytes autograd keeps for one weighted-sum forward at `batch`, the most inside one cell).

    The supernet's buffers (batch-norm running statistics) are restored afterwards.
    """
    conv = next(p for p in net.parameters() if p.dim() == 4)
    buffers = {name: b.clone() for name, b in net.named_buffers()}
    x = torch.zeros((batch, *shape), device=conv.device)
    if conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous():
        x = x.contiguous(memory_format=torch.channels_last)  # as the loaders serve a channels_last supernet
    weights = net.uniform_weights(conv.device)
    counter = _SavedBytes()
    previous = getattr(net, "_saved_counter", None)
    net._saved_counter = counter
    try:
        hooks = torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t)
        with hooks, autocast or contextlib.nullcontext():
            net(x, weights)
    finally:
        net._saved_counter = previous
        with torch.no_grad():
            for name, b in net.named_buffers():
                b.copy_(buffers[name])
    return counter.total, counter.cell_peak


def free_bytes(device: torch.device) -> int | None:
    """The memory free on `device` now (None when unknown): on CUDA the card's free memory plus
    what torch's cache holds unused, on a CPU MemAvailable. Both memory plans read it (this one's
    CPU budget, and the hierarchical space's, nasmix.spaces.motif_memory)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return None


def default_budget(device: torch.device) -> int | None:
    """What a search may use on `device` (see the module docstring); None when unknown."""
    if device.type == "cuda":
        return int(0.9 * torch.cuda.get_device_properties(device).total_memory)
    return free_bytes(device)


def plan_memory(
    net: Supernet, shape: tuple[int, ...], batch: int, budget: int | None, held_bytes: int = 0, autocast=None
) -> MemoryPlan:
    """Estimate a search step's memory and checkpoint the cells when it would not fit.

    Args:
        net: the supernet, on its device (its `checkpoint_cells` is set by the plan).
        shape: (C, H, W) of one image.
        batch: the search batch size.
        budget: bytes the device offers (None: no checkpointing).
        held_bytes: device memory held besides the supernet (the loaders' images).
        autocast: the autocast context the search runs its forward in (bf16 halves activations).

    Returns:
        The MemoryPlan (also applied: `net.checkpoint_cells`).
    """
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    fixed = 3 * params + held_bytes  # weights, gradients, momentum
    net.checkpoint_cells = False
    (a1, c1), (a2, c2) = (saved_bytes(net, shape, b, autocast) for b in (1, 2))
    activations = int(MARGIN * max(a2 + (a2 - a1) * (batch - 2), 0))
    over = budget is not None and fixed + activations > budget
    checkpointed = None
    if over and c2 > 0:  # the supernet routes its cells through call_cell: what would checkpointing keep?
        per_cell = c2 + (c2 - c1) * (batch - 2)  # one cell's activations, recomputed in the backward pass
        net.checkpoint_cells = True
        o1, o2 = (saved_bytes(net, shape, b, autocast)[0] for b in (1, 2))  # cell inputs, stem, head
        net.checkpoint_cells = False
        checkpointed = int(MARGIN * (o2 + (o2 - o1) * (batch - 2) + per_cell))
    checkpoint = bool(over and checkpointed is not None and checkpointed < activations)
    net.checkpoint_cells = checkpoint
    chosen = checkpointed if checkpoint else activations
    fits = budget is None or fixed + int(chosen or 0) <= budget
    return MemoryPlan(batch, budget, fixed, activations, checkpointed, checkpoint, fits)
