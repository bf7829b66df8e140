"""Checkpoints under faults: full disks and crashes at every stage of a write, bad files, crafted files.

Each case ends in one of two ways, never a third: the run resumes to exactly
the numbers of an uninterrupted run (losing at most the epoch in flight), or it
stops with a clear NasmixError and resumes once the cause is gone.
"""

from __future__ import annotations

import builtins
import errno
import pickle
import shutil
import warnings

import pytest
import torch
from faults import Crash, Fault
from torch import nn

from nasmix.checkpoint import CheckpointWarning, checkpoints, config_key, load_checkpoint
from nasmix.data import load_dataset
from nasmix.errors import CheckpointError, ConfigError, NasmixError
from nasmix.safeload import torch_load
from nasmix.train import TrainConfig, train

CFG = TrainConfig(epochs=3, batch_size=50, lr=0.05, checkpoint_every=1, seed=3, crop_padding=2, eval_every=3)
KEYS = ("train_loss", "train_top1", "test_top1", "test_top5", "test_loss")


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )


def _train(data, folder, config=CFG):
    return train(_net(), data.train, data.task, config, test=data.test, checkpoint_dir=folder)


def _numbers(result) -> list:
    return [[h.get(k) for k in KEYS] for h in result.history]


@pytest.fixture(scope="module")
def full(data, tmp_path_factory):
    """The uninterrupted run and its checkpoint folder."""
    folder = tmp_path_factory.mktemp("full")
    return _train(data, folder), folder


def _assert_resumes(data, folder, full_result, resumed_from):
    again = _train(data, folder)
    assert again.resumed_from == resumed_from
    assert _numbers(again) == _numbers(full_result)
    assert not list(folder.glob("*.tmp"))  # a torn temporary file is overwritten by the next write


