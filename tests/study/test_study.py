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
    path.write_text(
        STUDY.format(name=name, store=tmp_path / f"{name}.db", epochs=epochs, eval_extra=eval_extra) + extra
    )
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
                "epochs": [
                    (e.data["epoch"], e.data["test_top1"], e.data["train_loss"])
                    for e in events
                    if e.kind == "eval_epoch"
                ],
            }
        return out
    finally:
        store.close()


def nasmix_cmd(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from nasmix.cli import main; sys.exit(main(sys.argv[1:]))",
        *args,
    ]


@pytest.mark.slow
def test_sigkilled_study_resumes_to_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = write_study(tmp_path, "full", epochs=5)
    subprocess.run(nasmix_cmd("study", str(full), "--quiet"), check=True, env=env, capture_output=True)
    killed = write_study(tmp_path, "killed", epochs=5)
    proc = subprocess.Popen(
        nasmix_cmd("study", str(killed), "--quiet"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = tmp_path / "killed.db"
    deadline = time.time() + 300
    victim = None
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                store = Store(db, readonly=True)
                ended = {e.cell for e in store.events(kind="finished")}
                mid = [
                    e.cell
                    for e in store.events(kind="eval_epoch")
                    if e.data["epoch"] == 2 and e.cell not in ended
                ]
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
        (
            "[study]\nspaces=['nb201']\nstrategies=['random']\n[search]\nepochs=0\n",
            "search.epochs must be > 0",
        ),
        (
            "[study]\nspaces=['nb201']\nstrategies=['random']\n[eval]\npreset='slow'\n",
            "unknown eval preset 'slow'",
        ),
        ("[study]\nspaces=['nb201']\nstrategies=['random']\n[searhc]\n", "unknown study table 'searhc'"),
        (
            "[study]\nspaces=['nb201']\nstrategies=['random']\n[estimator.train]\nepoch=3\n",
            "Did you mean 'epochs'",
        ),
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


@pytest.mark.slow
def test_local_process_backend(tmp_path):
    cfg = load_study(write_study(tmp_path, epochs=1))
    summary = run_study(cfg, backend="local", workers=2, quiet=True)
    assert sorted(summary.states.values()) == ["finished"] * 4
    assert results(Path(cfg.store)) == results(Path(cfg.store))


@pytest.mark.slow
def test_ray_backend(tmp_path, ray_local):
    cfg = load_study(write_study(tmp_path, epochs=1))
    summary = run_study(cfg, backend="ray", quiet=True)
    assert sorted(summary.states.values()) == ["finished"] * 4
    store = Store(cfg.store, readonly=True)
    assert all(sum(1 for e in store.events(c.id) if e.kind == "eval_epoch") == 1 for c in store.cells())


def test_grid_gives_oneshot_one_cell_and_skips_what_makes_no_sense():
    from nasmix.config import study_from_dict

    cfg = study_from_dict(
        {
            "study": {
                "spaces": ["nb201", "chain"],
                "strategies": ["gdas", "random"],
                "estimators": ["train", "tabular"],
                "seeds": [0, 1],
            }
        }
    )
    cells, dropped = expand(cfg)
    labels = sorted(c.label for c in cells)
    assert len(cells) == 10 and len({c.id for c in cells}) == 10
    assert sum(1 for c in cells if c.strategy == "gdas") == 4 and all(
        c.estimator == "supernet" for c in cells if c.strategy == "gdas"
    )
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


# ---- resume at awkward moments, caps, backends (run_cell driven directly) ----------------------
class _Kill(BaseException):
    """Stands for SIGKILL at one event: the event is not stored."""


def _run_cell_killed_at(
    tmp_path: Path,
    name: str,
    kill_key: str | None,
    epochs: int = 3,
    eval_extra: str = "",
    extra: str = "",
    text=None,
) -> tuple[str, dict, Store, str]:
    """Run the first cell of a study, 'killed' when it emits kill_key, then resumed; its end kind and data."""
    from nasmix.study.run import Resume, run_cell

    path = write_study(tmp_path, name, epochs=epochs, eval_extra=eval_extra, extra=extra)
    if text is not None:
        path.write_text(text(path.read_text()))
    cfg = load_study(path)
    cell = expand(cfg)[0][0]
    store = Store(cfg.store)
    store.add_cells([cell])

    def emit(key, event):
        if key == kill_key:
            raise _Kill
        store.append(cell.id, key, event)

    try:
        run_cell(cell, store.files, emit, Resume.from_events(store.events(cell.id)))
    except _Kill:
        kill_key = None
        run_cell(cell, store.files, emit, Resume.from_events(store.events(cell.id)))
    end = next(e for e in store.events(cell.id) if e.key == "end")
    return end.kind, end.data, store, cell.id


def _same_results(a: dict, b: dict) -> None:
    for key in ("arch", "epochs_done", "epochs", "test_top1", "test_top5"):
        assert a.get(key) == b.get(key), key


@pytest.mark.parametrize("epochs,kill", [(3, "eval/epoch/3"), (1, "eval/epoch/1")])
def test_killed_between_a_checkpoint_and_its_event_resumes_to_the_uninterrupted_result(
    tmp_path, epochs, kill
):
    """The checkpoint of the last epoch was written but its event never reached the store."""
    kind, full, _, _ = _run_cell_killed_at(tmp_path, "full", None, epochs=epochs)
    kind2, resumed, store, cell = _run_cell_killed_at(tmp_path, "killed", kill, epochs=epochs)
    assert kind == kind2 == "finished"
    _same_results(full, resumed)
    assert [e.data["epoch"] for e in store.events(cell, "eval_epoch")] == list(range(1, epochs + 1))


def test_capped_eval_killed_before_its_end_resumes_to_the_same_cap(tmp_path):
    """The cap fell on a checkpointed epoch: the resumed cell must not train past it."""
    extra = "max_seconds = 1e-6"
    kind, full, _, _ = _run_cell_killed_at(tmp_path, "full", None, epochs=4, eval_extra=extra)
    kind2, resumed, store, cell = _run_cell_killed_at(tmp_path, "killed", "end", epochs=4, eval_extra=extra)
    assert kind == kind2 == "projected" and full["epochs_done"] == 1
    _same_results(full, resumed)
    assert [e.data["epoch"] for e in store.events(cell, "eval_epoch")] == [1]


def test_gpu_second_caps_apply_on_a_device_without_cuda_events(tmp_path):
    """On a CPU there are no CUDA events: a GPU-seconds cap counts the device's wall seconds."""
    kind, end, store, cell = _run_cell_killed_at(
        tmp_path, "g", None, epochs=4, eval_extra="max_gpu_seconds = 1e-6"
    )
    assert kind == "projected" and end["epochs_done"] == 1
    capped = lambda t: t.replace("candidates = 2", "candidates = 5\nmax_gpu_seconds = 1e-6")  # noqa: E731
    kind, end, store, cell = _run_cell_killed_at(tmp_path, "h", None, epochs=1, text=capped)
    assert kind == "projected"
    assert sum(1 for e in store.events(cell) if e.kind == "candidate") == 1


def test_discrete_search_gpu_cap_counts_the_candidates_gpu_seconds(tmp_path, monkeypatch):
    """Candidates report their GPU seconds (on a GPU): the search's GPU cap must add them up."""
    import nasmix.budget
    from nasmix import registry

    estimator = registry.get("estimator", "train").obj
    real = estimator.estimate

    def estimate_on_a_gpu(self, space, arch, data, parent=None):
        est = real(self, space, arch, data, parent=parent)
        est.extra["gpu_s"] = 10.0
        return est

    monkeypatch.setattr(estimator, "estimate", estimate_on_a_gpu)
    monkeypatch.setattr(nasmix.budget, "has_cuda_events", lambda timer: True)
    capped = lambda t: t.replace("candidates = 2", "candidates = 5\nmax_gpu_seconds = 25")  # noqa: E731
    kind, _end, store, cell = _run_cell_killed_at(tmp_path, "g", None, epochs=1, text=capped)
    assert kind == "projected"
    assert sum(1 for e in store.events(cell) if e.kind == "candidate") == 3


def test_fewshot_search_cap_projects_over_all_its_supernet_epochs(tmp_path):
    def fewshot(text):
        text = text.replace('strategies = ["random"]', 'strategies = ["fewshot"]').replace(
            'spaces = ["nb201", "chain"]', 'spaces = ["chain"]'
        )
        return text.replace("candidates = 2", "epochs = 2\nmax_seconds = 1e-6") + (
            '\n[strategy.fewshot]\nbase = "gdas"\nwarmup = 0.0\n'
        )

    _kind, _end, store, cell = _run_cell_killed_at(tmp_path, "f", None, epochs=1, text=fewshot)
    events = store.events(cell)
    first = next(e.data for e in events if e.kind == "search_epoch")
    capped = next(e.data for e in events if e.key == "search/capped")
    assert first["epochs"] > 2  # one sequence over every sub-supernet's epochs
    assert capped["done"] == 1 and capped["total"] == first["epochs"]
    assert capped["projected_s"] == pytest.approx(capped["elapsed_s"] * first["epochs"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_user_error_in_a_worker_stops_the_study_and_leaves_the_cell_resumable(
    tmp_path, backend, capsys, request
):
    if backend == "ray":
        request.getfixturevalue("ray_local")  # the session's Ray instance
    path = write_study(tmp_path, epochs=1)
    cfg = load_study(path)
    victim = expand(cfg)[0][0]
    folder = Path(cfg.store + ".files") / victim.id / "eval"
    folder.mkdir(parents=True)
    torch.save({"config": {"another": "recipe"}}, folder / "epoch-0001.pt")
    argv = ["study", str(path), "--quiet", "--backend", backend]
    argv += ["--workers", "2"] if backend == "local" else []
    assert main(argv) == 2
    assert "different training config" in capsys.readouterr().err
    store = Store(cfg.store, readonly=True)
    assert store.state(victim.id) == "running" and not store.events(kind="failed")


@pytest.mark.parametrize(
    "line,message",
    [
        ("seeds = 1.5", "seeds must be"),
        ("seeds = [-1]", "seeds must be"),
        ("seeds = [18446744073709551616]", "seeds must be"),
        ("spaces = 3", "spaces must be"),
        ("spaces = [1]", "spaces must be"),
        ('device = "cdua"', "device"),
        ('device = "cuda:x"', "device"),
    ],
)
def test_bad_axis_values_exit_2(tmp_path, capsys, line, message):
    key = line.split(" ")[0]
    path = tmp_path / "bad.toml"
    body = {"seeds": "seeds = [0]", "spaces": "spaces = ['nb201']", "device": 'device = "cpu"'}
    body[key] = line
    path.write_text(
        f"[study]\nstore='{tmp_path / 'bad.db'}'\nstrategies=['random']\n" + "\n".join(body.values())
    )
    assert main(["study", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad.db").exists()


def test_seeds_as_one_integer(tmp_path):
    from nasmix.config import study_from_dict

    cfg = study_from_dict({"study": {"spaces": ["nb201"], "strategies": ["random"], "seeds": 3}})
    assert cfg.seeds == (3,)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_a_gpu_exits_2_before_the_store_exists(tmp_path, capsys):
    path = write_study(tmp_path)
    path.write_text(path.read_text().replace('device = "cpu"', 'device = "cuda"'))
    assert main(["study", str(path), "--quiet"]) == 2
    assert "cuda" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()


def test_run_with_checkpoint_every_0_never_checkpoints(tmp_path, capsys):
    argv = [
        "run",
        "--space",
        "chain",
        "--strategy",
        "random",
        "--estimator",
        "zero_cost",
        "--dataset",
        "synthetic",
        "--candidates",
        "1",
        "--search-size",
        "tiny",
        "--eval-epochs",
        "1",
        "--eval-size",
        "tiny",
        "--checkpoint-every",
        "0",
        "--device",
        "cpu",
        "--store",
        str(tmp_path / "r.db"),
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert Store(tmp_path / "r.db", readonly=True).events(kind="finished")
    assert not list((tmp_path / "r.db.files").rglob("*.pt"))


def test_capped_search_killed_before_arch_chosen_stops_where_it_was_capped(tmp_path, monkeypatch):
    """The resumed search must cap where the stored capped event says, whatever its own clock says."""
    import nasmix.study.run as run_mod
    from nasmix.timing import Timer

    slow = {"on": True}

    class SlowFirstAttempt(Timer):
        def now(self):  # an hour passes between two readings in the first attempt
            now = super().now()
            if slow["on"]:
                slow["t"] = slow.get("t", now) + 3600.0
                return slow["t"]
            return now

    monkeypatch.setattr(run_mod, "Timer", SlowFirstAttempt)
    text = lambda t: t.replace("candidates = 2", "candidates = 4\nmax_seconds = 5000")  # noqa: E731
    path = write_study(tmp_path, "c", epochs=1)
    path.write_text(text(path.read_text()))
    cfg = load_study(path)
    cell = expand(cfg)[0][0]
    store = Store(cfg.store)
    store.add_cells([cell])
    from nasmix.study.run import Resume, run_cell

    def emit(key, event):
        if key == "arch_chosen" and slow["on"]:
            raise _Kill
        store.append(cell.id, key, event)

    with pytest.raises(_Kill):
        run_cell(cell, store.files, emit, Resume.from_events(store.events(cell.id)))
    capped = next(e.data for e in store.events(cell.id) if e.key == "search/capped")
    assert capped["done"] < 4
    slow["on"] = False
    assert run_cell(cell, store.files, emit, Resume.from_events(store.events(cell.id))) == "projected"
    events = store.events(cell.id)
    chosen = next(e.data for e in events if e.key == "arch_chosen")
    best = [e.data["best_arch"] for e in events if e.kind == "candidate"][capped["done"] - 1]
    assert chosen["arch"] == best and chosen["search_projected_s"] == capped["projected_s"]
    assert chosen["search_s"] == capped["elapsed_s"]
    assert sum(1 for e in events if e.kind == "candidate") == capped["done"]


def test_cell_killed_after_its_last_epoch_without_checkpoints_is_not_retrained(tmp_path, monkeypatch):
    import nasmix.study.run as run_mod

    no_ckpt = lambda t: t.replace("checkpoint_every = 1", "checkpoint_every = 0")  # noqa: E731
    kind, full, _, _ = _run_cell_killed_at(tmp_path, "full", None, epochs=3, text=no_ckpt)
    calls = []
    real_train = run_mod.train
    monkeypatch.setattr(run_mod, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    kind2, resumed, _store, _cell = _run_cell_killed_at(tmp_path, "killed", "end", epochs=3, text=no_ckpt)
    assert kind == kind2 == "finished" and len(calls) == 1  # the first attempt only: every epoch was stored
    _same_results(full, resumed)


def test_an_eval_seed_is_refused_because_the_cell_seed_rules(tmp_path, capsys):
    path = tmp_path / "seed.toml"
    path.write_text(
        f"[study]\nstore='{tmp_path / 'seed.db'}'\nspaces=['nb201']\nstrategies=['random']\n"
        "[eval]\nseed = 3\n"
    )
    assert main(["study", str(path)]) == 2
    assert "[study] seeds" in capsys.readouterr().err
