"""Reading a store without writing it: a finished store on a read-only file system (status,
report, export), one a killed writer left with its write-ahead log, one a live study is
writing (a dashboard's polling), and store paths with URI characters in their names."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from storekit import readonly, readonly_mount_works, snapshot, tiny_study, without_root

import nasmix
from nasmix.cli import main
from nasmix.config import load_study
from nasmix.events import Attempt, End
from nasmix.export.source import read_cell
from nasmix.study.driver import run_study
from nasmix.study.schema import CellSpec
from nasmix.study.store import Store


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A store of two finished tiny cells with their checkpoints, made once."""
    folder = tmp_path_factory.mktemp("finished")
    run_study(load_study(str(tiny_study(folder))), quiet=True)
    return folder / "tiny.db"


@pytest.fixture
def share():
    """A folder that `nobody` can read (pytest's own tmp folders are root's alone); removed after."""
    folder = Path(tempfile.mkdtemp(prefix="nasmix-share-"))
    folder.chmod(0o755)
    yield folder
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(folder)


def _archive(finished: Path, share: Path, crashed: bool = False) -> Path:
    """The store (and its checkpoints) copied to a read-only folder; `crashed`: with a write-ahead
    log that holds a third cell's events, as a writer killed before it closed leaves it."""
    folder = share / ("crashed" if crashed else "archive")
    folder.mkdir()
    shutil.copyfile(finished, folder / "tiny.db")
    shutil.copytree(f"{finished}.files", folder / "tiny.db.files")
    if crashed:
        live = share / "live"
        live.mkdir()
        shutil.copyfile(finished, live / "tiny.db")
        with Store(live / "tiny.db") as store:
            spec = dataclasses.replace(store.cells()[0].spec, seed=99)
            store.add_cells([spec])
            store.append(spec.id, "attempt/1", Attempt(device="cpu"))
            store.append(spec.id, "end", End(state="failed", reason="in the log only"))
            shutil.copyfile(live / "tiny.db", folder / "tiny.db")
            shutil.copyfile(live / "tiny.db-wal", folder / "tiny.db-wal")
    for sub in (folder / "tiny.db.files").rglob("*"):
        sub.chmod(0o555 if sub.is_dir() else 0o444)
    (folder / "tiny.db.files").chmod(0o555)
    readonly(folder)
    return folder / "tiny.db"


def test_a_finished_store_in_a_read_only_folder_is_read_by_status_and_export(finished, share, capsys):
    """Read as `nobody` when the tests run as root (Python's own files may be root's alone here:
    nothing is imported for the first time inside; the report is drawn in the read-only mount test)."""
    db = _archive(finished, share)
    listing = sorted(os.listdir(db.parent))
    with without_root():
        with pytest.raises(OSError):  # the folder is read-only indeed
            (db.parent / "probe").write_text("x")
        with Store.open_readonly(db) as store:
            assert store.how == "immutable" and len(store.cells()) == 2
        assert main(["status", str(db)]) == 0
        cell = read_cell(db, snapshot(db).popitem()[0][:6])
    assert "2 finished" in capsys.readouterr().out
    assert cell.end.state == "finished" and cell.checkpoints.is_dir()
    assert sorted(os.listdir(db.parent)) == listing  # nothing was added beside the store


def test_a_write_ahead_log_left_in_a_read_only_folder_is_read_from_a_private_copy(finished, share, capsys):
    db = _archive(finished, share, crashed=True)
    listing = sorted(os.listdir(db.parent))
    with without_root():
        with Store.open_readonly(db) as store:
            assert store.how == "copy"
            states = sorted(c.state for c in store.cells())
            copy = Path(store._copy.name)
        assert main(["status", str(db)]) == 0
    assert states == ["failed", "finished", "finished"]  # an immutable open would miss the third cell
    assert "1 failed, 2 finished" in capsys.readouterr().out
    assert not copy.exists() and sorted(os.listdir(db.parent)) == listing


@pytest.mark.skipif(not readonly_mount_works(), reason="needs `unshare -m` and a read-only bind mount")
def test_status_and_report_on_a_read_only_file_system(finished, share, tmp_path):
    """A real read-only mount (an archived results share), in a private mount namespace, read by root."""
    clean, crashed = _archive(finished, share), _archive(finished, share, crashed=True)
    mount = share / "mnt"
    mount.mkdir()
    script = (
        "import sys; from nasmix.cli import main; from nasmix.study.store import Store\n"
        f"for db in ('{mount}/archive/tiny.db', '{mount}/crashed/tiny.db'):\n"
        "    with Store.open_readonly(db) as s: print(s.how, len(s.cells()))\n"
        "    assert main(['status', db]) == 0\n"
        f"assert main(['report', '{mount}/archive/tiny.db', '-o', '{tmp_path}/report']) == 0\n"
    )
    shell = (
        f"mount --bind {share} {mount} && mount -o remount,bind,ro {mount} && "
        f'! touch {mount}/archive/probe 2>/dev/null && {sys.executable} -c "$0"'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(nasmix.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", shell, script], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "immutable 2" in run.stdout and "copy 3" in run.stdout
    assert "2 finished" in run.stdout and "1 failed, 2 finished" in run.stdout
    assert "| finished |" in (tmp_path / "report" / "report.md").read_text()
    assert clean.exists() and crashed.exists()


def test_a_reader_polls_the_events_a_live_study_appends(tmp_path):
    spec = CellSpec("chain", "random", "zero_cost", "synthetic", seed=0)
    with Store(tmp_path / "live.db") as writer:
        writer.add_cells([spec])
        writer.append(spec.id, "attempt/1", Attempt(device="cpu"))
        with Store.open_readonly(tmp_path / "live.db") as reader:
            assert reader.how == "read-only"
            seen = reader.last_seq()
            assert [e.key for e in reader.events_since(0)] == ["attempt/1"] and seen == 1
            writer.append(spec.id, "end", End(state="failed", reason="stopped"))
            new = reader.events_since(seen)
            assert [(e.key, e.kind) for e in new] == [("end", "failed")] and reader.last_seq() == new[-1].seq
            assert reader.events_since(new[-1].seq) == [] and reader.claims() == []
            assert reader.cells()[0].state == "failed"


@pytest.mark.parametrize(
    "name,twin", [("50%41.db", "50A.db"), ("trial #2.db", "trial "), ("what?mode=ro.db", "what")]
)
def test_store_paths_are_file_names_not_uris(tmp_path, capsys, name, twin):
    """SQLite reads `file:` URIs: %41 is 'A', # starts a fragment, ? a query. A store's name is a name."""
    study = tiny_study(tmp_path, seeds=1, epochs=1, store=tmp_path / name)
    assert main(["study", str(study), "--quiet"]) == 0
    assert (tmp_path / name).is_file() and not (tmp_path / twin).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(twin[:2])) == sorted(
        [name, f"{name}.files"]
    )
    capsys.readouterr()
    assert main(["status", str(tmp_path / name)]) == 0
    assert "1 finished" in capsys.readouterr().out and not (tmp_path / twin).exists()
    (tmp_path / twin).write_bytes(
        b""
    )  # a file of the name SQLite would have opened: status still reads the store
    assert main(["status", str(tmp_path / name)]) == 0 and "1 finished" in capsys.readouterr().out
