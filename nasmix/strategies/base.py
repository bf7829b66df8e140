"""The Strategy interface, the ask/tell base of discrete strategies, and
what a search receives: its data, its budget and its event log.

Events a search sends through `log` (dicts with an "event" key):
- "search_epoch" (one-shot, per epoch): epoch, epochs, train_loss, train_top1,
  valid_loss, valid_top1, arch (the currently decoded arch string), entropy
  (mean entropy of the architecture distribution, nats), epoch_s, gpu_s,
  peak_gpu_bytes, peak_host_bytes, device.
- "candidate" (discrete, per evaluated arch): index, arch, score, cost_s,
  cumulative_cost_s, best_score, best_arch, fidelity, simulated, and the
  estimate's scalar extras (e.g. true_score of a lookup, stopped, diverged).
- "capped": the budget's time cap stopped the search early: done, total,
  elapsed_s (the study projects the full runtime from these).
- "search_done": arch (the chosen arch string), and the strategy's summary.
- One-shot notes: "partial_fallback" (PC-DARTS's K lowered to divide the
  channels), "edge_norm_fallback" (a supernet without edge_nodes), "subnet"
  (few-shot NAS: one sub-supernet's result).

Example:
    >>> budget = Budget(epochs=1)
    >>> budget.capped(elapsed_s=10.0)
    False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from nasmix.arch import Arch
from nasmix.data.base import ImageArrays, Task
from nasmix.errors import ConfigError
from nasmix.timing import Timer

if TYPE_CHECKING:
    from nasmix.estimators.base import Estimator
    from nasmix.spaces.base import SearchSpace

Log = Callable[[dict], None]


@dataclass(frozen=True)
class Budget:
    """How much a search may spend.

    Attributes:
        epochs: supernet training epochs (one-shot strategies).
        candidates: architectures to evaluate (discrete strategies).
        max_seconds: wall-clock cap of the search phase (None: no cap); a
            capped search stops, logs "capped" and returns its best arch so far.
        batch_size: the search batch size (NASLib's default 64).
    """

    epochs: int = 50
    candidates: int = 100
    max_seconds: float | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.candidates < 1 or self.batch_size < 1:
            raise ConfigError("budget epochs, candidates and batch_size must be >= 1")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be > 0, got {self.max_seconds}")

    def capped(self, elapsed_s: float) -> bool:
        """Has the search used up its time cap?"""
        return self.max_seconds is not None and elapsed_s >= self.max_seconds


@dataclass
class SearchData:
    """The data of a search: the search split and where to compute.

    Attributes:
        train: the half that trains weights.
        valid: the half that scores architectures (and trains them, one-shot).
        task: classes, image shape, normalisation.
        device: where to compute.
        timer: the clock (nasmix.timing) of this device.
        size: the network size searched ("search" normally, "tiny" in tests).
    """

    train: ImageArrays
    valid: ImageArrays
    task: Task
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    timer: Timer | None = None
    size: str = "search"

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        if self.timer is None:
            self.timer = Timer(self.device)


class Strategy(ABC):
    """A registered search strategy.

    Attributes:
        kind: "oneshot" (drives a supernet; ignores the estimator) or
            "discrete" (proposes archs and scores them with an estimator).
        spaces: the spaces it supports (None: every space).
    """

    kind: ClassVar[str]
    spaces: ClassVar[tuple[str, ...] | None] = None
    registry_name: str = "?"

    @abstractmethod
    def search(self, space: "SearchSpace", estimator: "Estimator | None", data: SearchData, budget: Budget,
               log: Log, rng: np.random.Generator) -> Arch:  # fmt: skip
        """Search the space and return the chosen arch."""


class AskTell(Strategy):
    """A discrete strategy written as ask (propose an arch) and tell (its score).

    `search` runs the loop: ask, estimate, tell, log a "candidate" event, until
    the candidate budget or the time cap runs out; the best-scoring arch wins.
    """

    kind: ClassVar[str] = "discrete"

    @abstractmethod
    def reset(self, space: "SearchSpace", rng: np.random.Generator) -> None:
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

    def search(self, space: "SearchSpace", estimator: "Estimator | None", data: SearchData, budget: Budget,
               log: Log, rng: np.random.Generator) -> Arch:  # fmt: skip
        if estimator is None:
            raise ConfigError(f"strategy {self.registry_name!r} needs an estimator")
        self.reset(space, rng)
        estimator.prepare(space, data, budget, rng)
        best: tuple[float, Arch] | None = None
        spent = 0.0
        t0 = data.timer.now()
        for i in range(budget.candidates):
            if budget.capped(data.timer.now() - t0):
                log({"event": "capped", "done": i, "total": budget.candidates, "elapsed_s": data.timer.now() - t0})
                break
            arch = self.ask(rng)
            est = estimator.estimate(space, arch, data, parent=self.parent_of(arch))
            self.tell(arch, est.score)
            spent += est.cost_s
            if best is None or est.score > best[0]:
                best = (est.score, arch)
            log({"event": "candidate", "index": i + 1, "arch": arch.to_str(), "score": est.score,
                 "cost_s": est.cost_s, "cumulative_cost_s": spent, "best_score": best[0],
                 "best_arch": best[1].to_str(), "fidelity": est.fidelity, "simulated": est.simulated,
                 **{k: v for k, v in est.extra.items() if isinstance(v, (int, float, bool, str))}})  # fmt: skip
        if best is None:
            raise RuntimeError("the time cap stopped the search before its first candidate")
        log({"event": "search_done", "arch": best[1].to_str(), "score": best[0]})
        return best[1]
