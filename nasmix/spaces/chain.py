"""A chain-structured (macro) search space (Elsken, Metzen and Hutter, JMLR 2019, section 2).

The network is a sequence of L layers, each choosing an operation and a
width; layer i feeds layer i+1 only, with no branches. Layers L//3 and
2L//3 (counting from 0) have stride 2: they are fixed, not searched.

Arch strings list the layers in order, `op-width` joined by `/`, so that a
string says how deep its network is:
`conv3x3-16/sep3x3-32/conv5x5-32/skip-64/maxpool3x3-64/dil3x3-32`.

Example:
    >>> import numpy as np
    >>> space = Chain()
    >>> arch = space.sample(np.random.default_rng(0))
    >>> len(arch.genotype)
    6
    >>> space.parse(space.format(arch.genotype)) == arch
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.base import Choice, SearchSpace, check_size
from nasmix.spaces.ops import cat_channels
from nasmix.spaces.supernet import EdgeContext, Supernet, channel_shuffle

CHAIN_OPS = ("conv3x3", "conv5x5", "sep3x3", "dil3x3", "maxpool3x3", "skip")


def _conv(
    c_in: int, c_out: int, kernel: int, stride: int, dilation: int, separable: bool, affine: bool
) -> nn.Module:
    pad = dilation * (kernel // 2)
    if separable:  # depthwise then pointwise (one separable convolution, not DARTS's two)
        convs = [
            nn.Conv2d(c_in, c_in, kernel, stride, pad, dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        ]
    else:
        convs = [nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False)]
    return nn.Sequential(*convs, nn.BatchNorm2d(c_out, affine=affine), nn.ReLU())


def _projection(c_in: int, c_out: int, stride: int, affine: bool) -> nn.Module:
    """A 1x1 convolution + BN, or the identity when shape is kept (ResNet's option B)."""
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out, affine=affine))


def make_chain_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    """One layer's operation, mapping c_in to c_out channels.

    Convolutions are Conv-BN-ReLU; `sep3x3` is a depthwise 3x3 then a
    pointwise convolution; `dil3x3` the same with dilation 2 (a 5x5 field);
    `maxpool3x3` is followed by a 1x1 projection when the width changes;
    `skip` is the identity, or a 1x1 strided projection when the width or the
    resolution changes.

    Args:
        name: one of CHAIN_OPS.
        c_in, c_out: channels in and out.
        stride: 1, or 2 on a downsampling layer.
        affine: learn batch-norm scale and shift.

    Returns:
        The module.
    """
    if name == "conv3x3":
        return _conv(c_in, c_out, 3, stride, 1, False, affine)
    if name == "conv5x5":
        return _conv(c_in, c_out, 5, stride, 1, False, affine)
    if name == "sep3x3":
        return _conv(c_in, c_out, 3, stride, 1, True, affine)
    if name == "dil3x3":
        return _conv(c_in, c_out, 3, stride, 2, True, affine)
    if name == "maxpool3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), _projection(c_in, c_out, 1, affine))
    if name == "skip":
        return _projection(c_in, c_out, stride, affine)
    raise ConfigError(f"unknown chain op {name!r}; valid: {', '.join(CHAIN_OPS)}")


def _scaled(width: int, scale: float) -> int:
    return max(1, round(width * scale))


