import glob
import re
import shlex
from pathlib import Path

import pytest

from nasmix import registry
from nasmix.cli import build_parser, main
from nasmix.flags import module_options

ROOT = Path(__file__).parents[1]


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
    assert main(["train", "--model", "resnet20", "--opt", "width=4"]) == 2
    assert "must look like KIND.KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "--model", "resnet20", "--opt", "space.width=4"]) == 2
    assert "unknown module kind in --opt 'space'" in capsys.readouterr().err
    assert main(["train", "--model", "resnet20", "--opt", "model.height=4"]) == 2
    assert "unknown option of model 'resnet20' 'height'" in capsys.readouterr().err


def test_train_prints_per_epoch_lines_and_final_accuracy(capsys, tmp_path):
    argv = [
        "train",
        "--model",
        "resnet20",
        "--opt",
        "model.width=4",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--json",
        str(tmp_path / "h.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "final test top-1" in out
    assert (tmp_path / "h.json").exists()


@pytest.mark.cifar
def test_reference_net_reaches_40_percent_on_real_cifar10(cifar_path, capsys, all_cores):
    """Acceptance: ResNet-20, 3 epochs on a balanced 10,000-image subset, full test set."""
    argv = [
        "train",
        "--model",
        "resnet20",
        "--dataset",
        "cifar10",
        "--data",
        str(cifar_path),
        "--epochs",
        "3",
        "--train-subset",
        "10000",
        "--eval-every",
        "3",  # the test set once, after the last epoch: the acceptance figure
        "--device",
        "cpu",
    ]
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
    argv = [
        "train",
        "--model",
        "resnet20",
        "--opt",
        "model.width=4",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--checkpoint-dir",
        str(tmp_path / "ck"),
        "--quiet",
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "ck").glob("*.pt")) == ["epoch-0001.pt", "epoch-0002.pt"]
    first = capsys.readouterr().out
    assert main(argv) == 0  # the finished run is read back, not retrained
    again = capsys.readouterr().out
    top1 = lambda out: re.search(r"final test top-1 ([\d.]+)%", out).group(1)  # noqa: E731
    assert top1(first) == top1(again) and "epoch   1/2" not in again


def test_the_old_model_option_flag_still_works_with_a_notice(capsys):
    argv = [
        "train",
        "--model",
        "resnet20",
        "--model-opt",
        "width=2",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--quiet",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "--model-opt is deprecated; use --opt model.KEY=VALUE" in captured.err
    assert "resnet20: 4,556 parameters" in captured.out  # width 2, not the 272,474 parameters of width 16


def test_train_stops_at_max_seconds_between_epochs(capsys):
    argv = [
        "train",
        "--model",
        "resnet20",
        "--opt",
        "model.width=2",
        "--dataset",
        "synthetic",
        "--epochs",
        "3",
        "--batch-size",
        "100",
        "--max-seconds",
        "1e-9",
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "stopped after 1 of 3 epochs: max_seconds" in out and "final test top-1" in out


def test_cli_holds_only_the_parser_and_main():
    import nasmix.cli

    own = lambda v: callable(v) and getattr(v, "__module__", "") == "nasmix.cli"  # noqa: E731
    public = {n for n, v in vars(nasmix.cli).items() if own(v)}
    assert public == {"build_parser", "main"}
    commands = {p.stem for p in (ROOT / "nasmix" / "commands").glob("*.py")} - {"__init__"}
    choices = build_parser()._subparsers._group_actions[0].choices
    assert {"list", "train", "show", "search", "run", "study", "status", "report", "export"} <= set(choices)
    assert set(choices) <= commands  # every subcommand is a file of nasmix/commands


def _documented_command_lines():
    """Every `nasmix ...` line in the code blocks of README.md and docs/ (continuations joined)."""
    found = []
    # docs/extending.md's lines name modules its own blocks define: tests/test_docs_extending.py runs them.
    docs = sorted(glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True))
    docs = [p for p in docs if p != "docs/extending.md"]
    for path in ["README.md", *docs]:
        for block in re.findall(r"```[a-z]*\n(.*?)```", (ROOT / path).read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    if not part.split() or not part.split()[0].endswith("nasmix"):
                        continue
                    words = shlex.split(part, comments=True)
                    if words:
                        found.append(pytest.param(words[1:], id=f"{path}: {' '.join(words[:3])}"))
    return found


@pytest.mark.parametrize("argv", _documented_command_lines())
def test_documented_command_lines_parse(argv):
    """The flags the docs show exist, and their --opt pairs name valid kinds and options."""
    placeholders = {"N": "1", "S": "1"}
    argv = [placeholders.get(w.strip("[]"), w.strip("[]")) for w in argv if w.strip("[]")]
    args = build_parser().parse_args(argv)
    for kind, options in module_options(args).items():
        registry.create(kind, getattr(args, kind), **options)
