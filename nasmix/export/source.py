"""What an export reads from a study: one cell's record, and its trained weights.

Each read is one small function, because both formats are moving: the store
is becoming typed records (`read_cell` uses today's `Store` API), and the
checkpoints are becoming weights-only files (`read_checkpoint` loads them with
`weights_only=True` and takes the model's state dict).

Example:
    >>> record = read_cell("runs/demo.db", "3f2a")   # doctest: +SKIP
    >>> record.state, record.chosen["arch"]           # doctest: +SKIP
    ('finished', 'darts:normal=...')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from nasmix.errors import ConfigError, NasmixError


@dataclass(frozen=True)
class CellRecord:
    """One cell of a store, as an export needs it.

    Attributes:
        id, label, study, space, strategy, estimator, dataset, seed: the cell.
        config: the cell's canonical JSON (nasmix.study.grid.Cell.to_json).
        settings: its phase settings and module options.
        state: pending, running, finished, failed or projected.
        chosen: the arch_chosen event's data (None before the search ends).
        end: the end event's data (None before the cell ends).
        epochs: the eval_epoch events' data, in order.
        checkpoints: the folder of its evaluation checkpoints.
        store: the store's path.
    """

    id: str
    label: str
    study: str
    space: str
    strategy: str
    estimator: str
    dataset: str
    seed: int
    config: str
    settings: dict
    state: str
    chosen: dict | None
    end: dict | None
    epochs: tuple[dict, ...]
    checkpoints: Path
    store: Path


def read_cell(db: str | os.PathLike, cell: str) -> CellRecord:
    """One cell of a store, by id or by an unambiguous id prefix.

    Raises:
        NasmixError: no such store, no such cell, or a prefix that several cells share.
    """
    import json

    from nasmix.study.store import Store

    path = Path(db)
    if not path.is_file():
        raise NasmixError(
            f"store {path} does not exist" if not path.exists() else f"store {path} is not a file"
        )
    cell = cell.strip()
    if not cell:
        raise ConfigError("give a cell id (or its first characters); `nasmix status DB` lists them")
    store = Store(path, readonly=True)
    try:
        rows = store.cells()
        matches = [r for r in rows if r.id == cell] or [r for r in rows if r.id.startswith(cell)]
        if len(matches) != 1:
            listed = "; ".join(f"{r.id} ({r.label})" for r in (matches or rows)[:8])
            more = "" if len(matches or rows) <= 8 else f" and {len(matches or rows) - 8} more"
            if matches:
                raise NasmixError(
                    f"cell prefix {cell!r} matches {len(matches)} cells of {path}: {listed}{more}"
                )
            raise NasmixError(f"no cell {cell!r} in {path}; its cells: {listed or '(none)'}{more}")
        row = matches[0]
        events = store.events(row.id)
        state = store.state(row.id)
        files = store.files / row.id / "eval"
    finally:
        store.close()
    chosen = next((e.data for e in events if e.key == "arch_chosen"), None)
    end = next((e.data for e in events if e.key == "end"), None)
    epochs = tuple(e.data for e in events if e.kind == "eval_epoch")
    return CellRecord(
        row.id,
        row.label,
        row.study,
        row.space,
        row.strategy,
        row.estimator,
        row.dataset,
        row.seed,
        row.config,
        json.loads(row.config)["settings"],
        state,
        chosen,
        end,
        epochs,
        files,
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
    """The newest readable checkpoint (`epoch-NNNN.pt`) of a folder; None when it has none.

    Loaded with `weights_only=True` (no code runs from the file). A torn file (a
    killed write) is skipped for the one before it.

    Raises:
        NasmixError: checkpoints exist but none can be read.
    """
    paths = sorted(Path(folder).glob("epoch-*.pt"), reverse=True)
    problems = []
    for path in paths:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torn, or not a checkpoint: try the one before
            problems.append(
                f"{path.name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            )
            continue
        model = saved.get("model") if isinstance(saved, dict) else None
        if not isinstance(model, dict):
            problems.append(f"{path.name}: no 'model' state dict")
            continue
        epoch = saved.get("epoch")
        epoch = int(epoch) if isinstance(epoch, int) else int(path.stem.split("-")[1])
        return Checkpoint(path, epoch, dict(model))
    if problems:
        raise NasmixError(
            f"no checkpoint in {folder} can be read with weights_only=True: {'; '.join(problems[:3])}"
        )
    return None
