"""Weight sharing: train the space's supernet once on random paths, then score
each candidate by the supernet's accuracy along its path.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> space, data = registry.create("space", "nb201"), tiny_search_data()
    >>> est = registry.create("estimator", "weight_sharing", epochs=1)
    >>> est.prepare(space, data, Budget(batch_size=16), np.random.default_rng(0))
    >>> e = est.estimate(space, space.sample(np.random.default_rng(1)), data)
    >>> e.extra["supernet_s"] > 0 and 0.0 <= e.score <= 1.0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Budget
from nasmix.data.base import ImageArrays, subset
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimate, Estimator
from nasmix.estimators.recipe import DEFAULT_BATCH, Recipe, score_model, train_config
from nasmix.train import train


class PathNet(nn.Module):
    """A supernet seen as a plain network, so that nasmix.train can train and score it.

    In training mode every forward call computes one path drawn uniformly
    from the space (`space.sample`: one op per edge, through the `active`
    lists, so only that path runs); otherwise the path of `arch`. Batch
    normalisation always uses batch statistics: running statistics mixed over
    thousands of paths fit none of them.

    Args:
        supernet: the space's supernet.
        space: the space (sampling, arch_weights, active).
        rng: the generator of the training paths.
    """

    def __init__(self, supernet: nn.Module, space, rng: np.random.Generator):
        super().__init__()
        self.supernet, self.space, self.rng = supernet, space, rng
        self.arch: Arch | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arch = self.space.sample(self.rng) if self.training else self.arch
        if arch is None:
            raise RuntimeError("PathNet in eval mode needs .arch set")
        weights = {g: w.to(x.device, non_blocking=True) for g, w in self.space.arch_weights(arch).items()}
        return self.supernet(x, weights, active=self.space.active(arch))

    def train(self, mode: bool = True) -> PathNet:
        super().train(mode)
        self.supernet.train(True)  # batch statistics in evaluation too (see the class docstring)
        return self


@registry.register("estimator", "weight_sharing")
class WeightSharing(Estimator):
    """Weight sharing: train the supernet on uniformly sampled paths once, score archs by its accuracy.

    `prepare` trains `space.supernet(task, data.size)` on `data.train` for
    `epochs` epochs with nasmix.train (SGD, cosine schedule, crop and flip),
    each step on one path drawn uniformly (one op per edge). `estimate`
    scores an arch by the supernet's top-1 on `data.valid` (or its first
    `valid_images`) along the arch's path (`space.arch_weights(arch)` and
    `space.active(arch)`), with batch statistics in batch normalisation.
    Cost: the first estimate after `prepare` is charged the supernet's
    training seconds too (extra["supernet_s"]); every estimate its measured
    scoring seconds.
    Source: one-shot weight sharing as an estimator (Pham et al. 2018, ENAS;
    Bender et al. 2018), with the uniform single-path sampling of Guo et
    al. (2020, SPOS) and Li and Talwalkar (2019, random search with weight
    sharing). Departures: no batch-norm recalibration per candidate (SPOS
    recomputes running statistics; batch statistics of each evaluation
    batch stand in for it), and the whole search half trains the weights.
    The supernet training loop is nasmix.train's (this estimator writes none).

    Example:
        >>> WeightSharing(WeightSharing.Config(epochs=2)).config.valid_images is None
        True
    """

    kind = "weight_sharing"

    @dataclass(frozen=True)
    class Config(Recipe):
        """Options (the recipe of the supernet's training, plus scoring).

        Attributes:
            epochs: supernet training epochs.
            valid_images: score on the first images of each class of the
                validation half, this many in all (None: all of it).
        """

        epochs: int = 10
        valid_images: int | None = None

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.valid_images is not None and self.valid_images < 1:
                raise ConfigError(f"valid_images must be >= 1 (or unset), got {self.valid_images}")

    def __init__(self, config: Config = Config()):
        self.config = config
        self.net: PathNet | None = None
        self.supernet_s = 0.0
        self._charge = 0.0  # supernet seconds not yet charged to an estimate
        self._valid: tuple[Any, ImageArrays] | None = None  # (the search data, its validation images)

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        """Train the supernet (its seconds go to the next estimate's cost)."""
        c = self.config
        seed = int(rng.integers(2**31))
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            supernet = space.supernet(data.task, data.size)
        net = PathNet(supernet, space, np.random.default_rng(seed))
        config = train_config(c.recipe(), budget.batch_size, seed)
        with data.timer.measure() as m:
            train(net, data.train, data.task, config, device=data.device, timer=data.timer)
        self.net, self.supernet_s, self._charge = net, m.wall_s, m.wall_s
        valid = subset(data.valid, c.valid_images, data.task.num_classes) if c.valid_images else data.valid
        self._valid = (data, valid)

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """The supernet's validation top-1 along the arch's path.

        Args:
            space: the space the supernet was built from.
            arch: the candidate.
            data: the search data.
            parent: ignored.

        Returns:
            The Estimate; the first one after `prepare` carries the supernet's
            training seconds in its cost.
        """
        if self.net is None:  # used without a search: prepare with defaults
            self.prepare(space, data, Budget(batch_size=DEFAULT_BATCH), np.random.default_rng(0))
        net, cached = self.net, self._valid
        assert net is not None and cached is not None  # prepare sets both
        net.arch = space.check(arch)
        valid = cached[1] if cached[0] is data else data.valid
        with data.timer.measure() as m:
            score = score_model(net, valid, data.task, data.device)
        charge, self._charge = self._charge, 0.0
        fidelity = {"supernet_epochs": self.config.epochs, "valid_images": len(valid), "size": data.size}
        extra = {
            "supernet_s": self.supernet_s,
            "charged_supernet_s": charge,
            "gpu_s": m.gpu_s,
            "device": m.device,
        }
        return Estimate(score, m.wall_s + charge, fidelity, extra=extra)
