"""What a search receives and hands on, shared by strategies, estimators and
studies (below all three, so none of them imports another for these types):
the search split (`SearchData`), an estimator's result (`Estimate`) and the
event log (`Log`). The budget and its clock are in nasmix.budget, the events
in nasmix.events.

Example:
    >>> Estimate(score=0.5, cost_s=1.0).simulated
    False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from nasmix.data.base import ImageArrays, Task
from nasmix.events import Event
from nasmix.timing import Timer

Log = Callable[[Event], None]  # receives every event a search logs (nasmix.events)


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
        extra: anything else worth recording (e.g. the true score of a lookup;
            "gpu_s" and "device" where the estimate was measured).
    """

    score: float
    cost_s: float
    fidelity: dict = field(default_factory=dict)
    simulated: bool = False
    extra: dict = field(default_factory=dict)