# ---- a full disk (and other write errors) at each stage of writing the second checkpoint ------------------
def _stages(full_folder) -> list:
    size = (full_folder / "epoch-0002.pt").stat().st_size
    return [0, 1, size // 2, size - 1, None]  # None: every byte written, the fault hits at the flush


@pytest.mark.parametrize("stage", range(5))
def test_full_disk_while_checkpointing_stops_and_resumes(data, full, tmp_path, monkeypatch, stage):
    full_result, full_folder = full
    fault = Fault(at_byte=_stages(full_folder)[stage], error=errno.ENOSPC, match="epoch-0002").install(
        monkeypatch
    )
    with pytest.raises(CheckpointError, match=r"disk full while writing checkpoint .*epoch-0002"):
        _train(data, tmp_path)
    assert fault.injected == 1
    assert [e for e, _ in checkpoints(tmp_path)] == [
        1
    ]  # the previous checkpoint is intact, the torn one gone
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    _assert_resumes(data, tmp_path, full_result, resumed_from=1)


def test_other_write_errors_stop_with_a_clear_message(data, full, tmp_path, monkeypatch):
    full_result, _ = full
    Fault(at_byte=10, error=errno.EIO, match="epoch-0003").install(monkeypatch)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*epoch-0003.*Input/output error"):
        _train(data, tmp_path)
    monkeypatch.undo()
    _assert_resumes(data, tmp_path, full_result, resumed_from=2)


@pytest.mark.parametrize("stage", range(5))
def test_crash_while_checkpointing_costs_at_most_the_epoch_in_flight(
    data, full, tmp_path, monkeypatch, stage
):
    full_result, full_folder = full
    Fault(at_byte=_stages(full_folder)[stage], error="crash", match="epoch-0002").install(monkeypatch)
    with pytest.raises(Crash):
        _train(data, tmp_path)
    assert list(tmp_path.glob("*.tmp"))  # what a killed process leaves: a torn temporary file
    monkeypatch.undo()
    _assert_resumes(data, tmp_path, full_result, resumed_from=1)


def test_crash_after_the_rename_keeps_the_new_checkpoint(data, full, tmp_path, monkeypatch):
    import nasmix.atomicfile

    full_result, _ = full
    calls = []

    def crash_on_second(folder):
        calls.append(folder)
        if len(calls) == 2:
            raise Crash("killed after the rename, before the folder's fsync")

    monkeypatch.setattr(nasmix.atomicfile, "fsync_dir", crash_on_second)
    with pytest.raises(Crash):
        _train(data, tmp_path)
    monkeypatch.undo()
    _assert_resumes(data, tmp_path, full_result, resumed_from=2)


# ---- bad files in the checkpoint folder -------------------------------------------------------------------
def _bad_files(good: bytes) -> dict:
    def saved(obj) -> bytes:
        import io

        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    return {
        "garbage": b"torn",
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "flipped": good[:100] + bytes(b ^ 0xFF for b in good[100:200]) + good[200:],
        "a list": saved([1, 2, 3]),
        "a tensor": saved(torch.zeros(3)),
        "a dict without a model": saved({"epoch": 2, "history": []}),
        "another epoch": saved(
            {
                "model": {},
                "optimizer": {"state": {}, "param_groups": []},
                "history": [{"epoch": 1}],
                "epoch": 1,
                "config": config_key(CFG),
            }
        ),
        "a model of strings": saved(
            {
                "model": {"w": "x"},
                "optimizer": {"state": {}, "param_groups": []},
                "history": [{"epoch": 2}],
                "epoch": 2,
                "config": config_key(CFG),
            }
        ),
        "plain pickle": pickle.dumps({"epoch": 2}),
    }


def test_a_bad_newest_checkpoint_falls_back_to_the_previous_one(data, full, tmp_path):
    full_result, full_folder = full
    good = (full_folder / "epoch-0002.pt").read_bytes()
    cases = _bad_files(good)
    for name, blob in cases.items():
        folder = tmp_path / name.replace(" ", "-")
        shutil.copytree(full_folder, folder)
        (folder / "epoch-0003.pt").unlink()
        (folder / "epoch-0002.pt").write_bytes(blob)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            again = _train(data, folder)
        assert again.resumed_from == 1, name
        assert _numbers(again) == _numbers(full_result), name
        assert any(
            issubclass(w.category, CheckpointWarning) and "epoch-0002" in str(w.message) for w in seen
        ), name
    assert len(cases) == 10


def test_every_checkpoint_bad_starts_afresh(data, full, tmp_path):
    full_result, full_folder = full
    shutil.copytree(full_folder, tmp_path / "c")
    for _, path in checkpoints(tmp_path / "c"):
        path.write_bytes(b"\x00" * 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        again = _train(data, tmp_path / "c")
    assert again.resumed_from == 0 and _numbers(again) == _numbers(full_result)


# ---- crafted checkpoints: refused, never run ---------------------------------------------------------------
class _Evil:
    """Unpickling calls open(marker, "w"): the file appears if the pickle was run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.mark.parametrize("fmt", ["torch zip", "legacy pickle protocol 2", "legacy pickle protocol 4"])
def test_a_crafted_checkpoint_is_refused_and_never_run(data, full, tmp_path, fmt):
    _, full_folder = full
    marker = tmp_path / "pwned"
    folder = tmp_path / "ckpt"
    shutil.copytree(full_folder, folder)
    good = torch_load(folder / "epoch-0003.pt")
    evil = {**good, "history": [*good["history"][:-1], {**good["history"][-1], "note": _Evil(marker)}]}
    path = folder / "epoch-0003.pt"
    if fmt == "torch zip":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2 if "2" in fmt else 4))
    with pytest.raises(CheckpointError, match=r"epoch-0003\.pt is not plain data"):
        load_checkpoint(folder, CFG)
    with pytest.raises(CheckpointError, match="weights_only"):
        _train(data, folder)
    assert not marker.exists()


def test_a_checkpoint_written_before_rng_states_were_stored_still_resumes(data, full, tmp_path):
    """Checkpoints written by nasmix before this change hold the same dict without "rng"."""
    full_result, full_folder = full
    shutil.copytree(full_folder, tmp_path / "old")
    for epoch in (2, 3):
        path = tmp_path / "old" / f"epoch-{epoch:04d}.pt"
        if epoch == 3:
            path.unlink()
            continue
        state = torch_load(path)
        del state["rng"]
        torch.save(state, path)
    again = _train(data, tmp_path / "old")
    assert again.resumed_from == 2 and _numbers(again) == _numbers(full_result)


def test_checkpoint_every_k_keeps_every_kth_and_resumes_from_the_latest_epoch(data, tmp_path):
    cfg = TrainConfig(epochs=5, batch_size=50, lr=0.05, checkpoint_every=2, seed=3, eval_every=5)
    whole = train(_net(), data.train, data.task, cfg, test=data.test, checkpoint_dir=tmp_path / "a")
    assert [e for e, _ in checkpoints(tmp_path / "a")] == [5, 4, 2]
    assert [h["epoch"] for h in whole.history if "checkpoint" in h] == [2, 4, 5]

    def kill_after_three(event):
        if event["event"] == "epoch" and event["epoch"] == 3:
            raise Crash

    with pytest.raises(Crash):
        train(
            _net(),
            data.train,
            data.task,
            cfg,
            test=data.test,
            checkpoint_dir=tmp_path / "b",
            callback=kill_after_three,
        )
    assert [e for e, _ in checkpoints(tmp_path / "b")] == [3, 2]
    again = train(_net(), data.train, data.task, cfg, test=data.test, checkpoint_dir=tmp_path / "b")
    assert again.resumed_from == 3  # not 2: the crash cost nothing but the epoch in flight
    assert _numbers(again) == _numbers(whole)


def test_rng_state_is_stored_as_tensors_and_restored(data, full, tmp_path):
    _, full_folder = full
    state = torch_load(full_folder / "epoch-0003.pt")
    assert isinstance(state["rng"]["torch"], torch.Tensor) and state["rng"]["torch"].dtype == torch.uint8
    shutil.copytree(full_folder, tmp_path / "c")
    _train(data, tmp_path / "c")  # everything done: only the saved RNG state is restored
    assert torch.equal(torch.get_rng_state(), state["rng"]["torch"])


def test_a_checkpoint_error_is_a_user_error():
    assert issubclass(CheckpointError, NasmixError) and CheckpointError.exit_code == 2


def test_a_checkpoint_folder_that_is_a_file_fails_before_training(data, tmp_path, capsys):
    from nasmix.cli import main

    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="is a file"):
        train(_net(), data.train, data.task, CFG, checkpoint_dir=blocker, callback=pytest.fail)
    argv = [
        "train",
        "--model",
        "resnet20",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    code = main([*argv, "--checkpoint-dir", str(blocker)])
    out, err = capsys.readouterr()
    assert code == 2 and "is a file" in err and "epoch" not in out


def test_a_checkpoint_of_another_recipe_is_refused_even_when_damaged(tmp_path):
    torch.save({"config": {"lr": 1.0}}, tmp_path / "epoch-0001.pt")
    with pytest.raises(ConfigError, match="different training config"):
        load_checkpoint(tmp_path, CFG)
