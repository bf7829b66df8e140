"""The study store: SQLite in WAL mode, append-only events, one writer per cell.

All SQL of nasmix lives here. Tables:
- meta(key, value): schema version, study name.
- cells(id, study, label, space, strategy, estimator, dataset, seed, config, added):
  each cell's configuration, inserted once.
- events(seq, cell, key, kind, phase, time, data, crc): what happened, appended,
  with a checksum of the row (nasmix.study.rows). (cell, key) is unique and
  inserts of an existing key are ignored, so a re-run that repeats a step (a
  search restarted with the same seed, an epoch redone after the last
  checkpoint) adds no duplicate, and a finished cell's "end" event can never
  be rewritten.
- claims(cell, worker, claimed, heartbeat): which `nasmix study` process runs
  a cell now (its lease, renewed by a heartbeat; nasmix.study.lease). The only
  table that is updated: it says who may write, never what happened.
Checkpoints and arch files live beside the database, in `<db>.files/`.

SCHEMA_VERSION counts changes an older nasmix would misread; a store of a
higher version is refused. Tables added later (claims) are created with
CREATE TABLE IF NOT EXISTS on a writable open, and columns (events.crc) with
ALTER TABLE ADD COLUMN; they keep the version: an older nasmix ignores them
(it does not coordinate with other workers, and its rows have no checksum),
and a store without them reads as before.

A store is checked when it is opened (SQLite's `PRAGMA quick_check`: page and
b-tree structure) and as it is read (every row: its checksum, JSON that
parses, a known event kind, a cell config that hashes to the cell's id:
nasmix.study.rows); a problem raises
StoreError naming the store and the row, so nothing is reported from a
malformed file. Paths go into SQLite as escaped `file:` URIs, so `%`, `#` and
`?` in a file name are only characters.

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

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from nasmix.errors import NasmixError
from nasmix.events import END_STATES, Event
from nasmix.study.rows import (
    CELL_ID,
    RESCUE,
    Claim,
    cell_problem,
    cell_record,
    event_crc,
    event_record,
    jsonable,
)
from nasmix.study.schema import CellRecord, CellSpec, EventRecord, cell_state
from nasmix.study.storefile import cannot_open, explain, nonempty, sidecar, store_uri

SCHEMA_VERSION = 1  # of the tables; each event's data carries its own version (nasmix.events)
_CELL_COLUMNS = "id, study, label, space, strategy, estimator, dataset, seed, config"
_EVENT_COLUMNS = "seq, cell, key, kind, phase, time, data, crc"
_SHOWN = 5  # problems named in one error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY, study TEXT NOT NULL, label TEXT NOT NULL, space TEXT NOT NULL,
    strategy TEXT NOT NULL, estimator TEXT NOT NULL, dataset TEXT NOT NULL, seed INTEGER NOT NULL,
    config TEXT NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, cell TEXT NOT NULL REFERENCES cells(id), key TEXT NOT NULL,
    kind TEXT NOT NULL, phase TEXT NOT NULL, time REAL NOT NULL, data TEXT NOT NULL, crc INTEGER,
    UNIQUE (cell, key));
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE IF NOT EXISTS claims (
    cell TEXT PRIMARY KEY REFERENCES cells(id), worker TEXT NOT NULL, claimed REAL NOT NULL,
    heartbeat REAL NOT NULL);
"""


class StoreError(NasmixError):
    """The store cannot be opened, read or written (corrupt file, full disk, newer schema)."""


class LeaseLost(StoreError):
    """This worker no longer holds a cell's lease (another worker reclaimed it): its events are refused."""


