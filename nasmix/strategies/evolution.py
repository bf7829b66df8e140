"""Regularized evolution: tournament selection (with replacement), mutation, and ageing out the oldest.

Example:
    >>> import numpy as np
    >>> from nasmix.spaces.base import get_space
    >>> space, rng = get_space("nb201"), np.random.default_rng(0)
    >>> evo = Evolution(Evolution.Config(population=2, sample=2))
    >>> evo.reset(space, rng)
    >>> for score in (0.1, 0.9):
    ...     evo.tell(evo.ask(rng), score)
    >>> child = evo.ask(rng)
    >>> evo.parent_of(child) == evo.population[1][1]
    True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.strategies.base import AskTell

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace


PRESETS = {"scaled": (20, 5), "paper": (100, 25)}  # (P, S); "paper": Real et al. 2019


@registry.register("strategy", "evolution")
class Evolution(AskTell):
    """Regularized evolution.

    After Real et al. 2019, "Regularized evolution for image classifier architecture search".

    The first `population` candidates are uniform samples. After that each
    candidate is a child: `sample` members are drawn from the population
    uniformly WITH replacement (a member may be drawn twice), as in Real et
    al.'s Algorithm 1 and the NASLib, naszilla and NATS-Bench code; the best
    of them is the parent, and the child is `space.mutate(parent)`. The child
    joins the population and the oldest member leaves (ageing: a good arch
    does not stay forever). `parent_of` names a child's parent, so
    weight-inheritance estimators can start from its weights.

    Presets: "paper" is Real et al.'s P=100, S=25 (their 20,000-model runs);
    "scaled" (the default) is P=20, S=5, for budgets of 100 to 300
    candidates, where P=100 would leave little room to evolve. `population`
    and `sample` override the preset. Departure: ties in a tournament go to
    the younger member (the paper does not say).

    Example:
        >>> from nasmix import registry
        >>> registry.create("strategy", "evolution", preset="paper").config
        Evolution.Config(preset='paper', population=100, sample=25)
    """

    @dataclass(frozen=True)
    class Config:
        """Options of regularized evolution.

        Attributes:
            preset: "scaled" (P=20, S=5) or "paper" (Real et al.: P=100, S=25).
            population: P, the members kept alive (and the initial random samples); None: the preset's.
            sample: S, the tournament size; None: the preset's.
        """

        preset: str = "scaled"
        population: int | None = None
        sample: int | None = None

        def __post_init__(self) -> None:
            presets = PRESETS
            if self.preset not in presets:
                raise ConfigError(f"unknown evolution preset {self.preset!r}; valid: {', '.join(presets)}")
            p, s = presets[self.preset]
            population = p if self.population is None else self.population
            sample = s if self.sample is None else self.sample
            object.__setattr__(self, "population", population)
            object.__setattr__(self, "sample", sample)
            if population < 1 or not 1 <= sample <= population:
                raise ConfigError(
                    f"evolution needs population >= 1 and 1 <= sample <= population, got {self}"
                )

    def __init__(self, config: Config = Config()):
        self.config = config

    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        self.space = space
        # P and S as ints (Config.__post_init__ has replaced a None by the preset's value)
        assert self.config.population is not None and self.config.sample is not None
        self.size, self.tournament = self.config.population, self.config.sample
        self.population: deque[tuple[float, Arch]] = deque()  # (score, arch), oldest first
        self.parents: dict[Arch, Arch] = {}
        self.asked = 0

    def ask(self, rng: np.random.Generator) -> Arch:
        self.asked += 1
        if self.asked <= self.size or not self.population:
            return self.space.sample(rng)
        # S draws with replacement (Real et al.'s Algorithm 1): a member may be drawn twice
        picks = rng.integers(len(self.population), size=self.tournament)
        # ties go to the younger member, whose lineage has survived more selection
        parent = max((self.population[int(i)][0], int(i)) for i in picks)
        parent_arch = self.population[parent[1]][1]
        child = self.space.mutate(parent_arch, rng)
        self.parents[child] = parent_arch
        return child

    def tell(self, arch: Arch, score: float) -> None:
        self.population.append((score, arch))
        if len(self.population) > self.size:
            self.population.popleft()

    def parent_of(self, arch: Arch) -> Arch | None:
        """The parent of a child (its latest one, if it was bred twice); None for the initial samples."""
        return self.parents.get(arch)
