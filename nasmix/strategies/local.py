"""Local search: hill climbing over neighbourhoods, restarting at local optima.

Example:
    >>> import numpy as np
    >>> from nasmix.spaces.base import get_space
    >>> space, rng = get_space("nb201"), np.random.default_rng(0)
    >>> ls = Local(Local.Config(num_init=1))
    >>> ls.reset(space, rng)
    >>> start = ls.ask(rng); ls.tell(start, 0.5)
    >>> ls.ask(rng) in space.neighbors(start)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.strategies.base import AskTell
from nasmix.strategies.random import sample_unseen

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace


@registry.register("strategy", "local")
class Local(AskTell):
    """Local search (White et al. 2020, "Local search is state of the art for NAS benchmarks").

    It evaluates `num_init` random archs and climbs from the best: the
    neighbours of the current arch (`space.neighbors`: one choice changed)
    are evaluated in random order, then the search moves to the best of
    them if it beats the current arch (steepest ascent, White et al.'s
    `query_full_nbhd`); with `first_improvement` it moves as soon as one
    neighbour beats it. At a local optimum (no neighbour better) it restarts
    from a fresh random arch. A neighbour whose canonical form was already
    evaluated is not evaluated again: its known score counts. The defaults
    follow NASLib's LocalSearch (10 initial archs, full neighbourhoods,
    restart from one random arch).

    Example:
        >>> from nasmix import registry
        >>> registry.create("strategy", "local", first_improvement=True).config.first_improvement
        True
    """

    @dataclass(frozen=True)
    class Config:
        """Options of local search.

        Attributes:
            num_init: random archs evaluated before climbing from the best.
            first_improvement: move on the first better neighbour (else the best of all).
        """

        num_init: int = 10
        first_improvement: bool = False

        def __post_init__(self) -> None:
            if self.num_init < 1:
                raise ConfigError(f"local: num_init must be >= 1, got {self.num_init}")

    def __init__(self, config: Config = Config()):
        self.config = config

    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        self.space = space
        self.seen: set[Arch] = set()
        self.scores: dict[Arch, float] = {}  # canonical arch -> its (first) score
        self.asked = 0
        self.current: tuple[float, Arch] | None = None
        self.queue: list[Arch] | None = None  # neighbours of current left to look at (None: not drawn yet)
        self.best_nbr: tuple[float, Arch] | None = None
        self.restart: Arch | None = None
        self.init_best: tuple[float, Arch] | None = None
        self.moves = self.restarts = 0

    def _move(self, score: float, arch: Arch) -> None:
        self.current, self.queue, self.best_nbr = (score, arch), None, None

    def ask(self, rng: np.random.Generator) -> Arch:
        self.asked += 1
        if self.current is None:  # the initial random archs (num_init, told before any climbing)
            return sample_unseen(self.space, rng, self.seen)
        while True:
            if self.queue is None:
                nbrs = self.space.neighbors(self.current[1])
                self.queue = [nbrs[i] for i in rng.permutation(len(nbrs))]
            while self.queue:
                nbr = self.queue.pop()
                key = self.space.canonical(nbr)
                if key not in self.seen:
                    self.seen.add(key)
                    return nbr
                known = self.scores.get(key)
                if known is not None:
                    self._consider(known, nbr)
                    if self.queue is None:  # first improvement moved
                        break
            if self.queue is None:
                continue
            if self.best_nbr is not None and self.best_nbr[0] > self.current[0]:
                self.moves += 1
                self._move(*self.best_nbr)
                continue
            # a local optimum: start again from a random arch, which becomes current when told
            self.restarts += 1
            self.restart = sample_unseen(self.space, rng, self.seen)
            return self.restart

    def _consider(self, score: float, nbr: Arch) -> None:
        if self.best_nbr is None or score > self.best_nbr[0]:
            self.best_nbr = (score, nbr)
        current = self.current  # set: neighbours are considered once climbing has started
        if self.config.first_improvement and current is not None and score > current[0]:
            self.moves += 1
            self._move(score, nbr)

    def tell(self, arch: Arch, score: float) -> None:
        self.scores.setdefault(self.space.canonical(arch), score)
        if self.current is None:  # an initial arch: climbing starts from the best of them
            if self.init_best is None or score > self.init_best[0]:
                self.init_best = (score, arch)
            if self.asked >= self.config.num_init:
                self._move(*self.init_best)
        elif self.restart is not None and arch == self.restart:
            self.restart = None
            self._move(score, arch)
        else:
            self._consider(score, arch)
