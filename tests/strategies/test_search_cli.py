"""`nasmix search` on synthetic data, its errors, and (marked cifar) a real CIFAR-10 search."""

from __future__ import annotations

import json

import pytest

from nasmix.cli import main


def _run(tmp_path, *extra: str) -> tuple[int, dict | None]:
    out = tmp_path / "search.json"
    argv = [
        "search",
        "--space",
        "nb201",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        "--size",
        "tiny",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--train-subset",
        "100",
        "--json",
        str(out),
        *extra,
    ]
    code = main(argv)
    return code, (json.loads(out.read_text()) if out.exists() else None)


def test_search_cli_prints_epochs_and_the_chosen_arch(tmp_path, capsys):
    code, result = _run(tmp_path, "--strategy", "gdas", "--seed", "1")
    text = capsys.readouterr().out
    assert code == 0
    assert "epoch   1/2" in text and "epoch   2/2" in text and "tau" in text
    assert f"chosen arch: {result['arch']}" in text and "search time:" in text
    epochs = [e for e in result["events"] if e["event"] == "search_epoch"]
    assert len(epochs) == 2 and result["events"][-1]["event"] == "search_done"


def test_search_cli_takes_strategy_options(tmp_path, capsys):
    code, result = _run(tmp_path, "--strategy", "pcdarts", "--opt", "strategy.partial=2")
    assert code == 0
    assert all(e["partial"] == 2 for e in result["events"] if e["event"] == "search_epoch")


def test_search_cli_runs_a_discrete_strategy_with_an_estimator_and_its_options(tmp_path, capsys):
    code, result = _run(
        tmp_path,
        "--strategy",
        "random",
        "--estimator",
        "zero_cost",
        "--candidates",
        "3",
        "--opt",
        "estimator.proxy=params",
        "--opt",
        "estimator.batch_size=8",
    )
    text = capsys.readouterr().out
    assert code == 0
    candidates = [e for e in result["events"] if e["event"] == "candidate"]
    assert [c["index"] for c in candidates] == [1, 2, 3]
    assert all(c["fidelity"]["proxy"] == "params" and c["fidelity"]["batch_size"] == 8 for c in candidates)
    assert "candidate   3/3" in text and f"chosen arch: {result['arch']}" in text
    best = max(candidates, key=lambda c: c["score"])
    assert result["arch"] == best["arch"]


def test_the_old_option_flag_still_works_with_a_notice(tmp_path, capsys):
    code, result = _run(tmp_path, "--strategy", "pcdarts", "--strategy-opt", "partial=2")
    assert code == 0
    assert "--strategy-opt is deprecated; use --opt strategy.KEY=VALUE" in capsys.readouterr().err
    assert all(e["partial"] == 2 for e in result["events"] if e["event"] == "search_epoch")


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--strategy", "random"), "is discrete: give --estimator"),
        (("--strategy", "gdas", "--estimator", "train"), "one-shot"),
        (("--strategy", "random", "--estimator", "zero_cosst"), "unknown estimator"),
        (
            ("--strategy", "random", "--estimator", "zero_cost", "--opt", "estimator.proxy=snipp"),
            "unknown proxy",
        ),
        (("--strategy", "gdaz"), "unknown strategy"),
        (("--strategy", "gdas", "--size", "huge"), "unknown network size"),
        (("--strategy", "darts", "--opt", "strategy.order=3"), "order must be 1 or 2"),
        (("--strategy", "darts", "--opt", "order=3"), "must look like KIND.KEY=VALUE"),
        (("--strategy", "darts", "--opt", "model.width=3"), "unknown module kind in --opt 'model'"),
        (("--strategy", "darts", "--opt", "space.nodes=3"), "unknown option of space 'nb201'"),
    ],
)
def test_search_cli_errors_exit_2(tmp_path, capsys, extra, message):
    code, _ = _run(tmp_path, *extra)
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.cifar
def test_gdas_simple_cell_cifar_search(cifar_path, tmp_path, capsys):
    """The acceptance search: GDAS on simple_cell, one epoch on a 5,000-image CIFAR-10 subset (40 steps)."""
    out = tmp_path / "cifar.json"
    code = main(
        [
            "search",
            "--space",
            "simple_cell",
            "--strategy",
            "gdas",
            "--dataset",
            "cifar10",
            "--data",
            str(cifar_path),
            "--train-subset",
            "5000",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    epoch = next(e for e in result["events"] if e["event"] == "search_epoch")
    assert epoch["steps"] == 40 and 0.0 <= epoch["train_top1"] <= 1.0
    assert result["arch"].startswith("simple_cell:")
