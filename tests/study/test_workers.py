"""Many drivers on one store: atomic claims, leases kept by a heartbeat, a dead driver's cell
taken over (at once on this machine, after the timeout from another), fenced writes, and two
real `nasmix study` processes that together run every cell exactly once."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from storekit import nasmix_cmd, tiny_study

import nasmix.study.driver as driver
import nasmix.study.run as run_mod
from nasmix.config import load_study
from nasmix.events import Attempt, End, EvalEpoch
from nasmix.study.driver import run_study
from nasmix.study.grid import expand
from nasmix.study.lease import Lease, known_dead, worker_id
from nasmix.study.schema import CellSpec
from nasmix.study.store import LeaseLost, Store, StoreError

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cells(n: int) -> list[CellSpec]:
    return [CellSpec("chain", "random", "zero_cost", "synthetic", seed=s, study="w") for s in range(n)]


def _set_heartbeat(db: Path, cell: str, when: float) -> None:
    con = sqlite3.connect(db)
    con.execute("UPDATE claims SET heartbeat = ? WHERE cell = ?", (when, cell))
    con.commit()
    con.close()


def test_claims_are_atomic_across_connections(tmp_path):
    """Eight threads, each with its own connection, claim and end cells until none is left."""
    db, cells = tmp_path / "s.db", _cells(40)
    with Store(db) as store:
        store.add_cells(cells)
    ids = [c.id for c in cells]
    claimed = collections.defaultdict(list)
    start = threading.Barrier(8)

    def work(i: int) -> None:
        me = f"thread/{i}"
        with Store(db, check=False) as store:
            start.wait()
            while (cell := store.claim(ids, me, lambda other: False)) is not None:
                claimed[cell].append(me)
                time.sleep(0.002)  # a cell takes time: without it one thread may end all before the rest wake
                store.append(cell, "end", End(state="failed", reason="test"), worker=me)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids) and all(len(w) == 1 for w in claimed.values())
    assert len({w[0] for w in claimed.values()}) > 1  # the threads did share the work


def test_a_claim_is_taken_over_only_when_stale_or_its_process_is_gone(tmp_path):
    db, (cell,) = tmp_path / "s.db", [c.id for c in _cells(1)]
    store = Store(db)
    store.add_cells(_cells(1))
    lease = Lease(db, timeout=60)
    remote = "elsewhere/0badc0de/4242/cafe0000"  # another machine: only its heartbeat tells
    assert store.claim([cell], remote, lease.takeable) == cell
    assert store.claim([cell], lease.worker, lease.takeable) is None  # fresh: left to it
    _set_heartbeat(db, cell, time.time() - 61)
    assert store.claim([cell], lease.worker, lease.takeable) == cell  # stale: taken over
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    dead, alive = worker_id().rsplit("/", 2)[0] + f"/{gone}/0", worker_id()
    assert known_dead(dead) and not known_dead(alive) and not known_dead(remote)
    assert store.claim([cell], dead, lambda other: True) == cell
    assert store.claim([cell], lease.worker, lease.takeable) == cell  # its process is gone: at once
    assert store.claim([cell], alive, lambda other: True) == cell
    assert store.claim([cell], lease.worker, lease.takeable) is None  # a live process of this machine
    store.append(cell, "end", End(state="failed", reason="test"))
    assert store.claim([cell], lease.worker, lambda other: True) is None  # an ended cell is never claimed
    store.close()


def test_a_driver_that_lost_its_lease_cannot_write_and_its_heartbeat_sees_it(tmp_path):
    db, cells = tmp_path / "s.db", _cells(1)
    cell = cells[0].id
    with Store(db) as store:
        store.add_cells(cells)
        lease = Lease(db, timeout=0.6)  # a heartbeat every 0.1 s
        assert store.claim([cell], lease.worker, lease.takeable) == cell
        first = store.claims()[0]
        lease.hold(cell)
        with lease:
            time.sleep(0.35)
            renewed = store.claims()[0]
            assert renewed.worker == lease.worker and renewed.heartbeat > first.heartbeat
            assert store.claim([cell], "thief/0/1/x", lambda other: True) == cell  # as if lease had stalled
            time.sleep(0.35)
            assert lease.lost == {cell}
        with pytest.raises(LeaseLost, match="no longer holds"):
            store.append(cell, "attempt/1", Attempt(device="cpu"), worker=lease.worker)
        assert store.events(cell) == []
        assert store.append(cell, "attempt/1", Attempt(device="cpu"), worker="thief/0/1/x")
        with pytest.raises(StoreError, match="read-only"):
            Store.open_readonly(db).claim([cell], "x", lambda other: True)


def _wait_for(db: Path, test, timeout: float = 240.0):
    """Poll a store another process writes until `test(store)` is true; returns its value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.exists():
            try:
                with Store.open_readonly(db, check=False) as store:
                    value = test(store)
                if value:
                    return value
            except StoreError:  # being created
                pass
        time.sleep(0.02)
    raise AssertionError("the other process never got there")


