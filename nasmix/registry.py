"""The module registry: every space, strategy, estimator, proxy, dataset and model
registers itself with a decorator where it is defined.

Other packages add modules through the `nasmix.plugins` entry-point group: each
entry point names a module of the package, and importing it runs its
`@registry.register` decorators. Plugins load the first time the registry lists
a kind or misses a name, after nasmix's own modules. A plugin that fails to load
(an import error, a name nasmix or another plugin already has) is left out whole,
with a PluginWarning and a `plugin_failures()` record naming it; the rest of the
registry works on. In the plugin package's pyproject.toml:

    [project.entry-points."nasmix.plugins"]
    mynas = "mynas.modules"

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
import importlib.metadata
import pkgutil
import warnings
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
PLUGIN_GROUP = "nasmix.plugins"

_ENTRIES: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_LOADED: set[str] = set()
# Plugin state: loaded once; `current` names the plugin whose module is importing.
_PLUGINS: dict[str, Any] = {"loaded": False, "current": None, "failures": []}


@dataclass(frozen=True)
class Entry:
    """One registered module.

    Attributes:
        kind: one of KINDS.
        name: the registry name users type.
        obj: the registered class or function.
        description: the first line of its docstring.
        plugin: the entry point (of `nasmix.plugins`) that registered it; None for nasmix's own.
    """

    kind: str
    name: str
    obj: Any
    description: str
    plugin: str | None = None

    @property
    def spaces(self) -> tuple[str, ...] | None:
        """For strategies and estimators: the spaces it supports (None for any)."""
        return getattr(self.obj, "spaces", None)


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Register a class or function under (kind, name).

    The first line of its docstring becomes the one-line description
    that `nasmix list` shows; a module without one is refused, and so is
    a name already taken by another definition.
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
            owner = f"plugin {old.plugin!r}" if old.plugin else "nasmix"
            raise ValueError(f"{kind} {name!r} is registered twice ({old.obj!r} of {owner}, and {obj!r})")
        _ENTRIES[kind][name] = Entry(kind, name, obj, doc.splitlines()[0].strip(), _PLUGINS["current"])
        obj.registry_name = name
        return obj

    return decorate


def unregister(kind: str, name: str) -> None:
    """Remove a registered module (nothing happens when absent): for notebooks and
    tests that register a module for a while.

    Example:
        >>> @register("model", "scratch_demo")
        ... class Scratch:
        ...     '''A model registered for a moment.'''
        >>> unregister("model", "scratch_demo")
        >>> "scratch_demo" in names("model")
        False
    """
    if kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)
    _ENTRIES[kind].pop(name, None)


def _load(kind: str) -> None:
    """Import every module of a kind's package once."""
    if kind in _LOADED:
        return
    _LOADED.add(kind)
    package = importlib.import_module(KINDS[kind])
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)


class PluginWarning(UserWarning):
    """A plugin (an entry point of the `nasmix.plugins` group) failed to load."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to load, and why.

    Attributes:
        name: the entry point's name.
        value: what it points at (`package.module`).
        package: the distribution that declares it.
        error: the exception, as `Type: message`.
    """

    name: str
    value: str
    package: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.value}, package {self.package}) failed to load: {self.error}"


def load_plugins(reload: bool = False) -> list[PluginFailure]:
    """Load the modules of every installed plugin, once (the registry calls this itself).

    Args:
        reload: forget what plugins registered and which failed, and look for
            plugins again (a plugin module imported before is not imported again:
            remove it from sys.modules first to register it anew).

    Returns:
        The plugins that failed to load; each was also warned as a PluginWarning.
    """
    if reload:
        for table in _ENTRIES.values():
            for name in [n for n, e in table.items() if e.plugin is not None]:
                del table[name]
        _PLUGINS.update(loaded=False, failures=[])
    if not _PLUGINS["loaded"]:
        _PLUGINS["loaded"] = True
        for kind in KINDS:  # nasmix's own names first: a plugin may not take one
            _load(kind)
        for point in importlib.metadata.entry_points(group=PLUGIN_GROUP):
            _load_plugin(point)
    return list(_PLUGINS["failures"])


def _load_plugin(point: importlib.metadata.EntryPoint) -> None:
    """Import one plugin; on any error, drop what it registered and record the failure."""
    _PLUGINS["current"] = point.name
    try:
        point.load()
    except (Exception, SystemExit) as err:  # any bug in a plugin must leave nasmix working for the others
        for table in _ENTRIES.values():
            for name in [n for n, e in table.items() if e.plugin == point.name]:
                del table[name]
        package = point.dist.name if point.dist is not None else "?"
        failure = PluginFailure(point.name, point.value, package, f"{type(err).__name__}: {err}")
        _PLUGINS["failures"].append(failure)
        warnings.warn(str(failure), PluginWarning, stacklevel=4)
    finally:
        _PLUGINS["current"] = None


def plugin_failures() -> list[PluginFailure]:
    """The plugins that failed to load (loading the plugins first if not done yet)."""
    return load_plugins()


def entries(kind: str) -> list[Entry]:
    """All entries of one kind (nasmix's own and the plugins'), sorted by name."""
    if kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)
    _load(kind)
    load_plugins()
    return sorted(_ENTRIES[kind].values(), key=lambda e: e.name)


def names(kind: str, pattern: str | None = None) -> list[str]:
    """Registered names of a kind, optionally filtered by a glob pattern."""
    found = [e.name for e in entries(kind)]
    return [n for n in found if pattern is None or fnmatch.fnmatch(n, pattern)]


def get(kind: str, name: str) -> Entry:
    """The entry for (kind, name); an unknown name lists close matches (and any plugin
    that failed to load)."""
    if kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)
    _load(kind)
    if name not in _ENTRIES[kind]:
        load_plugins()  # only on a miss: lookups while nasmix's own modules import must not load plugins
    try:
        return _ENTRIES[kind][name]
    except KeyError:
        failed = "; ".join(str(f) for f in _PLUGINS["failures"])
        raise UnknownNameError(kind, name, _ENTRIES[kind], note=failed) from None


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
