"""Grad norm: the sum over layers of the Euclidean norm of the loss gradient."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import loss_backward, proxy, total, weight_layers


@proxy("grad_norm")
def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Grad norm (Abdelfattah et al. 2021): sum over layers of ||dL/dw||_2.

    L is the cross-entropy of the batch; one norm per convolution or linear
    weight tensor, summed (NASLib's `grad_norm`).

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> grad_norm(net, torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]), Task("t", 3, (3, 2, 2))) > 0
        True
    """
    loss_backward(net, x, y)
    return total([m.weight.grad.norm() for m in weight_layers(net) if m.weight.grad is not None])
