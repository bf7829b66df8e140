"""BANANAS: Bayesian optimisation with a neural-network ensemble on path encodings.

Example:
    >>> import numpy as np
    >>> from nasmix.spaces.base import get_space
    >>> space, rng = get_space("nb201"), np.random.default_rng(0)
    >>> b = Bananas(Bananas.Config(num_init=2, k=2, members=2, layers=2, epochs=5))
    >>> b.reset(space, rng)
    >>> for score in (0.1, 0.2, 0.3):
    ...     b.tell(b.ask(rng), score)
    >>> len(b.queue)  # the rest of the first batch the ensemble chose
    1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.spaces.base import ENCODINGS
from nasmix.strategies.base import AskTell
from nasmix.strategies.random import sample_unseen
from nasmix.surrogates import MLPEnsemble

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace


@registry.register("strategy", "bananas")
class Bananas(AskTell):
    """BANANAS (White, Neiswanger and Savani, AAAI 2021): ensemble-predictor BO with Thompson sampling.

    After `num_init` random archs, each round (1) trains an `MLPEnsemble` on
    the encodings (`space.encode(arch, encoding)`, the path encoding by
    default: nasmix.spaces.paths, defined for the darts cells as the paper and
    NASLib define it, 11,200 floats, for nb201, 84, and for simple_cell, 80;
    "trunc_path" drops DARTS paths of 4 ops, 1,596 floats; the chain and
    hierarchical spaces have no path encoding and use one-hot) and scores of
    every arch evaluated so far; (2) builds a pool of
    up to `pool` unseen candidates by mutating the best archs found so far,
    the best first (up to `pool` mutations of each of the `parents` best,
    naszilla's acquisition optimiser); (3) ranks the pool by independent
    Thompson sampling (one draw from N(mean, std) of the ensemble per
    candidate) and queues the top `k` for evaluation. The defaults are the
    paper's: 10 initial archs, batches of k=10, a pool of 100, an ensemble
    of 5 networks of 10 layers x 20 units trained 150 epochs with Adam
    (lr 0.01, betas 0.9 and 0.99, as naszilla) on the mean absolute error.

    Departures: a candidate is one `space.mutate` step (one op or one input
    changed, as NASLib's and naszilla's DARTS mutation with mutation_rate 1),
    or `edits` steps; duplicates are recognised by `space.canonical`
    (naszilla: path indices); when mutations yield no unseen candidate the
    pool is topped up with random archs; scores are standardised before
    training; the path encoding of nb201 leaves out `none` labels (84 bits;
    naszilla's has 155) and NASLib's empty-path slot of each DARTS block;
    naszilla's `trunc_path` keeps a prefix of the whole vector (for DARTS,
    its first block only), where "trunc_path" here shortens every block.

    Example:
        >>> from nasmix import registry
        >>> registry.create("strategy", "bananas", k=1, epochs=50).config.k
        1
    """

    @dataclass(frozen=True)
    class Config:
        """Options of BANANAS.

        Attributes:
            num_init: random archs before the first model.
            k: archs chosen per model fit (the batch).
            pool: candidates ranked by the acquisition function per fit.
            parents: how many of the best archs are mutated into candidates.
            edits: mutation steps per candidate.
            encoding: "path", "trunc_path" or "onehot" (see `SearchSpace.encode`).
            members: networks in the ensemble.
            layers: hidden layers per network.
            width: units per hidden layer.
            epochs: training epochs per fit.
            lr: Adam's learning rate.
        """

        num_init: int = 10
        k: int = 10
        pool: int = 100
        parents: int = 10
        edits: int = 1
        encoding: str = "path"
        members: int = 5
        layers: int = 10
        width: int = 20
        epochs: int = 150
        lr: float = 0.01

        def __post_init__(self) -> None:
            if min(self.num_init, self.k, self.pool, self.parents, self.edits) < 1:
                raise ConfigError(f"bananas: num_init, k, pool, parents and edits must be >= 1, got {self}")
            if self.encoding not in ENCODINGS:
                valid = ", ".join(ENCODINGS)
                raise ConfigError(f"bananas encoding must be one of {valid}, got {self.encoding!r}")
            MLPEnsemble.Config(self.members, self.layers, self.width, self.epochs, 32, self.lr)  # validates

    def __init__(self, config: Config = Config()):
        self.config = config

    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        self.space = space
        self.seen: set[Arch] = set()
        self.history: list[tuple[Arch, float]] = []
        self.queue: list[Arch] = []
        self.asked = self.fits = 0

    def ask(self, rng: np.random.Generator) -> Arch:
        self.asked += 1
        if self.asked <= self.config.num_init:
            return sample_unseen(self.space, rng, self.seen)
        if not self.queue:
            self.queue = self._propose(rng)
        arch = self.queue.pop(0)
        self.seen.add(self.space.canonical(arch))
        return arch

    def tell(self, arch: Arch, score: float) -> None:
        self.history.append((arch, float(score)))

    def _candidates(self, rng: np.random.Generator, known: list[tuple[Arch, float]]) -> list[Arch]:
        c, taken = self.config, set(self.seen)
        best = sorted(known, key=lambda t: -t[1])[: c.parents]
        out: list[Arch] = []
        for parent, _ in best:
            for _ in range(c.pool):
                if len(out) >= c.pool:
                    return out
                child = parent
                for _ in range(c.edits):
                    child = self.space.mutate(child, rng)
                key = self.space.canonical(child)
                if key not in taken:
                    taken.add(key)
                    out.append(child)
        for _ in range(c.pool * 5):  # top up with random archs when mutations run dry
            if len(out) >= c.k:
                break
            arch = self.space.sample(rng)
            key = self.space.canonical(arch)
            if key not in taken:
                taken.add(key)
                out.append(arch)
        return out

    def _propose(self, rng: np.random.Generator) -> list[Arch]:
        """The next batch: the top k unseen candidates by independent Thompson sampling."""
        c = self.config
        known = [(a, s) for a, s in self.history if np.isfinite(s)]  # a failed candidate teaches nothing
        if not known:
            return [sample_unseen(self.space, rng, self.seen)]
        X = np.stack([self.space.encode(a, c.encoding) for a, _ in known])
        y = np.array([s for _, s in known])
        model = MLPEnsemble(
            MLPEnsemble.Config(c.members, c.layers, c.width, c.epochs, 32, c.lr),
            seed=int(rng.integers(2**31)),
        )
        model.fit(X, y)
        self.fits += 1
        pool = self._candidates(rng, known)
        if not pool:
            return [self.space.sample(rng)]
        mean, std = model.predict(np.stack([self.space.encode(a, c.encoding) for a in pool]))
        draws = rng.normal(mean, std)
        order = np.argsort(-draws, kind="stable")
        return [pool[i] for i in order[: c.k]]
