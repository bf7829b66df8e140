"""Lower fidelity: train on less (epochs, images, width, resolution) and rank by that.

Example:
    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1)
    >>> downsample(x, 2)[0, :, :, 0].tolist()
    [[2, 4], [10, 12]]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import ImageArrays, Task, subset
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimate
from nasmix.estimators.recipe import Recipe, TrainingEstimator, arch_seed, fit
from nasmix.spaces.base import SIZES


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool uint8 images (N, H, W, C) by `factor` x `factor` (rounding half to even).

    Rows and columns beyond a multiple of `factor` are dropped.

    Args:
        x: uint8 images.
        factor: the pooling size (1: unchanged).

    Returns:
        uint8 images (N, H // factor, W // factor, C).
    """
    if factor == 1:
        return x
    n, h, w, c = x.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = x[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor, c)
    return np.rint(blocks.mean(axis=(2, 4), dtype=np.float32)).astype(np.uint8)


@registry.register("estimator", "lower_fidelity")
class LowerFidelity(TrainingEstimator):
    """Lower fidelity: fewer epochs, a class-balanced data fraction, a smaller network, lower resolution.

    Each candidate trains like "train" but on `data_fraction` of the training
    half (`nasmix.data.subset`: the first images of each class), at network
    size `size` ("tiny" by default; "same" keeps data.size), on images
    average-pooled by `downsample` x `downsample` (training and validation
    alike), for `epochs` epochs; its top-1 on the (downsampled) validation
    half is the score. The fidelity record names every reduction.
    Source: the lower-fidelity estimates surveyed by Elsken et al. (2019,
    section 5): fewer epochs (Zela et al. 2018), data subsets (Klein et al.
    2017), downscaled images (Chrabaszcz et al. 2017), fewer filters and cells
    (Real et al. 2019; Zoph et al. 2018).
    Departures: the random-crop padding shrinks with the resolution
    (4 // downsample pixels) so that a crop moves the image by the same
    fraction; the validation half is used whole, downsampled.

    Example:
        >>> LowerFidelity(LowerFidelity.Config(downsample=4)).config.epochs
        4
    """

    kind = "training"

    @dataclass(frozen=True)
    class Config(Recipe):
        """Options (the recipe's, plus the reductions).

        Attributes:
            epochs: training epochs (fewer than full training's 12).
            data_fraction: the part of the training half used, in (0, 1].
            size: the network size ("tiny", "search", "eval"), or "same" for data.size.
            downsample: average-pool images by this factor (1: full resolution).
        """

        epochs: int = 4
        data_fraction: float = 0.5
        size: str = "tiny"
        downsample: int = 2

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 0 < self.data_fraction <= 1:
                raise ConfigError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
            if self.size not in (*SIZES, "same"):
                raise ConfigError(f"unknown size {self.size!r}; valid: {', '.join((*SIZES, 'same'))}")
            if self.downsample < 1:
                raise ConfigError(f"downsample must be >= 1, got {self.downsample}")

    def __init__(self, config: Config = Config()):
        super().__init__(config)
        self._data = None  # the SearchData the reduced splits were made from
        self._splits: tuple[ImageArrays, ImageArrays, Task] | None = None

    def reduced(self, data) -> tuple[ImageArrays, ImageArrays, Task]:
        """The reduced training and validation splits and their task (made once per data)."""
        if self._data is not data or self._splits is None:
            c = self.config
            n = max(data.task.num_classes, round(len(data.train) * c.data_fraction))
            train = subset(data.train, n if c.data_fraction < 1 else None, data.task.num_classes)
            train = ImageArrays(downsample(train.x, c.downsample), train.y)
            valid = ImageArrays(downsample(data.valid.x, c.downsample), data.valid.y)
            channels = data.task.shape[0]
            task = dataclasses.replace(data.task, shape=(channels, *valid.x.shape[1:3]))
            self._data, self._splits = data, (train, valid, task)
        return self._splits

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Train the arch at low fidelity and score it.

        Args:
            space: its search space.
            arch: the candidate.
            data: the search data.
            parent: ignored.

        Returns:
            The low-fidelity top-1, the measured seconds, and the fidelity
            (epochs, data_fraction, train_images, size, resolution, downsample).
        """
        c = self.config
        train, valid, task = self.reduced(data)
        size = data.size if c.size == "same" else c.size
        run = fit(
            space,
            arch,
            data,
            c.recipe(),
            arch_seed(self.seed, arch),
            batch_size=self.batch_size,
            size=size,
            train_images=train,
            valid_images=valid,
            task=task,
            crop_padding=max(4 // c.downsample, 0),
        )
        fidelity = {
            "epochs": c.epochs,
            "data_fraction": len(train) / len(data.train),
            "train_images": len(train),
            "size": size,
            "resolution": list(task.shape[1:]),
            "downsample": c.downsample,
        }
        return Estimate(run.score, run.seconds, fidelity, extra=run.extra)
