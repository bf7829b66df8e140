"""The device-resident loader: the whole uint8 dataset lives on the device,
and cropping, flipping, cutout and normalisation happen there in a few batched
tensor operations. No per-image Python, no worker processes.

Example:
    >>> import torch
    >>> from nasmix.data import load_dataset
    >>> data = load_dataset("synthetic")
    >>> loader = DeviceLoader(data.train, data.task, 64, torch.device("cpu"), Augment(), shuffle=True)
    >>> x, y = next(iter(loader.batches(seed=0)))
    >>> tuple(x.shape), x.dtype
    ((64, 3, 32, 32), torch.float32)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from nasmix.data.base import ImageArrays, Task
from nasmix.errors import ConfigError


@dataclass(frozen=True)
class Augment:
    """Training augmentation, as in DARTS: random crop after zero padding,
    horizontal flip, and cutout (a zeroed square after normalisation).

    Attributes:
        crop_padding: pixels of zero padding before the random crop (0: no crop).
        flip: random horizontal flip with probability 1/2.
        cutout: side of the cutout square (0: none).
    """

    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or self.cutout < 0:
            raise ConfigError("crop_padding and cutout must be >= 0")


class DeviceLoader:
    """Batches of normalised float images from uint8 arrays held on a device.

    Args:
        images: the split to serve.
        task: supplies the normalisation constants.
        batch_size: images per batch.
        device: where the arrays live and augmentation runs.
        augment: None for evaluation (no augmentation).
        shuffle: a new seeded order each epoch.
        drop_last: drop the final partial batch.
        channels_last: return channels_last tensors (faster convolutions on CUDA).
    """

    def __init__(
        self,
        images: ImageArrays,
        task: Task,
        batch_size: int,
        device: torch.device,
        augment: Augment | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        channels_last: bool = False,
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.augment = augment
        self.shuffle = shuffle
        self.drop_last = drop_last and len(images) >= batch_size
        self.channels_last = channels_last
        self.n = len(images)
        # Stored unpadded (a padded copy would cost ~55% more device memory at 32x32):
        # the crop gathers clamped indices and zeroes what falls in the padding.
        self.x = torch.from_numpy(np.ascontiguousarray(images.x)).to(self.device)
        self.y = torch.from_numpy(images.y).to(self.device)
        self.size = images.x.shape[1:3]
        self.rows = torch.arange(self.size[0], device=self.device)
        self.cols = torch.arange(self.size[1], device=self.device)
        shape = (1, images.x.shape[3], 1, 1)
        self.mean = torch.tensor(task.mean, device=self.device).view(shape) * 255.0
        self.inv_std = 1.0 / (torch.tensor(task.std, device=self.device).view(shape) * 255.0)

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def batches(self, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (images, labels); the order and augmentation follow `seed`."""
        gen = torch.Generator().manual_seed(int(seed))
        n = self.n
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        draws = self._draws(gen, n)
        order = order.to(self.device, non_blocking=True)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            sl = slice(b * self.batch_size, b * self.batch_size + len(idx))
            yield self._make(idx, {k: v[sl] for k, v in draws.items()}), self.y[idx]

    def _draws(self, gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        """All random numbers of an epoch, drawn on the CPU at once (device-independent)."""
        a, h, w = self.augment, *self.size
        draws: dict[str, torch.Tensor] = {}
        if a is None:
            return draws
        if a.crop_padding:
            draws["dy"] = torch.randint(0, 2 * a.crop_padding + 1, (n,), generator=gen)
            draws["dx"] = torch.randint(0, 2 * a.crop_padding + 1, (n,), generator=gen)
        if a.flip:
            draws["flip"] = torch.rand(n, generator=gen) < 0.5
        if a.cutout:
            draws["cy"] = torch.randint(0, h, (n,), generator=gen)
            draws["cx"] = torch.randint(0, w, (n,), generator=gen)
        return {k: v.to(self.device, non_blocking=True) for k, v in draws.items()}

    def _make(self, idx: torch.Tensor, d: dict[str, torch.Tensor]) -> torch.Tensor:
        h, w = self.size
        a = self.augment  # not None whenever `d` holds draws
        pad, cutout = (a.crop_padding, a.cutout) if a is not None else (0, 0)
        if "dy" in d:
            rows = d["dy"][:, None] - pad + self.rows  # source row of each output row (may be outside)
            cols = d["dx"][:, None] - pad + self.cols
            inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
            x = self.x[idx[:, None, None], rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
            x = x * inside[..., None]  # zero padding, as the crop of a zero-padded image: (B, H, W, C)
        else:
            x = self.x[idx]
        if "flip" in d:
            x = torch.where(d["flip"][:, None, None, None], x.flip(2), x)
        x = x.permute(0, 3, 1, 2).float()  # NHWC storage: this view is channels_last already
        x = (x - self.mean) * self.inv_std
        if "cy" in d:
            half = cutout // 2
            ys, xs = self.rows, self.cols
            in_rows = (ys[None, :] >= d["cy"][:, None] - half) & (
                ys[None, :] < d["cy"][:, None] + cutout - half
            )
            in_cols = (xs[None, :] >= d["cx"][:, None] - half) & (
                xs[None, :] < d["cx"][:, None] + cutout - half
            )
            hole = in_rows[:, None, :, None] & in_cols[:, None, None, :]
            x = x.masked_fill(hole, 0.0)
        if not self.channels_last:
            x = x.contiguous()
        return x
