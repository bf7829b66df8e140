"""A trained performance predictor: train the first candidates, predict the rest.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.testing import tiny_search_data
    >>> space, data = registry.create("space", "nb201"), tiny_search_data()
    >>> est = registry.create("estimator", "predictor", model="gp", initial=2, epochs=1, batch_size=16)
    >>> rng = np.random.default_rng(0)
    >>> [est.estimate(space, space.sample(rng), data).fidelity["source"] for _ in range(3)]
    ['trained', 'trained', 'predicted']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasmix import registry, surrogates
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimate
from nasmix.estimators.recipe import Recipe, TrainingEstimator, arch_seed, fit

MODELS = ("mlp", "gp", "gbt")
ENCODINGS = ("onehot", "path")


def make_surrogate(model: str, seed: int):
    """The nasmix.surrogates model of a name.

    Names: mlp (MLPEnsemble), gp (GaussianProcess) or gbt (GradientBoosting).
    """
    cls = {
        "mlp": surrogates.MLPEnsemble,
        "gp": surrogates.GaussianProcess,
        "gbt": surrogates.GradientBoosting,
    }[model]
    return cls(seed=seed)


@registry.register("estimator", "predictor")
class Predictor(TrainingEstimator):
    """Trained predictor: train the first N candidates, then predict scores from their encodings.

    The first `initial` candidates are trained and scored exactly as the
    "train" estimator does (the same recipe fields). Every later candidate
    gets the mean prediction of a `model` (nasmix.surrogates: "mlp" BANANAS's
    ensemble, "gp" a Gaussian process, "gbt" boosted trees) fitted on the
    `encoding` ("onehot" or "path", space.encode) of all trained candidates;
    with `retrain_every` M > 0, after every M predicted candidates the next
    one is trained again and joins the fit. The model is refitted lazily,
    before the first prediction after new training data.
    Cost: a trained candidate costs its measured training seconds; a
    predicted one the measured seconds of its prediction, plus the refit
    when it triggered one. The fidelity says which ("source": "trained" or
    "predicted") and how many archs the model was fitted on; extra has the
    prediction's std.
    Source: predictor-based performance estimation (surveyed by White et
    al. 2021, "How Powerful are Performance Predictors in NAS?"; the MLP
    ensemble and path encoding of BANANAS, White et al. 2021).
    Departures: no learning-curve features; the initial candidates are the
    strategy's first proposals, not a separate random sample.

    Example:
        >>> Predictor(Predictor.Config(model="gbt")).config.initial
        20
    """

    kind = "predictor"

    @dataclass(frozen=True)
    class Config(Recipe):
        """Options (the "train" recipe of the trained candidates, plus the predictor).

        Attributes:
            model: "mlp", "gp" or "gbt".
            initial: candidates trained before predictions start (>= 2).
            encoding: "onehot" or "path" (spaces without a path encoding use one-hot).
            retrain_every: train one more candidate after every M predicted (0: never).
        """

        model: str = "mlp"
        initial: int = 20
        encoding: str = "onehot"
        retrain_every: int = 0

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.model not in MODELS:
                raise ConfigError(f"unknown predictor model {self.model!r}; valid: {', '.join(MODELS)}")
            if self.encoding not in ENCODINGS:
                raise ConfigError(f"unknown encoding {self.encoding!r}; valid: {', '.join(ENCODINGS)}")
            if self.initial < 2 or self.retrain_every < 0:
                raise ConfigError(
                    f"initial must be >= 2 and retrain_every >= 0, got {self.initial}, {self.retrain_every}"
                )

    def __init__(self, config: Config = Config()):
        super().__init__(config)
        self._reset()

    def _reset(self) -> None:
        self.X: list[np.ndarray] = []
        self.y: list[float] = []
        self.model: surrogates.Surrogate | None = None
        self._dirty = False
        self._since = 0  # predictions since the last trained candidate

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        super().prepare(space, data, budget, rng)
        self._reset()

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Train the arch (the first N, and every M+1-th after) or predict its score.

        Args:
            space: its search space.
            arch: the candidate.
            data: the search data.
            parent: ignored.

        Returns:
            The Estimate; fidelity["source"] says whether it was trained or predicted.
        """
        c = self.config
        x = space.encode(arch, c.encoding).astype(np.float64)
        due = len(self.y) < c.initial or (c.retrain_every > 0 and self._since >= c.retrain_every)
        if due:
            run = fit(space, arch, data, c.recipe(), arch_seed(self.seed, arch), batch_size=self.batch_size)
            self.X.append(x)
            self.y.append(run.score)
            self._dirty, self._since = True, 0
            fidelity = {**self.fidelity(data, c.epochs), "source": "trained", "fitted_on": len(self.y)}
            return Estimate(run.score, run.seconds, fidelity, extra=run.extra)
        with data.timer.measure() as m:
            refit = self._dirty
            if refit or self.model is None:  # None only before the first fit, when _dirty is set anyway
                self.model = make_surrogate(c.model, self.seed).fit(np.stack(self.X), np.array(self.y))
                self._dirty = False
            mean, std = self.model.predict(x[None, :])
        self._since += 1
        fidelity = {"source": "predicted", "model": c.model, "encoding": c.encoding, "fitted_on": len(self.y)}
        return Estimate(float(mean[0]), m.wall_s, fidelity, extra={"std": float(std[0]), "refit": refit})
