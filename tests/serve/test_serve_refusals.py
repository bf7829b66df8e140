"""`nasmix serve` refuses a missing, non-file, corrupt or foreign store with exit code 2, before
anything listens; and binding says what a non-loopback address exposes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nasmix.cli import main
from nasmix.serve.launch import bind, exposure_warning, is_loopback

ROOT = Path(__file__).resolve().parents[2]


def refused(capsys, *argv) -> str:
    assert main(["serve", *map(str, argv), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasmix: error:") and "Traceback" not in err
    return err


def test_missing_store_is_refused(tmp_path, capsys):
    assert "does not exist" in refused(capsys, tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()  # nothing created


def test_folder_and_pipe_are_refused(tmp_path, capsys):
    assert "not a file" in refused(capsys, tmp_path)
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    assert "not a file" in refused(capsys, fifo)  # SQLite would block on a pipe


def test_corrupt_and_foreign_stores_are_refused(tmp_path, capsys):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    assert "store" in refused(capsys, junk)
    text = tmp_path / "notes.db"
    text.write_text("not a database at all\n" * 50)
    assert "store" in refused(capsys, text)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    assert "store" in refused(capsys, foreign)
    assert text.read_text() == "not a database at all\n" * 50  # read-only: never written


def test_the_cli_exits_2_in_a_real_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "nasmix.cli",
        "serve",
        str(tmp_path / "none.db"),
        "--port",
        "0",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr


def test_binding(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with pytest.raises(Exception, match="another program uses it"):
            bind("127.0.0.1", port)
    finally:
        sock.close()
    with pytest.raises(Exception, match="not a port number"):
        bind("127.0.0.1", 70000)
    warning = exposure_warning("0.0.0.0", 8050)
    assert "no authentication" in warning and "ssh -N -L 8050:127.0.0.1:8050" in warning
