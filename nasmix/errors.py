"""User-facing errors: the CLI prints their message and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NasmixError(Exception):
    """A problem with the user's input (config, module name, data path...)."""

    exit_code = 2


class UnknownNameError(NasmixError, KeyError):
    """A name that is not among the valid choices."""

    def __init__(self, what: str, name: str, choices: Iterable[str], note: str = ""):
        self.what, self.name, self.choices, self.note = what, name, sorted(choices), note
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = unknown_message(self.what, self.name, self.choices)
        return f"{text} ({self.note})" if self.note else text


class ConfigError(NasmixError, ValueError):
    """An impossible or unknown configuration value."""


class DataError(NasmixError):
    """A missing, corrupt or malformed dataset; the message names the file."""


class CheckpointError(NasmixError):
    """A checkpoint that cannot be written (a full disk) or may not be read (it holds code);
    the message names the file. The run stays resumable from its last good checkpoint."""


def unknown_message(what: str, name: str, choices: Iterable[str]) -> str:
    """Return 'unknown WHAT 'name'; did you mean ...? valid: ...'."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    valid = ", ".join(choices) if choices else "(none)"
    return f"unknown {what} {name!r}.{hint} Valid: {valid}"
