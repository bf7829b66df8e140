"""The module registry: every space, strategy, estimator, dataset and model
registers itself with a decorator where it is defined.

Example:
    >>> from nasmix import registry
    >>> @registry.register("model", "tiny_demo")
    ... class TinyDemo:
    ...     '''A demo model.'''
    >>> registry.get("model", "tiny_demo").description
    'A demo model.'
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasmix.errors import ConfigError, UnknownNameError
from nasmix.options import build_config

# Which package holds the modules of each kind; importing a package imports
# every file in it, so a new file registers itself without touching a list.
KINDS: dict[str, str] = {
    "space": "nasmix.spaces",
    "strategy": "nasmix.strategies",
    "estimator": "nasmix.estimators",
    "proxy": "nasmix.estimators.proxies",
    "dataset": "nasmix.data",
    "model": "nasmix.models",
}

_ENTRIES: dict[str, dict[str, "Entry"]] = {kind: {} for kind in KINDS}
_LOADED: set[str] = set()


@dataclass(frozen=True)
class Entry:
    """One registered module.

    Attributes:
        kind: one of KINDS.
        name: the registry name users type.
        obj: the registered class or function.
        description: the first line of its docstring.
    """

    kind: str
    name: str
    obj: Any
    description: str

    @property
    def spaces(self) -> tuple[str, ...] | None:
        """For strategies and estimators: the spaces it supports (None for any)."""
        return getattr(self.obj, "spaces", None)


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Register a class or function under (kind, name).

    The first line of its docstring becomes the one-line description
    that `nasmix list` shows; a module without one is refused.
    """
    if kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)

    def decorate(obj: Any) -> Any:
        doc = (obj.__doc__ or "").strip()
        if not doc:
            raise TypeError(f"{kind} {name!r} needs a docstring: its first line is its description")
        old = _ENTRIES[kind].get(name)
        same = lambda a, b: (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)  # noqa: E731
        if old is not None and not same(old.obj, obj):  # the same definition again is a re-import
            raise ValueError(f"{kind} {name!r} is registered twice ({old.obj!r} and {obj!r})")
        _ENTRIES[kind][name] = Entry(kind, name, obj, doc.splitlines()[0].strip())
        obj.registry_name = name
        return obj

    return decorate


def _load(kind: str) -> None:
    """Import every module of a kind's package once."""
    if kind in _LOADED:
        return
    _LOADED.add(kind)
    package = importlib.import_module(KINDS[kind])
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)


def entries(kind: str) -> list[Entry]:
    """All entries of one kind, sorted by name."""
    if kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)
    _load(kind)
    return sorted(_ENTRIES[kind].values(), key=lambda e: e.name)


def names(kind: str, pattern: str | None = None) -> list[str]:
    """Registered names of a kind, optionally filtered by a glob pattern."""
    found = [e.name for e in entries(kind)]
    return [n for n in found if pattern is None or fnmatch.fnmatch(n, pattern)]


def get(kind: str, name: str) -> Entry:
    """The entry for (kind, name); an unknown name lists close matches."""
    if kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)
    _load(kind)
    try:
        return _ENTRIES[kind][name]
    except KeyError:
        raise UnknownNameError(kind, name, _ENTRIES[kind]) from None


def create(kind: str, name: str, /, **cfg: Any) -> Any:
    """Instantiate a registered class from its options.

    A class with a nested frozen dataclass `Config` receives `Config(**cfg)`,
    validated by `nasmix.options.build_config`; a class without one takes no options.

    Example:
        >>> space = create("space", "nb201")  # doctest: +SKIP
    """
    obj = get(kind, name).obj
    config_type = getattr(obj, "Config", None)
    if config_type is None:
        if cfg:
            raise ConfigError(f"{kind} {name!r} takes no options, got {sorted(cfg)}")
        return obj()
    return obj(build_config(config_type, cfg, f"{kind} {name!r}"))
