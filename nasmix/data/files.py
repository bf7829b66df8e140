"""The files of a dataset source: one listing for reading and for the cache key, and size limits.

The decode-once cache (nasmix.data.base) is keyed by `source_key`, which
changes whenever what would be read changes:
- a directory: every file's relative name, size and modification time
  (one os.scandir walk, no reading of contents), so replacing one image in
  a folder of 60,000 is noticed;
- a zip: its path, size and modification time, plus a hash of its central
  directory (every member's name, size, CRC-32 and date), read from the end
  of the file without decompressing anything;
- any other file: its path, size and modification time.

Limits against decompression bombs, checked before anything is decoded:
MAX_FILE_BYTES per image file or zip member (its declared uncompressed
size), MAX_PIXELS per image (its declared width x height).

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.png").write_bytes(b"x")
    >>> [(name, size) for name, size, _ in list_files(root)]
    [('a.png', 1)]
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

MAX_FILE_BYTES = 64 * 2**20  # one image file; a 4096x4096 PNG is about 50 MiB at worst
MAX_PIXELS = 4096 * 4096  # one image; datasets for architecture search hold small images


def list_files(root: Path) -> list[tuple[str, int, int]]:
    """(relative posix name, size, mtime_ns) of every file under a directory, sorted by name.

    Symbolic links to files are followed; links to directories are not walked
    (as pathlib's rglob in Python 3.11), which also rules out link cycles.
    """
    out: list[tuple[str, int, int]] = []
    stack = [(Path(root), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                name = prefix + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((Path(entry.path), name + "/"))
                    elif entry.is_file():
                        st = entry.stat()
                        out.append((name, st.st_size, st.st_mtime_ns))
                except OSError:  # a dangling link or a file removed during the walk: not part of the source
                    continue
    return sorted(out)


def source_key(path: Path) -> str:
    """A string that changes when anything a dataset would read at `path` changes (see the module doc)."""
    path = Path(path)
    st = path.stat()
    head = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if path.is_dir():
        digest = hashlib.sha256()
        for name, size, mtime in list_files(path):
            digest.update(f"{name}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        return f"{path.resolve()}|dir|{digest.hexdigest()}"
    central = zip_directory_digest(path)
    return f"{head}|zip:{central}" if central else head


def files_key(paths: list[Path]) -> str:
    """source_key of several files at once (the CIFAR python batches)."""
    return "|".join(source_key(p) for p in paths)


def zip_directory_digest(path: Path) -> str | None:
    """sha256 of a zip's central directory (names, sizes, CRCs, dates), or None for another file.

    Reads only the end of the file: the end-of-central-directory record and the
    directory it points to. A zip64 archive (over 65,535 members or 4 GiB) hashes
    its zip64 end record instead, which still covers the directory's size and place.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            tail_len = min(size, 65536 + 22)
            f.seek(size - tail_len)
            tail = f.read(tail_len)
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < 22:
                return None
            cd_size, cd_offset = struct.unpack("<LL", tail[at + 12 : at + 20])
            if cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF or cd_offset + cd_size > size:
                return hashlib.sha256(tail[max(0, at - 76) :]).hexdigest()  # zip64: its end records
            f.seek(cd_offset)
            digest = hashlib.sha256()
            left = cd_size
            while left > 0:
                block = f.read(min(left, 1 << 20))
                if not block:
                    break
                digest.update(block)
                left -= len(block)
            return digest.hexdigest()
    except OSError:
        return None
