"""GraSP: the Hessian-gradient product -w * (H g), summed over the weights."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import logits_of, proxy, total, weight_layers


@proxy("grasp")
def grasp(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """GraSP (Wang et al. 2020; as a NAS proxy, Abdelfattah et al. 2021): sum of -w * (H g).

    g is the gradient of the batch's cross-entropy with respect to the
    convolution and linear weights, H its Hessian; H g comes from
    differentiating g . stop_gradient(g) (NASLib's `grasp`, temperature 1, one
    iteration). The minus sign is NASLib's: so signed, the score rises with
    accuracy.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> import math
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
        >>> x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> math.isfinite(grasp(net, x, y, Task("t", 3, (3, 2, 2))))
        True
    """
    weights = [m.weight for m in weight_layers(net)]
    for w in weights:
        w.requires_grad_(True)
    net.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(logits_of(net(x)).float(), y)
    first = torch.autograd.grad(loss, weights, allow_unused=True)
    loss = nn.functional.cross_entropy(logits_of(net(x)).float(), y)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = sum((g0.detach() * g).sum() for g0, g in zip(first, grads) if g0 is not None and g is not None)
    if not torch.is_tensor(z) or not z.requires_grad:
        return 0.0
    z.backward()
    return total([(-w.detach() * w.grad).sum() for w in weights if w.grad is not None])
