"""What the zero-cost proxies share: their signature and the layers they read.

A proxy is a registered function `proxy(net, x, y, task) -> float`:
- `net`: a freshly initialised network on x's device, in training mode,
  without an auxiliary head (`main_only`). A proxy may change it (weights,
  gradients, hooks, dtype): the caller builds a new one for every call.
- `x`, `y`: one batch of normalised images (B, C, H, W) and labels (B,).
- `task`: classes and image shape.
Higher is better, as in Abdelfattah et al. (2021) and NASLib: the signs follow
NASLib's `predictors/pruners/measures`. Proxies that sum per-weight saliencies
sum them over the weights of every convolution and linear layer, as NASLib's
`get_layer_metric_array` does.

Example:
    >>> from torch import nn
    >>> len(weight_layers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 2))))
    2
"""

from __future__ import annotations

import torch
from torch import nn


def main_only(net: nn.Module) -> nn.Module:
    """The network without its auxiliary head, if it has one (an `aux` module, as DARTS's networks).

    A zero-cost proxy scores the network's main output: its logits, and for
    nwot, zen, params and the saliency sums, its own layers. NASLib scores
    networks without an auxiliary head; the zero_cost estimator passes every
    network through here first.

    Returns:
        The same network, its head removed.
    """
    if isinstance(getattr(net, "aux", None), nn.Module):
        net.aux = None
    return net


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """The convolution and linear layers of a network, in module order."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def logits_of(out) -> torch.Tensor:
    """The logits of a forward call's output (networks with an auxiliary head return a tuple)."""
    return out[0] if isinstance(out, tuple) else out


def loss_backward(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one forward pass, back-propagated into the weights' .grad."""
    net.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(logits_of(net(x)).float(), y)
    loss.backward()
    return loss.detach()


def total(values: list[torch.Tensor]) -> float:
    """The sum of a list of device scalars, read with one host transfer."""
    if not values:
        return 0.0
    return float(torch.stack([v.detach().double() for v in values]).sum())


def corrcoef_rows(m: torch.Tensor) -> torch.Tensor:
    """Row correlation matrix (float64). A row with no variance correlates 1 with every row:
    it carries no information that tells inputs apart, so it counts as fully redundant
    (NumPy would give NaN)."""
    m = m.double()
    m = m - m.mean(dim=1, keepdim=True)
    norm = m.norm(dim=1, keepdim=True)
    dead = (norm == 0).flatten()
    c = (m / norm.clamp_min(1e-300)) @ (m / norm.clamp_min(1e-300)).T
    c = c.clamp(-1.0, 1.0)
    if dead.any():
        c[dead, :] = 1.0
        c[:, dead] = 1.0
    return c


def input_jacobian(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """d(sum of the outputs)/d(input) for each image: (B, C*H*W) (Mellor et al.'s Jacobian)."""
    x = x.detach().clone().requires_grad_(True)
    net.zero_grad(set_to_none=True)
    out = logits_of(net(x))
    out.backward(torch.ones_like(out))
    if x.grad is None:  # the outputs do not depend on the input at all (e.g. an all-`none` cell)
        return torch.zeros(len(x), x[0].numel(), device=x.device)
    return x.grad.detach().reshape(len(x), -1)