def test_two_drivers_on_one_store_run_every_cell_once(tmp_path):
    study = tiny_study(tmp_path, seeds=6, epochs=2)
    db = tmp_path / "tiny.db"
    other = subprocess.Popen(
        nasmix_cmd("study", str(study), "--quiet"),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(db, lambda store: store.claims())  # it has claimed its first cell
    summary = run_study(load_study(str(study)), quiet=True)
    out, _ = other.communicate(timeout=300)
    assert other.returncode == 0, out
    with Store.open_readonly(db) as store:
        records = store.cells()
        claims = {c.cell: c.worker for c in store.claims()}
    assert len(records) == 6 and all(r.state == "finished" for r in records)
    workers = collections.Counter()
    for r in records:
        (attempt,) = r.events_of(Attempt)  # every cell ran exactly once
        assert [e.epoch for e in r.events_of(EvalEpoch)] == [1, 2]
        assert claims[r.id] == attempt.extra["worker"]
        workers[attempt.extra["worker"]] += 1
    assert len(workers) == 2 and workers[summary.worker] == len(summary.states)  # both drivers worked
    # The other driver's cells: ended before this one looked (skipped; how many depends on how fast
    # it ran meanwhile) or while this one ran (others).
    theirs = workers.total() - workers[summary.worker]
    assert summary.skipped + summary.others == 6 - len(summary.states) == theirs


def test_a_killed_drivers_cell_is_taken_over_and_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    study = tiny_study(tmp_path, seeds=1, epochs=8)
    db = tmp_path / "tiny.db"
    other = subprocess.Popen(
        nasmix_cmd("study", str(study), "--quiet"),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(db, lambda store: any(e.data["epoch"] >= 2 for e in store.events(kind="eval_epoch")))
    os.kill(other.pid, signal.SIGKILL)
    other.wait()
    with Store.open_readonly(db) as store:
        (claim,) = store.claims()
        stored = [e.data["epoch"] for e in store.events(kind="eval_epoch")]
    assert known_dead(claim.worker) and time.time() - claim.heartbeat < 60  # its lease is not stale yet
    trained = []
    real_train = run_mod.train

    def train(*args, callback, **kwargs):
        def record(event):
            if event["event"] == "epoch":
                trained.append(event["epoch"])
            callback(event)

        return real_train(*args, callback=record, **kwargs)

    monkeypatch.setattr(run_mod, "train", train)
    summary = run_study(load_study(str(study)), quiet=True)  # the default 60 s timeout: no wait
    assert list(summary.states.values()) == ["finished"]
    with Store.open_readonly(db) as store:
        (record,) = store.cells()
        (claim,) = store.claims()
    attempts = record.events_of(Attempt)
    assert len(attempts) == 2 and attempts[1].extra["worker"] == summary.worker == claim.worker
    assert (
        attempts[0].extra["worker"] != summary.worker and attempts[1].resumed_arch == record.first(End).arch
    )
    assert trained and trained[0] == max(stored) + 1 and trained[-1] == 8  # resumed after its last checkpoint
    assert [e.epoch for e in record.events_of(EvalEpoch)] == list(range(1, 9))


def test_a_stale_lease_of_another_machine_is_waited_for_then_taken_over(tmp_path, capsys):
    cfg = load_study(str(tiny_study(tmp_path, seeds=2, epochs=1)))
    cells = expand(cfg)[0]
    with Store(cfg.store) as store:
        store.add_cells(cells)
        assert store.claim([cells[0].id], "elsewhere/0badc0de/4242/cafe0000", lambda other: False)
        remote = store.claims()[0]
    summary = run_study(cfg, quiet=True, lease_timeout=1.0)
    assert sorted(summary.states) == sorted(c.id for c in cells) and set(summary.states.values()) == {
        "finished"
    }
    assert "waiting for 1 cells that other drivers of this store run" in capsys.readouterr().out
    with Store.open_readonly(cfg.store) as store:
        assert {c.worker for c in store.claims()} == {summary.worker}
        (attempt,) = store.events(cells[0].id, kind="attempt")
    assert attempt.time > remote.heartbeat + 1.0  # the remote lease was honoured until it went stale


def test_a_store_on_a_network_file_system_is_warned_about(tmp_path, monkeypatch, capsys):
    assert driver.filesystem(tmp_path) not in (None, *driver.NETWORK_FILESYSTEMS)  # pytest's tmp: a local one
    cfg = load_study(str(tiny_study(tmp_path, seeds=1, epochs=1)))
    monkeypatch.setattr(driver, "filesystem", lambda path: "nfs4")
    run_study(cfg, quiet=True)
    out = capsys.readouterr().out
    assert "is on a network file system (nfs4)" in out and "one machine" in out
