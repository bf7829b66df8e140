"""REINFORCE: a factorised categorical policy over the space's choices, trained on scores.

Example:
    >>> import numpy as np
    >>> from nasmix.spaces.base import get_space
    >>> space, rng = get_space("nb201"), np.random.default_rng(0)
    >>> rl = Reinforce()
    >>> rl.reset(space, rng)
    >>> rl.probabilities()[0].round(2).tolist()
    [0.2, 0.2, 0.2, 0.2, 0.2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.strategies.base import AskTell

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace


@registry.register("strategy", "reinforce")
class Reinforce(AskTell):
    """REINFORCE (Williams 1992) over independent categorical choices, as in NAS-Bench-201's baseline.

    The policy holds one vector of logits per choice of `space.choices()`,
    zero at the start (uniform). `ask` samples each choice from the softmax
    of its logits; `tell` takes the score as the reward and moves the logits
    along (reward - baseline) * grad log p(arch), whose gradient for a choice
    is onehot(option) - softmax(logits). The baseline is NAS-Bench-201's
    (xautodl exps/NATS-algos/reinforce.py `ExponentialMovingAverage`): a
    bias-corrected exponential moving average with momentum `baseline_decay`
    (numerator and denominator both decayed from zero), updated with the
    reward BEFORE the advantage is taken, so the first advantage is zero.
    `baseline="lagged"` keeps nasmix's earlier rule instead (a plain moving
    average started at the first reward and updated after the advantage).
    The step is Adam's (or plain SGD's) with learning rate `lr`.
    Departures: Zoph and Le (2017) trained an LSTM controller (Adam, lr
    0.0006, thousands of samples); here, as in Dong and Yang's (2020)
    REINFORCE baseline, the policy has no memory between choices; its
    logits start at zero (NB-201: 1e-3 times a Gaussian draw), and the
    learning rate default (0.05) is ours, set for budgets of about a
    hundred candidates. The optimiser state lives in numpy; no torch RNG.

    Example:
        >>> from nasmix import registry
        >>> registry.create("strategy", "reinforce", lr=0.1, optimizer="sgd").config.optimizer
        'sgd'
    """

    @dataclass(frozen=True)
    class Config:
        """Options of REINFORCE.

        Attributes:
            lr: the learning rate of the logits.
            baseline_decay: the momentum of the baseline's moving average (NB-201: 0.9).
            baseline: "corrected" (NB-201's bias-corrected average, updated first) or
                "lagged" (a plain average from the first reward, updated after the advantage).
            optimizer: "adam" or "sgd".
        """

        lr: float = 0.05
        baseline_decay: float = 0.9
        baseline: str = "corrected"
        optimizer: str = "adam"

        def __post_init__(self) -> None:
            if self.lr <= 0 or not 0 <= self.baseline_decay < 1:
                raise ConfigError(f"reinforce needs lr > 0 and 0 <= baseline_decay < 1, got {self}")
            if self.baseline not in ("corrected", "lagged"):
                raise ConfigError(
                    f"reinforce baseline must be 'corrected' or 'lagged', got {self.baseline!r}"
                )
            if self.optimizer not in ("adam", "sgd"):
                raise ConfigError(f"reinforce optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, config: Config = Config()):
        self.config = config

    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        self.space = space
        self.sizes = [len(c.options) for c in space.choices()]
        self.offsets = np.cumsum([0] + self.sizes)
        self.logits = np.zeros(self.offsets[-1])
        self.m = np.zeros_like(self.logits)
        self.v = np.zeros_like(self.logits)
        self.steps = 0
        self.baseline: float | None = None
        self._ema = (0.0, 0.0)  # numerator, denominator of the corrected average

    def probabilities(self) -> list[np.ndarray]:
        """The policy: one probability vector per choice.

        Returns:
            A list with, for each choice, the probabilities of its options.
        """
        out = []
        for lo, hi in zip(self.offsets[:-1], self.offsets[1:]):
            z = self.logits[lo:hi] - self.logits[lo:hi].max()
            out.append(np.exp(z) / np.exp(z).sum())
        return out

    def ask(self, rng: np.random.Generator) -> Arch:
        return self.space.from_choices([int(rng.choice(len(p), p=p)) for p in self.probabilities()])

    def tell(self, arch: Arch, score: float) -> None:
        score, decay = float(score), self.config.baseline_decay
        if self.config.baseline == "corrected":  # NB-201: update first, then the advantage
            num, den = self._ema
            self._ema = (decay * num + (1 - decay) * score, decay * den + (1 - decay))
            self.baseline = self._ema[0] / self._ema[1]
            advantage = score - self.baseline
        else:
            if self.baseline is None:
                self.baseline = score
            advantage = score - self.baseline
            self.baseline = decay * self.baseline + (1 - decay) * score
        grad = -np.concatenate(self.probabilities())  # d log p(arch) / d logits ...
        for lo, v in zip(self.offsets[:-1], self.space.to_choices(arch)):
            grad[lo + v] += 1.0  # ... = onehot(option) - softmax, per choice
        grad *= advantage
        self.steps += 1
        if self.config.optimizer == "sgd":
            self.logits += self.config.lr * grad
            return
        b1, b2 = self.BETAS
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad**2
        m_hat = self.m / (1 - b1**self.steps)
        v_hat = self.v / (1 - b2**self.steps)
        self.logits += self.config.lr * m_hat / (np.sqrt(v_hat) + self.EPS)  # ascent: rewards are maximised
