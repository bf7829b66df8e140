"""Primitive operations, as the papers define them.

Each factory takes (C, stride, affine) and returns a module mapping C channels
to C channels (spatial size divided by stride).

- DARTS (Liu et al. 2019): none, max_pool_3x3, avg_pool_3x3, skip_connect,
  sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5; ReLU-Conv-BN order;
  a separable convolution is applied twice; skip_connect with stride 2 is a
  FactorizedReduce.
- NAS-Bench-201 (Dong and Yang 2020): none, skip_connect, nor_conv_1x1,
  nor_conv_3x3, avg_pool_3x3 (ReLU-Conv-BN).
- Hierarchical (Liu et al. 2018): conv_1x1, dw_conv_3x3, sep_conv_3x3_h,
  max_pool_3x3, avg_pool_3x3, identity (and none); convolutions are followed
  by batch normalisation and ReLU.

Example:
    >>> import torch
    >>> op = OPS["sep_conv_3x3"](8, 2, False)
    >>> tuple(op(torch.zeros(2, 8, 16, 16)).shape)
    (2, 8, 8, 8)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from nasmix.errors import UnknownNameError


class Zero(nn.Module):
    """The `none` operation: zeros of the output shape (no computation)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class _Depthwise(torch.autograd.Function):
    """A stride-1 depthwise convolution whose input gradient is a forward depthwise convolution
    with the kernel flipped (the same sums in another order; see `depthwise`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, padding: tuple, dilation: tuple) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation = padding, dilation
        return F.conv2d(x, weight, None, 1, padding, dilation, weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        w = weight.to(grad.dtype)  # under autocast the forward ran in grad's dtype (bf16)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = F.conv2d(grad, w.flip(2, 3), None, 1, ctx.padding, ctx.dilation, weight.shape[0]).to(x.dtype)
        if ctx.needs_input_grad[1]:
            pad, dil, groups = list(ctx.padding), list(ctx.dilation), weight.shape[0]
            only_weight = [False, True, False]
            backward = torch.ops.aten.convolution_backward
            args = ([1, 1], pad, dil, False, [0, 0], groups, only_weight)
            if grad.dtype in (torch.bfloat16, torch.float16):
                # oneDNN's reduced-precision weight gradient of a dilated depthwise convolution is
                # wrong on some CPUs (see `depthwise_conv`): taken in fp32, from the same values.
                grad, w = grad.float(), weight.float()
            gw = backward(grad, x.to(grad.dtype), w, None, *args)[1]
            gw = gw.to(weight.dtype)
        return gx, gw, None, None


def depthwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` for a depthwise convolution; on a CPU, for a dilated kernel at stride 1 with
    "same" padding, the input gradient runs as a forward convolution. Measured on a 2-core AMD
    EPYC, batch 64, 16 channels, 32x32, channels_last: the input gradient of a dilated 3x3 takes
    0.3 ms against 3.8, of a dilated 5x5 0.7 against 8.2; a whole DilConv's forward and backward
    20% less (5x5) and 8% less (3x3). Elsewhere (CUDA, undilated kernels, whose backward gains
    nothing, strides, no gradient wanted: inference, export) it is nn.Conv2d's forward.
    """
    if conv.bias is not None or not _fast_depthwise(x, conv.weight, conv.stride, conv.padding, conv.dilation):
        return conv(x)  # the forward is the same; without a backward there is nothing to gain
    return _Depthwise.apply(x, conv.weight, conv.padding, conv.dilation)


def depthwise_conv(
    x: torch.Tensor, weight: torch.Tensor, stride: tuple, padding: tuple | str, dilation: tuple
) -> torch.Tensor:
    """`F.conv2d(x, weight, None, stride, padding, dilation, groups=weight.shape[0])`, a depthwise
    convolution (of several edges' concatenated weights, say), with `depthwise`'s backward on a CPU.

    That backward also takes a reduced-precision weight gradient in fp32: on an Intel Xeon with
    AVX-512 and avx512_bf16 (torch 2.14.1, 2026-12-02), oneDNN's bf16 weight gradient of a
    stride-1 dilated depthwise convolution on a channels_last 32 x 32 input was garbage (errors
    of 90% to 1e36 and NaN against float64, batch 2 to 64, 8 to 64 channels, 3x3 and 5x5 at
    dilation 2) while its input gradient, its forward, undilated kernels, 8 x 8 and 16 x 16
    inputs and fp32 were right. bf16 reaches a CPU only when CUDA's settings are emulated there
    (`Accel.cuda_like`, tests and benchmarks).
    """
    if _fast_depthwise(x, weight, stride, padding, dilation):
        return _Depthwise.apply(x, weight, padding, dilation)
    return F.conv2d(x, weight, None, stride, padding, dilation, weight.shape[0])


