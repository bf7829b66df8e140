"""Plain: the first-order Taylor saliency w * dL/dw, summed with its sign."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import loss_backward, proxy, total, weight_layers


@proxy("plain")
def plain(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Plain (Mozer and Smolensky 1989; as a NAS proxy, Abdelfattah et al. 2021): sum of w * dL/dw.

    L is the cross-entropy of the batch; the sum keeps signs (NASLib's `plain`).

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> import math
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> math.isfinite(plain(net, x, y, Task("t", 3, (3, 2, 2))))
        True
    """
    loss_backward(net, x, y)
    return total([(m.weight * m.weight.grad).sum() for m in weight_layers(net) if m.weight.grad is not None])
