"""ResNet-20 for CIFAR (He et al., 2016, section 4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from nasmix import registry
from nasmix.data.base import Task
from nasmix.errors import ConfigError


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            # Option B of the paper (1x1 projection): simpler than zero-padding, same depth.
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    """The 6n+2-layer CIFAR ResNet: three stages of n basic blocks."""

    def __init__(self, depth: int, width: int, task: Task):
        super().__init__()
        n = (depth - 2) // 6
        c = width
        self.stem = nn.Sequential(
            nn.Conv2d(task.shape[0], c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
        )
        blocks, c_in = [], c
        for stage, c_out in enumerate((c, 2 * c, 4 * c)):
            for i in range(n):
                blocks.append(_Block(c_in, c_out, 2 if (stage > 0 and i == 0) else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, task.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@registry.register("model", "resnet20")
class ResNet20:
    """ResNet-20 (He et al. 2016): 3 stages x 3 basic blocks, 16/32/64 channels, 0.27M weights.

    Departure: downsampling shortcuts are 1x1 projections (the paper's option B)
    rather than zero-padded identities (option A used for CIFAR in the paper).

    Example:
        >>> from nasmix.data import Task
        >>> net = ResNet20().build(Task("demo", 10, (3, 32, 32)))
    """

    # The training defaults `nasmix train` uses for this model: He et al.'s lr 0.1,
    # batch 128, momentum 0.9; Nesterov and weight decay 5e-4 suit short runs.
    recipe: ClassVar[dict[str, Any]] = {"lr": 0.1, "batch_size": 128, "nesterov": True, "weight_decay": 5e-4}

    @dataclass(frozen=True)
    class Config:
        depth: int = 20
        width: int = 16

        def __post_init__(self) -> None:
            if self.depth < 8 or (self.depth - 2) % 6:
                raise ConfigError(f"depth must be 6n+2 with n >= 1, got {self.depth}")
            if self.width < 1:
                raise ConfigError(f"width must be >= 1, got {self.width}")

    def __init__(self, config: Config = Config()):
        self.config = config

    def build(self, task: Task) -> nn.Module:
        """The network for a task."""
        return ResNetCifar(self.config.depth, self.config.width, task)
