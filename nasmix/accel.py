"""How the one-shot hot loop runs on a device: autocast, memory format, optimizer kernels.

Every choice that used to hang on `device.type == "cuda"` lives in one value,
`Accel`, so that a CPU test can run the very code path a GPU runs (bf16
autocast, channels_last, fused optimizers) by passing `Accel.cuda_like()`,
and a benchmark can switch precision on any device.

`Accel.auto(device, amp)` is what a search uses unless told otherwise:
- CUDA: bf16 autocast (when `amp`), channels_last, fused SGD and Adam,
  grouped convolutions across a node's mixed edges;
- CPU: fp32, channels_last, fused SGD and Adam, mixed edges convolved one
  by one. Measured on a 2-core AMD EPYC, one thread, batch 64 at 16 channels
  and 32x32: channels_last makes a 3x3 max pool's forward and backward 5x
  faster (5.6 ms against 29 ms), the average pool 4x, depthwise and 1x1
  convolutions and batch norm 2-3x; the fused SGD step over the DARTS
  supernet's 1,399 tensors takes 3.2 ms against 14.5 ms for the per-tensor
  loop and 20.7 ms for foreach; a grouped convolution over four edges'
  weights trains 3-4x slower than the four convolutions apart.

Example:
    >>> import torch
    >>> Accel.auto(torch.device("cpu"))
    Accel(bf16=False, channels_last=True, fused=True, grouped_convs=False, memory_budget=None)
    >>> with Accel.cuda_like().autocast(torch.device("cpu")):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Accel:
    """The device-dependent settings of a search's hot loop.

    Attributes:
        bf16: bf16 autocast around the supernet forward (the loss is taken in fp32).
        channels_last: the supernet's weights and the batches in channels_last memory format.
        fused: fused optimizer kernels (one kernel per step for all tensors).
        grouped_convs: the mixed edges that leave one node run each op kind as one grouped
            convolution across the edges (nasmix.spaces.groups): few kernel launches on a
            GPU; on this CPU grouped convolutions train 3-4x slower than separate ones.
        memory_budget: bytes the search may use on the device (None: the device's own,
            nasmix.spaces.memory.default_budget); the memory plan checkpoints cells beyond it.
            The hierarchical space plans its own memory (its `memory_gib` option) and ignores it.
    """

    bf16: bool = False
    channels_last: bool = False
    fused: bool = True
    grouped_convs: bool = False
    memory_budget: int | None = None

    @classmethod
    def auto(cls, device: torch.device | str, amp: bool = True) -> Accel:
        """The settings a search uses on `device` (see the module docstring).

        Args:
            device: where the search runs.
            amp: allow bf16 autocast (BilevelConfig.amp); it applies on CUDA only.
        """
        cuda = torch.device(device).type == "cuda"
        return cls(bf16=amp and cuda, channels_last=True, fused=True, grouped_convs=cuda)

    @classmethod
    def cuda_like(cls) -> Accel:
        """CUDA's settings, for running the GPU's code path on any device (tests, benchmarks)."""
        return cls(bf16=True, channels_last=True, fused=True, grouped_convs=True)

    def autocast(self, device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager:
        """bf16 autocast on `device` when `bf16` and `enabled`, else a no-op context."""
        device = torch.device(device)
        if not (self.bf16 and enabled):
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def sgd(self, params: Iterable, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
        """SGD over `params`, every momentum buffer created up front.

        PyTorch's fused SGD creates momentum buffers on its first step only; a
        parameter that first receives a gradient on a later step (an op GDAS
        had not sampled yet, an edge few-shot NAS had fixed) would reach the
        kernel without one and raise a TypeError. A zero buffer gives the same
        first update as a missing one (momentum x 0 + grad = grad, dampening 0).

        Returns:
            torch.optim.SGD, fused when `fused`.
        """
        params = list(params)
        kind = {"fused": True} if self.fused else {}
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **kind)
        if momentum:
            for p in params:
                opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
        return opt

    def adam(self, params: Iterable, lr: float, betas: tuple, weight_decay: float) -> torch.optim.Adam:
        """Adam over `params`, fused when `fused` (Adam creates a parameter's state at its first gradient)."""
        kind = {"fused": True} if self.fused else {}
        return torch.optim.Adam(list(params), lr=lr, betas=betas, weight_decay=weight_decay, **kind)
