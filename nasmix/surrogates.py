"""Small regression models on architecture encodings, with uncertainty.

Bayesian optimisation (BANANAS) and trained-predictor estimators share these.
Each model maps encodings `X` (n, d) to scores `y` (n,): `fit(X, y)` returns
the model, `predict(X)` returns `(mean, std)`, two (m,) float64 arrays in the
units of `y`. Targets are standardised inside every model, so scores of any
scale (accuracies, proxy values) train alike. A model is seeded once, in its
constructor; the same seed and data give the same predictions.

- `MLPEnsemble`: BANANAS's ensemble of feed-forward networks (White et al. 2021).
- `GaussianProcess`: exact GP, Matern-5/2 or RBF kernel, hyperparameters and
  noise fitted by maximising the marginal likelihood.
- `GradientBoosting`: a bootstrap ensemble of scikit-learn gradient-boosted trees.

Example:
    >>> import numpy as np
    >>> X = np.eye(4)[[0, 1, 2, 3, 0, 1]]
    >>> y = np.array([0.1, 0.2, 0.3, 0.4, 0.1, 0.2])
    >>> mean, std = GaussianProcess(seed=0).fit(X, y).predict(X[:2])
    >>> mean.shape, bool((std >= 0).all())
    ((2,), True)
"""

from __future__ import annotations

import contextlib
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from nasmix.errors import ConfigError, NasmixError


def _check_xy(X, y=None) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0 or not np.isfinite(X).all():
        raise ConfigError(f"surrogate inputs must be a non-empty, finite (n, d) array, got shape {X.shape}")
    if y is None:
        return X, None
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(y) != len(X) or not np.isfinite(y).all():
        raise ConfigError(f"surrogate targets must be {len(X)} finite values, got {len(y)}")
    return X, y


@contextlib.contextmanager
def _one_thread():
    """Run torch on one thread: networks this small are fastest so, and a busy machine
    makes several threads tens of times slower (they wait on each other every step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _one_blas_thread():
    """The same for numpy's BLAS (through threadpoolctl, which scikit-learn brings), when present."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class Surrogate(ABC):
    """A regression model with uncertainty: `fit(X, y)` then `predict(X) -> (mean, std)`."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._scale: tuple[float, float] | None = None  # the mean and std of the training targets
        self._dim = 0

    def fit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        """Train on encodings X (n, d) and scores y (n,).

        Args:
            X: the encodings, one row per arch.
            y: their scores (higher is better; any scale).

        Returns:
            The model itself, trained.
        """
        X, checked = _check_xy(X, y)
        assert checked is not None  # _check_xy returns None only for y=None
        y = checked
        mu, sd = float(y.mean()), float(y.std())
        self._scale, self._dim = (mu, sd if sd > 1e-12 else 1.0), X.shape[1]
        self._fit(X, (y - mu) / self._scale[1])
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted mean and standard deviation of each row of X.

        Args:
            X: encodings (m, d), as in `fit`.

        Returns:
            (mean, std), two (m,) float64 arrays in the units of the training scores.
        """
        if self._scale is None:
            raise RuntimeError(f"{type(self).__name__}.predict called before fit")
        X, _ = _check_xy(X)
        if X.shape[1] != self._dim:
            raise ConfigError(f"surrogate was fitted on {self._dim} features, got {X.shape[1]}")
        mean, std = self._predict(X)
        mu, sd = self._scale
        return mean * sd + mu, np.maximum(std, 0.0) * sd

    @abstractmethod
    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        """Train on standardised targets z."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in standardised units."""


