"""nasmix: mix NAS search spaces, strategies and performance estimators, and
measure how much accuracy each buys per unit of compute.

The public API (docs/api.md), loaded on first use so that `import nasmix`
stays light:

- `create(kind, name, **options)`, `names(kind, pattern)`: registered modules.
- `search(space=..., strategy=..., data=..., budget=...)`: one search; the
  chosen arch and its typed events.
- `fit(model, data, config)`: train a network, an arch or a reference model.
- `run_study(path_or_config)`, `load_study(db)`, `write_report(db, out)`:
  studies, their cells, events and metrics, and their reports.
- `load_model(dir)`, `create_model(arch, ...)`: networks exported by
  `nasmix export` (docs/export.md).
- Values: `Arch`, `Budget`, `TrainConfig`, `CellSpec`, `SearchResult`,
  `Study`, the events (`nasmix.events`), and the errors (`NasmixError`,
  `ConfigError`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> (module, attribute); a module itself when the attribute is None
_LAZY: dict[str, tuple[str, str | None]] = {
    "create": ("nasmix.api", "create"),
    "names": ("nasmix.api", "names"),
    "search": ("nasmix.api", "search"),
    "fit": ("nasmix.api", "fit"),
    "run_study": ("nasmix.api", "run_study"),
    "load_study": ("nasmix.api", "load_study"),
    "write_report": ("nasmix.api", "write_report"),
    "SearchResult": ("nasmix.api", "SearchResult"),
    "Study": ("nasmix.api", "Study"),
    "Arch": ("nasmix.arch", "Arch"),
    "Budget": ("nasmix.budget", "Budget"),
    "TrainConfig": ("nasmix.train", "TrainConfig"),
    "CellSpec": ("nasmix.study.schema", "CellSpec"),
    "NasmixError": ("nasmix.errors", "NasmixError"),
    "ConfigError": ("nasmix.errors", "ConfigError"),
    "events": ("nasmix.events", None),
    "create_model": ("nasmix.export.hub", "create_model"),
    "load_model": ("nasmix.export.hub", "load_model"),
}

# A literal list, so that linters and type checkers read it (tests/test_api.py checks it names _LAZY).
__all__ = [
    "Arch",
    "Budget",
    "CellSpec",
    "ConfigError",
    "NasmixError",
    "SearchResult",
    "Study",
    "TrainConfig",
    "__version__",
    "create",
    "create_model",
    "events",
    "fit",
    "load_model",
    "load_study",
    "names",
    "run_study",
    "search",
    "write_report",
]

if TYPE_CHECKING:
    from nasmix import events
    from nasmix.api import (
        SearchResult,
        Study,
        create,
        fit,
        load_study,
        names,
        run_study,
        search,
        write_report,
    )
    from nasmix.arch import Arch
    from nasmix.budget import Budget
    from nasmix.errors import ConfigError, NasmixError
    from nasmix.export.hub import create_model, load_model
    from nasmix.study.schema import CellSpec
    from nasmix.train import TrainConfig


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nasmix' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
