import re

import pytest

from nasmix import registry
from nasmix.cli import main


def test_list_shows_every_module_with_its_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in registry.KINDS:
        for entry in registry.entries(kind):
            assert entry.name in out and entry.description[:30] in out


def test_list_one_kind(capsys):
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    assert "cifar10" in out and "resnet20" not in out


def test_unknown_names_exit_2(capsys):
    assert main(["list", "spacez"]) == 2
    assert "unknown module kind 'spacez'" in capsys.readouterr().err
    assert main(["train", "--model", "resnet2", "--dataset", "synthetic"]) == 2
    assert "Did you mean 'resnet20'" in capsys.readouterr().err
    assert main(["train", "--model", "resnet20", "--dataset", "cifar11"]) == 2
    assert "unknown dataset 'cifar11'" in capsys.readouterr().err


def test_bad_values_exit_2(capsys, tmp_path):
    assert main(["train", "--model", "resnet20", "--dataset", "synthetic", "--epochs", "0"]) == 2
    assert "epochs=0" in capsys.readouterr().err
    assert main(["train", "--model", "resnet20", "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--model", "resnet20", "--model-opt", "width"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_train_prints_per_epoch_lines_and_final_accuracy(capsys, tmp_path):
    argv = ["train", "--model", "resnet20", "--model-opt", "width=4", "--dataset", "synthetic", "--epochs", "2",
            "--batch-size", "50", "--json", str(tmp_path / "h.json")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "final test top-1" in out
    assert (tmp_path / "h.json").exists()


@pytest.mark.cifar
def test_reference_net_reaches_40_percent_on_real_cifar10(cifar_path, capsys, all_cores):
    """Acceptance: ResNet-20, 3 epochs on a balanced 10,000-image subset, full test set."""
    argv = ["train", "--model", "resnet20", "--dataset", "cifar10", "--data", str(cifar_path), "--epochs", "3",
            "--train-subset", "10000", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    print(out)
    top1 = float(re.search(r"final test top-1 ([\d.]+)%", out).group(1))
    assert "10,000 test images" in out
    assert top1 >= 40.0


@pytest.mark.parametrize("kind,name", [("strategies", "random"), ("proxies", "synflow"), ("spaces", "nb201")])
def test_list_takes_plural_kinds(capsys, kind, name):
    assert main(["list", kind]) == 0, capsys.readouterr().err
    assert name in capsys.readouterr().out


def test_train_with_a_checkpoint_dir_checkpoints_and_resumes(capsys, tmp_path):
    argv = ["train", "--model", "resnet20", "--model-opt", "width=4", "--dataset", "synthetic", "--epochs", "2",
            "--batch-size", "50", "--checkpoint-dir", str(tmp_path / "ck"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "ck").glob("*.pt")) == ["epoch-0001.pt", "epoch-0002.pt"]
    first = capsys.readouterr().out
    assert main(argv) == 0  # the finished run is read back, not retrained
    again = capsys.readouterr().out
    top1 = lambda out: re.search(r"final test top-1 ([\d.]+)%", out).group(1)  # noqa: E731
    assert top1(first) == top1(again) and "epoch   1/2" not in again
