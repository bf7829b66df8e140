"""A damaged store is named in a clear error, never read as results: corrupt pages, single
changed bytes, a truncated file, a file that is not a store, tampered rows, a write-ahead
log left by a killed writer. `status`, `report` and `study` exit 2 on each, without a traceback."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from storekit import copy_store, snapshot, tiny_study

from nasmix.cli import main
from nasmix.config import load_study
from nasmix.events import End
from nasmix.study.driver import run_study
from nasmix.study.store import Store, StoreError

PAGE = 4096  # SQLite's default page size, which nasmix keeps


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A store of two finished tiny cells, made once (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("finished")
    run_study(load_study(str(tiny_study(folder))), quiet=True)
    return folder / "tiny.db"


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)  # any exception but a NasmixError (a traceback) fails the test here
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_corrupted_page_is_refused_or_reads_unchanged(finished, tmp_path, capsys):
    """Each page in turn: overwritten whole, 16 bytes of it, or one byte. The store is refused with
    a message naming it, or (the bytes fell in free space) reads exactly as before: never other results."""
    good = snapshot(finished)
    pages = finished.stat().st_size // PAGE
    rng = random.Random(0)
    refused = unchanged = 0
    for page in range(pages):
        for size in (PAGE, 16, 1):
            bad = copy_store(finished, tmp_path / f"p{page}-{size}")
            offset = page * PAGE + rng.randrange(PAGE - size + 1)
            _overwrite(bad, offset, bytes(rng.randrange(256) for _ in range(size)))
            try:
                now = snapshot(bad)
            except StoreError as err:
                assert str(bad) in str(err)
                refused += 1
                code, out, err_text = _cli(["status", str(bad)], capsys)
                assert code == 2 and "finished" not in out and str(bad) in err_text
                continue
            assert now == good, f"page {page}, {size} bytes at {offset}: the store reads other results"
            unchanged += 1
            assert _cli(["status", str(bad)], capsys)[0] == 0
    assert refused > pages  # most faults hit live data (a 2-cell store has little free space)
    print(f"{pages} pages x 3 faults: {refused} refused, {unchanged} read unchanged")


def test_a_changed_digit_of_a_result_is_caught_by_the_row_checksum(finished, tmp_path, capsys):
    bad = copy_store(finished, tmp_path)
    with Store.open_readonly(bad) as store:
        end = store.events(kind="finished")[0]
    text = json.dumps(end.data).encode()
    raw = bad.read_bytes()
    number = f'"test_top1": {end.data["test_top1"]}'.encode()
    at = raw.index(number) + len(number) - 1  # the last digit of the accuracy, inside the row
    assert text  # the row is stored as the JSON of its data
    _overwrite(bad, at, b"9" if raw[at : at + 1] != b"9" else b"8")
    with pytest.raises(StoreError, match="does not match its checksum"):
        snapshot(bad)
    code, out, err = _cli(["status", str(bad)], capsys)
    assert code == 2 and "finished" not in out and "checksum" in err
    code, out, err = _cli(["report", str(bad), "-o", str(tmp_path / "report")], capsys)
    assert code == 2 and "checksum" in err and not (tmp_path / "report" / "report.md").exists()


@pytest.mark.parametrize("keep", [0.5, 200 / PAGE])
def test_a_truncated_store_is_refused(finished, tmp_path, capsys, keep):
    bad = copy_store(finished, tmp_path)
    size = bad.stat().st_size
    with open(bad, "r+b") as f:
        f.truncate(int(size * keep))
    with pytest.raises(StoreError) as err:
        snapshot(bad)
    assert str(bad) in str(err.value) and (
        "corrupt" in str(err.value) or "not a nasmix store" in str(err.value)
    )
    code, out, _ = _cli(["status", str(bad)], capsys)
    assert code == 2 and "finished" not in out


def test_a_file_that_is_not_a_store_is_refused_and_left_as_it_is(tmp_path, capsys):
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a study store\n" * 200)
    before = text.read_bytes()
    code, _, err = _cli(["status", str(text)], capsys)
    assert code == 2 and "is not a nasmix store" in err
    study = tiny_study(tmp_path, store=text)
    code, _, err = _cli(["study", str(study), "--quiet"], capsys)
    assert code == 2 and "is not a nasmix store" in err
    assert text.read_bytes() == before and not (tmp_path / "notes.db-wal").exists()
    other = tmp_path / "other.db"  # an SQLite database of something else
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    code, _, err = _cli(["status", str(other)], capsys)
    assert code == 2 and "not a nasmix store" in err
    (tmp_path / "folder.db").mkdir()
    code, _, err = _cli(["status", str(tmp_path / "folder.db")], capsys)
    assert code == 2 and "folder" in err


def _tamper(db: Path, sql: str, *args) -> None:
    """A change made behind nasmix's back (past the append-only trigger, which is put back)."""
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS events_append_only_update")
    con.execute(sql, args)
    con.execute(
        "CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    con.commit()
    con.close()


TAMPERED = [
    ("UPDATE events SET data = '{\"arch\": ' || 'x', crc = NULL WHERE key = 'end'", "not JSON"),
    ("UPDATE events SET data = '[1, 2]', crc = NULL WHERE key = 'end'", "list data"),
    (
        "UPDATE events SET kind = 'teleported', crc = NULL WHERE key = 'attempt/1'",
        "unknown event kind 'teleported'",
    ),
    ("UPDATE events SET kind = 'finished', crc = NULL WHERE key = 'arch_chosen'", "only an end event may"),
    (
        "UPDATE events SET data = json_set(data, '$.test_top1', 7.5), crc = NULL WHERE key = 'end'",
        "not an accuracy",
    ),
    ("UPDATE events SET data = json_set(data, '$.test_top1', 0.99) WHERE key = 'end'", "checksum"),
    (
        "UPDATE cells SET config = replace(config, '\"seed\": 0', '\"seed\": 5') WHERE seed = 0",
        "does not hash to its id",
    ),
    ("UPDATE cells SET seed = 9 WHERE seed = 0", "columns differ from its config"),
    ("UPDATE cells SET id = '../../etc' WHERE seed = 0", "not 12 hexadecimal digits"),
    (
        "INSERT INTO events (cell, key, kind, phase, time, data) "
        "VALUES ('feedfacecafe', 'x', 'attempt', 'setup', 0, '{\"device\": \"cpu\"}')",
        "which the store lacks",
    ),
]


@pytest.mark.parametrize("sql,message", TAMPERED, ids=[m for _, m in TAMPERED])
def test_tampered_rows_are_named_and_nothing_is_reported(finished, tmp_path, capsys, sql, message):
    bad = copy_store(finished, tmp_path)
    _tamper(bad, sql)
    with pytest.raises(StoreError, match="corrupt") as err:
        snapshot(bad)
    assert message in str(err.value) and str(bad) in str(err.value)
    code, out, err_text = _cli(["status", str(bad)], capsys)
    assert code == 2 and "finished" not in out and message in err_text


def test_study_on_a_damaged_store_exits_2_and_leaves_it_as_it_is(finished, tmp_path, capsys):
    bad = copy_store(finished, tmp_path)
    _tamper(bad, TAMPERED[0][0])
    before = bad.read_bytes()
    code, _, err = _cli(["study", str(tiny_study(tmp_path, store=bad)), "--quiet"], capsys)
    assert code == 2 and "not JSON" in err
    assert bad.read_bytes() == before
    broken = copy_store(finished, tmp_path / "pages")
    _overwrite(broken, 2 * PAGE, bytes(PAGE))  # a zeroed page of a table
    code, _, err = _cli(["study", str(tiny_study(tmp_path / "pages", store=broken)), "--quiet"], capsys)
    assert code == 2 and "corrupt" in err


def _crashed(finished: Path, folder: Path) -> Path:
    """A copy of the store as a writer killed after a commit leaves it: the file and its write-ahead
    log, with the last transactions (a new cell's events) only in the log."""
    store_path = copy_store(finished, folder / "live")
    with Store(store_path) as store:
        cell = store.cells()[0]
        spec = dataclasses.replace(cell.spec, seed=99)  # a third cell
        store.add_cells([spec])
        store.append(spec.id, "end", End(state="failed", reason="in the log only"))
        out = folder / "crashed"
        out.mkdir()
        for suffix in ("", "-wal"):  # as on disk before the writer's close would checkpoint the log
            shutil.copyfile(f"{store_path}{suffix}", out / f"tiny.db{suffix}")
    assert (out / "tiny.db-wal").stat().st_size > 0
    return out / "tiny.db"


def test_a_write_ahead_log_left_by_a_crash_is_read_and_recovered(finished, tmp_path, capsys):
    crashed = _crashed(finished, tmp_path)
    states = sorted(c[0] for c in snapshot(crashed).values())
    assert states == ["failed", "finished", "finished"]  # the log's transaction is read
    code, out, _ = _cli(["status", str(crashed)], capsys)
    assert code == 0 and "1 failed, 2 finished" in out
    with Store(crashed) as store:  # a writer recovers the log into the file
        assert len(store.cells()) == 3
    (Path(f"{crashed}-wal")).unlink(missing_ok=True)
    assert sorted(c[0] for c in snapshot(crashed).values()) == ["failed", "finished", "finished"]


OLD = Path(__file__).parent.parent / "fixtures" / "old_store" / "old.db"


def test_an_old_store_reads_as_it_is_and_gains_leases_and_checksums_when_written(tmp_path):
    """A store from before leases and checksums (tests/fixtures/old_store): read without a change,
    then opened for writing, it gains the claims table and the crc column; old rows keep no checksum."""
    old = copy_store(OLD, tmp_path)
    before = old.read_bytes()
    with Store.open_readonly(old) as store:
        states = sorted(c.state for c in store.cells())
        assert store.claims() == [] and store.last_seq() == 35
    assert old.read_bytes() == before
    with Store(old) as store:
        assert sorted(c.state for c in store.cells()) == states
        pending = next(c for c in store.cells() if c.state == "pending")
        assert store.claim([pending.id], "w/0/1/x", lambda other: False) == pending.id
        store.append(pending.id, "end", End(state="failed", reason="test"), worker="w/0/1/x")
    con = sqlite3.connect(old)
    crcs = con.execute("SELECT crc FROM events ORDER BY seq").fetchall()
    con.close()
    assert crcs[:35] == [(None,)] * 35 and isinstance(crcs[35][0], int)
    assert sorted(c[0] for c in snapshot(old).values()).count("failed") == states.count("failed") + 1
