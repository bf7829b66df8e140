"""The Strategy interface and the ask/tell base of discrete strategies.

A search receives its data (`SearchData`), its `Budget`, an event log and a
seeded `rng`, and returns the chosen arch. It logs typed events
(nasmix.events): `SearchEpoch` per one-shot epoch or `Candidate` per evaluated
arch, one-shot notes (`PartialFallback`, `EdgeNormFallback`, `MemoryPlanned`,
`Subnet`), `Capped` when its budget's cap stopped it, then `SearchDone`. The shared types
live below strategies and estimators (nasmix.budget, nasmix.search_types) and
are re-exported here.

Example:
    >>> clock = Budget(candidates=2).clock(timer=None, total=2)
    >>> clock.stop_reason() is None
    True
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from nasmix.arch import Arch
from nasmix.budget import Budget, Clock
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimator
from nasmix.events import Candidate, SearchDone
from nasmix.search_types import Log, SearchData
from nasmix.spaces.base import SearchSpace

__all__ = ["AskTell", "Budget", "Clock", "Log", "SearchData", "Strategy"]

CANDIDATE_FIELDS = {f.name for f in dataclasses.fields(Candidate)}


class Strategy(ABC):
    """A registered search strategy.

    A strategy's loop polls its budget's clock between units of work (epochs
    or candidates): `clock = budget.clock(data.timer, total)` at the start,
    `clock.tick(gpu_s=...)` after each unit, and, while `clock.stop_reason()`
    is not None, it stops, logs `clock.capped()` and returns its best arch so
    far (with a `SearchDone`). The `log` callback only records: it never
    raises to stop a search. AskTell and the one-shot base do all of this
    for their subclasses.

    Attributes:
        kind: "oneshot" (drives a supernet; ignores the estimator) or
            "discrete" (proposes archs and scores them with an estimator).
        spaces: the spaces it supports (None: every space).
    """

    kind: ClassVar[str]
    spaces: ClassVar[tuple[str, ...] | None] = None
    registry_name: str = "?"

    @abstractmethod
    def search(
        self,
        space: SearchSpace,
        estimator: Estimator | None,
        data: SearchData,
        budget: Budget,
        log: Log,
        rng: np.random.Generator,
    ) -> Arch:
        """Search the space and return the chosen arch."""


class AskTell(Strategy):
    """A discrete strategy written as ask (propose an arch) and tell (its score).

    `search` runs the loop: ask, estimate, tell, log a `Candidate`, until the
    candidate budget or a cap of the budget stops it; the best-scoring arch wins.
    """

    kind: ClassVar[str] = "discrete"

    @abstractmethod
    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        """Start a new search of `space`."""

    @abstractmethod
    def ask(self, rng: np.random.Generator) -> Arch:
        """The next arch to evaluate."""

    @abstractmethod
    def tell(self, arch: Arch, score: float) -> None:
        """The score (higher is better) of an arch that `ask` proposed."""

    def parent_of(self, arch: Arch) -> Arch | None:
        """The arch this one was derived from, if any (weight inheritance uses it)."""
        return None

    def search(
        self,
        space: SearchSpace,
        estimator: Estimator | None,
        data: SearchData,
        budget: Budget,
        log: Log,
        rng: np.random.Generator,
    ) -> Arch:
        if estimator is None:
            raise ConfigError(f"strategy {self.registry_name!r} needs an estimator")
        clock = budget.clock(data.timer, total=budget.candidates)
        self.reset(space, rng)
        estimator.prepare(space, data, budget, rng)
        best: tuple[float, Arch] | None = None
        spent = 0.0
        for i in range(budget.candidates):
            if clock.stop_reason() is not None:
                log(clock.capped())
                break
            arch = self.ask(rng)
            est = estimator.estimate(space, arch, data, parent=self.parent_of(arch))
            self.tell(arch, est.score)
            spent += est.cost_s
            if best is None or est.score > best[0]:
                best = (est.score, arch)
            # the estimator's JSON scalars (its gpu_s a float, its device a string, when it gives them)
            extra: dict[str, Any] = {
                k: v for k, v in est.extra.items() if isinstance(v, (int, float, bool, str))
            }
            gpu_s, device = extra.pop("gpu_s", None), extra.pop("device", None)
            # An estimator's own "index" (a benchmark row) must not overwrite the candidate's.
            extra = {f"estimate_{k}" if k in CANDIDATE_FIELDS else k: v for k, v in extra.items()}
            clock.tick(gpu_s=gpu_s)
            log(
                Candidate(
                    i + 1,
                    arch.to_str(),
                    est.score,
                    est.cost_s,
                    spent,
                    best[0],
                    best[1].to_str(),
                    est.fidelity,
                    est.simulated,
                    gpu_s,
                    device,
                    clock.elapsed_s(),
                    extra=extra,
                )
            )
        assert best is not None  # a clock never stops a loop before its first unit
        log(SearchDone(best[1].to_str(), best[0]))
        return best[1]
