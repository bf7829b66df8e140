"""The study driver: expands the grid, skips finished cells, runs the rest on a
backend, and is the store's one writer.

Example:
    >>> from nasmix.config import load_study
    >>> summary = run_study(load_study("examples/thesis-mini.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasmix.config import StudyConfig, pick_device
from nasmix.console import console, progress_bar
from nasmix.data import load_dataset
from nasmix.events import End, Event
from nasmix.study.backends import make_backend
from nasmix.study.grid import expand
from nasmix.study.run import Resume
from nasmix.study.schema import CellSpec
from nasmix.study.store import Store


@dataclass
class StudySummary:
    """What a run of a study did."""

    total: int
    skipped: int
    states: dict = field(default_factory=dict)  # cell id -> end state of this run
    dropped: list = field(default_factory=list)


def run_study(cfg: StudyConfig, data_path: str | None = None, backend: str = "inprocess", workers: int | None = None,
              address: str | None = None, quiet: bool = False) -> StudySummary:  # fmt: skip
    """Run every cell of a study that has not ended yet.

    Args:
        cfg: the validated study.
        data_path: the dataset location (default: the study's data.path, then $NASMIX_DATA).
        backend: inprocess, local or ray.
        workers: local worker processes (default: one per GPU).
        address: Ray cluster address (None: a local Ray instance).
        quiet: no progress bars.

    Returns:
        StudySummary with the end state of each cell run now.
    """
    cells, dropped = expand(cfg)
    runner = make_backend(backend, workers, address)
    if backend != "ray":  # a device this machine lacks stops here too (Ray nodes may differ from this one)
        pick_device(cfg.device)
    for dataset in cfg.datasets:  # a missing or corrupt dataset stops here, before the store is touched
        load_dataset(dataset, data_path or cfg.data.path)
    store = Store(cfg.store)
    try:
        store.add_cells(cells)
        todo = store.pending(cells)
        summary = StudySummary(len(cells), len(cells) - len(todo), dropped=dropped)
        for line in dropped:
            console.print(f"[dim]skipped combination: {line}[/dim]")
        if summary.skipped:
            console.print(f"{summary.skipped} of {len(cells)} cells already ended; running {len(todo)}")
        resumes = {c.id: Resume.from_events(store.events(c.id)) for c in todo}
        labels = {c.id: c.label for c in cells}
        with progress_bar(quiet) as bar:
            study_task = bar.add_task("cells", total=len(cells), completed=summary.skipped)
            phase_task = bar.add_task("phase", total=None)

            def write(cell_id: str, key: str, event: Event) -> None:
                store.append(cell_id, key, event)

            def progress(cell_id: str, phase: str, done: int, total: int) -> None:
                bar.update(phase_task, description=f"{phase} {labels[cell_id]}", completed=done, total=total)

            def finished(cell: CellSpec, state: str) -> None:
                summary.states[cell.id] = state
                bar.advance(study_task)
                end = store.record(cell.id).first(End)
                detail = "" if end is None else end.reason or ""
                if end is not None and end.test_top1 is not None:
                    detail = f"top-1 {100 * end.test_top1:.2f}%"
                console.print(f"{state:>10}  {cell.label}  {detail}")

            runner.run(todo, resumes, store.files, data_path or cfg.data.path, write, progress, finished)
        return summary
    finally:
        store.close()
