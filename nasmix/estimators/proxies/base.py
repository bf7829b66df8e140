"""What the zero-cost proxies share: their signature, their registration and the layers they read.

A proxy is a function `proxy(net, x, y, task) -> float`, registered with the
`@proxy(NAME)` decorator (`nasmix list proxy`):
- `net`: an untrained network on x's device, in training mode, without an
  auxiliary head (`main_only`).
- `x`, `y`: one batch of normalised images (B, C, H, W) and labels (B,).
- `task`: classes and image shape.
The function may change the network as it measures (weights, gradients, dtype,
batch-norm statistics, modes); the decorator restores every parameter, gradient,
buffer, mode and attribute afterwards (`network_kept`), so that the caller gets
the network back as it gave it, and the proxy contract (nasmix.testing.check_proxy)
checks that it does. Higher is better, as in Abdelfattah et al. (2021) and
NASLib: the signs follow NASLib's `predictors/pruners/measures`; a proxy where
lower is better says so (`@proxy(NAME, higher_is_better=False)`, and "lower is
better" in its docstring), and the zero_cost estimator negates it. Proxies that
sum per-weight saliencies sum them over the weights of every convolution and
linear layer, as NASLib's `get_layer_metric_array` does.

Example:
    >>> from torch import nn
    >>> len(weight_layers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 2))))
    2
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
from torch import nn

from nasmix import registry
from nasmix.data.base import Task

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, Task], float]


@contextlib.contextmanager
def network_kept(net: nn.Module) -> Iterator[nn.Module]:
    """Give the network back as it was: on exit, every parameter (the same object, its
    values, dtype, gradient and requires_grad), buffer, train/eval mode and module
    attribute (a patched `forward`) is restored.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> with network_kept(net):
        ...     _ = net.double().eval()(torch.randn(3, 2, dtype=torch.float64))
        >>> net.training, net[0].weight.dtype
        (True, torch.float32)
    """
    saved = []
    with torch.no_grad():
        for m in net.modules():
            params = {}
            for k, p in m._parameters.items():
                if p is not None:
                    grad = None if p.grad is None else p.grad.detach().clone()
                    params[k] = (p, p.detach().clone(), grad, p.requires_grad)
            buffers = {k: b.detach().clone() for k, b in m._buffers.items() if b is not None}
            saved.append((m, dict(m.__dict__), params, buffers))
    try:
        yield net
    finally:
        with torch.no_grad():
            for m, attributes, params, buffers in saved:
                for key in [k for k in m.__dict__ if k not in attributes]:
                    del m.__dict__[key]
                m.__dict__.update(attributes)  # modes, and the containers below (the same dicts)
                for k, (p, data, grad, requires_grad) in params.items():
                    m._parameters[k] = p
                    p.data = data
                    p.grad = grad
                    p.requires_grad_(requires_grad)
                m._buffers.update(buffers)


def proxy(name: str, *, higher_is_better: bool = True) -> Callable[[ProxyFn], ProxyFn]:
    """Register a zero-cost proxy under `name` (kind "proxy"), run so that it leaves the
    network as it found it (`network_kept`).

    Args:
        name: the registry name.
        higher_is_better: whether a higher score predicts a better network (the
            zero_cost estimator negates a proxy where lower is better).

    Returns:
        A decorator; the registered function carries `higher_is_better`.

    Example:
        >>> @proxy("demo_width")
        ... def demo_width(net, x, y, task):
        ...     '''Demo: the widest layer's outputs (higher is better).'''
        ...     return float(max(m.out_features for m in net.modules() if isinstance(m, nn.Linear)))
        >>> demo_width(nn.Linear(2, 5), None, None, None), demo_width.higher_is_better
        (5.0, True)
        >>> registry.unregister("proxy", "demo_width")
    """

    def decorate(fn: ProxyFn) -> ProxyFn:
        @functools.wraps(fn)
        def kept(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
            with network_kept(net):
                return fn(net, x, y, task)

        kept.higher_is_better = higher_is_better  # type: ignore[attr-defined]
        return registry.register("proxy", name)(kept)

    return decorate


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
        net.aux = None  # type: ignore[assignment]  # nn.Module.__setattr__ takes a None for a submodule
    return net


def weight_layers(net: nn.Module) -> list[nn.Conv2d | nn.Linear]:
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
