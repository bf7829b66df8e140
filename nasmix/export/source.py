"""What an export reads from a study: one cell's record, and its trained weights.

Each read is one small function. `read_cell` takes the store's typed record of
the cell (nasmix.study.schema.CellRecord, with its state from `cell_state`)
and the typed events an export uses (ArchChosen, EvalEpoch, End);
`read_checkpoint` takes the model's state dict from the newest good
checkpoint, read as training reads it (nasmix.checkpoint: `weights_only=True`).

Example:
    >>> source = read_cell("runs/demo.db", "3f2a")    # doctest: +SKIP
    >>> source.cell.state, source.chosen.arch          # doctest: +SKIP
    ('finished', 'darts:normal=...')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nasmix.checkpoint import checkpoints, malformed
from nasmix.errors import CheckpointError, ConfigError, NasmixError
from nasmix.events import ArchChosen, End, EvalEpoch
from nasmix.safeload import UnsafeContent, torch_load
from nasmix.study.schema import CellRecord
from nasmix.study.store import Store


@dataclass(frozen=True)
class CellSource:
    """One cell of a store, as an export reads it.

    Attributes:
        cell: the store's record of the cell (ids, settings, state, events);
            `cell.spec` is its typed CellSpec.
        chosen: its ArchChosen event (None before the search ends).
        end: its End event (None before the cell ends).
        epochs: its EvalEpoch events, in order.
        checkpoints: the folder of its evaluation checkpoints.
        store: the store's path.
    """

    cell: CellRecord
    chosen: ArchChosen | None
    end: End | None
    epochs: tuple[EvalEpoch, ...]
    checkpoints: Path
    store: Path


def read_cell(db: str | os.PathLike, cell: str) -> CellSource:
    """One cell of a store, by id or by an unambiguous id prefix.

    Args:
        db: the study's store.
        cell: a cell id, or its first characters.

    Returns:
        The cell's record with the events an export uses.

    Raises:
        NasmixError: no such store, no such cell, a prefix that several cells share,
            or event data this nasmix cannot read.
    """
    path = Path(db)
    if not path.is_file():
        raise NasmixError(
            f"store {path} does not exist" if not path.exists() else f"store {path} is not a file"
        )
    cell = cell.strip()
    if not cell:
        raise ConfigError("give a cell id (or its first characters); `nasmix status DB` lists them")
    with Store.open_readonly(path) as store:  # also on a read-only file system; a corrupt store is refused
        records = store.cells()
        folder = store.cell_files
    matches = [r for r in records if r.id == cell] or [r for r in records if r.id.startswith(cell)]
    if len(matches) != 1:
        shown = matches or records
        listed = "; ".join(f"{r.id} ({r.label})" for r in shown[:8])
        more = "" if len(shown) <= 8 else f" and {len(shown) - 8} more"
        if matches:
            raise NasmixError(f"cell prefix {cell!r} matches {len(matches)} cells of {path}: {listed}{more}")
        raise NasmixError(f"no cell {cell!r} in {path}; its cells: {listed or '(none)'}{more}")
    record = matches[0]
    ends = record.events_of(End)
    return CellSource(
        record,
        record.first(ArchChosen),
        ends[0] if ends else None,
        tuple(record.events_of(EvalEpoch)),
        folder(record.id) / "eval",
        path,
    )


@dataclass(frozen=True)
class Checkpoint:
    """A network's weights from a training checkpoint.

    Attributes:
        path: the checkpoint file.
        epoch: the epoch it was written after.
        state: the network's state dict (CPU tensors).
    """

    path: Path
    epoch: int
    state: dict


def read_checkpoint(folder: str | os.PathLike) -> Checkpoint | None:
    """The newest good training checkpoint (`epoch-NNNN.pt`) of a folder; None when it has none.

    Read as training resumes (nasmix.checkpoint): with `weights_only=True`, so no code
    runs from the file; a torn or malformed file is skipped for the one before.

    Raises:
        CheckpointError: the newest readable checkpoint names code (it was not run).
        NasmixError: checkpoints exist but none can be read.
    """
    problems = []
    for epoch, path in checkpoints(Path(folder)):
        try:
            saved = torch_load(path)
        except UnsafeContent as err:
            raise CheckpointError(
                f"checkpoint {path} is not plain data (it names {', '.join(err.names)}); nasmix reads "
                "checkpoints with weights_only=True and runs no code from them: it was not exported"
            ) from None
        except Exception as err:  # torn or foreign: try the one before
            problems.append(f"{path.name}: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:120]}")
            continue
        problem = malformed(saved, epoch)
        if problem:
            problems.append(f"{path.name}: {problem}")
            continue
        return Checkpoint(path, epoch, dict(saved["model"]))
    if problems:
        raise NasmixError(f"no checkpoint in {folder} can be read: {'; '.join(problems[:3])}")
    return None
