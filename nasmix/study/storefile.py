"""A store's file on disk: its URI for SQLite, the files SQLite keeps beside it, and
SQLite's errors in words.

SQLite reads a `file:` URI's `%XX`, `#` and `?` as escapes, a fragment and a
query, so a store named `50%41.db` or `trial #2.db` is passed as an escaped URI
(`store_uri`). Beside a store in WAL mode lie its write-ahead log (`-wal`) and
its shared-memory index (`-shm`).

Example:
    >>> store_uri("/data/50%41 #2.db", mode="ro")
    'file:///data/50%2541%20%232.db?mode=ro'
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from nasmix.study.rows import RESCUE


def store_uri(path: str | os.PathLike, **params: str) -> str:
    """The `file:` URI of a path for sqlite3 (`uri=True`), every special character escaped,
    with these query parameters (mode=ro, immutable=1...)."""
    uri = Path(os.path.abspath(os.fspath(path))).as_uri()
    return uri + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def sidecar(path: Path, suffix: str) -> Path:
    """A file SQLite keeps beside a store: `-wal`, `-shm`, `-journal`."""
    return path.with_name(path.name + suffix)


def nonempty(path: Path) -> bool:
    """Whether a file exists and holds something."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def cannot_open(err: sqlite3.Error) -> bool:
    """An error of a read-only open that a read-only folder causes (no -shm or -wal can be made)."""
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)
    text = str(err).lower()
    return "unable to open" in text or "readonly" in text or "read-only" in text


def explain(path: Path, err: sqlite3.Error) -> str:
    """A clear message for an SQLite error on a store."""
    text = str(err)
    if "file is not a database" in text:
        return f"{path} is not a nasmix store (not an SQLite database, or its first page is damaged)"
    if "malformed" in text or "corrupt" in text:
        return f"store {path} is corrupt ({text}). {RESCUE}"
    if "unable to open" in text:
        return f"cannot open store {path} ({text}): check that its folder exists and may be written"
    return f"store {path}: {text}"
