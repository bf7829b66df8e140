"""SynFlow: the synaptic saliency of every weight with all inputs ones and the weights made positive."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import logits_of, proxy, total, weight_layers


@proxy("synflow")
def synflow(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """SynFlow (Tanaka et al. 2020; as a NAS proxy, Abdelfattah et al. 2021): sum of |w * dR/dw|.

    R is the sum of the outputs for one all-ones input after every parameter
    and buffer is replaced by its absolute value, in float64, with batch
    normalisation switched off (its forward is the identity), as NASLib's
    `synflow` measure (bn=False) does. The sum runs over convolution and
    linear weights.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten(), nn.Linear(2 * 4, 2))
        >>> synflow(net, torch.randn(2, 3, 2, 2), torch.tensor([0, 1]), Task("t", 2, (3, 2, 2))) > 0
        True
    """
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            # the BN-free network of the measure: an instance attribute that shadows the class's method
            m.forward = lambda inp: inp  # type: ignore[method-assign,assignment]
    net.double()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    logits_of(net(ones)).sum().backward()
    return total(
        [(m.weight * m.weight.grad).abs().sum() for m in weight_layers(net) if m.weight.grad is not None]
    )
