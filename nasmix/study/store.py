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

The store takes typed events (nasmix.events) and returns typed records
(nasmix.study.schema): `EventRecord`s, and `CellRecord`s that carry their
events and their state, derived from the events by `cell_state`: pending
(none), running (started, no end), finished / failed / projected (the kind of
its "end" event).

Example:
    >>> import tempfile, os
    >>> from nasmix.events import Attempt
    >>> from nasmix.study.schema import CellSpec
    >>> cell = CellSpec("nb201", "random", "train", "synthetic", seed=0)
    >>> with Store(os.path.join(tempfile.mkdtemp(), "s.db")) as store:
    ...     store.add_cells([cell])
    ...     store.append(cell.id, "attempt/1", Attempt(device="cpu"))
    ...     store.cells()[0].state, store.events(cell.id)[0].event
    True
    ('running', Attempt(extra={}, device='cpu', resumed_arch=None))
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from nasmix.errors import NasmixError
from nasmix.events import END_STATES, Event
from nasmix.study.schema import CellRecord, CellSpec, EventRecord, cell_state, estimator_kind

SCHEMA_VERSION = 1  # of the tables; each event's data carries its own version (nasmix.events)
_CELL_COLUMNS = "id, study, label, space, strategy, estimator, dataset, seed, config"

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

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def add_cells(self, cells: Iterable[CellSpec]) -> None:
        """Record cells; known ones are left as they are."""
        now = time.time()
        rows = [
            (c.id, c.study, c.label, c.space, c.strategy, c.estimator, c.dataset, c.seed, c.to_json(), now)
            for c in cells
        ]
        self._write("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def append(self, cell: str, key: str, event: Event) -> bool:
        """Append one event under a key; False when (cell, key) was already stored."""
        text = json.dumps(event.to_json(), default=_jsonable, allow_nan=True)
        sql = "INSERT OR IGNORE INTO events (cell, key, kind, phase, time, data) VALUES (?, ?, ?, ?, ?, ?)"
        return self._write(sql, [(cell, key, event.kind, event.phase, time.time(), text)]) == 1

    # ---- reading -----------------------------------------------------------
    def cells(self) -> list[CellRecord]:
        """Every cell with its events and state, in the order added."""
        by_cell: dict[str, list[EventRecord]] = {}
        for e in self.events():
            by_cell.setdefault(e.cell, []).append(e)
        rows = self.db.execute(f"SELECT {_CELL_COLUMNS} FROM cells ORDER BY added, rowid").fetchall()
        return [_record(row, tuple(by_cell.get(row[0], ()))) for row in rows]

    def record(self, cell: str) -> CellRecord:
        """One cell with its events and state.

        Raises:
            StoreError: no cell has that id.
        """
        row = self.db.execute(f"SELECT {_CELL_COLUMNS} FROM cells WHERE id = ?", (cell,)).fetchone()
        if row is None:
            raise StoreError(f"store {self.path} has no cell {cell!r}")
        return _record(row, tuple(self.events(cell)))

    def events(self, cell: str | None = None, kind: str | None = None) -> list[EventRecord]:
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
        return [EventRecord(k, kd, ph, json.loads(d), s, c, t) for s, c, k, kd, ph, t, d in rows]

    def events_since(self, seq: int, cell: str | None = None, limit: int | None = None) -> list[EventRecord]:
        """Events appended after the one numbered `seq` (0: all), in order: what a poller has not seen.

        Writers take turns (SQLite's one write lock), so numbers grow in commit order and a
        reader that asks for what came after the last number it saw misses nothing.
        """
        sql, args = "SELECT seq, cell, key, kind, phase, time, data FROM events WHERE seq > ?", [int(seq)]
        if cell is not None:
            sql += " AND cell = ?"
            args.append(cell)
        sql += " ORDER BY seq" + ("" if limit is None else f" LIMIT {int(limit)}")
        rows = self.db.execute(sql, args).fetchall()
        return [EventRecord(k, kd, ph, json.loads(d), s, c, t) for s, c, k, kd, ph, t, d in rows]

    def keys(self, cell: str) -> set[str]:
        """The event keys a cell has."""
        return {r[0] for r in self.db.execute("SELECT key FROM events WHERE cell = ?", (cell,))}

    def state(self, cell: str) -> str:
        """pending, running, finished, failed or projected."""
        end = self.db.execute("SELECT kind FROM events WHERE cell = ? AND key = 'end'", (cell,)).fetchone()
        started = self.db.execute("SELECT 1 FROM events WHERE cell = ? LIMIT 1", (cell,)).fetchone()
        return cell_state(end[0] if end else None, started is not None)

    def pending(self, cells: Iterable[CellSpec]) -> list[CellSpec]:
        """The cells without an end event (never started, or interrupted)."""
        return [c for c in cells if self.state(c.id) not in END_STATES]


def _record(row: tuple, events: tuple[EventRecord, ...]) -> CellRecord:
    """The CellRecord of a cells-table row and its events."""
    id_, study, label, space, strategy, estimator, dataset, seed, config = row
    end = next((e.kind for e in events if e.key == "end"), None)
    settings = json.loads(config).get("settings", {})
    state = cell_state(end, bool(events))
    kind = estimator_kind(estimator)
    cell = (id_, label, space, strategy, estimator, dataset, seed)
    return CellRecord(*cell, state, settings, events, kind, study)


def _jsonable(value):
    """JSON for numpy scalars and paths in event data."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
