"""Full training: the reference estimator every cheaper one is compared against.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.testing import tiny_search_data
    >>> space, data = registry.create("space", "nb201"), tiny_search_data()
    >>> est = registry.create("estimator", "train", epochs=1, batch_size=16)
    >>> e = est.estimate(space, space.sample(np.random.default_rng(0)), data)
    >>> 0.0 <= e.score <= 1.0 and e.fidelity["epochs"] == 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from nasmix import registry
from nasmix.arch import Arch
from nasmix.estimators.base import Estimate
from nasmix.estimators.recipe import Recipe, TrainingEstimator, arch_seed, fit


@registry.register("estimator", "train")
class Train(TrainingEstimator):
    """Full training: train each candidate from scratch, score its top-1 on the validation half.

    The network is `space.build(arch, task, data.size)`, trained on
    `data.train` by `nasmix.train.train` (SGD, cosine schedule, crop and
    flip) for `epochs` epochs, then scored once on `data.valid`. The cost is
    the measured wall time of building, training and scoring (`data.timer`).
    Source: the "full training" baseline of performance estimation (Elsken et
    al. 2019, "Neural Architecture Search: A Survey", section 5); NAS-Bench-201
    trains its cells the same way for 12 or 200 epochs.
    Departures: the recipe is nasmix's (the DARTS evaluation settings) at few
    epochs, not NAS-Bench-201's (lr 0.1, Nesterov, weight decay 5e-4, batch
    256), which `lr`, `nesterov`, `weight_decay` and `batch_size` can set. A
    candidate whose loss diverges scores 0.0 (extra["diverged"]).

    Example:
        >>> Train(Train.Config(epochs=3)).config.epochs
        3
    """

    kind = "training"

    @dataclass(frozen=True)
    class Config(Recipe):
        """The training recipe (see nasmix.estimators.recipe.Recipe)."""

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Train the arch and score it.

        Args:
            space: its search space.
            arch: the candidate.
            data: the search data.
            parent: ignored (full training always starts from scratch).

        Returns:
            The top-1 on data.valid, the measured seconds, and the fidelity
            (epochs, data fraction, size, resolution).
        """
        c = self.config
        run = fit(space, arch, data, c.recipe(), arch_seed(self.seed, arch), batch_size=self.batch_size)
        return Estimate(run.score, run.seconds, self.fidelity(data, c.epochs), extra=run.extra)
