"""The public API: `import nasmix` stays light, and every example of docs/api.md runs."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import nasmix

DOCS = Path(__file__).parent.parent / "docs" / "api.md"


def test_import_nasmix_loads_neither_torch_nor_the_api():
    heavy = "('torch', 'nasmix.api', 'matplotlib')"
    code = f"import sys, nasmix; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_names_resolve():
    assert sorted(nasmix.__all__) == sorted(["__version__", *nasmix._LAZY])
    for name in nasmix.__all__:
        assert getattr(nasmix, name) is not None, name
    assert nasmix.create is nasmix.api.create and nasmix.Budget is nasmix.budget.Budget


def test_docs_api_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 20 and result.failed == 0
