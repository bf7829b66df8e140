"""Helpers of the store tests: tiny studies, crashed and read-only copies of a store.

Importable from tests/study (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from nasmix.study.store import Store

TINY = """
[study]
name = "{name}"
store = "{store}"
spaces = ["chain"]
strategies = ["random"]
estimators = ["zero_cost"]
datasets = ["synthetic"]
seeds = {seeds}
device = "cpu"

[search]
candidates = 2
size = "tiny"
batch_size = 32

[eval]
preset = "fast"
size = "tiny"
epochs = {epochs}
batch_size = 64
checkpoint_every = 1
eval_every = 1
"""


def tiny_study(
    folder: Path, name: str = "tiny", seeds: int = 2, epochs: int = 2, store: Path | None = None
) -> Path:
    """A study file of `seeds` tiny cells (about half a second of CPU each) whose store is folder/NAME.db."""
    path = folder / f"{name}.toml"
    store = store or folder / f"{name}.db"
    path.write_text(TINY.format(name=name, store=store, seeds=list(range(seeds)), epochs=epochs))
    return path


def nasmix_cmd(*args: str) -> list[str]:
    """The nasmix CLI of this checkout, as a subprocess command line."""
    return [
        sys.executable,
        "-c",
        "import sys; from nasmix.cli import main; sys.exit(main(sys.argv[1:]))",
        *args,
    ]


def copy_store(db: Path, folder: Path, name: str | None = None) -> Path:
    """A copy of a closed store (its file only) in another folder."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / (name or db.name)
    shutil.copyfile(db, out)
    return out


def snapshot(db: Path) -> dict[str, tuple]:
    """What status and report read: per cell its state and its events' keys and data."""
    with Store.open_readonly(db) as store:
        return {c.id: (c.state, [(e.key, e.kind, e.data) for e in c.events]) for c in store.cells()}


def readonly(folder: Path) -> None:
    """Make a folder and its files read-only (for every user but root)."""
    for p in folder.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


@contextlib.contextmanager
def without_root() -> Iterator[None]:
    """Permissions apply inside: root acts as `nobody` (effective ids only, restored after)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def readonly_mount_works() -> bool:
    """Whether `unshare -m` may bind-mount a folder read-only here (root, or user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    probe = "d=$(mktemp -d) && mount --bind $d $d && mount -o remount,bind,ro $d && ! touch $d/x 2>/dev/null"
    try:
        return (
            subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True, timeout=20).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False
