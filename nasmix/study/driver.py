"""The study driver: expands the grid, skips finished cells, claims and runs the
rest on a backend, and is the store's one writer for the cells it runs.

Several drivers (`nasmix study` processes, on one machine) may share one store:
each claims one cell at a time with a lease that a heartbeat keeps alive
(nasmix.study.lease), so together they run every cell once, and a cell whose
driver died is taken over by another.

Example:
    >>> from nasmix.config import load_study
    >>> summary = run_study(load_study("examples/thesis-mini.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from nasmix.config import StudyConfig, check_ray_address, pick_device
from nasmix.console import console, progress_bar
from nasmix.data import load_dataset
from nasmix.errors import ConfigError
from nasmix.events import END_STATES, Attempt, End, Event
from nasmix.study.backends import make_backend
from nasmix.study.grid import expand
from nasmix.study.lease import CellQueue, Lease
from nasmix.study.schema import CellSpec
from nasmix.study.store import LeaseLost, Store, StoreError

# File systems on which SQLite's locks and WAL shared memory do not hold across machines.
NETWORK_FILESYSTEMS = (
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "afs",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "beegfs",
    "fuse.sshfs",
    "fuse.glusterfs",
    "fuse.s3fs",
    "fuse.gcsfuse",
    "davfs",
)


@dataclass
class StudySummary:
    """What a run of a study did.

    Attributes:
        total: cells in the grid.
        skipped: cells that had ended before this run.
        states: cell id -> how it stopped in this run (an end state, "interrupted", "lost").
        dropped: combinations the grid skipped, with the reason.
        others: cells that other drivers on the same store ended during this run.
        worker: this driver's worker id (in its cells' attempt events and leases).
    """

    total: int
    skipped: int
    states: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    others: int = 0
    worker: str = ""


def filesystem(path: str | Path) -> str | None:
    """The type of the file system a path lies on (Linux: /proc/self/mounts), or None."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return None
    target = str(Path(path).resolve())
    inside = [
        m for m in mounts if len(m) == 2 and (target == m[0] or target.startswith(m[0].rstrip("/") + "/"))
    ]
    return max(inside, key=lambda m: len(m[0]))[1] if inside else None


def run_study(
    cfg: StudyConfig,
    data_path: str | None = None,
    backend: str = "inprocess",
    workers: int | None = None,
    address: str | None = None,
    quiet: bool = False,
    lease_timeout: float | None = None,
) -> StudySummary:
    """Run every cell of a study that has not ended yet.

    Args:
        cfg: the validated study.
        data_path: the dataset location (default: the study's data.path, then $NASMIX_DATA).
        backend: inprocess, local or ray.
        workers: local worker processes (default: one per GPU).
        address: a Ray cluster's address (default: the study's ray_address; None starts a
            local Ray instance bound to 127.0.0.1).
        quiet: no progress bars.
        lease_timeout: seconds without a heartbeat after which another driver on the same
            store takes a cell over (default nasmix.study.lease.DEFAULT_TIMEOUT).

    Returns:
        StudySummary with the end state of each cell run now.
    """
    cells, dropped = expand(cfg)
    address = check_ray_address(address)
    if address is not None and backend != "ray":
        raise ConfigError(f"a Ray address is for --backend ray, not {backend}")
    runner = make_backend(backend, workers, address if address is not None else cfg.ray_address)
    if backend != "ray":  # a device this machine lacks stops here too (Ray nodes may differ from this one)
        pick_device(cfg.device)
    for dataset in cfg.datasets:  # a missing or corrupt dataset stops here, before the store is touched
        load_dataset(dataset, data_path or cfg.data.path)
    lease = Lease(cfg.store, lease_timeout)  # a bad timeout stops here, before the store is touched
    store = Store(cfg.store)
    try:
        fs = filesystem(store.path)
        if fs in NETWORK_FILESYSTEMS:
            console.print(
                f"[yellow]warning: store {store.path} is on a network file system ({fs}): SQLite's locks "
                "and write-ahead log hold only between processes of one machine; run the drivers of this "
                "store on one machine (docs/studies.md)[/yellow]"
            )
        # Every row is read and checked once before anything is written (a damaged store stops the
        # study here, named); a cell has ended only by a readable end event.
        states = {r.id: r.state for r in store.cells()}
        store.add_cells(cells)
        todo = [c for c in cells if states.get(c.id) not in END_STATES]
        summary = StudySummary(len(cells), len(cells) - len(todo), dropped=dropped, worker=lease.worker)
        for line in dropped:
            console.print(f"[dim]skipped combination: {line}[/dim]")
        if summary.skipped:
            console.print(f"{summary.skipped} of {len(cells)} cells already ended; running {len(todo)}")
        labels = {c.id: c.label for c in cells}

        def waiting(n: int) -> None:
            console.print(
                f"waiting for {n} cells that other drivers of this store run "
                f"(taken over if one stops its heartbeat for {lease.timeout:g}s)"
            )

        queue = CellQueue(store, lease, todo, on_wait=waiting)
        lost: set[str] = set()
        ends: dict[str, End] = {}  # each cell's End as this driver wrote it, for the finished line
        with lease, progress_bar(quiet) as bar:
            study_task = bar.add_task("cells", total=len(cells), completed=summary.skipped)
            phase_task = bar.add_task("phase", total=None)

            def write(cell_id: str, key: str, event: Event) -> None:
                if cell_id in lost or cell_id in lease.lost:
                    raise LeaseLost(f"the lease of cell {cell_id} was lost")
                if isinstance(event, Attempt):  # who ran each attempt
                    event = dataclasses.replace(event, extra={**event.extra, "worker": lease.worker})
                try:
                    store.append(cell_id, key, event, worker=lease.worker)
                    if isinstance(event, End):
                        ends[cell_id] = event
                except LeaseLost as err:
                    lost.add(cell_id)
                    console.print(f"[yellow]{err}; another driver runs it now[/yellow]")
                    raise

            def progress(cell_id: str, phase: str, done: int, total: int) -> None:
                bar.update(phase_task, description=f"{phase} {labels[cell_id]}", completed=done, total=total)

            def finished(cell: CellSpec, state: str) -> None:
                if cell.id in lost or cell.id in lease.lost:  # its end (if any) was another driver's to write
                    state = "lost"
                queue.done(cell.id, state in END_STATES)
                summary.states[cell.id] = state
                if state not in END_STATES:
                    console.print(f"{state:>10}  {cell.label}")
                    return
                bar.advance(study_task)
                end = ends.get(cell.id) or store.record(cell.id).first(End)
                detail = "" if end is None else end.reason or ""
                if end is not None and end.test_top1 is not None:
                    detail = f"top-1 {100 * end.test_top1:.2f}%"
                console.print(f"{state:>10}  {cell.label}  {detail}")

            runner.run(queue, store.files, data_path or cfg.data.path, write, progress, finished)
        ours = {c for c, s in summary.states.items() if s in END_STATES}
        summary.others = len(store.ended(c.id for c in todo) - ours)
        return summary
    finally:
        lease.stop()
        with contextlib.suppress(StoreError):  # else its leases go stale: another driver takes them later
            store.release(lease.worker)  # cells left unfinished: another driver may take them at once
        store.close()
