"""A tiny deterministic dataset for tests: class-coloured noise, learnable in a few steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasmix import registry
from nasmix.data.base import Dataset, DatasetArrays, ImageArrays
from nasmix.errors import ConfigError


@registry.register("dataset", "synthetic")
class Synthetic(Dataset):
    """Tiny deterministic images (class-dependent colour and stripes plus noise), for tests."""

    cacheable = False

    @dataclass(frozen=True)
    class Config:
        train_size: int = 200
        test_size: int = 100
        num_classes: int = 10
        image_size: int = 32
        seed: int = 0

        def __post_init__(self) -> None:
            if min(self.train_size, self.test_size) < self.num_classes or self.num_classes < 2:
                raise ConfigError(
                    "synthetic needs num_classes >= 2 and at least one image per class per split"
                )
            if self.image_size < 4:
                raise ConfigError(f"image_size must be >= 4, got {self.image_size}")

    def __init__(self, config: Config = Config()):
        self.config = config

    def read(self) -> DatasetArrays:
        c = self.config
        rng = np.random.default_rng(c.seed)
        colours = rng.uniform(40, 215, size=(c.num_classes, 3))
        periods = 2 + np.arange(c.num_classes) % 5
        rows = np.arange(c.image_size)

        def make(n: int) -> ImageArrays:
            y = np.arange(n) % c.num_classes
            rng.shuffle(y)
            stripes = ((rows[None, :] // periods[y, None]) % 2) * 40.0 - 20.0
            x = colours[y][:, None, None, :] + stripes[:, :, None, None]
            x = x + rng.normal(0, 25, size=(n, c.image_size, c.image_size, 3))
            return ImageArrays(np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64))

        classes = tuple(f"class{i}" for i in range(c.num_classes))
        return DatasetArrays("synthetic", make(c.train_size), make(c.test_size), classes)
