"""Studies end to end: config errors, resume after SIGKILL, caps, failures, backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nasmix.cli import main
from nasmix.config import load_study
from nasmix.study.driver import run_study
from nasmix.study.grid import expand
from nasmix.study.store import Store

STUDY = """
[study]
name = "{name}"
store = "{store}"
spaces = ["nb201", "chain"]
strategies = ["random"]
estimators = ["train"]
datasets = ["synthetic"]
seeds = [0, 1]
device = "cpu"

[search]
candidates = 2
size = "tiny"
batch_size = 50

[eval]
preset = "fast"
size = "tiny"
epochs = {epochs}
batch_size = 50
checkpoint_every = 1
eval_every = 1
{eval_extra}

[estimator.train]
epochs = 1
batch_size = 50
"""


def write_study(tmp_path: Path, name="s", epochs=4, eval_extra="", extra="") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(STUDY.format(name=name, store=tmp_path / f"{name}.db", epochs=epochs, eval_extra=eval_extra) + extra)
    return path


def results(db: Path) -> dict:
    """What a study computed, without clocks: per cell the chosen arch, scores and accuracies."""
    store = Store(db, readonly=True)
    try:
        out = {}
        for cell in store.cells():
            events = store.events(cell.id)
            end = next(e for e in events if e.key == "end")
            out[cell.id] = {
                "state": end.kind,
                "arch": end.data["arch"],
                "top1": end.data["test_top1"],
                "top5": end.data["test_top5"],
                "candidates": [(e.data["arch"], e.data["score"]) for e in events if e.kind == "candidate"],
                "epochs": [(e.data["epoch"], e.data["test_top1"], e.data["train_loss"]) for e in events
                           if e.kind == "eval_epoch"],  # fmt: skip
            }
        return out
    finally:
        store.close()


def nasmix_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from nasmix.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def test_sigkilled_study_resumes_to_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = write_study(tmp_path, "full", epochs=5)
    subprocess.run(nasmix_cmd("study", str(full), "--quiet"), check=True, env=env, capture_output=True)
    killed = write_study(tmp_path, "killed", epochs=5)
    proc = subprocess.Popen(nasmix_cmd("study", str(killed), "--quiet"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    db = tmp_path / "killed.db"
    deadline = time.time() + 300
    victim = None
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                store = Store(db, readonly=True)
                ended = {e.cell for e in store.events(kind="finished")}
                mid = [e.cell for e in store.events(kind="eval_epoch") if e.data["epoch"] == 2 and e.cell not in ended]
                store.close()
            except Exception:  # the store is being created: try again
                ended, mid = set(), []
            if len(ended) >= 1 and mid:
                victim = mid[0]
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait()
    assert victim is not None, "the study ended before it could be killed in the middle of a cell"
    assert Store(db, readonly=True).state(victim) == "running"
    subprocess.run(nasmix_cmd("study", str(killed), "--quiet"), check=True, env=env, capture_output=True)
    a, b = results(tmp_path / "full.db"), results(db)
    assert a.keys() == b.keys() and len(a) == 4
    for cell in a:
        assert a[cell] == b[cell], f"cell {cell} differs after resume"
    store = Store(db, readonly=True)
    keys = [(e.cell, e.key) for e in store.events()]
    assert len(keys) == len(set(keys)), "duplicated events"
    attempts = [e for e in store.events(victim) if e.kind == "attempt"]
    assert len(attempts) == 2 and attempts[1].data["resumed_arch"] == b[victim]["arch"]
    assert sum(1 for e in store.events(victim) if e.kind == "eval_epoch") == 5


def test_finished_cells_are_not_rerun(tmp_path):
    cfg = load_study(write_study(tmp_path, epochs=1))
    first = run_study(cfg, quiet=True)
    assert sorted(set(first.states.values())) == ["finished"] and len(first.states) == 4
    n = len(Store(cfg.store, readonly=True).events())
    again = run_study(cfg, quiet=True)
    assert again.skipped == 4 and again.states == {}
    assert len(Store(cfg.store, readonly=True).events()) == n


def test_caps_stop_a_phase_and_project_its_runtime(tmp_path):
    cfg = load_study(write_study(tmp_path, epochs=4, eval_extra="max_seconds = 1e-6"))
    run_study(cfg, quiet=True)
    store = Store(cfg.store, readonly=True)
    for cell in store.cells():
        assert store.state(cell.id) == "projected"
        end = next(e.data for e in store.events(cell.id) if e.key == "end")
        assert end["epochs_done"] == 1 and end["epochs"] == 4
        assert end["eval_projected_s"] == pytest.approx(end["eval_train_s"] * 4)
        capped = next(e.data for e in store.events(cell.id) if e.key == "eval/capped")
        assert capped["done"] == 1 and capped["total"] == 4


def test_search_cap_projects_the_search(tmp_path):
    path = write_study(tmp_path, epochs=1)
    text = path.read_text().replace("candidates = 2", "candidates = 5\nmax_seconds = 1e-6")
    path.write_text(text)
    cfg = load_study(path)
    run_study(cfg, quiet=True)
    store = Store(cfg.store, readonly=True)
    for cell in store.cells():
        events = store.events(cell.id)
        assert sum(1 for e in events if e.kind == "candidate") == 1
        capped = next(e.data for e in events if e.key == "search/capped")
        assert capped["done"] == 1 and capped["projected_s"] == pytest.approx(capped["elapsed_s"] * 5)
        assert store.state(cell.id) == "projected"


def test_out_of_memory_fails_one_cell_and_the_study_goes_on(tmp_path, monkeypatch):
    import nasmix.study.run as run_mod

    real_train = run_mod.train

    def train_or_oom(net, *args, **kwargs):
        if kwargs["checkpoint_dir"].parent.name == victim:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_train(net, *args, **kwargs)

    cfg = load_study(write_study(tmp_path, epochs=1))
    victim = expand(cfg)[0][1].id
    monkeypatch.setattr(run_mod, "train", train_or_oom)
    summary = run_study(cfg, quiet=True)
    assert summary.states[victim] == "failed"
    assert sorted(summary.states.values()).count("finished") == 3
    end = next(e for e in Store(cfg.store, readonly=True).events(victim) if e.key == "end")
    assert end.data["reason"] == "out of GPU memory" and "peak_gpu_bytes" in end.data


@pytest.mark.parametrize(
    "body,message",
    [
        ("[study]\nspaces=['nb201']\nstrategies=['random']\nfoo=1\n", "key of [study] 'foo'"),
        ("[study]\nspaces=['nb2O1']\nstrategies=['random']\n", "unknown space 'nb2O1'. Did you mean 'nb201'"),
        ("[study]\nspaces=['nb201']\nstrategies=['random']\n[search]\nepochs=0\n", "search.epochs must be > 0"),
        ("[study]\nspaces=['nb201']\nstrategies=['random']\n[eval]\npreset='slow'\n", "unknown eval preset 'slow'"),
        ("[study]\nspaces=['nb201']\nstrategies=['random']\n[searhc]\n", "unknown study table 'searhc'"),
        ("[study]\nspaces=['nb201']\nstrategies=['random']\n[estimator.train]\nepoch=3\n", "Did you mean 'epochs'"),
        ("[study\n", "not valid TOML"),
    ],
)
def test_bad_study_files_exit_2_and_leave_no_store(tmp_path, capsys, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body.replace("[study]\n", f"[study]\nstore='{tmp_path / 'bad.db'}'\n", 1))
    assert main(["study", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad.db").exists()


def test_status_shows_states(tmp_path, capsys):
    cfg = load_study(write_study(tmp_path, epochs=1))
    run_study(cfg, quiet=True)
    capsys.readouterr()
    assert main(["status", cfg.store]) == 0
    out = capsys.readouterr().out
    assert "4 finished" in out and "nb201 / random / train / synthetic / seed 1" in out
    assert main(["status", str(tmp_path / "none.db")]) == 2


def test_local_process_backend(tmp_path):
    cfg = load_study(write_study(tmp_path, epochs=1))
    summary = run_study(cfg, backend="local", workers=2, quiet=True)
    assert sorted(summary.states.values()) == ["finished"] * 4
    assert results(Path(cfg.store)) == results(Path(cfg.store))


def test_ray_backend(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = load_study(write_study(tmp_path, epochs=1))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_study(cfg, backend="ray", quiet=True)
    finally:
        ray.shutdown()
    assert sorted(summary.states.values()) == ["finished"] * 4
    store = Store(cfg.store, readonly=True)
    assert all(sum(1 for e in store.events(c.id) if e.kind == "eval_epoch") == 1 for c in store.cells())


def test_grid_gives_oneshot_one_cell_and_skips_what_makes_no_sense():
    from nasmix.config import study_from_dict

    cfg = study_from_dict({"study": {"spaces": ["nb201", "chain"], "strategies": ["gdas", "random"],
                                     "estimators": ["train", "tabular"], "seeds": [0, 1]}})  # fmt: skip
    cells, dropped = expand(cfg)
    labels = sorted(c.label for c in cells)
    assert len(cells) == 10 and len({c.id for c in cells}) == 10
    assert sum(1 for c in cells if c.strategy == "gdas") == 4 and all(
        c.estimator == "supernet" for c in cells if c.strategy == "gdas")  # fmt: skip
    assert "chain / random / tabular / cifar10 / seed 0" not in labels
    assert dropped == ["chain x random x tabular: estimator tabular works only on nb201"]
    again, _ = expand(cfg)
    assert [c.id for c in again] == [c.id for c in cells]  # ids are stable


def test_missing_dataset_exits_2_before_the_store_exists(tmp_path, capsys):
    path = write_study(tmp_path)
    path.write_text(path.read_text().replace('datasets = ["synthetic"]', 'datasets = ["cifar10"]'))
    assert main(["study", str(path), "--data", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()


def test_full_disk_stops_the_study_and_the_cell_resumes(tmp_path, monkeypatch):
    import errno

    import nasmix.train as train_mod
    from nasmix.errors import NasmixError

    cfg = load_study(write_study(tmp_path, epochs=2))
    real_save = train_mod.torch.save

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_mod.torch, "save", full)
    with pytest.raises(NasmixError, match="disk full"):
        run_study(cfg, quiet=True)
    store = Store(cfg.store, readonly=True)
    first = store.cells()[0].id
    assert store.state(first) == "running" and not store.events(kind="failed")
    monkeypatch.setattr(train_mod.torch, "save", real_save)
    summary = run_study(cfg, quiet=True)
    assert sorted(summary.states.values()) == ["finished"] * 4