class MLPEnsemble(Surrogate):
    """BANANAS's predictor: an ensemble of feed-forward ReLU networks (White et al. 2021).

    The defaults are naszilla's "standard" meta-network: 5 networks of 10
    hidden layers of width 20, Adam with learning rate 0.01 and betas 0.9
    and 0.99 (naszilla's `meta_neural_net.py`), 150 epochs, batch size 32,
    mean absolute error loss. The members differ only in
    their initialisation and batch order; the mean is the ensemble mean and
    the std the spread of the members' predictions (np.std, as naszilla).
    Departures: the members train together, as one batched computation on
    the CPU (the same arithmetic as five separate networks, vectorised),
    their weights start from PyTorch's default `nn.Linear` initialisation
    (naszilla used Keras's Glorot-uniform), and targets are standardised.
    Training and prediction run on one CPU thread (see `_one_thread`).

    Example:
        >>> X = np.random.default_rng(0).integers(0, 2, (20, 6)).astype(float)
        >>> m = MLPEnsemble(MLPEnsemble.Config(members=2, layers=2, epochs=5), seed=0).fit(X, X.sum(1))
        >>> m.predict(X[:3])[0].shape
        (3,)
    """

    @dataclass(frozen=True)
    class Config:
        """Options of the ensemble.

        Attributes:
            members: networks in the ensemble.
            layers: hidden layers per network.
            width: units per hidden layer.
            epochs: passes over the training data.
            batch_size: examples per step.
            lr: Adam's learning rate.
            loss: "mae" (BANANAS) or "mse".
            beta2: Adam's second-moment decay (naszilla: 0.99; PyTorch's default 0.999).
        """

        members: int = 5
        layers: int = 10
        width: int = 20
        epochs: int = 150
        batch_size: int = 32
        lr: float = 0.01
        loss: str = "mae"
        beta2: float = 0.99

        def __post_init__(self) -> None:
            if min(self.members, self.layers, self.width, self.epochs, self.batch_size) < 1 or self.lr <= 0:
                raise ConfigError(
                    "MLPEnsemble members, layers, width, epochs, batch_size must be >= 1 and lr > 0"
                )
            if not 0 <= self.beta2 < 1:
                raise ConfigError(f"MLPEnsemble beta2 must be in [0, 1), got {self.beta2}")
            if self.loss not in ("mae", "mse"):
                raise ConfigError(f"MLPEnsemble loss must be 'mae' or 'mse', got {self.loss!r}")

    def __init__(self, config: Config = Config(), seed: int = 0):
        super().__init__(seed)
        self.config = config
        self._params: list[torch.Tensor] = []

    def _forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (members, batch, d); weights (members, d_in, d_out), biases (members, 1, d_out)
        last = len(self._params) // 2 - 1
        for i in range(0, len(self._params), 2):
            h = torch.baddbmm(self._params[i + 1], h, self._params[i])
            if i // 2 < last:
                h = torch.relu(h)
        return h.squeeze(-1)

    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        with _one_thread():
            self._train(X, z)

    def _train(self, X: np.ndarray, z: np.ndarray) -> None:
        c = self.config
        gen = torch.Generator().manual_seed(self.seed)
        dims = [X.shape[1]] + [c.width] * c.layers + [1]
        self._params = []
        for d_in, d_out in itertools.pairwise(dims):
            bound = 1.0 / np.sqrt(d_in)  # nn.Linear's default initialisation
            w = (torch.rand(c.members, d_in, d_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(c.members, 1, d_out, generator=gen) * 2 - 1) * bound
            self._params += [w.requires_grad_(), b.requires_grad_()]
        betas = (0.9, c.beta2)
        try:  # the fused kernel is a third faster on the CPU; older builds lack it there
            opt = torch.optim.Adam(self._params, lr=c.lr, betas=betas, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(self._params, lr=c.lr, betas=betas)
        xs = torch.as_tensor(X, dtype=torch.float32)
        zs = torch.as_tensor(z, dtype=torch.float32)
        n = len(xs)
        for _ in range(c.epochs):
            order = torch.stack([torch.randperm(n, generator=gen) for _ in range(c.members)])
            for start in range(0, n, c.batch_size):
                idx = order[:, start : start + c.batch_size]  # each member its own batch order
                err = self._forward(xs[idx]) - zs[idx]
                # the sum over members of each member's mean loss keeps their gradients independent
                loss = (err.abs() if c.loss == "mae" else err.square()).mean(dim=1).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        for p in self._params:
            p.requires_grad_(False)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = torch.as_tensor(X, dtype=torch.float32).expand(self.config.members, -1, -1)
        with torch.no_grad(), _one_thread():
            preds = self._forward(xs).double().numpy()  # (members, m)
        return preds.mean(axis=0), preds.std(axis=0)


class GaussianProcess(Surrogate):
    """An exact Gaussian process on encodings, its hyperparameters fitted by marginal likelihood.

    An isotropic Matern-5/2 (default) or RBF kernel on Euclidean distances
    between encodings, with a signal variance, a length scale and a noise
    variance, all fitted by maximising the log marginal likelihood of the
    standardised targets (L-BFGS-B over log-parameters; restarts from
    seeded random starting points). `predict` returns the posterior of the
    latent function: its std excludes the observation noise.

    Example:
        >>> X = np.eye(3)[[0, 1, 2]]
        >>> gp = GaussianProcess(GaussianProcess.Config(kernel="rbf"), seed=0).fit(X, [1.0, 2.0, 3.0])
        >>> [round(float(v), 1) for v in gp.predict(X)[0]]
        [1.0, 2.0, 3.0]
    """

    @dataclass(frozen=True)
    class Config:
        """Options of the Gaussian process.

        Attributes:
            kernel: "matern" (Matern 5/2) or "rbf".
            restarts: extra random starting points of the likelihood optimisation.
            min_noise: the smallest noise variance (standardised units).
        """

        kernel: str = "matern"
        restarts: int = 2
        min_noise: float = 1e-6

        def __post_init__(self) -> None:
            if self.kernel not in ("matern", "rbf"):
                raise ConfigError(f"GaussianProcess kernel must be 'matern' or 'rbf', got {self.kernel!r}")
            if self.restarts < 0 or self.min_noise <= 0:
                raise ConfigError("GaussianProcess restarts must be >= 0 and min_noise > 0")

    def __init__(self, config: Config = Config(), seed: int = 0):
        super().__init__(seed)
        self.config = config
        self.params: tuple[float, float, float] | None = None  # signal variance, length scale, noise variance

    def _kernel(self, d: np.ndarray, signal: float, length: float) -> np.ndarray:
        r = d / length
        if self.config.kernel == "rbf":
            return signal * np.exp(-0.5 * r**2)
        s = np.sqrt(5.0) * r
        return signal * (1.0 + s + s**2 / 3.0) * np.exp(-s)

    @staticmethod
    def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))

    def _nll(self, log_params: np.ndarray, d: np.ndarray, z: np.ndarray) -> float:
        signal, length, noise = np.exp(log_params)
        K = self._kernel(d, signal, length) + (noise + self.config.min_noise) * np.eye(len(z))
        try:
            L = np.linalg.cholesky(K)
        except np.linalg.LinAlgError:
            return 1e10
        alpha = np.linalg.solve(L.T, np.linalg.solve(L, z))
        return float(0.5 * z @ alpha + np.log(np.diag(L)).sum() + 0.5 * len(z) * np.log(2 * np.pi))

    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        with _one_blas_thread():
            self._optimise(X, z)

    def _optimise(self, X: np.ndarray, z: np.ndarray) -> None:
        try:
            from scipy.optimize import minimize
        except ImportError as err:
            raise NasmixError("GaussianProcess needs scipy: pip install 'nasmix[search]'") from err

        d = self._dist(X, X)
        scale = float(np.median(d[d > 0])) if (d > 0).any() else 1.0
        bounds = [
            (np.log(1e-2), np.log(1e2)),
            (np.log(scale * 1e-2), np.log(scale * 1e2)),
            (np.log(1e-8), np.log(1e1)),
        ]
        rng = np.random.default_rng(self.seed)
        starts = [np.array([0.0, np.log(scale), np.log(1e-2)])]
        starts += [np.array([rng.uniform(lo, hi) for lo, hi in bounds]) for _ in range(self.config.restarts)]
        best = min(
            (minimize(self._nll, s, args=(d, z), method="L-BFGS-B", bounds=bounds) for s in starts),
            key=lambda r: r.fun,
        )
        signal, length, noise = (float(v) for v in np.exp(best.x))
        self.params = (signal, length, noise)
        K = self._kernel(d, signal, length) + (noise + self.config.min_noise) * np.eye(len(z))
        self._L = np.linalg.cholesky(K)
        self._alpha = np.linalg.solve(self._L.T, np.linalg.solve(self._L, z))
        self._X = X

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.params is not None, "fit first"  # predict() refuses an unfitted model before this
        signal, length, _ = self.params
        Ks = self._kernel(self._dist(self._X, X), signal, length)
        with _one_blas_thread():
            v = np.linalg.solve(self._L, Ks)
        var = np.maximum(signal - (v**2).sum(0), 0.0)
        return Ks.T @ self._alpha, np.sqrt(var)


