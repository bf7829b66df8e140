"""SNIP: connection sensitivity |w * dL/dw| summed over the weights."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import loss_backward, proxy, total, weight_layers


@proxy("snip")
def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """SNIP (Lee et al. 2019; as a NAS proxy, Abdelfattah et al. 2021): sum of |w * dL/dw|.

    L is the cross-entropy of the batch. NASLib computes the gradient of a
    multiplicative mask of ones, which equals w * dL/dw; this computes that
    product directly.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> snip(net, torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]), Task("t", 3, (3, 2, 2))) > 0
        True
    """
    loss_backward(net, x, y)
    return total(
        [(m.weight * m.weight.grad).abs().sum() for m in weight_layers(net) if m.weight.grad is not None]
    )
