"""A live, read-only view of a study store: one thread reads it, the pages read snapshots.

`LiveStudy` opens the store read-only (`Store(path, readonly=True)`: SQLite's
`mode=ro`, which a running study and its many workers keep writing to) in a
thread of its own, and every `interval` seconds asks it for the events appended
since the last one it saw (`Store.events_since`). New events of known cells
extend those cells' records; an event of a cell it does not know, and every
`full_every` seconds in any case (a study may add cells that have no events
yet), reloads every cell. Each change makes a new immutable `Snapshot` with a
higher `version`; the web handlers only ever read the latest snapshot, so no
request touches SQLite and a slow client cannot hold a read transaction open
(which would keep the writers' log from being checkpointed).

A read that fails (a store damaged while it is served) keeps the last good
records and sets the snapshot's `error`; the next read that succeeds clears it.

Example:
    >>> import os, tempfile
    >>> from nasmix.study.store import Store
    >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
    >>> Store(path).close()
    >>> live = LiveStudy(path, interval=0.05)
    >>> live.start()
    >>> live.snapshot().records, live.snapshot().error
    ((), None)
    >>> live.stop()
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nasmix.errors import NasmixError
from nasmix.events import END_STATES
from nasmix.study.schema import CellRecord, EventRecord, cell_state
from nasmix.study.store import Store, StoreError

# What reading a damaged or foreign file raises (the store's own checks raise StoreError).
UNREADABLE = (
    NasmixError,
    sqlite3.DatabaseError,
    ValueError,
    UnicodeDecodeError,
    OSError,
    KeyError,
    TypeError,
    AttributeError,
)
INTERVAL_S = 1.0  # how often the store is asked for new events
FULL_EVERY_S = 15.0  # how often every cell is read again (cells added without events)


@dataclass(frozen=True)
class Snapshot:
    """The study as last read.

    Attributes:
        version: grows by one with each change of the records or of the error.
        records: every cell with its events, in the order added.
        seq: the number of the last event read.
        read_at: when the store was last read successfully (time.time()).
        error: why the last read failed (None: it did not); the records are the last good ones.
    """

    version: int = 0
    records: tuple[CellRecord, ...] = ()
    seq: int = 0
    read_at: float = 0.0
    error: str | None = None
    by_id: dict = field(default_factory=dict, compare=False, repr=False)

    def record(self, cell: str) -> CellRecord:
        """The cell with this id (KeyError when the store has none)."""
        if not self.by_id:
            self.by_id.update({r.id: r for r in self.records})
        return self.by_id[cell]


def extend(rec: CellRecord, new: list[EventRecord]) -> CellRecord:
    """The record with events appended (those it already has are skipped) and its state derived again.

    Example:
        >>> rec = CellRecord("c", "c", "s", "t", "e", "d", 0, "pending", {}, ())
        >>> extend(rec, [EventRecord("attempt/1", "attempt", "setup", {}, 1, "c")]).state
        'running'
    """
    last = max((e.seq for e in rec.events), default=0)
    events = rec.events + tuple(e for e in new if e.seq > last)
    end = next((e.kind for e in events if e.key == "end" and e.kind in END_STATES), None)
    state = cell_state(end, bool(events))
    # a fresh key index: the old record's would miss the new events
    return dataclasses.replace(rec, state=state, events=events, _by_key={})


def check_store_file(path: str | os.PathLike) -> Path:
    """The store's path, refused with a StoreError when it is missing or not a regular file
    (a folder; a named pipe, which SQLite would block on)."""
    p = Path(path)
    if not p.exists():
        raise StoreError(f"store {p} does not exist")
    if not p.is_file():
        raise StoreError(f"store {p} is not a file (a folder, a pipe or a device)")
    return p


class LiveStudy:
    """The thread that reads a store and publishes snapshots.

    Args:
        path: the study's store.
        interval: seconds between reads.
        full_every: seconds between full reloads.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        interval: float = INTERVAL_S,
        full_every: float = FULL_EVERY_S,
    ):
        self.path = check_store_file(path)
        self.interval = interval
        self.full_every = full_every
        self._snapshot = Snapshot()
        self._changed = threading.Condition()
        self._reads = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._full_at = 0.0

    # ---- the reader's side ------------------------------------------------------------------
    def start(self) -> None:
        """Open the store and read it once; returns when the first snapshot is ready.

        Raises:
            StoreError: the store is missing, not a store, corrupt or unreadable.
        """
        self._thread = threading.Thread(target=self._run, name="nasmix-serve-reader", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """Stop reading and close the store."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            store = Store(self.path, readonly=True)
        except UNREADABLE as err:
            self._failure = _unreadable(self.path, err)
            self._started.set()
            return
        try:
            try:
                self._reload(store)
            except UNREADABLE as err:  # refuse to serve what cannot be read
                self._failure = _unreadable(self.path, err)
                return
            finally:
                self._started.set()
            while not self._stopping.is_set():
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stopping.is_set():
                    break
                try:
                    self._poll(store)
                except UNREADABLE as err:  # keep serving the last good records, and say why they are old
                    self._publish(error=str(_unreadable(self.path, err)))
                with self._changed:
                    self._reads += 1
                    self._changed.notify_all()
        finally:
            store.close()

    def _reload(self, store: Store) -> None:
        records = tuple(store.cells())
        seq = max((e.seq for r in records for e in r.events), default=0)
        self._full_at = time.monotonic()
        old = self._snapshot
        same = seq == old.seq and [r.id for r in records] == [r.id for r in old.records]
        self._publish(records=records, seq=seq, changed=not same)

    def _poll(self, store: Store) -> None:
        new = store.events_since(self._snapshot.seq)
        known = {r.id for r in self._snapshot.records}
        if any(e.cell not in known for e in new) or time.monotonic() - self._full_at >= self.full_every:
            self._reload(store)
            return
        if not new:
            self._publish()
            return
        by_cell: dict[str, list[EventRecord]] = {}
        for e in new:
            by_cell.setdefault(e.cell, []).append(e)
        records = tuple(extend(r, by_cell[r.id]) if r.id in by_cell else r for r in self._snapshot.records)
        self._publish(records=records, seq=new[-1].seq, changed=True)

    def _publish(self, records=None, seq=None, changed: bool = False, error: str | None = None) -> None:
        old = self._snapshot
        bump = changed or error != old.error
        self._snapshot = Snapshot(
            old.version + 1 if bump else old.version,
            old.records if records is None else records,
            old.seq if seq is None else seq,
            old.read_at if error is not None else time.time(),
            error,
        )

    # ---- the pages' side --------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The latest snapshot (immutable: safe to read from any thread)."""
        return self._snapshot

    def read_now(self, timeout: float = 10.0) -> Snapshot:
        """Ask for a read at once and wait for it (tests, and a page's explicit refresh).

        Returns:
            The snapshot after that read.
        """
        with self._changed:
            target = self._reads + 1
            self._wake.set()
            self._changed.wait_for(lambda: self._reads >= target or self._stopping.is_set(), timeout)
        return self._snapshot


def _unreadable(path: Path, err: BaseException) -> NasmixError:
    """A read's failure as the StoreError a user reads (the store's own errors pass as they are)."""
    if isinstance(err, NasmixError):
        return err
    return StoreError(f"cannot read store {path}: {type(err).__name__}: {err}")
