"""L2 norm: the sum over layers of the Euclidean norm of the initial weights."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import proxy, total, weight_layers


@proxy("l2_norm")
def l2_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """L2 norm (Abdelfattah et al. 2021, as a baseline): sum over layers of ||w||_2 at initialisation.

    No data is used; one norm per convolution or linear weight tensor, summed
    (NASLib's `l2_norm`).

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> l2_norm(nn.Linear(3, 4), None, None, None) > 0
        True
    """
    with torch.no_grad():
        return total([m.weight.norm() for m in weight_layers(net)])
