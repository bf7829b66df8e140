"""Learning-curve early stopping: stop a candidate whose curve falls behind the best ones.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.testing import tiny_search_data
    >>> space, data = registry.create("space", "nb201"), tiny_search_data()
    >>> est = registry.create("estimator", "early_stopping", epochs=2, k=1, batch_size=16)
    >>> e = est.estimate(space, space.sample(np.random.default_rng(0)), data)
    >>> e.fidelity["epochs_trained"], e.fidelity["stopped"]
    (2, False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimate
from nasmix.estimators.recipe import Recipe, StopTraining, TrainingEstimator, arch_seed, fit


@registry.register("estimator", "early_stopping")
class EarlyStopping(TrainingEstimator):
    """Learning-curve early stopping: end a candidate's training once it falls below the k-th best curve.

    Each candidate trains as in "train" with its validation top-1 measured
    after every epoch. After epoch e (e >= `min_epochs`), if at least `k`
    earlier candidates reached epoch e and this candidate's accuracy is
    below the k-th best of their accuracies at epoch e, its training stops
    there (nasmix.train's callback raises a private exception). Every
    candidate's curve, stopped or not, joins the record of later ones.
    Score: the last validation accuracy reached, i.e. at the stopping epoch
    for a stopped candidate, which therefore ranks below the k-th best
    curve at that epoch and, on rising curves, below completed candidates.
    Cost: the measured seconds of the epochs actually trained (validation
    included). A diverging candidate scores 0.0, as in "train". The fidelity says how many epochs ran
    and whether it stopped.
    Source: the curve-based stopping rules of performance estimation
    (Elsken et al. 2019, section 5; Domhan et al. 2015 extrapolate the
    curve; Baker et al. 2018 predict it). Departures: this is the simplest
    such rule, a per-epoch comparison against the running k-th best (the
    "median stopping rule" of Golovin et al. 2017, Google Vizier, with the
    k-th best in place of the median), with no curve extrapolation.

    Example:
        >>> EarlyStopping(EarlyStopping.Config(k=5)).config.k
        5
    """

    kind = "training"

    @dataclass(frozen=True)
    class Config(Recipe):
        """Options (the recipe's, plus the stopping rule).

        Attributes:
            k: compare against the k-th best accuracy recorded at the same epoch.
            min_epochs: never stop before this epoch.
        """

        k: int = 3
        min_epochs: int = 1

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.k < 1 or self.min_epochs < 1:
                raise ConfigError(f"k and min_epochs must be >= 1, got {self.k} and {self.min_epochs}")

    def __init__(self, config: Config = Config()):
        super().__init__(config)
        self.best: dict[int, list[float]] = {}  # epoch -> the k best accuracies recorded there, descending

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        super().prepare(space, data, budget, rng)
        self.best = {}

    def threshold(self, epoch: int) -> float | None:
        """The k-th best accuracy recorded at an epoch (None until k candidates reached it)."""
        top = self.best.get(epoch, [])
        return top[self.config.k - 1] if len(top) >= self.config.k else None

    def _record(self, curve: list[float]) -> None:
        for epoch, acc in enumerate(curve, start=1):
            top = sorted([*self.best.get(epoch, []), acc], reverse=True)
            self.best[epoch] = top[: self.config.k]

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Train the arch until it falls behind, and score it.

        Args:
            space: its search space.
            arch: the candidate.
            data: the search data.
            parent: ignored.

        Returns:
            The last validation top-1 reached, the measured seconds, and the
            fidelity (epochs, epochs_trained, stopped, ...).
        """
        c = self.config
        curve: list[float] = []

        def watch(event: dict) -> None:
            if event["event"] != "epoch":
                return
            curve.append(float(event["val_top1"]))
            limit = self.threshold(event["epoch"])
            if (
                event["epoch"] >= c.min_epochs
                and event["epoch"] < c.epochs
                and limit is not None
                and curve[-1] < limit
            ):
                raise StopTraining

        run = fit(
            space,
            arch,
            data,
            c.recipe(),
            arch_seed(self.seed, arch),
            batch_size=self.batch_size,
            callback=watch,
            per_epoch_valid=True,
        )
        self._record(curve)
        score = 0.0 if (run.extra.get("diverged") or not curve) else curve[-1]
        fidelity = {**self.fidelity(data, c.epochs), "epochs_trained": len(curve), "stopped": run.stopped}
        return Estimate(score, run.seconds, fidelity, extra={**run.extra, "curve": curve})
