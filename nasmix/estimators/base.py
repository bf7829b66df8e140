"""The Estimator interface: how a discrete strategy scores a candidate arch.

Example:
    >>> Estimate(score=0.5, cost_s=1.0).simulated
    False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from nasmix.arch import Arch

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace
    from nasmix.strategies.base import Budget, SearchData


@dataclass
class Estimate:
    """The score of one candidate and what it cost.

    Attributes:
        score: higher is better (a validation accuracy in [0, 1] for trained
            estimators; a proxy's value for zero-cost ones).
        cost_s: the compute charged: measured seconds, or, when `simulated`,
            the training time a tabular benchmark recorded.
        fidelity: what was spent (epochs, data fraction, width...).
        simulated: the score came from a lookup, not from computing it here.
        extra: anything else worth recording (e.g. the true score of a lookup).
    """

    score: float
    cost_s: float
    fidelity: dict = field(default_factory=dict)
    simulated: bool = False
    extra: dict = field(default_factory=dict)


class Estimator(ABC):
    """A registered performance estimator.

    Attributes:
        kind: a family word shown in reports: "training", "proxy", "predictor",
            "weight_sharing" or "tabular".
    """

    kind: ClassVar[str] = "training"
    registry_name: str = "?"

    def prepare(self, space: "SearchSpace", data: "SearchData", budget: "Budget", rng: np.random.Generator) -> None:
        """Called once before a search (e.g. to train a supernet); no-op by default."""

    @abstractmethod
    def estimate(self, space: "SearchSpace", arch: Arch, data: "SearchData", parent: Arch | None = None) -> Estimate:
        """Score one arch. `parent` is the arch it was derived from, if any."""
