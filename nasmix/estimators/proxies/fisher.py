"""Fisher: the Fisher-information saliency of each channel's activation, summed."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import loss_backward, proxy, total, weight_layers


@proxy("fisher")
def fisher(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Fisher (Theis et al. 2018; Turner et al. 2020; Abdelfattah et al. 2021).

    The sum of 0.5 mean_n (a . dL/da)^2 per channel.

    For the output activation a of every convolution and linear layer and
    the gradient g of the batch's cross-entropy with respect to it, each
    output channel k scores 0.5 * mean_n (sum over positions of a * g)^2.
    As in NASLib's `fisher`, a channel's score is counted once per weight
    feeding it (it is broadcast over the weight's other dimensions before
    the sum), and a layer called twice accumulates both calls.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))
        >>> fisher(net, torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]), Task("t", 3, (3, 2, 2))) >= 0
        True
    """
    parts: list[torch.Tensor] = []

    def hook(module: nn.Conv2d | nn.Linear, inputs, out: torch.Tensor) -> None:
        if not out.requires_grad:
            return
        act = out.detach()
        fan = module.weight[0].numel()  # the weights feeding one output channel

        def on_grad(g: torch.Tensor) -> None:
            per = (act * g).sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else act * g
            parts.append(0.5 * per.float().pow(2).mean(0).sum() * fan)

        out.register_hook(on_grad)

    handles = [m.register_forward_hook(hook) for m in weight_layers(net)]
    try:
        loss_backward(net, x, y)
    finally:
        for h in handles:
            h.remove()
    return total(parts)