@registry.register("space", "chain")
class Chain(SearchSpace):
    """Chain-structured macro space (Elsken et al. 2019): L layers, each an op and a width.

    Networks: a 3x3 conv-BN-ReLU stem, the L layers (stride 2 at layers L//3
    and 2L//3), global average pooling and a linear classifier. Widths in arch
    strings are the nominal ones (`Config.widths`); "tiny" scales every width
    and the stem by `tiny_scale`, "eval" by `eval_scale` (1: the searched widths).

    The supernet has groups "op" (L, ops) and "width" (L, widths). Every layer
    runs at the widest width W: its candidate ops map W to W channels and are
    mixed as DARTS's edges are, then a channel mask keeps the first w channels
    of the chosen width (FBNetV2's channel masking): under weights it is the
    weighted sum of the width masks, under an `active` list the listed ones
    only. A narrower input arrives zero-padded to W, so a `skip` or
    `maxpool3x3` whose width grows pads with zeros in the supernet where the
    standalone network projects with a 1x1 convolution.

    Example:
        >>> space = Chain(Chain.Config(layers=3, widths=(8, 16)))
        >>> space.parse("conv3x3-8/skip-16/maxpool3x3-16").genotype
        (('conv3x3', 8), ('skip', 16), ('maxpool3x3', 16))
    """

    arch_options = ("layers", "widths", "ops")  # they decide which arch strings are valid

    @dataclass(frozen=True)
    class Config:
        """Options of the chain space.

        Attributes:
            layers: L, the number of searched layers (>= 3, for the two downsampling layers).
            widths: the widths each layer may choose.
            ops: the operations each layer may choose (a subset of CHAIN_OPS).
            stem: the stem's output channels.
            tiny_scale: width multiplier of the "tiny" size.
            eval_scale: width multiplier of the "eval" size.
        """

        layers: int = 6
        widths: tuple[int, ...] = (16, 32, 64)
        ops: tuple[str, ...] = CHAIN_OPS
        stem: int = 16
        tiny_scale: float = 0.25
        eval_scale: float = 1.0

        def __post_init__(self) -> None:
            if self.layers < 3:
                raise ConfigError(f"layers must be >= 3 (two of them downsample), got {self.layers}")
            if (
                not self.widths
                or any(int(w) < 1 for w in self.widths)
                or len(set(self.widths)) != len(self.widths)
            ):
                raise ConfigError(f"widths must be distinct positive integers, got {self.widths}")
            unknown = [op for op in self.ops if op not in CHAIN_OPS]
            if not self.ops or unknown or len(set(self.ops)) != len(self.ops):
                raise ConfigError(f"ops must be distinct names among {', '.join(CHAIN_OPS)}, got {self.ops}")
            if len(self.ops) * len(self.widths) < 2:
                raise ConfigError("a chain space needs at least two ops or two widths to choose from")
            if self.stem < 1 or self.tiny_scale <= 0 or self.eval_scale <= 0:
                raise ConfigError("stem, tiny_scale and eval_scale must be positive")

    def __init__(self, config: Config = Config()):
        self.config = config
        self.widths = tuple(int(w) for w in config.widths)

    def strides(self) -> tuple[int, ...]:
        """The stride of each layer: 2 at layers L//3 and 2L//3, else 1."""
        n = self.config.layers
        return tuple(2 if i in (n // 3, 2 * n // 3) else 1 for i in range(n))

    # ---- the arch value -------------------------------------------------
    def choices(self) -> tuple[Choice, ...]:
        out = []
        for i in range(self.config.layers):
            out += [
                Choice(f"layer{i}.op", self.config.ops),
                Choice(f"layer{i}.width", tuple(map(str, self.widths))),
            ]
        return tuple(out)

    def from_choices(self, values: Sequence[int]) -> Arch:
        n_ops, n_widths = len(self.config.ops), len(self.widths)
        ok = len(values) == 2 * self.config.layers and all(
            0 <= int(o) < n_ops and 0 <= int(w) < n_widths for o, w in zip(values[::2], values[1::2])
        )
        if not ok:
            n = 2 * self.config.layers
            raise ConfigError(f"chain needs {n} indices (op, width per layer), got {tuple(values)}")
        genotype = tuple(
            (self.config.ops[int(o)], self.widths[int(w)]) for o, w in zip(values[::2], values[1::2])
        )
        return self.arch(genotype)

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        out: list[int] = []
        for op, width in self.check(arch).genotype:
            out += [self.config.ops.index(op), self.widths.index(width)]
        return tuple(out)

    def format(self, genotype: tuple) -> str:
        return "/".join(f"{op}-{width}" for op, width in genotype)

    def parse(self, text: str) -> Arch:
        """An arch from `op-width/op-width/...`, one entry per layer.

        Raises:
            ConfigError: a malformed entry, an op or width outside this space,
                or a layer count other than `Config.layers`.
        """
        text = text.strip()
        layers = text.split("/") if text else []
        genotype = []
        for entry in layers:
            op, _, width = entry.rpartition("-")
            if op not in self.config.ops or not width.isdigit() or int(width) not in self.widths:
                raise ConfigError(
                    f"chain arch {text!r}: layer {entry!r} must be 'op-width' with op one of "
                    f"{', '.join(self.config.ops)} and width one of {', '.join(map(str, self.widths))}"
                )
            genotype.append((op, int(width)))
        if len(genotype) != self.config.layers:
            raise ConfigError(
                f"chain arch {text!r} has {len(genotype)} layers; this space has layers={self.config.layers}"
            )
        return self.arch(tuple(genotype))

    def describe(self, arch: Arch) -> str:
        lines = [f"{self.registry_name} architecture", f"  {arch.to_str()}"]
        for i, ((op, width), stride) in enumerate(zip(self.check(arch).genotype, self.strides())):
            lines.append(f"  layer {i}: {op}, {width} channels" + (", stride 2" if stride == 2 else ""))
        return "\n".join(lines)

    # ---- networks ---------------------------------------------------------
    def _scale(self, size: str) -> float:
        return {"tiny": self.config.tiny_scale, "search": 1.0, "eval": self.config.eval_scale}[
            check_size(size)
        ]

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        """The chain network of an arch.

        Args:
            arch: a chain arch.
            task: classes and image shape.
            size: "tiny", "search" or "eval" (widths scaled by tiny_scale, 1, eval_scale).

        Returns:
            A module mapping (B, C, H, W) images to (B, classes) logits.
        """
        s = self._scale(size)
        c = _scaled(self.config.stem, s)
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(task.shape[0], c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        ]
        for (op, width), stride in zip(self.check(arch).genotype, self.strides()):
            layers.append(make_chain_op(op, c, _scaled(width, s), stride))
            c = _scaled(width, s)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, task.num_classes)]
        return nn.Sequential(*layers)

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        """The weight-sharing network over ops and widths (see the class docstring).

        Args:
            task: classes and image shape.
            size: "tiny", "search" or "eval".
            partial: PC-DARTS's K; it must divide the widest scaled width.

        Returns:
            A `ChainSupernet`.
        """
        s = self._scale(size)
        widths = tuple(_scaled(w, s) for w in self.widths)
        return ChainSupernet(
            task, self.config.ops, widths, self.strides(), _scaled(self.config.stem, s), partial
        )

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        values = self.to_choices(arch)
        w_op = torch.zeros(self.config.layers, len(self.config.ops))
        w_width = torch.zeros(self.config.layers, len(self.widths))
        for i in range(self.config.layers):
            w_op[i, values[2 * i]] = 1.0
            w_width[i, values[2 * i + 1]] = 1.0
        return {"op": w_op, "width": w_width}

    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The strongest op and the strongest width of each layer.

        Args:
            weights: {"op": (L, ops), "width": (L, widths)} arch weights or logits.

        Returns:
            The arch.
        """
        shapes = {
            "op": (self.config.layers, len(self.config.ops)),
            "width": (self.config.layers, len(self.widths)),
        }
        for group, shape in shapes.items():
            if tuple(weights[group].shape) != shape:
                raise ConfigError(
                    f"chain weights {group!r} must have shape {shape}, got {tuple(weights[group].shape)}"
                )
        ops = weights["op"].detach().argmax(dim=1).tolist()
        widths = weights["width"].detach().argmax(dim=1).tolist()
        return self.from_choices([v for pair in zip(ops, widths) for v in pair])


class MixedLayer(nn.Module):
    """Every candidate op of one layer at width c -> c, mixed like `supernet.MixedEdge`
    (same call: `layer(x, w, ops)`), so `EdgeContext.edge` drives it; `partial` as in PC-DARTS."""

    def __init__(self, c: int, stride: int, op_names: Sequence[str], partial: int = 1):
        super().__init__()
        if partial < 1 or c % partial:
            raise ValueError(f"partial channels K={partial} must divide the {c} channels")
        self.stride, self.partial = stride, partial
        self.ops = nn.ModuleList(
            make_chain_op(n, c // partial, c // partial, stride, affine=False) for n in op_names
        )
        self.bypass_pool = nn.MaxPool2d(2, 2) if (partial > 1 and stride == 2) else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, ops: Sequence[int] | None = None) -> torch.Tensor:
        if self.partial > 1:
            k = x.shape[1] // self.partial
            x, rest = x[:, :k], x[:, k:]
        out = None
        for i in range(len(self.ops)) if ops is None else ops:
            term = w[i] * self.ops[i](x)
            out = term if out is None else out + term
        if out is None:  # an empty list skips the layer
            out = x[:, :, :: self.stride, :: self.stride] * 0.0
        if self.partial > 1:
            rest = self.bypass_pool(rest) if self.bypass_pool is not None else rest
            out = channel_shuffle(cat_channels([out, rest]), self.partial)
        return out


class WidthMask(nn.Module):
    """Keeps the first w channels of a c-channel tensor, mixed over the candidate widths.

    `mask(x, w, active)`: x times the sum over widths j (all, or those in
    `active`) of w[j] times the 0/1 mask of width j (FBNetV2).
    """

    masks: torch.Tensor  # (widths, c) 0/1, a buffer

    def __init__(self, widths: Sequence[int], c: int):
        super().__init__()
        masks = torch.zeros(len(widths), c)
        for j, width in enumerate(widths):
            masks[j, :width] = 1.0
        self.register_buffer("masks", masks, persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: Sequence[int] | None = None) -> torch.Tensor:
        masks = self.masks.to(x.dtype)
        if active is None:
            m = w.to(x.dtype) @ masks
        else:
            m = x.new_zeros(masks.shape[1])
            for j in active:
                m = m + w[j].to(x.dtype) * masks[j]
        return x * m.view(1, -1, 1, 1)


class ChainSupernet(Supernet):
    """The chain network with every layer a `MixedLayer` at the widest width and a `WidthMask`.

    Args:
        task: classes and image shape.
        op_names: the candidate ops of every layer.
        widths: the candidate widths (already scaled to the size).
        strides: each layer's stride.
        stem: the stem's channels (zero-padded to the widest width).
        partial: PC-DARTS's K.
    """

    def __init__(
        self,
        task: Task,
        op_names: Sequence[str],
        widths: Sequence[int],
        strides: Sequence[int],
        stem: int,
        partial: int = 1,
    ):
        super().__init__()
        c = max(max(widths), stem)
        self.arch_shapes = {"op": (len(strides), len(op_names)), "width": (len(strides), len(widths))}
        self.op_names = {"op": tuple(op_names), "width": tuple(map(str, widths))}
        self.edge_nodes = {g: tuple(range(len(strides))) for g in self.op_names}  # one choice per layer
        self.pad = c - stem
        self.stem = nn.Sequential(
            nn.Conv2d(task.shape[0], stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()
        )
        self.layers = nn.ModuleList(MixedLayer(c, s, op_names, partial) for s in strides)
        self.masks = nn.ModuleList(WidthMask(widths, c) for _ in strides)
        self.classifier = nn.Linear(c, task.num_classes)

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        x = nn.functional.pad(self.stem(x), (0, 0, 0, 0, 0, self.pad))
        for i, (layer, mask) in enumerate(zip(self.layers, self.masks)):
            x = ctx.edge("op", i, layer, x)  # MixedEdge's interface, c -> c
            active = None if ctx.active is None else ctx.active["width"][i]
            x = mask(x, ctx.weights["width"][i], active)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
