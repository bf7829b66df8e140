"""Random search: uniform samples of the space, never the same function twice.

Example:
    >>> import numpy as np
    >>> from nasmix.spaces.base import get_space
    >>> space, rng = get_space("nb201"), np.random.default_rng(0)
    >>> strategy = Random()
    >>> strategy.reset(space, rng)
    >>> a, b = strategy.ask(rng), strategy.ask(rng)
    >>> space.canonical(a) != space.canonical(b)
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

if TYPE_CHECKING:
    from nasmix.spaces.base import SearchSpace


def sample_unseen(space: SearchSpace, rng: np.random.Generator, seen: set[Arch], tries: int = 100) -> Arch:
    """A uniform sample whose canonical form is not in `seen` (which it joins).

    Gives up after `tries` draws (a nearly exhausted small space) and returns
    the last draw, seen or not, so that a search always has a next arch.

    Args:
        space: the space to sample.
        rng: the random generator.
        seen: canonical archs already taken; updated in place.
        tries: draws before a repeat is allowed.

    Returns:
        The arch (not its canonical form: the estimator scores what was drawn).

    Example:
        >>> from nasmix.spaces.base import get_space
        >>> seen = set()
        >>> arch = sample_unseen(get_space("nb201"), np.random.default_rng(0), seen)
        >>> get_space("nb201").canonical(arch) in seen
        True
    """
    for _ in range(max(1, tries)):
        arch = space.sample(rng)
        key = space.canonical(arch)
        if key not in seen:
            break
    seen.add(key)
    return arch


@registry.register("strategy", "random")
class Random(AskTell):
    """Random search (Bergstra and Bengio 2012; Li and Talwalkar 2019): uniform samples, no repeats.

    Each candidate is a uniform sample of the space's choices; a sample whose
    canonical form (`space.canonical`: the same function, e.g. an isomorphic
    cell) was already evaluated is drawn again, as naszilla's random search
    does with `allow_isomorphisms=False`. Departures: uniform over the
    encodings, not over the functions (a function with many encodings is
    drawn more often, as in the papers); after `tries` draws a repeat is
    allowed, so a tiny space never stalls the search.

    Example:
        >>> from nasmix import registry
        >>> registry.create("strategy", "random", tries=10).config.tries
        10
    """

    @dataclass(frozen=True)
    class Config:
        """Options of random search.

        Attributes:
            dedupe: skip archs whose canonical form was already evaluated.
            tries: draws per candidate before a repeat is allowed.
        """

        dedupe: bool = True
        tries: int = 100

        def __post_init__(self) -> None:
            if self.tries < 1:
                raise ConfigError(f"random: tries must be >= 1, got {self.tries}")

    def __init__(self, config: Config = Config()):
        self.config = config

    def reset(self, space: SearchSpace, rng: np.random.Generator) -> None:
        self.space = space
        self.seen: set[Arch] = set()

    def ask(self, rng: np.random.Generator) -> Arch:
        if not self.config.dedupe:
            return self.space.sample(rng)
        return sample_unseen(self.space, rng, self.seen, self.config.tries)

    def tell(self, arch: Arch, score: float) -> None:
        """Random search learns nothing from scores."""
