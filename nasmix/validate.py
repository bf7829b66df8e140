"""Value rules shared by every entry point (TrainConfig, study files, CLI flags).

One rule per kind of value, so that `nasmix train --seed`, `nasmix search
--seed` and a study's `seeds` accept and refuse exactly the same numbers:

- seeds are integers in [0, 2**63) (numpy's generators refuse negative
  seeds, and 2**63 is where torch's and the store's int64 end);
- integers fit in int64 (SQLite's and torch's integers);
- floats are finite (NaN and infinity pass every `>=` test but break training
  only after the search has run).

Example:
    >>> check_seed(7)
    7
    >>> value_problems({"lr": float("nan"), "epochs": 2**70}, {"lr": "float", "epochs": "int"})
    ['lr=nan (must be a finite number)', 'epochs=1180591620717411303424 (must fit in int64)']
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

from nasmix.errors import ConfigError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SEED_LIMIT = 2**63  # seeds are in [0, SEED_LIMIT)
SEED_RULE = "seeds are integers in [0, 2**63)"


def is_integer(value: Any) -> bool:
    """An integer that is not a bool (True is an int to Python, never a count or a seed)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def seed_problem(value: Any) -> str | None:
    """Why `value` is not a seed (None when it is one)."""
    if not is_integer(value):
        return f"{value!r} is not an integer ({SEED_RULE})"
    if not 0 <= value < SEED_LIMIT:
        return f"{value} is out of range ({SEED_RULE})"
    return None


def check_seed(value: Any, where: str = "seed") -> int:
    """Return the seed as an int, or raise ConfigError naming `where`.

    Args:
        value: the candidate seed.
        where: what to call it in the message (a flag or a study key).

    Returns:
        int(value).
    """
    problem = seed_problem(value)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return int(value)


def value_problem(value: Any, kind: str) -> str | None:
    """Why a value does not fit a simple annotation ("int", "float", "bool", "int | None"...).

    Annotations other than int, float and bool are not checked (None is returned).
    """
    kind = kind.replace(" ", "")
    if value is None and ("|None" in kind or "None|" in kind):
        return None
    kind = kind.replace("|None", "").replace("None|", "")
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        if not is_integer(value):
            return "must be an integer"
        return None if INT64_MIN <= value <= INT64_MAX else "must fit in int64"
    if kind == "float":
        if not is_real(value):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    return None


def value_problems(values: Mapping[str, Any], kinds: Mapping[str, str]) -> list[str]:
    """'key=value (reason)' for every value that breaks its kind's rule."""
    out = []
    for key, kind in kinds.items():
        if key in values:
            problem = value_problem(values[key], kind)
            if problem:
                out.append(f"{key}={values[key]!r} ({problem})")
    return out


def field_problems(obj: Any) -> list[str]:
    """value_problems over the fields of a dataclass instance (types, finiteness, int64 range)."""
    fields = dataclasses.fields(obj)
    kinds = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "") for f in fields}
    return value_problems({f.name: getattr(obj, f.name) for f in fields}, kinds)
