"""docs/extending.md works as written: every Python block runs (in order, as one
module), what the blocks register passes its contract suites, the command lines run,
and the plugin package of its last section, installed, registers its proxy."""

from __future__ import annotations

import importlib
import re
import shlex
import sys
import types
from pathlib import Path

import pytest

from nasmix import registry, testing
from nasmix.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DOC = Path(__file__).parents[1] / "docs" / "extending.md"
BLOCK = re.compile(r"```(python|toml|bash)\n(.*?)```", re.S)
FILE = re.compile(r"# file: (\S+)\n")


def blocks(language: str, files: bool) -> list[tuple[str | None, str]]:
    """(file name or None, code) of the doc's blocks of a language, with or without a `# file:` line."""
    out = []
    for lang, code in BLOCK.findall(DOC.read_text()):
        name = FILE.match(code)
        if lang == language and bool(name) == files:
            out.append((name.group(1) if name else None, code[name.end() :] if name else code))
    return out


@pytest.fixture(scope="module")
def guide():
    """The doc's in-tree modules, registered by running its Python blocks as one module."""
    before = {kind: set(registry.names(kind)) for kind in registry.KINDS}
    module = types.ModuleType("nasmix_extending_guide")
    sys.modules[module.__name__] = module
    try:
        for _, code in blocks("python", files=False):
            exec(compile(code, str(DOC), "exec"), module.__dict__)
        added = {kind: set(registry.names(kind)) - before[kind] for kind in registry.KINDS}
        yield added
    finally:
        for kind in registry.KINDS:
            for name in set(registry.names(kind)) - before[kind]:
                registry.unregister(kind, name)
        del sys.modules[module.__name__]


def test_the_guide_registers_one_module_of_each_kind(guide):
    expected = {
        "space": {"stack"},
        "strategy": {"hill_climb"},
        "estimator": {"few_steps"},
        "proxy": {"output_spread"},
        "dataset": {"stripes"},
        "model": set(),
    }
    assert guide == expected


def test_the_guide_modules_pass_their_contracts(guide):
    for check in testing.SPACE_CHECKS:
        check("stack")
    testing.check_strategy("hill_climb", "stack")
    testing.check_strategy("gdas", "stack")  # the space's supernet drives a one-shot strategy
    testing.check_estimator("few_steps", "stack")
    testing.check_proxy("output_spread")
    testing.check_dataset("stripes")


def test_the_guide_command_lines_run(guide, capsys):
    ((_, code),) = blocks("bash", files=False)
    lines = code.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("nasmix ")]
    assert len(commands) == 3
    for argv in commands:
        if argv[0] == "search":
            argv = argv + ["--device", "cpu", "--quiet"]
        assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "stack" in out and out.count("chosen arch: stack") == 2


def test_the_guide_plugin_package_installs_and_registers(tmp_path, monkeypatch):
    files = dict(blocks("python", files=True)) | dict(blocks("toml", files=True))
    assert set(files) == {"pyproject.toml", "mynas/__init__.py", "mynas/modules.py"}
    for name, code in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(code)
    # What `pip install` would write: the distribution's metadata and entry points.
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = tmp_path / f"{project['name']}-{project['version']}.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    (info / "METADATA").write_text(metadata)
    points = project["entry-points"][registry.PLUGIN_GROUP]
    (info / "entry_points.txt").write_text(
        f"[{registry.PLUGIN_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        assert registry.load_plugins(reload=True) == []
        entry = registry.get("proxy", "mynas_weight_l1")
        assert entry.plugin == "mynas"
        testing.check_proxy("mynas_weight_l1")
    finally:
        monkeypatch.undo()
        for name in [m for m in sys.modules if m.split(".")[0] == "mynas"]:
            del sys.modules[name]
        importlib.invalidate_caches()
        registry.load_plugins(reload=True)
    assert "mynas_weight_l1" not in registry.names("proxy")
