"""`nasmix export DB CELL`: a trained cell of a tiny study store, a cell without checkpoints, and the
refusals (unknown or unfinished cell, bad arch, bad output folder)."""

from __future__ import annotations

import builtins
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import nasmix
from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import CheckpointError, NasmixError
from nasmix.export import export_arch, export_cell, load_model
from nasmix.export.card import render_card
from nasmix.export.source import read_cell, read_checkpoint

STUDY = """
[study]
name = "tiny"
store = "{store}"
spaces = ["darts"]
strategies = ["random"]
estimators = ["zero_cost"]
datasets = ["synthetic"]
seeds = [0]
device = "cpu"

[data]
train_subset = 40
test_subset = 20

[search]
candidates = 2
size = "tiny"
batch_size = 20

[eval]
preset = "fast"
size = "tiny"
epochs = 2
batch_size = 20
checkpoint_every = 1
drop_path = 0.2
aux_weight = 0.4

[estimator.zero_cost]
proxy = "params"
batch_size = 10
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished darts cell (tiny network with an auxiliary head and drop-path) with checkpoints."""
    from nasmix.config import load_study
    from nasmix.study.driver import run_study

    root = tmp_path_factory.mktemp("study")
    (root / "s.toml").write_text(STUDY.format(store=root / "s.db"))
    summary = run_study(load_study(str(root / "s.toml")), quiet=True)
    assert list(summary.states.values()) == ["finished"]
    return root / "s.db", next(iter(summary.states))


def test_trained_cell_exports_with_its_weights_and_card(study, tmp_path):
    db, cell = study
    info = export_cell(db, cell[:5], tmp_path / "e", skip=("pt2", "onnx"))
    record = read_cell(db, cell)
    checkpoint = read_checkpoint(record.checkpoints)
    assert info.weights == "trained" and info.epoch == checkpoint.epoch == 2
    # nasmix's own network with the checkpoint's weights, as the study built it
    space = registry.create("space", "darts")
    torch.manual_seed(0)
    net = space.build(Arch.from_str(record.end.arch, space), info.task, "tiny")
    net.load_state_dict(checkpoint.state)
    net.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        want = net(x)
        assert torch.equal(load_model(tmp_path / "e")(x), want)
        again = nasmix.create_model(record.end.arch, pretrained=tmp_path / "e")
        assert torch.equal(again(x), want) and not again.training
    assert info.dropped and all(k.startswith("aux.") for k in info.dropped)  # the auxiliary head is left out
    card = (tmp_path / "e" / "README.md").read_text()
    top1 = next(h.test_top1 for h in record.epochs if h.epoch == 2)
    for fact in (
        "| strategy | random |",
        "| estimator | zero_cost |",
        "synthetic",
        "| seed | 0 |",
        f"{100 * top1:.2f}%",
        "(epoch 2)",
        "| parameters |",
        "| FLOPs |",
        "| input | float tensor (N, 3, ",  # the channels, not the cell (the card once printed its record)
        "| search |",
        "| training |",
        "no GPU clock",
        record.end.arch,
        "drop-path",
        "`aux`",
        "MEAN =",
    ):
        assert fact in card, fact
    config = json.loads((tmp_path / "e" / "config.json").read_text())
    assert config["cell"]["id"] == cell and config["mean"] is not None and len(config["classes"]) == 10


def _copy_store(db: Path, dest: Path, files: bool) -> Path:
    """A copy of the store (SQLite files), with or without its checkpoints folder."""
    for f in db.parent.glob(db.name + "*"):
        if f.is_file():
            (dest / f.name).write_bytes(f.read_bytes())
        elif files:
            shutil.copytree(f, dest / f.name)
    return dest / db.name


def test_a_gpu_cells_channels_last_checkpoint_and_gpu_clocks(study, tmp_path):
    """What a CUDA run leaves: channels_last weights in the checkpoint and GPU seconds in its events."""
    db, cell = study
    copy = _copy_store(db, tmp_path, files=True)
    record = read_cell(copy, cell)
    path = sorted(record.checkpoints.glob("epoch-*.pt"))[-1]
    saved = torch.load(path, weights_only=True)
    reference = {k: v.clone() for k, v in saved["model"].items()}
    saved["model"] = {
        k: v.to(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in saved["model"].items()
    }
    torch.save(saved, path)
    info = export_cell(copy, cell, tmp_path / "e", skip=("pt2", "onnx"))
    space = registry.create("space", "darts")
    net = space.build(Arch.from_str(record.end.arch, space), info.task, "tiny")
    net.load_state_dict(reference)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "e")(x), net.eval()(x))
    on_gpu = dataclasses.replace(
        record,
        chosen=dataclasses.replace(
            record.chosen, search_gpu_s=7200.0, search_s=7300.0, device="cuda:0 (H200)"
        ),
        end=dataclasses.replace(record.end, eval_train_gpu_s=1800.0),
    )
    card = render_card(dataclasses.replace(info, record=on_gpu))
    assert "| search | 2 GPU-hours (7,200.0 s) on cuda:0 (H200); 2.03 h wall |" in card
    assert "| training | 0.5 GPU-hours (1,800.0 s) on " in card
    untested = dataclasses.replace(on_gpu, epochs=tuple(h for h in record.epochs if h.epoch != 1))
    card = render_card(dataclasses.replace(info, epoch=1, record=untested))
    assert "(epoch 2; the exported weights are of epoch 1, which was not evaluated)" in card


