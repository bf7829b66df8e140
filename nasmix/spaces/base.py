"""The SearchSpace interface.

An architecture is an assignment of a few categorical *choices*
(`choices()`, `to_choices`, `from_choices`), every assignment being a valid
arch. From that, the base class derives what every discrete strategy needs:
seeded sampling, neighbours (one choice changed), mutation and one-hot
encoding; a space overrides them where its paper says otherwise. Each space
also builds the standalone network (`build`), the supernet (`supernet`) and
turns supernet weights back into an arch (`decode`).

Sizes: "tiny" (tests, CPU), "search" (the paper's search network) and
"eval" (the paper's evaluation network).

Example:
    >>> import numpy as np
    >>> space = get_space("nb201")                      # doctest: +SKIP
    >>> arch = space.sample(np.random.default_rng(0))   # doctest: +SKIP
    >>> space.parse(space.format(arch.genotype)) == arch  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nasmix.arch import Arch, Options, make_space
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.supernet import Supernet

SIZES = ("tiny", "search", "eval")
ENCODINGS = ("onehot", "path", "trunc_path")


@dataclass(frozen=True)
class Choice:
    """One categorical decision of an architecture."""

    name: str
    options: tuple[str, ...]


class SearchSpace(ABC):
    """A registered search space. Subclasses register with
    `@registry.register("space", NAME)` and may carry a frozen `Config`.

    Attributes:
        arch_options: the `Config` fields that decide which archs exist (a
            chain's layers, widths and ops; not a network's channels). Their
            non-default values travel with each arch (`arch_key`) and its string,
            so that the string parses back without the options; a space builds
            its archs with `self.arch(genotype)`.
    """

    registry_name: str = "?"
    arch_options: ClassVar[tuple[str, ...]] = ()

    @functools.cached_property
    def arch_key(self) -> Options:
        """This instance's non-default `arch_options`, as (name, value) pairs."""
        config = getattr(self, "config", None)
        if config is None or not self.arch_options:
            return ()
        defaults = {f.name: f.default for f in dataclasses.fields(config)}
        values = {n: getattr(config, n) for n in self.arch_options}
        return tuple(sorted((n, v) for n, v in values.items() if v != defaults[n]))

    def arch(self, genotype: tuple) -> Arch:
        """The Arch of a genotype of this space (with this instance's arch options)."""
        return Arch(self.registry_name, genotype, self.arch_key)

    # ---- the arch value -------------------------------------------------
    @abstractmethod
    def choices(self) -> tuple[Choice, ...]:
        """The categorical decisions that make up an arch, in a fixed order."""

    @abstractmethod
    def from_choices(self, values: Sequence[int]) -> Arch:
        """The arch of one option index per choice."""

    @abstractmethod
    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        """The option index of each choice."""

    @abstractmethod
    def format(self, genotype: tuple) -> str:
        """The canonical payload string of a genotype."""

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """An arch from its payload string; ConfigError when invalid."""

    def canonical(self, arch: Arch) -> Arch:
        """A representative shared by all archs that compute the same function
        (isomorphic graphs); the identity unless a space knows better."""
        return arch

    def check(self, arch: Arch) -> Arch:
        """The arch if it belongs to this space, else a ConfigError."""
        if not isinstance(arch, Arch) or arch.space != self.registry_name or arch.options != self.arch_key:
            what = f"space {self.registry_name!r} with options {dict(self.arch_key)}"
            raise ConfigError(f"{arch!r} is not an arch of {what}")
        return arch

    # ---- discrete moves ---------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random arch."""
        return self.from_choices([int(rng.integers(len(c.options))) for c in self.choices()])

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Every arch that differs in exactly one choice."""
        values = self.to_choices(self.check(arch))
        out = []
        for i, choice in enumerate(self.choices()):
            for v in range(len(choice.options)):
                if v != values[i]:
                    out.append(self.from_choices(values[:i] + (v,) + values[i + 1 :]))
        return out

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One choice, picked at random, set to another random option."""
        values = list(self.to_choices(self.check(arch)))
        sizes = [len(c.options) for c in self.choices()]
        mutable = [i for i, s in enumerate(sizes) if s > 1]
        i = int(rng.choice(mutable))
        values[i] = (values[i] + 1 + int(rng.integers(sizes[i] - 1))) % sizes[i]
        return self.from_choices(values)

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """A fixed-length float vector for predictors and Bayesian optimisation.

        Args:
            kind: "onehot" (concatenated one-hot choices; every space), "path"
                (BANANAS's path encoding, nasmix.spaces.paths, in spaces that
                define it: darts, nb201, simple_cell; the others fall back to
                one-hot) or "trunc_path" (the path encoding without the longest
                paths where that shortens it: darts; elsewhere "path").

        Returns:
            A float32 vector whose length depends on the space and kind only.
        """
        if kind not in ENCODINGS:
            raise ConfigError(f"unknown encoding {kind!r}; valid: {', '.join(ENCODINGS)}")
        values = self.to_choices(self.check(arch))
        parts = []
        for v, c in zip(values, self.choices()):
            one = np.zeros(len(c.options), dtype=np.float32)
            one[v] = 1.0
            parts.append(one)
        return np.concatenate(parts)

    # ---- networks ---------------------------------------------------------
    @abstractmethod
    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        """The standalone network of an arch (size: tiny, search or eval)."""

    @abstractmethod
    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        """The weight-sharing supernet; `partial` is PC-DARTS's K."""

    @abstractmethod
    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        """One-hot supernet weights that select an arch (decode's inverse)."""

    @abstractmethod
    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The arch the architecture weights prefer (each space's paper rule)."""

    def active(self, arch: Arch) -> dict[str, list[list[int]]]:
        """The ops each supernet edge computes to run only this arch."""
        out: dict[str, list[list[int]]] = {}
        for group, w in self.arch_weights(arch).items():
            out[group] = [torch.nonzero(row).flatten().tolist() for row in w]
        return out

    # ---- text -------------------------------------------------------------
    def describe(self, arch: Arch) -> str:
        """A text rendering of the arch: its decisions, one per line."""
        values = self.to_choices(self.check(arch))
        lines = [f"{self.registry_name} architecture", f"  {arch.to_str()}"]
        lines += [f"  {c.name}: {c.options[v]}" for c, v in zip(self.choices(), values)]
        return "\n".join(lines)


def check_size(size: str) -> str:
    """The size if valid, else a ConfigError listing the sizes."""
    if size not in SIZES:
        raise ConfigError(f"unknown network size {size!r}; valid: {', '.join(SIZES)}")
    return size


def get_space(name: str) -> SearchSpace:
    """The registered space of that name, with its default options (one shared instance)."""
    return make_space(name)