class GradientBoosting(Surrogate):
    """A bootstrap ensemble of gradient-boosted regression trees (scikit-learn).

    Each member is a `sklearn.ensemble.GradientBoostingRegressor` (squared
    error, its default trees) fitted on a bootstrap resample of the data; the
    mean is the members' mean and the std their spread, a bootstrap estimate
    of the model's uncertainty (not a predictive interval: quantile losses
    would give one, but bootstrapping gives a std Thompson sampling can use).
    The classic regressor, not the histogram one, because its leaves need no
    20 samples and searches fit on tens of archs.

    Example:
        >>> X = np.random.default_rng(0).integers(0, 2, (30, 5)).astype(float)
        >>> gb = GradientBoosting(GradientBoosting.Config(members=3, trees=20), seed=0).fit(X, X[:, 0])
        >>> gb.predict(X[:2])[1].shape
        (2,)
    """

    @dataclass(frozen=True)
    class Config:
        """Options of the ensemble.

        Attributes:
            members: bootstrap fits.
            trees: boosting stages per member.
            learning_rate: shrinkage per stage.
            max_depth: depth of each tree.
        """

        members: int = 5
        trees: int = 100
        learning_rate: float = 0.1
        max_depth: int = 3

        def __post_init__(self) -> None:
            if min(self.members, self.trees, self.max_depth) < 1 or self.learning_rate <= 0:
                raise ConfigError(
                    "GradientBoosting members, trees, max_depth must be >= 1 and learning_rate > 0"
                )

    def __init__(self, config: Config = Config(), seed: int = 0):
        super().__init__(seed)
        self.config = config
        self._models: list = []

    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        try:
            from sklearn.ensemble import GradientBoostingRegressor
        except ImportError as err:
            raise NasmixError("GradientBoosting needs scikit-learn: pip install 'nasmix[search]'") from err
        c = self.config
        rng = np.random.default_rng(self.seed)
        self._models = []
        for _ in range(c.members):
            rows = rng.integers(len(z), size=len(z))
            model = GradientBoostingRegressor(
                n_estimators=c.trees,
                learning_rate=c.learning_rate,
                max_depth=c.max_depth,
                random_state=int(rng.integers(2**31)),
            )
            self._models.append(model.fit(X[rows], z[rows]))

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([m.predict(X) for m in self._models])
        return preds.mean(axis=0), preds.std(axis=0)
