"""Fault injection for the reliability tests: a disk that fills up at byte N, a crash at byte N.

nasmix writes files that must survive faults (checkpoints) through
`nasmix.atomicfile.write_atomic`, which opens them with `nasmix.atomicfile._open`.
`Fault.install(monkeypatch)` replaces that opener with one whose files fail at a
chosen byte: with OSError(ENOSPC) as a full disk does, with another errno, or
with `Crash`, which stands for SIGKILL (a BaseException: no `except Exception`
or `except OSError` clean-up runs, so whatever a killed process would leave
on disk is left).

Importable from any test (tests/ is on sys.path through its conftest.py):

    from faults import Crash, Fault

    def test_full_disk(monkeypatch):
        fault = Fault(at_byte=100, match="epoch-0002").install(monkeypatch)
        ...  # the second checkpoint fails at byte 100
        assert fault.injected == 1
"""

from __future__ import annotations

import errno
import os


class Crash(BaseException):
    """Stands for SIGKILL at the fault point: nothing after it runs, nothing is cleaned up."""


class Fault:
    """A plan of write faults for files opened through nasmix.atomicfile.

    Args:
        at_byte: byte offset within a file where the write fails (the bytes
            before it reach the file, as a partial write does); None: every
            byte is written and the fault hits at the flush before fsync.
        error: an errno for OSError (errno.ENOSPC: a full disk; errno.EIO...),
            or "crash" to raise Crash.
        match: only files whose name contains this text fail (None: all).
        times: how many faults to inject; later files write normally.

    Attributes:
        injected: faults raised so far.
        bytes_written: bytes that reached files opened through the opener.
    """

    def __init__(
        self,
        at_byte: int | None = 0,
        error: int | str = errno.ENOSPC,
        match: str | None = None,
        times: int = 1,
    ):
        self.at_byte, self.error, self.match, self.times = at_byte, error, match, times
        self.injected = 0
        self.bytes_written = 0

    def install(self, monkeypatch) -> Fault:
        """Route nasmix.atomicfile's opener through this plan for the rest of the test."""
        import nasmix.atomicfile

        monkeypatch.setattr(nasmix.atomicfile, "_open", self.open)
        return self

    def open(self, path, mode: str):
        f = open(path, mode)  # noqa: SIM115 - the wrapper returned owns the file, and its caller closes it
        armed = self.injected < self.times and (self.match is None or self.match in os.fspath(path))
        return _FaultyFile(f, self) if armed else _CountingFile(f, self)

    def fire(self) -> None:
        """Raise the planned fault (and count it)."""
        self.injected += 1
        if self.error == "crash":
            raise Crash(f"crash injected (fault {self.injected})")
        raise OSError(self.error, os.strerror(self.error))


class _CountingFile:
    """A file that counts what it writes."""

    def __init__(self, f, plan: Fault):
        self.f, self.plan, self.offset = f, plan, 0

    def write(self, data) -> int:
        n = self.f.write(data)
        self.offset += n
        self.plan.bytes_written += n
        return n

    def flush(self) -> None:
        self.f.flush()

    def fileno(self) -> int:
        return self.f.fileno()

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


class _FaultyFile(_CountingFile):
    """A file that fails at the plan's byte (or at its flush)."""

    def write(self, data) -> int:
        at = self.plan.at_byte
        if at is not None and self.offset + len(data) > at:
            super().write(memoryview(data)[: max(at - self.offset, 0)])
            self.f.flush()  # the partial write reaches the file, as it would on a real disk
            self.plan.fire()
        return super().write(data)

    def flush(self) -> None:
        self.f.flush()
        if self.plan.at_byte is None:
            self.plan.fire()
