"""The predictor estimator: trained first, predicted after, cost accounted for each."""

import numpy as np
import pytest

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.strategies.base import Budget
from nasmix.testing import tiny_search_data

SPACE = registry.create("space", "nb201")


def _run(n, **cfg):
    data = tiny_search_data()
    est = registry.create("estimator", "predictor", epochs=1, batch_size=16, **cfg)
    est.prepare(SPACE, data, Budget(batch_size=16), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    return est, [est.estimate(SPACE, SPACE.sample(rng), data) for _ in range(n)]


@pytest.mark.parametrize("model", ["mlp", "gp", "gbt"])
def test_first_n_trained_then_predicted(model):
    _est, out = _run(4, model=model, initial=2, encoding="path")
    assert [e.fidelity["source"] for e in out] == ["trained", "trained", "predicted", "predicted"]
    assert out[2].extra["refit"] and not out[3].extra["refit"]  # fitted once on the two trained archs
    assert out[2].fidelity["fitted_on"] == 2 and out[2].fidelity["encoding"] == "path"
    assert all(np.isfinite(e.score) and e.cost_s > 0 for e in out)
    assert out[2].extra["std"] >= 0


def test_retrain_every_m_trains_again():
    _, out = _run(6, model="gp", initial=2, retrain_every=1)
    assert [e.fidelity["source"] for e in out] == [
        "trained",
        "trained",
        "predicted",
        "trained",
        "predicted",
        "trained",
    ]
    assert out[4].fidelity["fitted_on"] == 3 and out[4].extra["refit"]


def test_options_are_checked():
    for bad in ({"model": "svm"}, {"encoding": "adjacency"}, {"initial": 1}, {"retrain_every": -1}):
        with pytest.raises(ConfigError):
            registry.create("estimator", "predictor", **bad)
