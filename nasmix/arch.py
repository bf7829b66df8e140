"""The Arch value: one architecture of one space, immutable and hashable,
with one canonical string `space:payload` (the payload is the space's own
notation, e.g. NAS-Bench-201's `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`).

Example:
    >>> arch = Arch.from_str("chain:conv3x3-16")  # doctest: +SKIP
    >>> Arch.from_str(arch.to_str()) == arch       # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from nasmix.errors import ConfigError


@dataclass(frozen=True)
class Arch:
    """One architecture.

    Attributes:
        space: the registry name of its search space.
        genotype: the space's canonical nested tuple of strings and ints.
    """

    space: str
    genotype: tuple

    def to_str(self) -> str:
        """The canonical string, `space:payload`."""
        from nasmix.spaces.base import get_space

        return f"{self.space}:{get_space(self.space).format(self.genotype)}"

    def __str__(self) -> str:
        return self.to_str()

    @staticmethod
    def from_str(text: str, space=None) -> "Arch":
        """Parse `space:payload`, or a bare payload when `space` is given.

        Args:
            text: the arch string.
            space: None (the space named in the text, default options), a
                space name, or a SearchSpace instance (a space built with
                non-default options parses with those options).

        Raises:
            ConfigError: the text is not a valid arch of that space.
        """
        from nasmix.spaces.base import get_space

        text = text.strip()
        if space is None:
            if ":" not in text:
                raise ConfigError(f"arch {text!r} must start with its space, e.g. 'nb201:|...|'")
            space, text = text.split(":", 1)
        instance = get_space(space) if isinstance(space, str) else space
        prefix = instance.registry_name + ":"
        if text.startswith(prefix):
            text = text[len(prefix) :]
        return instance.parse(text)