def _fast_depthwise(
    x: torch.Tensor, weight: torch.Tensor, stride: tuple, padding: tuple | str, dilation: tuple
) -> bool:
    """Whether `_Depthwise` serves this convolution: on a CPU, with a gradient wanted, a square
    dilated kernel at stride 1 with "same" padding."""
    if isinstance(padding, str):
        return False
    k, d, p = weight.shape[-1], dilation[0], padding[0]
    same = tuple(stride) == (1, 1) and weight.shape[-2] == k and p == d * (k - 1) // 2
    dilated = d > 1 and dilation[0] == dilation[1]
    square = padding[0] == padding[1]
    backward = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    return x.device.type == "cpu" and same and dilated and square and backward


class ReLUConvBN(nn.Module):
    """ReLU, convolution, batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, dilated depthwise convolution, pointwise convolution, batch norm.

    `fast_backward` (set on a supernet's candidate ops only, nasmix.spaces.supernet.search_ops)
    runs the depthwise convolution through `depthwise`; a network built from an arch keeps every
    convolution a module call, which forward hooks (the fisher and FLOPs proxies) and torch.fx
    (the exporter) rely on.
    """

    fast_backward = False

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast_backward:  # the depthwise convolution bypasses its module call (and its hooks)
            return self.op[3](self.op[2](depthwise(cast(nn.Conv2d, self.op[1]), self.op[0](x))))
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked (ReLU, depthwise, pointwise, BN) blocks; the first carries the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


ONEDNN_NARROW = 16  # input channels per group below which `pointwise` avoids oneDNN on a CPU


def _nchw(t: torch.Tensor) -> bool:
    """Whether t's strides are exactly the row-major ones (is_contiguous ignores size-1 dims)."""
    expected, step = [], 1
    for size in reversed(t.shape):
        expected.append(step)
        step *= size
    return list(t.stride()) == expected[::-1]


