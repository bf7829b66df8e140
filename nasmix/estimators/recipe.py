"""What the training-based estimators share: the recipe options, seeding,
and one function that builds, trains (with `nasmix.train.train`) and scores
a candidate on the validation half, timed with the search's clock.

Not a registered module: `train`, `lower_fidelity`, `early_stopping`,
`inheritance` and `predictor` import it.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.testing import tiny_search_data
    >>> space, data = registry.create("space", "nb201"), tiny_search_data()
    >>> arch = space.sample(np.random.default_rng(0))
    >>> run = fit(space, arch, data, Recipe(epochs=1, batch_size=16), seed=0)
    >>> 0.0 <= run.score <= 1.0 and run.seconds > 0
    True
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nasmix.arch import Arch
from nasmix.data.base import ImageArrays, Task
from nasmix.data.loader import DeviceLoader
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimator
from nasmix.train import Callback, DivergedError, TrainConfig, evaluate, train

DEFAULT_BATCH = 64  # NASLib's search batch, used when no budget was given


class StopTraining(Exception):
    """Raised from a training callback to end a candidate's training early (early stopping)."""


@dataclass(frozen=True)
class Recipe:
    """The training options every training-based estimator exposes.

    Attributes:
        epochs: training epochs per candidate.
        batch_size: training batch size (None: the search budget's batch size).
        lr: initial learning rate of the cosine schedule (SGD, momentum 0.9).
        weight_decay: SGD weight decay.
        nesterov: Nesterov momentum.
        augment: random crop and flip while training (as nasmix.train does).
    """

    epochs: int = 12
    batch_size: int | None = None
    lr: float = 0.025
    weight_decay: float = 3e-4
    nesterov: bool = False
    augment: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 (or unset), got {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr must be > 0 and weight_decay >= 0, got {self.lr} and {self.weight_decay}")

    def recipe(self) -> Recipe:
        """Just the recipe fields (a subclass's Config carries more)."""
        return Recipe(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Recipe)})


def arch_seed(seed: int, arch: Arch) -> int:
    """A seed for one candidate: a stable function of the search seed and the arch,
    so that the same arch gets the same initialisation wherever it appears in a search."""
    # `space:payload` without the space's options: the seeds of archs of non-default spaces
    # stay those of the stores written before arch strings named the options.
    return (int(seed) * 1_000_003 + zlib.crc32(f"{arch.space}:{arch.payload}".encode())) % (2**31)


def build_seeded(space, arch: Arch, task: Task, size: str, seed: int) -> nn.Module:
    """`space.build` with the CPU generator seeded for the initialisation (the global
    generator's state is restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))  # the CPU generator only: CUDA's stays untouched
        return space.build(arch, task, size)


def train_config(
    recipe: Recipe, batch_size: int, seed: int, epochs: int | None = None, crop_padding: int = 4
) -> TrainConfig:
    """The nasmix.train recipe of a candidate."""
    return TrainConfig(
        epochs=epochs or recipe.epochs,
        batch_size=recipe.batch_size or batch_size,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
        crop_padding=crop_padding if recipe.augment else 0,
        flip=recipe.augment,
        seed=seed,
    )


@dataclass
class Run:
    """One candidate's training.

    Attributes:
        score: top-1 on the validation images at the end (0.0 if it diverged).
        seconds: measured wall seconds of building, training and scoring.
        history: nasmix.train's per-epoch records (empty when stopped early).
        model: the trained network (None when it diverged).
        extra: clocks worth recording (gpu_s, device) and flags (diverged).
        stopped: the callback raised StopTraining (score is then NaN: the
            caller knows what its callback saw).
    """

    score: float
    seconds: float
    history: list[dict] = field(default_factory=list)
    model: nn.Module | None = None
    extra: dict = field(default_factory=dict)
    stopped: bool = False


def fit(
    space,
    arch: Arch,
    data,
    recipe: Recipe,
    seed: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    size: str | None = None,
    train_images: ImageArrays | None = None,
    valid_images: ImageArrays | None = None,
    task: Task | None = None,
    epochs: int | None = None,
    crop_padding: int = 4,
    init: Callable[[nn.Module], None] | None = None,
    callback: Callback | None = None,
    per_epoch_valid: bool = False,
) -> Run:
    """Build, train and score one candidate; the measured seconds cover all three.

    Args:
        space: the search space.
        arch: the candidate.
        data: the SearchData (device, timer, default splits, task and size).
        recipe: the training options.
        seed: the candidate's seed (initialisation, batch order, augmentation).
        batch_size: used when the recipe leaves it unset.
        size, train_images, valid_images, task: overrides of data's (lower fidelity).
        epochs: overrides the recipe's epochs.
        crop_padding: the random-crop padding (smaller for downsampled images).
        init: called on the fresh network before training (weight inheritance).
        callback: nasmix.train's callback (early stopping raises from it).
        per_epoch_valid: score the validation images after every epoch (the
            records get val_top1); otherwise only once, at the end.

    Returns:
        The Run. When `callback` raises StopTraining the run ends there,
        timed, with `stopped` set; other exceptions propagate.
    """
    task = task or data.task
    train_images = train_images if train_images is not None else data.train
    valid_images = valid_images if valid_images is not None else data.valid
    config = train_config(recipe, batch_size, seed, epochs, crop_padding)
    device = data.device
    with data.timer.measure() as m:
        model = build_seeded(space, arch, task, size or data.size, seed)
        kept: nn.Module | None = model  # the trained network, None when it diverged
        if init is not None:
            init(model)
        try:
            result = train(
                model,
                train_images,
                task,
                config,
                device=device,
                valid=valid_images if per_epoch_valid else None,
                callback=callback,
                timer=data.timer,
            )
            history = result.history
            if per_epoch_valid:
                score = history[-1]["val_top1"]
            else:
                score = score_model(model, valid_images, task, device, config)
            diverged = stopped = False
        except DivergedError:
            history, score, diverged, stopped, kept = [], 0.0, True, False, None
        except StopTraining:
            history, score, diverged, stopped = [], float("nan"), False, True
    extra = {"gpu_s": m.gpu_s, "device": m.device, **({"diverged": True} if diverged else {})}
    return Run(float(score), m.wall_s, history, kept, extra, stopped)


def score_model(
    model: nn.Module, images: ImageArrays, task: Task, device: torch.device, config: TrainConfig | None = None
) -> float:
    """Top-1 of a network on a split (nasmix.train.evaluate)."""
    config = config or TrainConfig()
    # in the memory format nasmix.train left the network in (channels_last on every device)
    loader = DeviceLoader(images, task, config.eval_batch_size, device, channels_last=config.channels_last)
    return float(evaluate(model, loader, config.amp)["top1"])


class TrainingEstimator(Estimator):
    """Base of the estimators that train candidates: keeps the search seed and the
    budget's batch size from `prepare` (seed 0 and batch 64 when never prepared)."""

    def __init__(self, config) -> None:
        self.config = config
        self.seed = 0
        self.batch_size = DEFAULT_BATCH

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        self.seed = int(rng.integers(2**31))
        self.batch_size = budget.batch_size

    def fidelity(self, data, epochs: int) -> dict:
        """The fidelity record of a run on data's own splits and size."""
        _, h, w = data.task.shape
        return {"epochs": epochs, "data_fraction": 1.0, "size": data.size, "resolution": [h, w]}
