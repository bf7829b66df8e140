"""Module options: frozen dataclasses built from TOML or command-line values,
with clear errors for unknown keys and impossible values.

Every registered module with options carries a nested frozen dataclass
`Config`; `nasmix.registry.create` builds it with `build_config`.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     epochs: int = 1
    >>> build_config(Opts, {"epochs": "3"}, "demo")
    Opts(epochs=3)
    >>> parse_options(["lr=0.1", "name=darts"], "strategy")
    {'lr': 0.1, 'name': 'darts'}
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from nasmix.errors import ConfigError, UnknownNameError


def build_config(config_type: type, values: Mapping[str, Any], where: str) -> Any:
    """Build a frozen dataclass from a mapping, refusing unknown keys.

    Values are coerced to the field's simple type (int, float, bool, str,
    tuple) so that TOML and command-line values work alike; a dataclass may
    check its own values in `__post_init__` by raising ConfigError.

    Args:
        config_type: the dataclass.
        values: option name -> value.
        where: what the options belong to, for error messages.

    Returns:
        The dataclass instance.

    Raises:
        ConfigError: an unknown key or an impossible value.
    """
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    for key in values:
        if key not in fields:
            raise ConfigError(UnknownNameError(f"option of {where}", key, fields).__str__())
    coerced = {k: coerce(v, fields[k].type, f"{where}: option {k!r}") for k, v in values.items()}
    try:
        return config_type(**coerced)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


_SIMPLE = {"int": int, "float": float, "bool": bool, "str": str}


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """A value converted to a field's simple type (its annotation, as text or a type).

    Raises:
        ConfigError: the value cannot be read as that type.
    """
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    text = text.replace(" ", "")
    if "|None" in text or "Optional" in text:
        if value is None:
            return None
        text = text.replace("|None", "").replace("None|", "")
    if text in _SIMPLE:
        kind = _SIMPLE[text]
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            if abs(value) >= 2**63:  # 1e300 is an integer to Python, not to torch or SQLite
                raise ConfigError(f"{where} must fit in int64, got {value!r}")
            return int(value)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be {text}, got {value!r}")
    if text.startswith("tuple") and isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def parse_options(pairs: Sequence[str] | None, where: str) -> dict:
    """KEY=VALUE pairs (command-line options) as a dict; a value is read as JSON
    where it parses (numbers, booleans, lists), else as text.

    Raises:
        ConfigError: a pair without '='.
    """
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ConfigError(f"{where} option {pair!r} must look like KEY=VALUE")
        key, value = pair.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out