class _Evil:
    """Unpickling calls open(marker, "w"): the file appears if the pickle was run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def test_a_torn_newest_checkpoint_falls_back_and_a_crafted_one_is_refused(study, tmp_path):
    """Checkpoints are read as training reads them (nasmix.checkpoint)."""
    db, cell = study
    copy = _copy_store(db, tmp_path, files=True)
    newest = read_cell(copy, cell).checkpoints / "epoch-0002.pt"
    saved = torch.load(newest, weights_only=True)
    newest.write_bytes(b"torn")
    info = export_cell(copy, cell, tmp_path / "e", skip=("pt2", "onnx"))
    assert info.weights == "trained" and info.epoch == 1 and "epoch-0001.pt" in info.weights_note
    marker = tmp_path / "pwned"
    saved["history"][-1]["note"] = _Evil(marker)
    torch.save(saved, newest)
    with pytest.raises(CheckpointError, match=r"epoch-0002\.pt is not plain data"):
        export_cell(copy, cell, tmp_path / "e2", skip=("pt2", "onnx"))
    assert not marker.exists() and not (tmp_path / "e2").exists()


def test_finished_cell_without_checkpoints_exports_the_arch_and_says_so(study, tmp_path, capsys):
    db, cell = study
    _copy_store(db, tmp_path, files=False)
    from nasmix.cli import main

    assert main(["export", str(tmp_path / db.name), cell, "-o", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "no weights: the cell kept no checkpoint" in out
    assert (tmp_path / "e" / "model.py").exists() and not (tmp_path / "e" / "model.safetensors").exists()
    assert "**No weights: the cell kept no checkpoint" in (tmp_path / "e" / "README.md").read_text()
    with pytest.warns(UserWarning, match="no weights"):
        load_model(tmp_path / "e")


def _store_with_unfinished_cells(db: Path, tmp_path: Path) -> dict[str, str]:
    """A copy of the store plus a pending, a running and a failed cell."""
    from nasmix.events import Attempt, End
    from nasmix.study.store import Store

    store = Store(_copy_store(db, tmp_path, files=False))
    base = store.cells()[0].spec
    cells = {
        state: dataclasses.replace(base, seed=seed)
        for state, seed in (("pending", 11), ("running", 12), ("failed", 13))
    }
    store.add_cells(cells.values())
    store.append(cells["running"].id, "attempt/1", Attempt(device="cpu"))
    store.append(cells["failed"].id, "end", End(state="failed", reason="out of GPU memory"))
    store.close()
    return {state: c.id for state, c in cells.items()}


def test_refusals_exit_2_with_a_clear_message(study, tmp_path, capsys):
    from nasmix.cli import main

    db, _ = study
    ids = _store_with_unfinished_cells(db, tmp_path)
    copy, out = str(tmp_path / db.name), str(tmp_path / "out")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (["export", copy, "zzzz", "-o", out], "no cell 'zzzz'"),
        (["export", copy, ids["pending"], "-o", out], "has not started"),
        (["export", copy, ids["running"], "-o", out], "has not ended"),
        (["export", copy, ids["failed"], "-o", out], "failed (out of GPU memory)"),
        (["export", str(tmp_path / "none.db"), "abc", "-o", out], "does not exist"),
        (["export", "--space", "darts", "--arch", "normal=bogus", "-o", out], "bad"),
        (["export", "--space", "nope", "--arch", "x", "-o", out], "unknown space 'nope'"),
        (["export", "--space", "darts", "--arch", "x", "-o", str(a_file)], "is a file"),
        (["export", copy, "-o", out], "give DB CELL"),
        (["export", "--space", "nb201", "--arch", "x", copy, "c", "-o", out], "not both"),
        (["export", copy, "abc", "--size", "tiny", "-o", out], "--size apply to --arch only"),
        (["export", "--space", "nb201", "--arch", "x", "--size", "huge", "-o", out], None),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("nasmix: error: ") and "Traceback" not in err, err
        assert message is None or message in err, (argv, err)
    assert not Path(out).exists()  # nothing was made for a refused export
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(NasmixError, match="holds other files"):
        export_arch(registry.create("space", "nb201").sample(np.random.default_rng(0)), tmp_path / "foreign")


def test_without_the_data_a_known_datasets_shape_is_used_and_the_normalisation_is_unknown(study, monkeypatch):
    from nasmix.export.exporter import _cell_task

    monkeypatch.delenv("NASMIX_DATA", raising=False)
    record = read_cell(*study)

    def on(dataset):
        return dataclasses.replace(record, cell=dataclasses.replace(record.cell, dataset=dataset))

    task, mean, std, classes = _cell_task(on("cifar10"), None)
    assert task.shape == (3, 32, 32) and task.num_classes == 10 and mean is std is classes is None
    with pytest.raises(NasmixError, match="give --data"):
        _cell_task(on("imagefolder"), None)
