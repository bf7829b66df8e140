"""Training values are checked before anything runs, a diverged run outside a study is a clear error,
and the same seed gives the same numbers."""

from __future__ import annotations

import json
import re

import pytest

from nasmix.cli import main
from nasmix.errors import ConfigError
from nasmix.train import TrainConfig
from nasmix.validate import check_seed

BAD = [
    ({"cutout": -1}, "cutout=-1 (must be >= 0)"),
    ({"crop_padding": -4}, "crop_padding=-4 (must be >= 0)"),
    ({"lr": float("inf")}, "lr=inf (must be a finite number)"),
    ({"lr": float("nan")}, "lr=nan (must be a finite number)"),
    ({"lr_min": float("nan")}, "lr_min=nan"),
    ({"weight_decay": float("nan")}, "weight_decay=nan"),
    ({"weight_decay": float("inf")}, "weight_decay=inf"),
    ({"aux_weight": float("inf")}, "aux_weight=inf"),
    ({"aux_weight": float("nan")}, "aux_weight=nan"),
    ({"grad_clip": float("nan")}, "grad_clip=nan"),
    ({"grad_clip": float("inf")}, "grad_clip=inf"),
    ({"momentum": float("nan")}, "momentum=nan"),
    ({"label_smoothing": float("inf")}, "label_smoothing=inf"),
    ({"drop_path": float("nan")}, "drop_path=nan"),
    ({"seed": -1}, "seed=-1 (seeds are integers in [0, 2**63))"),
    ({"seed": 2**63}, "seed=9223372036854775808 (seeds are integers"),
    ({"seed": 1.5}, "seed=1.5"),
    ({"seed": True}, "seed=True"),
    ({"epochs": 2**64}, "epochs=18446744073709551616 (must fit in int64)"),
    ({"batch_size": 0}, "batch_size=0 (must be >= 1)"),
    ({"lr": "0.1"}, "lr='0.1' (must be a number)"),
    ({"amp": "yes"}, "amp='yes' (must be true or false)"),
    ({"momentum": 1.0}, "momentum=1.0 (must be in [0, 1))"),
    ({"lr": 0.1, "lr_min": 0.2}, "lr_min=0.2 (must be in [0, lr])"),
]


@pytest.mark.parametrize("values,message", BAD, ids=[message for _, message in BAD])
def test_impossible_training_values_are_refused(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(**values)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError, match=r"cutout=-1 .*crop_padding=-1|crop_padding=-1 .*cutout=-1"):
        TrainConfig(cutout=-1, crop_padding=-1)


def test_the_seed_rule_is_one_rule():
    assert check_seed(0) == 0 and check_seed(2**63 - 1) == 2**63 - 1
    for bad in (-1, 2**63, 1.0, "3", None, False):
        with pytest.raises(ConfigError, match="seeds are integers in"):
            check_seed(bad, "--seed")


FLAGS = [
    "--cutout=-1",
    "--crop-padding=-1",
    "--lr=inf",
    "--lr=nan",
    "--weight-decay=nan",
    "--aux-weight=inf",
    "--grad-clip=nan",
    "--seed=-1",
    "--seed=9223372036854775808",
    "--epochs=99999999999999999999",
]


@pytest.mark.parametrize("flag", FLAGS)
def test_train_flags_are_checked_before_any_data_is_read(flag, capsys, tmp_path):
    # --data points nowhere: the values must be refused before the dataset is even looked for
    code = main(
        ["train", "--model", "resnet20", "--dataset", "cifar10", "--data", str(tmp_path / "nowhere"), flag]
    )
    err = capsys.readouterr().err
    assert (
        code == 2 and "impossible training values" in err and flag.split("=")[0][2:].replace("-", "_") in err
    )
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "line,key",
    [
        ("cutout = -1", "cutout=-1"),
        ("crop_padding = -1", "crop_padding=-1"),
        ("lr = nan", "lr=nan"),
        ("weight_decay = inf", "weight_decay=inf"),
        ("aux_weight = nan", "aux_weight=nan"),
    ],
)
def test_study_training_values_fail_the_dry_run(tmp_path, capsys, line, key):
    study = tmp_path / "s.toml"
    study.write_text(
        f'[study]\nname = "s"\nstore = "{tmp_path / "s.db"}"\nspaces = ["chain"]\nstrategies = ["random"]\n'
        f'estimators = ["train"]\ndatasets = ["synthetic"]\n\n[eval]\n{line}\n'
    )
    assert main(["study", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert key in err and "Traceback" not in err
    assert not (tmp_path / "s.db").exists()


TINY = "train --model resnet20 --model-opt width=2 --dataset synthetic --epochs 1 --device cpu --quiet"


# ---- diverged runs outside a study --------------------------------------------------------------------
def test_a_diverged_train_run_exits_2_with_a_message(capsys):
    flags = "--batch-size 50 --train-subset 100 --test-subset 50 --lr 1e30 --grad-clip 0"
    code = main(f"{TINY} {flags}".split())
    err = capsys.readouterr().err
    assert code == 2 and "training diverged" in err and "lower the learning rate" in err
    assert "Traceback" not in err


def test_a_diverged_search_exits_2_with_a_message(capsys):
    # lr=inf is refused before the search (tests/bad_inputs.py); a huge finite lr still diverges.
    flags = "--epochs 1 --size tiny --device cpu --quiet --opt strategy.lr=1e30"
    code = main(f"search --space nb201 --strategy darts --dataset synthetic {flags}".split())
    err = capsys.readouterr().err
    assert code == 2 and "training diverged (search loss is" in err and "Traceback" not in err


# ---- reproducible -------------------------------------------------------------------------------------
def _train_numbers(tmp_path, seed: int, name: str) -> list:
    out = tmp_path / f"{name}.json"
    code = main(f"{TINY} --batch-size 50 --seed {seed} --json {out}".split())
    assert code == 0
    history = json.loads(out.read_text())["history"]
    keys = ("train_loss", "train_top1", "test_loss", "test_top1", "test_top5")
    return [[h[k] for k in keys] for h in history]


def test_train_with_the_same_seed_gives_the_same_numbers(tmp_path):
    first = _train_numbers(tmp_path, 7, "a")
    assert _train_numbers(tmp_path, 7, "b") == first
    assert _train_numbers(tmp_path, 8, "c") != first
