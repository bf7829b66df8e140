"""Faults at a command's last write: a full disk (or an I/O error) while `train --json` writes its
history is exit 2 with the file named, never a traceback, and never a half-written file.
The other fault modules: tests/test_checkpoint_faults.py, tests/study/test_store_faults.py,
tests/study/test_study_checkpoint_faults.py, tests/study/test_workers.py, tests/test_safe_loading.py
(docs/reliability.md lists what each injects)."""

from __future__ import annotations

import errno
import json

import pytest
from faults import Fault
from test_bad_inputs import run_cli

ARGV = [
    "train",
    "--model",
    "resnet20",
    "--opt",
    "model.width=2",
    "--dataset",
    "synthetic",
    "--epochs",
    "1",
    "--train-subset",
    "20",
    "--test-subset",
    "10",
    "--batch-size",
    "10",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.mark.parametrize(("at_byte", "error"), [(0, errno.ENOSPC), (50, errno.ENOSPC), (None, errno.EIO)])
def test_full_disk_at_the_json_result(tmp_path, monkeypatch, at_byte, error):
    out = tmp_path / "h.json"
    fault = Fault(at_byte=at_byte, error=error, match="h.json").install(monkeypatch)
    code, err = run_cli([*ARGV, "--json", str(out)])
    assert fault.injected == 1
    assert code == 2 and "Traceback" not in err and "h.json" in err and "could not be written" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no half file, no temporary left


def test_the_json_result_without_a_fault(tmp_path):
    out = tmp_path / "h.json"
    code, err = run_cli([*ARGV, "--json", str(out)])
    assert code == 0, err
    assert len(json.loads(out.read_text())["history"]) == 1
