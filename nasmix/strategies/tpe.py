"""TPE: the Tree-structured Parzen Estimator, through Optuna's ask/tell interface.

Example:
    >>> import numpy as np
    >>> from nasmix.spaces.base import get_space
    >>> space, rng = get_space("nb201"), np.random.default_rng(0)
    >>> tpe = TPE()
    >>> tpe.reset(space, rng)
    >>> arch = tpe.ask(rng); tpe.tell(arch, 0.5)
    >>> len(tpe.study.trials)
    1
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError, NasmixError
from nasmix.strategies.base import AskTell

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace


def _optuna():
    try:
        import optuna
    except ImportError as err:
        raise NasmixError("strategy 'tpe' needs Optuna: pip install 'nasmix[search]'") from err
    return optuna


@contextlib.contextmanager
def _quiet(optuna):
    """Silence Optuna's per-trial INFO lines and experimental warnings, restoring its verbosity after."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


@registry.register("strategy", "tpe")
class TPE(AskTell):
    """TPE (Bergstra et al. 2011) via Optuna's TPESampler: one categorical parameter per choice.

    Each choice of `space.choices()` is an Optuna categorical parameter over
    its option indices; `ask` opens a trial (`study.ask()`), `tell` closes it
    with the score (`study.tell`, direction "maximize"). The sampler is
    seeded from the search's rng. The first `n_startup_trials` are random
    (Optuna's default 10), then each trial maximises the ratio of Parzen
    densities of good and bad trials over `n_ei_candidates` draws.
    `multivariate` models the choices jointly (Falkner et al. 2018's
    variant) instead of one at a time. Departures: none in the algorithm
    (this is Optuna's); archs are not deduplicated, as TPE may propose an
    arch again.

    Example:
        >>> from nasmix import registry
        >>> registry.create("strategy", "tpe", multivariate=True).config.multivariate
        True
    """

    @dataclass(frozen=True)
    class Config:
        """Options passed to `optuna.samplers.TPESampler`.

        Attributes:
            n_startup_trials: random trials before TPE's model is used.
            n_ei_candidates: candidates drawn per trial to maximise the acquisition.
            multivariate: one joint density over all choices.
        """

        n_startup_trials: int = 10
        n_ei_candidates: int = 24
        multivariate: bool = False

        def __post_init__(self) -> None:
            if self.n_startup_trials < 0 or self.n_ei_candidates < 1:
                raise ConfigError(f"tpe needs n_startup_trials >= 0 and n_ei_candidates >= 1, got {self}")

    def __init__(self, config: Config = Config()):
        self.config = config

    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        optuna = self._optuna = _optuna()
        self.space = space
        self.names = [f"{i}:{c.name}" for i, c in enumerate(space.choices())]
        self.sizes = [len(c.options) for c in space.choices()]
        with _quiet(optuna):
            sampler = optuna.samplers.TPESampler(
                seed=int(rng.integers(2**31)),
                n_startup_trials=self.config.n_startup_trials,
                n_ei_candidates=self.config.n_ei_candidates,
                multivariate=self.config.multivariate,
            )
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.pending: dict[Arch, list] = {}

    def ask(self, rng: np.random.Generator) -> Arch:
        with _quiet(self._optuna):
            trial = self.study.ask()
            values = [trial.suggest_categorical(n, list(range(s))) for n, s in zip(self.names, self.sizes)]
        arch = self.space.from_choices(values)
        self.pending.setdefault(arch, []).append(trial)
        return arch

    def tell(self, arch: Arch, score: float) -> None:
        trials = self.pending.get(arch)
        if not trials:
            raise ConfigError(f"tpe was told the score of {arch}, which it did not ask for")
        with _quiet(self._optuna):
            self.study.tell(trials.pop(0), float(score))
