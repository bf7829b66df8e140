"""The surrogate models: shapes, seeding, uncertainty, and that they learn a simple function."""

import numpy as np
import pytest
from scipy.stats import kendalltau

from nasmix.errors import ConfigError
from nasmix.surrogates import GaussianProcess, GradientBoosting, MLPEnsemble

# Small settings keep the suite fast; the defaults are exercised by the strategies' own tests.
MODELS = {
    "mlp": lambda seed: MLPEnsemble(MLPEnsemble.Config(members=3, layers=3, epochs=60), seed=seed),
    "gp": lambda seed: GaussianProcess(seed=seed),
    "gbdt": lambda seed: GradientBoosting(GradientBoosting.Config(members=3, trees=50), seed=seed),
}


def toy(n, seed=0):
    """Binary encodings whose score is a weighted count of set bits: a function every model can learn."""
    X = np.random.default_rng(seed).integers(0, 2, (n, 12)).astype(np.float32)
    return X, X @ np.linspace(1.0, 0.1, 12) + 0.5


@pytest.mark.parametrize("name", MODELS)
def test_fit_predict_shapes_and_seeding(name):
    X, y = toy(40)
    a = MODELS[name](1).fit(X, y).predict(X[:7])
    b = MODELS[name](1).fit(X, y).predict(X[:7])
    assert a[0].shape == a[1].shape == (7,) and a[0].dtype == np.float64
    assert (a[1] >= 0).all() and np.isfinite(a[0]).all()
    np.testing.assert_array_equal(a[0], b[0])  # the same seed and data give the same model
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("name", MODELS)
def test_learns_a_ranking(name):
    X, y = toy(120)
    mean, _ = MODELS[name](0).fit(X[:80], y[:80]).predict(X[80:])
    assert kendalltau(mean, y[80:])[0] > 0.6, name


@pytest.mark.parametrize("name", MODELS)
def test_scale_of_targets_does_not_matter(name):
    X, y = toy(60)
    small = MODELS[name](0).fit(X, y).predict(X[:5])
    big = MODELS[name](0).fit(X, 1000 * y + 7).predict(X[:5])
    np.testing.assert_allclose(1000 * small[0] + 7, big[0], rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("name", MODELS)
def test_errors(name):
    model = MODELS[name](0)
    with pytest.raises(RuntimeError):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(ConfigError):
        model.fit(np.zeros((3, 2)), np.zeros(2))
    model.fit(np.eye(3), [1.0, 2.0, 3.0])
    with pytest.raises(ConfigError):
        model.predict(np.zeros((1, 4)))


def test_single_point_and_constant_targets():
    for make in MODELS.values():
        mean, std = make(0).fit(np.ones((1, 3)), [0.7]).predict(np.zeros((2, 3)))
        assert np.isfinite(mean).all() and np.isfinite(std).all()
        mean, _ = make(0).fit(np.eye(3), [0.5, 0.5, 0.5]).predict(np.eye(3))
        np.testing.assert_allclose(mean, 0.5, atol=0.01)


def test_gp_interpolates_and_is_unsure_far_away():
    X = np.linspace(0, 3, 12)[:, None]
    y = np.sin(2 * X[:, 0])
    for kernel in ("matern", "rbf"):
        gp = GaussianProcess(GaussianProcess.Config(kernel=kernel), seed=0).fit(X, y)
        mean, std = gp.predict(X)
        np.testing.assert_allclose(mean, y, atol=0.05)
        between, _ = gp.predict(X[:-1] + 3 / 22)  # midway between training points
        np.testing.assert_allclose(between, np.sin(2 * (X[:-1, 0] + 3 / 22)), atol=0.1)
        _, far = gp.predict(np.array([[10.0]]))
        assert far[0] > 5 * std.max(), kernel
        assert all(p > 0 for p in gp.params)


def test_mlp_ensemble_spread():
    X, y = toy(30)
    one = MLPEnsemble(MLPEnsemble.Config(members=1, layers=2, epochs=20), seed=0).fit(X, y)
    assert (one.predict(X)[1] == 0).all()  # one network has no spread
    many = MLPEnsemble(MLPEnsemble.Config(members=4, layers=2, epochs=20), seed=0).fit(X, y)
    assert (many.predict(X)[1] > 0).all()
    assert not np.array_equal(many.predict(X)[0], MLPEnsemble(many.config, seed=1).fit(X, y).predict(X)[0])


def test_mlp_ensemble_uses_naszillas_adam(monkeypatch):
    """naszilla's meta network trains with Adam(lr, beta_1=0.9, beta_2=0.99), not PyTorch's 0.999."""
    import torch

    seen = []
    adam = torch.optim.Adam

    def recording(params, **kwargs):
        seen.append(kwargs["betas"])
        return adam(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", recording)
    X, y = toy(10)
    MLPEnsemble(MLPEnsemble.Config(members=1, layers=1, epochs=1), seed=0).fit(X, y)
    MLPEnsemble(MLPEnsemble.Config(members=1, layers=1, epochs=1, beta2=0.999), seed=0).fit(X, y)
    assert [b for b in seen] == [(0.9, 0.99), (0.9, 0.999)]
    with pytest.raises(ConfigError):
        MLPEnsemble.Config(beta2=1.0)


def test_config_validation():
    with pytest.raises(ConfigError):
        MLPEnsemble.Config(members=0)
    with pytest.raises(ConfigError):
        MLPEnsemble.Config(loss="huber")
    with pytest.raises(ConfigError):
        GaussianProcess.Config(kernel="linear")
    with pytest.raises(ConfigError):
        GradientBoosting.Config(trees=0)
