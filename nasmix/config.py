"""Configuration: module options as frozen dataclasses, built from TOML or
command-line values with clear errors.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     epochs: int = 1
    >>> build_config(Opts, {"epochs": "3"}, "demo")
    Opts(epochs=3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from nasmix.errors import ConfigError, UnknownNameError


def build_config(config_type: type, values: Mapping[str, Any], where: str) -> Any:
    """Build a frozen dataclass from a mapping, refusing unknown keys.

    Values are coerced to the field's simple type (int, float, bool, str,
    tuple) so that TOML and command-line values work alike; a dataclass may
    check its own values in `__post_init__` by raising ConfigError.
    """
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    for key in values:
        if key not in fields:
            raise ConfigError(UnknownNameError(f"option of {where}", key, fields).__str__())
    coerced = {k: _coerce(v, fields[k].type, f"{where}: option {k!r}") for k, v in values.items()}
    try:
        return config_type(**coerced)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise ConfigError(f"{where}: {err}") from None
        raise ConfigError(f"{where}: {err}") from None


_SIMPLE = {"int": int, "float": float, "bool": bool, "str": str}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
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
