"""Params: the number of trainable parameters."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import proxy
from nasmix.timing import count_params


@proxy("params")
def params(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Params (the size baseline of Abdelfattah et al. 2021): the trainable parameter count.

    NASLib reports millions; this is the plain count (`nasmix.timing.count_params`),
    which ranks the same.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The count, as a float (higher is better: a bigger network is predicted to do better).

    Example:
        >>> params(nn.Linear(3, 4), None, None, None)
        16.0
    """
    return float(count_params(net))
