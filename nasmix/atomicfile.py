"""Durable, atomic replacement of a file: what a crash may leave is the old file or the new one.

`write_atomic` writes the bytes to `<name>.tmp` beside the target, flushes
and fsyncs it, renames it over the target (atomic on POSIX), then fsyncs the
folder so the rename itself survives a power loss. Until the rename the old
file is untouched; after it the new one is complete on disk. A failure
(a full disk: OSError ENOSPC) removes the temporary file and re-raises the
OSError with its errno, so callers can tell a full disk from a bug.

Files are opened through `_open`, the one seam where tests inject faults
(see tests/faults.py: a file that fails at byte N, or "crashes" there).

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.bin"
    >>> write_atomic(target, b"epoch 3").read_bytes()
    b'epoch 3'
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CHUNK = 1 << 20  # written in pieces, so a full disk shows up part-way as it does for real


def _open(path: Path, mode: str):
    """Open a file for writing (tests replace this to inject faults)."""
    return open(path, mode)


def temporary_path(path: Path) -> Path:
    """Where `write_atomic` stages the new contents of `path`."""
    return path.with_name(path.name + ".tmp")


def write_atomic(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Replace `path` with `data` durably and atomically.

    Args:
        path: the target file (its folder must exist).
        data: the new contents.

    Returns:
        The target path.

    Raises:
        OSError: the write, fsync or rename failed (errno.ENOSPC on a full
            disk); the target still holds its previous contents.
    """
    path = Path(path)
    tmp = temporary_path(path)
    view = memoryview(data).cast("B")
    try:
        with _open(tmp, "wb") as f:
            for start in range(0, len(view), CHUNK):
                f.write(view[start : start + CHUNK])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        # Only OSError is cleaned up: a process killed here leaves the .tmp file, as a real kill would,
        # and the next write of the same target overwrites it.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that a rename in it survives a power loss (a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are journaled by NTFS
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and platforms) refuse fsync on a folder
        pass
    finally:
        os.close(fd)