class Store:
    """A study's SQLite store.

    Args:
        path: the database file (created with its folder unless read-only).
        readonly: open for reading only (reports, status, a dashboard): see `open_readonly`.
        check: run SQLite's quick_check on open (a corrupt file is refused).

    Raises:
        StoreError: a missing (read-only) or unreadable store, a file that is not a
            store, a corrupt one (named with SQLite's findings), a newer schema.
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False, check: bool = True):
        self.path = Path(path)
        self.readonly = readonly
        self.how = "read-write"  # how it was opened: read-write, read-only, immutable, copy
        self._copy: tempfile.TemporaryDirectory | None = None
        if "\x00" in os.fspath(path) or not self.path.name:
            raise StoreError(f"store path {os.fspath(path)!r} is not a file name")
        if self.path.is_dir():
            raise StoreError(f"store {self.path} is a folder, not a store file")
        try:
            self.db = self._open_readonly() if readonly else self._connect_writable()
            if check:  # before anything is written: a damaged store is refused as it is
                self._quick_check()
            version = self.schema_version()
            if version == SCHEMA_VERSION and not readonly:
                self._migrate()
            self._crc = "crc" in _columns(self.db, "events")
        except sqlite3.DatabaseError as err:
            self._close_quietly()
            raise StoreError(explain(self.path, err)) from None
        except UnicodeDecodeError as err:
            self._close_quietly()
            raise StoreError(
                f"store {self.path} is corrupt: a text column is not UTF-8 ({err}). {RESCUE}"
            ) from None
        except BaseException:
            self._close_quietly()
            raise
        if version != SCHEMA_VERSION:
            self._close_quietly()
            raise StoreError(
                f"store {self.path} has schema version {version}; this nasmix reads {SCHEMA_VERSION}"
            )

    @classmethod
    def open_readonly(cls, path: str | os.PathLike, check: bool = True) -> Store:
        """Open a store for reading only, wherever it lies.

        In place (`mode=ro`) where SQLite can share it with a running study (new events
        show on the next read); on a read-only file system as an immutable file
        (`immutable=1`: nothing changes it), or, when a write-ahead log left by a
        killed writer holds transactions that an immutable open would not see, as a
        private copy of the file and its log.

        Example:
            >>> with Store.open_readonly("runs/demo.db") as store:   # doctest: +SKIP
            ...     new = store.events_since(0)
        """
        return cls(path, readonly=True, check=check)

    # ---- opening ---------------------------------------------------------------------------
    def _connect(self, path: Path, **params: str) -> sqlite3.Connection:
        # Autocommit: every write is an explicit BEGIN IMMEDIATE transaction (`_transaction`).
        return sqlite3.connect(store_uri(path, **params), uri=True, timeout=30, isolation_level=None)

    def _connect_writable(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self._connect(self.path, mode="rwc")

    def _migrate(self) -> None:
        """Make a new store's tables, or add to an older store what this nasmix adds (claims, crc)."""
        db = self.db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            if "crc" not in _columns(db, "events"):  # a store made before rows had checksums
                db.execute("ALTER TABLE events ADD COLUMN crc INTEGER")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise StoreError(f"store {self.path} does not exist")
        self.how = "read-only"
        db = self._connect(self.path, mode="ro")
        try:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError as err:  # a read-only folder: no -shm can be made beside a WAL store
            db.close()
            if not cannot_open(err):
                raise
        # Nothing writes a store on a read-only file system, unless a writer was killed and
        # left its log: an immutable open would not see the transactions in the log.
        logs = [p for p in (sidecar(self.path, "-wal"), sidecar(self.path, "-journal")) if nonempty(p)]
        if not logs:
            self.how = "immutable"
            return self._connect(self.path, mode="ro", immutable="1")
        self.how = "copy"
        self._copy = tempfile.TemporaryDirectory(prefix="nasmix-store-")
        copy = Path(self._copy.name) / "store.db"
        try:
            shutil.copyfile(self.path, copy)
            for log in logs:
                shutil.copyfile(log, sidecar(copy, log.name[len(self.path.name) :]))
        except OSError as err:
            raise StoreError(
                f"store {self.path} is on a read-only file system with a write-ahead log ({logs[0].name}) "
                f"left by a writer that did not close it, and it could not be copied to read it: {err}"
            ) from None
        return self._connect(copy, mode="rw")  # recovers the log into the copy

    def _quick_check(self) -> None:
        rows = [r[0] for r in self.db.execute(f"PRAGMA quick_check({_SHOWN})").fetchall()]
        if rows != ["ok"]:
            raise StoreError(
                f"store {self.path} is corrupt (SQLite quick_check: {'; '.join(rows)}). {RESCUE}"
            )

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None

    @property
    def files(self) -> Path:
        """The folder beside the database for checkpoints and arch files."""
        return self.path.with_name(self.path.name + ".files")

    def cell_files(self, cell: str) -> Path:
        """A cell's folder of checkpoints (its id checked: it becomes a path)."""
        if not isinstance(cell, str) or not CELL_ID.fullmatch(cell):
            raise StoreError(f"{cell!r} is not a cell id (12 hexadecimal digits)")
        return self.files / cell

    def close(self) -> None:
        self._close_quietly()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        """The store's schema version (that of this nasmix for a new, empty file).

        Raises:
            StoreError: an SQLite database of something else, or a malformed version.
        """
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and not self.readonly:
            return SCHEMA_VERSION  # a new store: made by `_migrate`
        if "meta" not in tables:
            raise StoreError(
                f"{self.path} is an SQLite database but not a nasmix store (it has no meta table)"
            )
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise StoreError(f"store {self.path} is corrupt: schema version {row and row[0]!r}") from None

    # ---- transactions ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the write lock first (BEGIN IMMEDIATE): two
        processes never both read a free cell and then both claim it."""
        if self.readonly:
            raise StoreError(f"store {self.path} is open read-only")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            full = "full" in str(err).lower()
            hint = " (disk full: free space and run the same command again to resume)" if full else ""
            raise StoreError(f"cannot write to store {self.path}: {explain(self.path, err)}{hint}") from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent snapshot of several queries)."""
        try:
            self.db.execute("BEGIN")
            try:
                yield self.db
            finally:
                if self.db.in_transaction:
                    self.db.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"cannot read store {self.path}: {explain(self.path, err)}") from None
        except UnicodeDecodeError as err:  # a text column whose bytes changed
            raise StoreError(
                f"store {self.path} is corrupt: a text column is not UTF-8 ({err}). {RESCUE}"
            ) from None

    # ---- writing (the driver only) ----------------------------------------
    def add_cells(self, cells: Iterable[CellSpec]) -> None:
        """Record cells; known ones are left as they are."""
        now = time.time()
        rows = [
            (c.id, c.study, c.label, c.space, c.strategy, c.estimator, c.dataset, c.seed, c.to_json(), now)
            for c in cells
        ]
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def append(self, cell: str, key: str, event: Event, worker: str | None = None) -> bool:
        """Append one event under a key; False when (cell, key) was already stored.

        Args:
            worker: the worker that must hold the cell's lease (None: no lease is checked).

        Raises:
            LeaseLost: `worker` does not hold the cell's lease; nothing was written.
        """
        text = json.dumps(event.to_json(), default=jsonable, allow_nan=True)
        row = (cell, key, event.kind, event.phase, time.time(), text)
        sql = "INSERT OR IGNORE INTO events (cell, key, kind, phase, time, data, crc) VALUES (?,?,?,?,?,?,?)"
        with self._transaction() as db:
            if worker is not None:
                held = db.execute("SELECT worker FROM claims WHERE cell = ?", (cell,)).fetchone()
                if held is None or held[0] != worker:
                    holder = "no worker" if held is None else f"worker {held[0]}"
                    raise LeaseLost(
                        f"worker {worker} no longer holds cell {cell} of store {self.path} ({holder} does): "
                        f"its event {key!r} was not written"
                    )
            return db.execute(sql, (*row, event_crc(*row))).rowcount == 1

    # ---- claims: many workers on one store ---------------------------------------------------
    def claim(self, cells: Sequence[str], worker: str, takeable: Callable[[Claim], bool]) -> str | None:
        """Atomically claim the first of these cells that has not ended and that no live worker holds.

        Args:
            cells: cell ids in the order to run them.
            worker: the claiming worker's id.
            takeable: whether another worker's claim may be taken over (its heartbeat is
                stale, or its process is known to be dead).

        Returns:
            The claimed cell's id, or None when every one has ended or is held.
        """
        with self._transaction() as db:
            held = {
                r[0]: Claim(*r) for r in db.execute("SELECT cell, worker, claimed, heartbeat FROM claims")
            }
            for cell in cells:
                if db.execute("SELECT 1 FROM events WHERE cell = ? AND key = 'end'", (cell,)).fetchone():
                    continue
                other = held.get(cell)
                if other is None or other.worker == worker or takeable(other):
                    now = time.time()
                    db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (cell, worker, now, now))
                    return cell
        return None

    def heartbeat(self, worker: str, cells: Iterable[str]) -> list[str]:
        """Renew the worker's leases on these cells; returns the cells whose lease it no longer holds."""
        cells = list(cells)
        lost = []
        with self._transaction() as db:
            now = time.time()
            for cell in cells:
                cur = db.execute(
                    "UPDATE claims SET heartbeat = ? WHERE cell = ? AND worker = ?", (now, cell, worker)
                )
                if cur.rowcount != 1:
                    lost.append(cell)
        return lost

    def release(self, worker: str, cells: Iterable[str] | None = None) -> None:
        """Give up the worker's leases of cells that have not ended (all of them when `cells` is None),
        so another worker may take them at once; the leases of ended cells stay as their record."""
        sql = (
            "DELETE FROM claims WHERE worker = ? AND cell = ? AND NOT EXISTS "
            "(SELECT 1 FROM events WHERE events.cell = claims.cell AND key = 'end')"
        )
        keep = None if cells is None else set(cells)
        with self._transaction() as db:
            ids = [r[0] for r in db.execute("SELECT cell FROM claims WHERE worker = ?", (worker,))]
            db.executemany(sql, [(worker, c) for c in ids if keep is None or c in keep])

    def claims(self) -> list[Claim]:
        """Every lease held or last held, per cell (empty for a store made before leases)."""
        try:
            with self._reading() as db:
                rows = db.execute(
                    "SELECT cell, worker, claimed, heartbeat FROM claims ORDER BY claimed"
                ).fetchall()
        except StoreError as err:
            if "no such table: claims" in str(err):
                return []
            raise
        return [Claim(*r) for r in rows]

    def ended(self, cells: Iterable[str]) -> set[str]:
        """Which of these cells have an end event."""
        with self._reading() as db:
            sql = "SELECT 1 FROM events WHERE cell = ? AND key = 'end'"
            return {c for c in cells if db.execute(sql, (c,)).fetchone()}

    # ---- reading -----------------------------------------------------------
    def cells(self) -> list[CellRecord]:
        """Every cell with its events and state, in the order added.

        Raises:
            StoreError: a malformed row (named), or a corrupt file.
        """
        with self._reading() as db:
            events = self._events(db, "", ())
            rows = db.execute(f"SELECT {_CELL_COLUMNS} FROM cells ORDER BY added, rowid").fetchall()
        by_cell: dict[str, list[EventRecord]] = {}
        for e in events:
            by_cell.setdefault(e.cell, []).append(e)
        problems = [p for row in rows if (p := cell_problem(row))]
        orphans = sorted(set(by_cell) - {row[0] for row in rows})
        problems += [f"events {by_cell[c][0].seq}... name cell {c!r}, which the store lacks" for c in orphans]
        self._raise(problems)
        return [cell_record(row, tuple(by_cell.get(row[0], ()))) for row in rows]

    def record(self, cell: str) -> CellRecord:
        """One cell with its events and state.

        Raises:
            StoreError: no cell has that id, or its rows are malformed.
        """
        with self._reading() as db:
            row = db.execute(f"SELECT {_CELL_COLUMNS} FROM cells WHERE id = ?", (cell,)).fetchone()
            events = self._events(db, " WHERE cell = ?", (cell,))
        if row is None:
            raise StoreError(f"store {self.path} has no cell {cell!r}")
        self._raise([p for p in (cell_problem(row),) if p])
        return cell_record(row, tuple(events))

    def events(self, cell: str | None = None, kind: str | None = None) -> list[EventRecord]:
        """Events in the order appended, optionally of one cell and/or kind (each row checked)."""
        where, args = _where(cell=cell, kind=kind)
        with self._reading() as db:
            return self._events(db, where, args)

    def events_since(self, seq: int, cell: str | None = None, limit: int | None = None) -> list[EventRecord]:
        """Events appended after the one numbered `seq` (0: all), in order: what a poller has not seen.

        Writers take turns (SQLite's one write lock), so numbers grow in commit order and a
        reader that asks for what came after the last number it saw misses nothing.

        Example:
            >>> with Store.open_readonly("runs/demo.db") as store:   # doctest: +SKIP
            ...     new = store.events_since(last)
            ...     last = new[-1].seq if new else last
        """
        where, args = _where(cell=cell)
        where = (where + " AND" if where else " WHERE") + " seq > ?"
        suffix = "" if limit is None else f" LIMIT {int(limit)}"
        with self._reading() as db:
            return self._events(db, where, (*args, int(seq)), suffix)

    def last_seq(self) -> int:
        """The number of the last event appended (0 when there is none)."""
        with self._reading() as db:
            return db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def _events(self, db: sqlite3.Connection, where: str, args: tuple, suffix: str = "") -> list[EventRecord]:
        columns = _EVENT_COLUMNS if self._crc else _EVENT_COLUMNS.replace("crc", "NULL")
        rows = db.execute(f"SELECT {columns} FROM events{where} ORDER BY seq{suffix}", args).fetchall()
        records, problems = [], []
        for row in rows:
            record, problem = event_record(row)
            if problem:
                problems.append(problem)
            elif record is not None:  # event_record gives a record or a problem
                records.append(record)
        self._raise(problems)
        return records

    def _raise(self, problems: list[str]) -> None:
        if problems:
            more = f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
            raise StoreError(f"store {self.path} is corrupt: {'; '.join(problems[:_SHOWN])}{more}. {RESCUE}")

    def state(self, cell: str) -> str:
        """pending, running, finished, failed or projected."""
        with self._reading() as db:
            end = db.execute("SELECT kind FROM events WHERE cell = ? AND key = 'end'", (cell,)).fetchone()
            started = db.execute("SELECT 1 FROM events WHERE cell = ? LIMIT 1", (cell,)).fetchone()
        if end is not None and end[0] not in END_STATES:
            raise StoreError(
                f"store {self.path} is corrupt: cell {cell}'s end event has kind {end[0]!r}. {RESCUE}"
            )
        return cell_state(end[0] if end else None, started is not None)


def _where(**columns: str | None) -> tuple[str, tuple]:
    given = {k: v for k, v in columns.items() if v is not None}
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(f"{k} = ?" for k in given), tuple(given.values())


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