class _LayoutGrad(torch.autograd.Function):
    """The identity, whose backward hands on its gradient laid out channels_last."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def channels_last_grad(x: torch.Tensor) -> torch.Tensor:
    """x; in backward, on a CPU, its gradient made channels_last where x is.

    A batch norm's backward on a CPU is several times slower when its output's gradient is laid
    out unlike its input: a channel slice of a channels_last gradient (the backward of the cell
    output's concatenation) or an NCHW one (of the global average pool). Measured on an Intel
    Xeon with AVX-512 (torch 2.14.1, one thread, 2026-12-02): 64 x 32 x 16 x 16, 14.7 ms per
    call against 0.8 ms, where the copy takes a fraction of a millisecond. Elsewhere (CUDA,
    no gradient, NCHW, tracing and export) it returns x itself.
    """
    if (
        not isinstance(x, torch.Tensor)
        or x.device.type != "cpu"
        or x.dim() != 4
        or not x.requires_grad
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or x.is_contiguous()
        or not x.is_contiguous(memory_format=torch.channels_last)
    ):
        return x
    return _LayoutGrad.apply(x)


def cat_channels(xs: list[torch.Tensor]) -> torch.Tensor:
    """`torch.cat(xs, dim=1)`, each part's gradient channels_last on a CPU (`channels_last_grad`)."""
    return torch.cat([channels_last_grad(x) for x in xs], dim=1)


def pointwise(x: torch.Tensor, weight: torch.Tensor, stride: int, groups: int = 1) -> torch.Tensor:
    """`F.conv2d(x, weight, None, stride, 0, 1, groups)` for a 1x1 kernel, right on every CPU.

    On a CPU, oneDNN's weight gradient of a strided 1x1 convolution with few input channels and
    a channels_last input or weight is wrong: measured with PyTorch 2.14.1 on an AVX2 AMD EPYC
    (no AVX-512) against a float64 reference, a FactorizedReduce of 2 to 6 channels gets weight
    gradients 13% to 2,000% off, and the kernel writes past its buffers (glibc aborts the process
    a few calls later: "corrupted size vs. prev_size"). With every tensor in NCHW, and from 8
    channels on, it was exact. So on a CPU, an input of fewer than 16 channels per group with
    anything not in NCHW (a supernet on a CPU runs channels_last, nasmix.accel) is reduced as a
    matrix product over the channels of every `stride`-th pixel: the same sums, on narrow inputs
    only (partial-channel supernets), where the cost is small. Elsewhere it is the convolution.
    A search's supernet gets it through `StridedPointwise` (`guard_strided_pointwise`); a network
    built from an arch gets it while `nasmix.train` trains it (`strided_pointwise_guarded`), and
    keeps plain convolutions otherwise (export traces them, the FLOPs proxy hooks them).

    Example:
        >>> x, w = torch.randn(2, 4, 8, 8), torch.randn(6, 2, 1, 1)
        >>> y = pointwise(x.contiguous(memory_format=torch.channels_last), w, stride=2, groups=2)
        >>> torch.allclose(y, torch.nn.functional.conv2d(x, w, None, 2, 0, 1, 2), atol=1e-6), y.shape
        (True, torch.Size([2, 6, 4, 4]))
    """
    c = x.shape[1]
    narrow = x.device.type == "cpu" and c // groups < ONEDNN_NARROW
    if not narrow or (_nchw(x) and _nchw(weight)):
        return F.conv2d(x, weight, None, stride, 0, 1, groups)
    xs = x[:, :, ::stride, ::stride]  # the pixels a 1x1 kernel at this stride reads (padding 0)
    n, _, h, w = xs.shape
    y = torch.einsum(
        "goc,ngchw->ngohw", weight.reshape(groups, -1, c // groups), xs.reshape(n, groups, -1, h, w)
    )
    return y.reshape(n, -1, h, w)


class StridedPointwise(nn.Conv2d):
    """A 1x1 strided convolution without bias that computes through `pointwise`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight, self.stride[0], self.groups)


def _guard(net: nn.Module) -> list[nn.Conv2d]:
    """Makes the plain 1x1 strided convolutions without bias of `net` `StridedPointwise`s.

    Returns:
        the convolutions it changed.
    """
    convs = [
        m
        for m in net.modules()
        if type(m) is nn.Conv2d
        and m.kernel_size == (1, 1)
        and m.stride[0] == m.stride[1] > 1
        and m.padding == (0, 0)
        and m.bias is None
    ]
    for m in convs:
        m.__class__ = StridedPointwise
    return convs


def guard_strided_pointwise(net: nn.Module) -> int:
    """Makes every 1x1 strided convolution without bias of `net` a `StridedPointwise` (same
    parameters and state dict; only its forward changes): a supernet searched on a CPU in
    channels_last then avoids oneDNN's wrong narrow kernel (see `pointwise`).

    Returns:
        how many convolutions it changed.
    """
    return len(_guard(net))


@contextlib.contextmanager
def strided_pointwise_guarded(net: nn.Module) -> Iterator[int]:
    """`guard_strided_pointwise` for the time of a `with` block, then the plain convolutions back.

    `nasmix.train` trains a network built from an arch under it on a CPU in channels_last; the
    network leaves it as it came (export traces its modules, the FLOPs proxy hooks them).

    Yields:
        how many convolutions it changed.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False))
        >>> with strided_pointwise_guarded(net) as changed:
        ...     changed, type(net[0]).__name__
        (1, 'StridedPointwise')
        >>> type(net[0]).__name__
        'Conv2d'
    """
    convs = _guard(net)
    try:
        yield len(convs)
    finally:
        for m in convs:
            m.__class__ = nn.Conv2d


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two offset 1x1 stride-2 convolutions, concatenated.

    In a search's supernet its convolutions are `StridedPointwise` (`guard_strided_pointwise`).
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # keeps odd sizes aligned
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


class ConvBNReLU(nn.Module):
    """Convolution (optionally depthwise or separable), batch norm, ReLU: the hierarchical primitives."""

    def __init__(self, c: int, kernel: int, stride: int, kind: str, affine: bool = True):
        super().__init__()
        pad = kernel // 2
        if kind == "conv":
            convs = [nn.Conv2d(c, c, kernel, stride, pad, bias=False)]
        elif kind == "depthwise":
            convs = [nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False)]
        else:  # separable: depthwise then pointwise
            convs = [
                nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False),
            ]
        self.op = nn.Sequential(*convs, nn.BatchNorm2d(c, affine=affine), nn.ReLU(inplace=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)


OpFactory = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    # DARTS
    "none": lambda c, s, a: Zero(s),
    "max_pool_3x3": lambda c, s, a: nn.MaxPool2d(3, s, 1),
    "avg_pool_3x3": lambda c, s, a: nn.AvgPool2d(3, s, 1, count_include_pad=False),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, s, a: SepConv(c, c, 3, s, 1, a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, c, 5, s, 2, a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, c, 5, s, 4, 2, a),
    # NAS-Bench-201 (its skip_connect and avg_pool_3x3 are the DARTS ones at stride 1)
    "nor_conv_1x1": lambda c, s, a: ReLUConvBN(c, c, 1, s, 0, a),
    "nor_conv_3x3": lambda c, s, a: ReLUConvBN(c, c, 3, s, 1, a),
    # Hierarchical (Liu et al. 2018)
    "identity": _skip,
    "conv_1x1": lambda c, s, a: ConvBNReLU(c, 1, s, "conv", a),
    "dw_conv_3x3": lambda c, s, a: ConvBNReLU(c, 3, s, "depthwise", a),
    "sep_conv_3x3_h": lambda c, s, a: ConvBNReLU(c, 3, s, "separable", a),
}

DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
HIERARCHICAL_OPS = (
    "none",
    "conv_1x1",
    "dw_conv_3x3",
    "sep_conv_3x3_h",
    "max_pool_3x3",
    "avg_pool_3x3",
    "identity",
)


def make_op(name: str, c: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Build a primitive by name."""
    if name not in OPS:
        raise UnknownNameError("operation", name, OPS)
    return OPS[name](c, stride, affine)
