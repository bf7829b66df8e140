"""Many `nasmix study` processes on one store: leases on cells, kept alive by a heartbeat.

The pattern of Optuna's RDB storage with heartbeats: each process (a *worker*)
claims the next cell that has not ended and that no live worker holds, in
one write transaction (`Store.claim`, BEGIN IMMEDIATE), so two workers never
claim the same cell. While it runs the cell, a background thread renews the
lease (`Store.heartbeat`) every `timeout / 6` seconds. A cell whose worker
died is taken over by another once its heartbeat is older than `timeout`, at
once when the dead worker ran on the same machine (its process is gone), and
the new worker resumes it from its last checkpoint (nasmix.study.run). Every
event a worker writes is fenced by its lease (`Store.append(worker=...)`): a
worker that stalled past the timeout and lost the cell cannot write into it.
Events keep their key unique per cell, so nothing is written twice either way.

A worker's id is `host/boot/pid/nonce`: the host name, the kernel's boot id
(a rebooted machine's old workers are dead), the process id (a process of
this machine that no longer exists is dead) and a random nonce.

Example:
    >>> with Lease("runs/demo.db", timeout=60) as lease:   # doctest: +SKIP
    ...     queue = CellQueue(store, lease, cells)
    ...     job = queue.next()   # (cell, resume) or None
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from nasmix.study.rows import Claim
from nasmix.study.run import Resume
from nasmix.study.schema import CellSpec
from nasmix.study.store import Store
from nasmix.validate import check_real

DEFAULT_TIMEOUT = 60.0  # seconds without a heartbeat after which a lease may be taken over
_HOST = socket.gethostname()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:  # not Linux
        return "-"


_BOOT = _boot_id()


def worker_id() -> str:
    """A new worker id for this process: `host/boot/pid/nonce`."""
    return f"{_HOST}/{_BOOT}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def known_dead(worker: str) -> bool:
    """Whether a worker id names a process this machine knows to be gone: one of this
    host from an earlier boot, or one of this boot whose process no longer exists."""
    parts = worker.rsplit("/", 3)
    if len(parts) != 4 or parts[0] != _HOST or _BOOT == "-":
        return False  # another machine (or an id nasmix did not write): only its heartbeat tells
    _, boot, pid, _ = parts
    if boot != _BOOT:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):  # alive under another user, or not a pid
        return False
    return False


def check_timeout(timeout: float | None) -> float:
    """The lease timeout to use (DEFAULT_TIMEOUT when None).

    Raises:
        ConfigError: not a positive, finite number of seconds.
    """
    return DEFAULT_TIMEOUT if timeout is None else float(check_real(timeout, "the lease timeout"))


class Lease:
    """This process's leases on one store, renewed by a background heartbeat.

    Args:
        path: the store (the heartbeat thread opens its own connection).
        timeout: seconds without a heartbeat after which another worker may take a cell over.

    Attributes:
        worker: this worker's id.
        interval: seconds between heartbeats (timeout / 6).
        lost: cells whose lease another worker took (seen by a heartbeat).
        error: the last error a heartbeat met (it keeps trying), or None.
    """

    def __init__(self, path: str | os.PathLike, timeout: float | None = None):
        self.path = Path(path)
        self.timeout = check_timeout(timeout)
        self.interval = self.timeout / 6
        self.worker = worker_id()
        self.lost: set[str] = set()
        self.error: str | None = None
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def takeable(self, claim: Claim) -> bool:
        """Whether another worker's claim may be taken over: its heartbeat is stale, or its
        process is known to be dead."""
        if claim.worker == self.worker:
            return True
        return time.time() - claim.heartbeat > self.timeout or known_dead(claim.worker)

    def hold(self, cell: str) -> None:
        """Renew this cell's lease from now on."""
        with self._lock:
            self._held.add(cell)

    def drop(self, cell: str) -> None:
        """Stop renewing this cell's lease."""
        with self._lock:
            self._held.discard(cell)

    def start(self) -> Lease:
        """Start the heartbeat thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="nasmix-heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the heartbeat thread (the leases then go stale unless released)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(35.0, self.interval))
            self._thread = None

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _beat(self) -> None:
        store = None
        try:
            while not self._stop.wait(self.interval):
                with self._lock:
                    held = sorted(self._held)
                if not held:
                    continue
                try:
                    store = store or Store(self.path, check=False)
                    lost = store.heartbeat(self.worker, held)
                    self.error = None
                except Exception as err:  # a busy or full disk: try again at the next beat
                    self.error = str(err)
                    continue
                if lost:
                    with self._lock:
                        self.lost.update(lost)
                        self._held.difference_update(lost)
        finally:
            if store is not None:
                store.close()


class CellQueue:
    """The cells one worker may run next, claimed one at a time from the store.

    Args:
        store: the store (this thread's connection).
        lease: this worker's leases.
        cells: the study's cells that had not ended, in the order to run them.
        on_wait: told once how many cells other workers hold, when this one starts to wait.

    Attributes:
        poll: seconds between two looks at the store while every open cell is held by
            another live worker.
    """

    def __init__(
        self,
        store: Store,
        lease: Lease,
        cells: Sequence[CellSpec],
        on_wait: Callable[[int], None] | None = None,
    ):
        self.store, self.lease, self.on_wait = store, lease, on_wait
        self.cells = {c.id: c for c in cells}
        self.tried: set[str] = set()  # claimed by this worker once: never claimed again by it
        self.ended: set[str] = set()  # seen ended (by any worker): never looked up again
        self.poll = min(lease.interval, 1.0)
        self._quiet_until = 0.0

    def next(self) -> tuple[CellSpec, Resume] | None:
        """Claim the next cell: it and what the store holds for it (to resume from), or None
        when no cell can be claimed now."""
        if time.monotonic() < self._quiet_until:  # nothing was free a moment ago: spare the store's lock
            return None
        order = [c for c in self.cells if c not in self.tried and c not in self.ended]
        cell = self.store.claim(order, self.lease.worker, self.lease.takeable) if order else None
        if cell is None:
            self._quiet_until = time.monotonic() + self.poll
            return None
        self.tried.add(cell)
        self.lease.hold(cell)
        return self.cells[cell], Resume.from_events(self.store.events(cell))

    def done(self, cell: str, ended: bool) -> None:
        """A cell this worker ran stopped: ended (its lease stays as its record) or not (released
        so that another worker may take it at once)."""
        self.lease.drop(cell)
        self._quiet_until = 0.0
        if not ended:
            self.store.release(self.lease.worker, [cell])

    def exhausted(self) -> bool:
        """Whether nothing is left for this worker: every cell it has not tried has ended.
        Otherwise other live workers hold the rest, and this one waits to take over any
        whose worker dies."""
        open_cells = [c for c in self.cells if c not in self.tried and c not in self.ended]
        self.ended |= self.store.ended(open_cells)
        waiting = len(open_cells) - len(self.ended.intersection(open_cells))
        if waiting and self.on_wait is not None:
            self.on_wait(waiting)
            self.on_wait = None
        return waiting == 0
