"""Plugins: modules of another package, registered through the `nasmix.plugins`
entry-point group, appear in `nasmix list`, the CLI, studies and the contract
tests; a plugin that fails to load is named, and the rest of nasmix works on.

The fixture packages under tests/fixtures/plugins are made visible to
importlib.metadata by their `*.dist-info` folders once their folder is on sys.path.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasmix import registry, testing
from nasmix.cli import main
from nasmix.errors import UnknownNameError
from nasmix.events import Candidate
from nasmix.study.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "plugins"
ROOT = Path(__file__).parents[1]
PLUGIN_MODULES = ("nasmix_demo_plugin", "nasmix_broken_plugin", "nasmix_clash_plugin")


@pytest.fixture
def plugins(monkeypatch):
    """Put plugin folders on sys.path and reload the registry's plugins; undo it all after."""

    def install(*folders: str) -> list[registry.PluginFailure]:
        for folder in folders:
            monkeypatch.syspath_prepend(str(FIXTURES / folder))
        importlib.invalidate_caches()
        return registry.load_plugins(reload=True)

    yield install
    monkeypatch.undo()
    for name in [m for m in sys.modules if m.split(".")[0] in PLUGIN_MODULES]:
        del sys.modules[name]
    importlib.invalidate_caches()
    registry.load_plugins(reload=True)


def test_a_plugin_registers_its_modules_and_list_shows_them(plugins, capsys):
    assert plugins("good") == []
    for kind, name in (("proxy", "demo_weight_sum"), ("strategy", "demo_walk"), ("model", "demo_mlp")):
        assert name in registry.names(kind)
        assert registry.get(kind, name).plugin == "demo"
    assert registry.get("proxy", "snip").plugin is None
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "plugin" in out and "demo_walk" in out and "Demo plugin strategy" in out and "snip" in out


def test_plugin_modules_pass_their_contracts(plugins):
    plugins("good")
    testing.check_proxy("demo_weight_sum")
    testing.check_model("demo_mlp")
    testing.check_strategy("demo_walk", "nb201")


def test_plugin_modules_work_in_the_cli_and_in_a_study_cell(plugins, tmp_path, capsys):
    plugins("good")
    argv = [
        "train",
        "--model",
        "demo_mlp",
        "--opt",
        "model.hidden=8",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
        "--batch-size",
        "50",
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert "final test top-1" in capsys.readouterr().out
    store = tmp_path / "plugin.db"
    argv = [
        "run",
        "--space",
        "nb201",
        "--strategy",
        "demo_walk",
        "--opt",
        "strategy.start=2",
        "--estimator",
        "zero_cost",
        "--opt",
        "estimator.proxy=demo_weight_sum",
        "--dataset",
        "synthetic",
        "--candidates",
        "3",
        "--search-size",
        "tiny",
        "--eval-epochs",
        "1",
        "--eval-size",
        "tiny",
        "--device",
        "cpu",
        "--store",
        str(store),
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    with Store(store, readonly=True) as db:
        (cell,) = db.cells()
        assert cell.state == "finished" and "demo_walk" in cell.label
        candidates = cell.events_of(Candidate)
        assert len(candidates) == 3 and all(c.fidelity["proxy"] == "demo_weight_sum" for c in candidates)


def test_a_broken_plugin_is_named_and_the_rest_works(plugins, capsys):
    with pytest.warns(registry.PluginWarning) as warned:
        failures = plugins("good", "broken")
    by_name = {f.name: f for f in failures}
    assert set(by_name) == {"broken", "clash"}
    assert by_name["broken"].package == "nasmix-broken-plugin"
    broken = by_name["broken"].error
    assert "ModuleNotFoundError" in broken and "nasmix_missing_dependency" in broken
    assert "'snip' is registered twice" in by_name["clash"].error
    assert {str(w.message) for w in warned} == {str(f) for f in failures}
    # All or nothing: the proxy registered before the failing import is gone; nasmix's snip stays nasmix's.
    assert "half_registered" not in registry.names("proxy")
    assert registry.get("proxy", "snip").plugin is None
    assert "demo_walk" in registry.names("strategy")  # the good plugin still loads
    with pytest.raises(UnknownNameError, match=r"plugin 'broken' .* failed to load: ModuleNotFoundError"):
        registry.get("proxy", "half_registered")
    assert main(["list", "proxy"]) == 0
    captured = capsys.readouterr()
    assert "synflow" in captured.out and "demo_weight_sum" in captured.out
    assert "plugin failed to load" in captured.out
    assert "'broken'" in captured.out and "'clash'" in captured.out


@pytest.mark.slow
def test_the_contract_suite_collects_an_installed_plugin_in_a_fresh_process():
    """A new interpreter, as CI runs it: the plugin's names join the parametrized contract tests."""
    path = os.pathsep.join([str(ROOT), str(FIXTURES / "good"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rA",
        str(ROOT / "tests" / "test_contracts.py"),
        "-k",
        "demo_weight_sum or demo_mlp or (demo_walk and nb201)",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for test in (
        "test_proxy_contract[demo_weight_sum]",
        "test_model_contract[demo_mlp]",
        "test_strategy_contract[demo_walk-nb201]",
    ):
        assert f"PASSED tests/test_contracts.py::{test}" in done.stdout, done.stdout
