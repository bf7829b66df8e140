"""The Arch value: one architecture of one space, immutable and hashable,
with one canonical string `space:payload` (the payload is the space's own
notation, e.g. NAS-Bench-201's `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`).

A space built with options that change which strings are valid (a chain of
3 layers instead of 6) writes them into the string as a JSON object,
`chain{"layers":3}:skip-32/dil3x3-16/conv5x5-16`, so that every string parses
back to its arch without knowing the options; under default options the
string is plain `space:payload`.

Example:
    >>> from nasmix import registry
    >>> arch = registry.create("space", "chain", layers=3).parse("skip-32/dil3x3-16/conv5x5-16")
    >>> arch.to_str()
    'chain{"layers":3}:skip-32/dil3x3-16/conv5x5-16'
    >>> Arch.from_str(arch.to_str()) == arch
    True
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from nasmix import registry
from nasmix.errors import ConfigError

Options = tuple[tuple[str, Any], ...]  # sorted (name, value) pairs; lists become tuples


@dataclass(frozen=True)
class Arch:
    """One architecture.

    Attributes:
        space: the registry name of its search space.
        genotype: the space's canonical nested tuple of strings and ints.
        options: the space's non-default options that decide which archs exist
            (`SearchSpace.arch_options`); empty under default options.
    """

    space: str
    genotype: tuple
    options: Options = ()

    def to_str(self) -> str:
        """The canonical string, `space:payload` (`space{options}:payload` under non-default options)."""
        return f"{self.space}{options_text(self.options)}:{self.payload}"

    @property
    def payload(self) -> str:
        """The space's own notation of the arch (the string without its space and options)."""
        return make_space(self.space, self.options).format(self.genotype)

    def __str__(self) -> str:
        return self.to_str()

    @staticmethod
    def from_str(text: str, space: Any = None) -> Arch:
        """Parse `space:payload` (`space{options}:payload`), or a bare payload when `space` is given.

        Args:
            text: the arch string.
            space: None (the space and options named in the text), a space name,
                or a SearchSpace instance, which parses with its own options (a
                string naming other options is refused).

        Raises:
            ConfigError: the text is not a valid arch of that space.
        """
        text = text.strip()
        name, options, payload = split(text)
        if space is None:
            if name is None:
                raise ConfigError(f"arch {text!r} must start with its space, e.g. 'nb201:|...|'")
            instance = make_space(name, options or ())
        elif isinstance(space, str):
            if name is not None and name != space:
                raise ConfigError(f"arch {text!r} is of space {name!r}, not {space!r}")
            instance = make_space(space, options or ())
        else:
            instance = space
            if name is not None and name != instance.registry_name:
                raise ConfigError(f"arch {text!r} is of space {name!r}, not {instance.registry_name!r}")
            # A plain `space:` prefix (stores written before options were named) parses with the
            # instance's own options.
            if options is not None and options != instance.arch_key:
                theirs = f"{instance.registry_name}{options_text(instance.arch_key)}"
                raise ConfigError(f"arch {text!r} is of {name}{options_text(options)}, not of {theirs}")
        return instance.parse(payload)


def options_text(options: Options) -> str:
    """The options as they appear in an arch string: '' or a compact JSON object."""
    return json.dumps(dict(options), separators=(",", ":"), sort_keys=True) if options else ""


def freeze(options: dict[str, Any]) -> Options:
    """Options as sorted (name, value) pairs with lists turned into tuples (hashable)."""

    def thaw(v: Any) -> Any:
        return tuple(thaw(x) for x in v) if isinstance(v, (list, tuple)) else v

    return tuple(sorted((k, thaw(v)) for k, v in options.items()))


def split(text: str) -> tuple[str | None, Options | None, str]:
    """(space name or None, options or None when the text names none, payload) of an arch string."""
    cut = min((i for i in (text.find(":"), text.find("{")) if i >= 0), default=-1)
    if cut < 0 or not text[:cut].isidentifier():
        return None, None, text
    name = text[:cut]
    if text[cut] == ":":
        return name, None, text[cut + 1 :]
    try:
        options, end = json.JSONDecoder().raw_decode(text, cut)
    except json.JSONDecodeError:
        raise ConfigError(f"arch {text!r}: the options after {name!r} are not a JSON object") from None
    if not isinstance(options, dict) or not text[end:].startswith(":"):
        raise ConfigError(f"arch {text!r} must look like {name}{{...options...}}:payload")
    return name, freeze(options), text[end + 1 :]


def make_space(name: str, options: Options = ()) -> Any:
    """The registered space of that name built with those options (one instance per
    class and options: a name registered anew gets its new class)."""
    return _space_of(registry.get("space", name).obj, name, options)


@functools.cache
def _space_of(cls: type, name: str, options: Options) -> Any:
    return registry.create("space", name, **dict(options))
