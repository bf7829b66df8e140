"""The study store: SQLite in WAL mode, append-only events, one writer.

All SQL of nasmix lives here. Tables:
- meta(key, value): schema version, study name.
- cells(id, study, label, space, strategy, estimator, dataset, seed, config, added):
  each cell's configuration, inserted once.
- events(seq, cell, key, kind, phase, time, data): what happened, appended.
  (cell, key) is unique and inserts of an existing key are ignored, so a
  re-run that repeats a step (a search restarted with the same seed, an
  epoch redone after the last checkpoint) adds no duplicate, and a finished
  cell's "end" event can never be rewritten.
Checkpoints and arch files live beside the database, in `<db>.files/`.

A cell's state is derived from its events: pending (none), running (started,
no end), finished / failed / projected (the kind of its "end" event).

Example:
    >>> import tempfile, os
    >>> store = Store(os.path.join(tempfile.mkdtemp(), "s.db"))
    >>> store.schema_version()
    1
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nasmix.errors import NasmixError

SCHEMA_VERSION = 1
END_KINDS = ("finished", "failed", "projected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY, study TEXT NOT NULL, label TEXT NOT NULL, space TEXT NOT NULL,
    strategy TEXT NOT NULL, estimator TEXT NOT NULL, dataset TEXT NOT NULL, seed INTEGER NOT NULL,
    config TEXT NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, cell TEXT NOT NULL REFERENCES cells(id), key TEXT NOT NULL,
    kind TEXT NOT NULL, phase TEXT NOT NULL, time REAL NOT NULL, data TEXT NOT NULL, UNIQUE (cell, key));
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""


class StoreError(NasmixError):
    """The store cannot be opened or written (corrupt file, full disk, newer schema)."""


@dataclass(frozen=True)
class Event:
    """One stored event."""

    seq: int
    cell: str
    key: str
    kind: str
    phase: str
    time: float
    data: dict


@dataclass(frozen=True)
class CellRow:
    """One stored cell."""

    id: str
    study: str
    label: str
    space: str
    strategy: str
    estimator: str
    dataset: str
    seed: int
    config: str


class Store:
    """A study's SQLite store.

    Args:
        path: the database file (created with its folder unless read-only).
        readonly: open for reading only (reports, status).
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"store {self.path} does not exist")
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=30)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                with self.db:
                    self.db.executescript(_SCHEMA)
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = self.schema_version()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"cannot open store {self.path}: {err}") from None
        if version != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {version}; this nasmix reads {SCHEMA_VERSION}")

    @property
    def files(self) -> Path:
        """The folder beside the database for checkpoints and arch files."""
        return self.path.with_name(self.path.name + ".files")

    def close(self) -> None:
        self.db.close()

    def schema_version(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def _write(self, sql: str, rows: Iterable[tuple]) -> int:
        try:
            with self.db:
                cur = self.db.executemany(sql, list(rows))
                return cur.rowcount
        except sqlite3.OperationalError as err:
            full = "full" in str(err).lower()
            hint = " (disk full: free space and run the same command again to resume)" if full else ""
            raise StoreError(f"cannot write to store {self.path}: {err}{hint}") from None

    # ---- writing (the driver only) ----------------------------------------
    def add_cells(self, cells: Iterable) -> None:
        """Record cells (nasmix.study.grid.Cell); known ones are left as they are."""
        now = time.time()
        self._write(
            "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((c.id, c.study, c.label, c.space, c.strategy, c.estimator, c.dataset, c.seed, c.to_json(), now)
             for c in cells),
        )  # fmt: skip

    def append(self, cell: str, key: str, kind: str, phase: str, data: dict) -> bool:
        """Append one event; False when (cell, key) was already stored."""
        text = json.dumps(data, default=_jsonable, allow_nan=True)
        return self._write("INSERT OR IGNORE INTO events (cell, key, kind, phase, time, data) VALUES (?, ?, ?, ?, ?, ?)",
                           [(cell, key, kind, phase, time.time(), text)]) == 1  # fmt: skip

    # ---- reading -----------------------------------------------------------
    def cells(self) -> list[CellRow]:
        """Every cell, in the order added."""
        rows = self.db.execute("SELECT id, study, label, space, strategy, estimator, dataset, seed, config "
                               "FROM cells ORDER BY added, rowid").fetchall()  # fmt: skip
        return [CellRow(*r) for r in rows]

    def events(self, cell: str | None = None, kind: str | None = None) -> list[Event]:
        """Events in the order appended, optionally of one cell and/or kind."""
        sql, args = "SELECT seq, cell, key, kind, phase, time, data FROM events", []
        where = []
        if cell is not None:
            where.append("cell = ?")
            args.append(cell)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.execute(sql + " ORDER BY seq", args).fetchall()
        return [Event(s, c, k, kd, ph, t, json.loads(d)) for s, c, k, kd, ph, t, d in rows]

    def keys(self, cell: str) -> set[str]:
        """The event keys a cell has."""
        return {r[0] for r in self.db.execute("SELECT key FROM events WHERE cell = ?", (cell,))}

    def state(self, cell: str) -> str:
        """pending, running, finished, failed or projected."""
        end = self.db.execute("SELECT kind FROM events WHERE cell = ? AND key = 'end'", (cell,)).fetchone()
        if end:
            return end[0]
        started = self.db.execute("SELECT 1 FROM events WHERE cell = ? LIMIT 1", (cell,)).fetchone()
        return "running" if started else "pending"

    def pending(self, cells: Iterable) -> list:
        """The cells without an end event (never started, or interrupted)."""
        return [c for c in cells if self.state(c.id) not in END_KINDS]


def _jsonable(value):
    """JSON for numpy scalars and paths in event data."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
