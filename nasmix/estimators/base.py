"""The Estimator interface: how a discrete strategy scores a candidate arch.

Example:
    >>> Estimate(score=0.5, cost_s=1.0).simulated
    False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from nasmix.arch import Arch
from nasmix.budget import Budget
from nasmix.search_types import Estimate, SearchData
from nasmix.spaces.base import SearchSpace

__all__ = ["Estimate", "Estimator"]


class Estimator(ABC):
    """A registered performance estimator.

    Attributes:
        kind: a family word shown in reports: "training", "proxy", "predictor",
            "weight_sharing" or "tabular".
    """

    kind: ClassVar[str] = "training"
    registry_name: str = "?"

    def prepare(  # noqa: B027 - a no-op default on purpose; estimators without set-up need not override it
        self, space: SearchSpace, data: SearchData, budget: Budget, rng: np.random.Generator
    ) -> None:
        """Called once before a search (e.g. to train a supernet); no-op by default."""

    @abstractmethod
    def estimate(
        self, space: SearchSpace, arch: Arch, data: SearchData, parent: Arch | None = None
    ) -> Estimate:
        """Score one arch. `parent` is the arch it was derived from, if any."""
