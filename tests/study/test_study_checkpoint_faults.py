"""A study under checkpoint faults: a full disk stops it with exit code 2 and leaves the cell resumable;
a garbage checkpoint never fails a cell for good. Both end with the uninterrupted study's numbers."""

from __future__ import annotations

import errno
import warnings
from pathlib import Path

import pytest
from faults import Crash, Fault

from nasmix.checkpoint import CheckpointWarning
from nasmix.cli import main
from nasmix.config import load_study
from nasmix.study.grid import expand
from nasmix.study.store import Store

STUDY = """
[study]
name = "{name}"
store = "{store}"
spaces = ["chain"]
strategies = ["random"]
estimators = ["train"]
datasets = ["synthetic"]
seeds = [0]
device = "cpu"

[search]
candidates = 2
size = "tiny"
batch_size = 50

[eval]
preset = "fast"
size = "tiny"
epochs = 2
batch_size = 50
checkpoint_every = 1
eval_every = 1

[estimator.train]
epochs = 1
batch_size = 50
"""


def _write(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(STUDY.format(name=name, store=tmp_path / f"{name}.db"))
    return path


def _outcome(db: Path) -> tuple:
    """(end kind, arch, final top-1, [(epoch, test top-1)]) of the one cell; checks nothing is doubled."""
    store = Store(db, readonly=True)
    try:
        (cell,) = store.cells()
        events = store.events(cell.id)
        keys = [e.key for e in events]
        assert len(keys) == len(set(keys)), "an event was written twice"
        assert not [e for e in events if e.kind == "failed"]
        end = next(e for e in events if e.key == "end")
        epochs = [(e.data["epoch"], e.data["test_top1"]) for e in events if e.kind == "eval_epoch"]
        return end.kind, end.data["arch"], end.data["test_top1"], epochs
    finally:
        store.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study-full")
    assert main(["study", str(_write(folder, "full")), "--quiet"]) == 0
    return _outcome(folder / "full.db")


def test_full_disk_while_checkpointing_exits_2_and_the_cell_resumes(
    tmp_path, monkeypatch, capsys, uninterrupted
):
    path = _write(tmp_path, "disk")
    fault = Fault(at_byte=1000, error=errno.ENOSPC, match="epoch-0002").install(monkeypatch)
    assert main(["study", str(path), "--quiet"]) == 2
    assert fault.injected == 1
    err = capsys.readouterr().err
    assert "disk full while writing checkpoint" in err and "Traceback" not in err
    store = Store(tmp_path / "disk.db", readonly=True)
    (cell,) = store.cells()
    assert store.state(cell.id) == "running" and not store.events(kind="failed")
    store.close()
    monkeypatch.undo()
    assert main(["study", str(path), "--quiet"]) == 0
    assert _outcome(tmp_path / "disk.db") == uninterrupted


def test_a_garbage_checkpoint_never_fails_the_cell(tmp_path, uninterrupted):
    from nasmix.study.run import Resume, run_cell

    cfg = load_study(_write(tmp_path, "garbage"))
    cell = expand(cfg)[0][0]
    store = Store(cfg.store)
    store.add_cells([cell])

    def killed_at_epoch_2(key, event):
        if key == "eval/epoch/2":  # its checkpoint is on disk, its event never reaches the store
            raise Crash
        store.append(cell.id, key, event)

    with pytest.raises(Crash):
        run_cell(cell, store.files, killed_at_epoch_2, Resume.from_events(store.events(cell.id)))
    newest = store.files / cell.id / "eval" / "epoch-0002.pt"
    newest.write_bytes(b"\x80\x02 not a checkpoint")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        state = run_cell(
            cell, store.files, lambda *e: store.append(cell.id, *e), Resume.from_events(store.events(cell.id))
        )
    store.close()
    assert state == "finished"
    assert any(issubclass(w.category, CheckpointWarning) for w in seen)
    assert _outcome(cfg.store) == uninterrupted
