"""FLOPs: the forward floating-point operations of one image."""

from __future__ import annotations

import torch
from torch import nn

from nasmix import registry
from nasmix.data.base import Task
from nasmix.timing import count_flops


@registry.register("proxy", "flops")
def flops(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """FLOPs (the size baseline of Abdelfattah et al. 2021): forward FLOPs of one image of x's shape.

    Counted by `nasmix.timing.count_flops` (a multiply-add is 2); NASLib
    reports megaFLOPs of its own counter, which ranks the same.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The count, as a float (higher scores higher).

    Example:
        >>> flops(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.zeros(1, 3, 2, 2), None, None)
        72.0
    """
    return float(count_flops(net, tuple(x.shape[1:])))
