"""FLOPs: the forward operations of one image, counted as NASLib's `flops` measure counts them."""

from __future__ import annotations

import math

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import proxy

_RELUS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def module_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """The operations tensorwatch's counter (torchstat's `compute_flops`) gives one leaf module's call.

    Convolutions count k_h k_w c_in (c_out / groups) per output position, plus
    one per output for a bias (multiply-adds count once); batch norm one per
    element, two when affine; ReLU-like activations one per element; max and
    average pooling k^2 per output element of each channel (with the stride of
    the first dimension for both, as there); adaptive pooling, per output
    cell, (rows + 1) x (columns + 1) of its window; linear layers in x out;
    upsampling one per output pixel (not per channel); any other module nothing.

    Args:
        module: a leaf module.
        inp, out: its first input and its output.

    Returns:
        The count.
    """
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        positions = inp.shape[0] * out.shape[2] * out.shape[3]
        bias = out.shape[1] * positions if module.bias is not None else 0
        return k_h * k_w * inp.shape[1] * (out.shape[1] // module.groups) * positions + bias
    if isinstance(module, nn.BatchNorm2d):
        return inp.numel() * (2 if module.affine else 1)
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        (k0, k1), (s, _), (p0, p1) = (_pair(module.kernel_size), _pair(module.stride), _pair(module.padding))
        # torchstat pairs the width (dim 3) with kernel_size[0] and padding[0], the height with [1]
        out_w = math.floor((inp.shape[3] + 2 * p0 - k0) / s + 1)
        out_h = math.floor((inp.shape[2] + 2 * p1 - k1) / s + 1)
        return inp.shape[0] * inp.shape[1] * out_w * out_h * k0 * k1
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        (h, w), (oh, ow) = inp.shape[2:], out.shape[2:]
        rows = [math.ceil((i + 1) * h / oh) - math.floor(i * h / oh) + 1 for i in range(oh)]
        cols = [math.ceil((j + 1) * w / ow) - math.floor(j * w / ow) + 1 for j in range(ow)]
        return inp.shape[0] * inp.shape[1] * sum(rows) * sum(cols)
    if isinstance(module, _RELUS):
        return inp.numel()
    if isinstance(module, nn.Linear):
        return inp.shape[0] * inp.shape[1] * out.shape[1]
    if isinstance(module, nn.Upsample):
        return out.shape[0] * math.prod(out.shape[2:])  # torchstat skips the channels here
    return 0


def naslib_flops(net: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> int:
    """The count behind NASLib's `flops` measure: tensorwatch's `ModelStats(net, (1, *input_shape)).Flops`.

    One image (batch 1) in evaluation mode (an auxiliary head does not run);
    every leaf module is counted with `module_flops` for its last call in the
    forward pass, as tensorwatch stores one figure per module.

    Args:
        net: the network (left in evaluation mode).
        input_shape: (C, H, W).
        device: where to run the forward pass.

    Returns:
        The count (NASLib reports it divided by 10^6).
    """
    per_module: dict[int, int] = {}

    def hook(module: nn.Module, inputs, out) -> None:
        if inputs and torch.is_tensor(inputs[0]) and torch.is_tensor(out):
            per_module[id(module)] = module_flops(module, inputs[0], out)

    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
    return int(sum(per_module.values()))


@proxy("flops")
def flops(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """FLOPs (the size baseline of Abdelfattah et al. 2021), counted as NASLib's `flops` measure counts them.

    `naslib_flops`: what tensorwatch's ModelStats counts for one image in
    evaluation mode: convolutions and linear layers (a multiply-add counts
    once), batch norms, ReLUs and pooling. NASLib reports the count divided by
    10^6; this is the plain count, which ranks the same.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The count, as a float (higher is better: a bigger network is predicted to do better).

    Example:
        >>> flops(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.zeros(1, 3, 2, 2), None, None)
        36.0
    """
    return float(naslib_flops(net, tuple(x.shape[1:]), x.device))
