"""Zen-score: the log expected change of the pre-pooling features under a small input perturbation."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import proxy

MIXUP_GAMMA = 1e-2


def _gaussian_init(net: nn.Module, gen: torch.Generator) -> None:
    """Zen-NAS's re-initialisation: N(0, 1) weights, unit batch-norm scales, zero biases."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen).to(m.weight))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@proxy("zen")
def zen(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Zen-score (Lin et al. 2021, Zen-NAS).

    log E||f(z) - f(z + 0.01 e)||_1 + sum over BN of log sqrt(mean running var).

    The network is re-initialised as Zen-NAS does (Gaussian weights), f is
    the last feature map before global pooling, z and e are standard Gaussian
    batches of x's shape (weights and inputs drawn from a generator seeded 0:
    the score is deterministic), the expectation
    is the batch mean of the per-image L1 norm, and the batch-norm term reads
    each BatchNorm2d's running variance after the two forward passes in
    training mode. Departure: f is found generically as the last 4-D
    activation with more than one pixel produced by any module (Zen-NAS asks
    each model for its `forward_pre_GAP`). A network whose features ignore
    the input scores -inf (log 0). NASLib's `zen` is unfinished at
    the reference commit; this follows the Zen-NAS code.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> import math
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        ...                     nn.Flatten(), nn.Linear(64, 2))
        >>> math.isfinite(zen(net, torch.randn(2, 3, 4, 4), None, Task("t", 2, (3, 4, 4))))
        True
    """
    features: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs, out) -> None:
        if torch.is_tensor(out) and out.dim() == 4 and out.shape[2] * out.shape[3] > 1:
            features.append(out)

    gen = torch.Generator().manual_seed(0)  # on the CPU: the same draws on every device
    z = torch.randn(x.shape, generator=gen).to(x)
    e = torch.randn(x.shape, generator=gen).to(x)
    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            _gaussian_init(net, gen)
            net.train()
            net(z)
            f1 = features[-1] if features else None
            features.clear()
            net(z + MIXUP_GAMMA * e)
            f2 = features[-1] if features else None
    finally:
        for h in handles:
            h.remove()
    if f1 is None or f2 is None:
        raise ValueError("zen needs a network with a 4-D feature map before its pooling")
    score = torch.log((f1 - f2).abs().sum(dim=(1, 2, 3)).mean().double())
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d) and m.running_var is not None:
            score = score + torch.log(torch.sqrt(m.running_var.double().mean()))
    return float(score)
