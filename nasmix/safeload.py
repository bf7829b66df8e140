"""Reading pickles without running code from them.

A pickle names Python callables (GLOBAL opcodes) that the loader calls to
rebuild objects; a crafted file names `os.system` or `open`. nasmix reads
two kinds of foreign pickles:

- torch files (checkpoints, NAS-Bench-201's .pth): `torch_load` uses
  `torch.load(weights_only=True)`, which rebuilds only tensors and plain
  Python values, and tells a file that names another callable (refused:
  `UnsafeContent`) from one that is merely corrupt;
- plain pickles (the CIFAR python batches, NATS-Bench's .pickle.pbz2):
  `RestrictedUnpickler` resolves only the globals of an allowlist (builtin
  containers and numpy's array and scalar reconstruction) and refuses every
  other one before anything is called.

Example:
    >>> import pickle
    >>> loads(pickle.dumps({"labels": [1, 2]}), CIFAR_GLOBALS)
    {'labels': [1, 2]}
    >>> try:
    ...     loads(pickle.dumps(print), CIFAR_GLOBALS)
    ... except UnsafeContent as err:
    ...     print(err)
    builtins.print is not plain data
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np


class UnsafeContent(pickle.UnpicklingError):
    """A pickle names a callable beyond plain data; nothing was called.

    Attributes:
        names: the refused globals, as "module.name".
    """

    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} not plain data")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy's array and scalar reconstruction, under its numpy 1 and numpy 2 module names."""
    try:
        from numpy._core import multiarray, numeric  # numpy 2
    except ImportError:  # numpy 1
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    found = {
        "_reconstruct": multiarray._reconstruct,  # ndarray.__reduce__ (protocols 0-4)
        "scalar": multiarray.scalar,  # numpy scalars (np.int64(3) in a label list)
        # ndarray.__reduce_ex__ with protocol 5; a private name, absent from numpy's stubs
        "_frombuffer": numeric._frombuffer,  # type: ignore[attr-defined]
    }
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):  # numpy 1 and 2 names; numpy 2 reads both
        for module in ("multiarray", "numeric"):
            for name, obj in found.items():
                out[(f"{package}.{module}", name)] = obj
    return out


def _builtins(*names: str) -> dict[tuple[str, str], Any]:
    import builtins

    # Python 2 pickles (the CIFAR batches) name the module __builtin__
    return {(module, n): getattr(builtins, n) for module in ("builtins", "__builtin__") for n in names}


# What a CIFAR python batch is made of: a dict of lists, str, bytes, int and one uint8 array.
# `_codecs.encode` rebuilds bytes in protocol-2 pickles written by Python 3.
CIFAR_GLOBALS: dict[tuple[str, str], Any] = {
    **_builtins("dict", "list", "str", "bytes", "int"),
    ("_codecs", "encode"): __import__("codecs").encode,
    **_numpy_globals(),
}
# NATS-Bench's result files add floats, tuples (dict keys), sets and OrderedDicts.
PLAIN_GLOBALS: dict[tuple[str, str], Any] = {
    **CIFAR_GLOBALS,
    **_builtins("float", "tuple", "set", "frozenset", "bool", "complex", "bytearray"),
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only allowlisted globals.

    Args:
        file: a binary file.
        allowed: {(module, name): object} the pickle may name.
        encoding: for Python 2 str objects (CIFAR's batches need "latin1").
    """

    def __init__(self, file, allowed: dict[tuple[str, str], Any], encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafeContent([f"{module}.{name}"]) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeContent([f"persistent id {str(pid)[:40]!r}"])


def loads(data: bytes, allowed: dict[tuple[str, str], Any], encoding: str = "ASCII") -> Any:
    """Unpickle bytes through RestrictedUnpickler.

    Raises:
        UnsafeContent: the pickle names a global outside `allowed` (nothing was called).
        pickle.UnpicklingError, EOFError, ValueError...: a corrupt pickle.
    """
    return RestrictedUnpickler(io.BytesIO(data), allowed, encoding).load()


def load(file, allowed: dict[tuple[str, str], Any], encoding: str = "ASCII") -> Any:
    """Unpickle an open binary file through RestrictedUnpickler (see `loads`)."""
    return RestrictedUnpickler(file, allowed, encoding).load()


def numpy_torch_globals() -> list:
    """What weights_only loading must also allow for numpy arrays and scalars (plain data, no code)."""
    out = [obj for (module, _), obj in _numpy_globals().items() if module.startswith("numpy")]
    try:
        import numpy.dtypes as dtypes  # numpy >= 1.25: a dtype pickles with its class

        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    except ImportError:
        pass
    return list(dict.fromkeys(out))


def torch_load(path: str | os.PathLike, extra_globals: list | tuple = ()) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, telling unsafe files from corrupt ones.

    Args:
        path: the file.
        extra_globals: more plain-data types to accept (`numpy_torch_globals()`).

    Returns:
        The loaded object (tensors and plain Python values only).

    Raises:
        UnsafeContent: the file names callables beyond tensors and plain values
            (it was not run); `names` lists them where torch reports them.
        Exception: any other error means a corrupt, truncated or foreign file
            (torch raises RuntimeError, EOFError, IndexError, UnpicklingError...).
    """
    import torch

    with warnings.catch_warnings(), torch.serialization.safe_globals(list(extra_globals)):
        # torch warns about pickle protocols it did not write; the load decides
        warnings.simplefilter("ignore", UserWarning)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            names = _unsafe_globals(Path(path), str(err))
            if names:
                raise UnsafeContent(names) from None
            raise


def _unsafe_globals(path: Path, message: str) -> list[str]:
    """The callables a torch file names beyond what weights_only allows ([] when it is only corrupt)."""
    import torch

    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # a legacy (non-zip) file or a corrupt one: fall back on torch's message
        names = []
    if names:
        return names
    marker = "Unsupported global: GLOBAL "
    if marker in message:
        return [message.split(marker, 1)[1].split()[0]]
    if "Unsupported operand" in message and "persistent" not in message:
        # A legacy (non-zip) pickle whose opcodes weights_only does not read (protocol 4 framing):
        # scan it ourselves for the globals it would call.
        return _scan_globals(path)
    return []


def _scan_globals(path: Path) -> list[str]:
    """The GLOBAL / STACK_GLOBAL callables of a plain pickle stream, not in PLAIN_GLOBALS."""
    import pickletools

    names: list[str] = []
    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for op, arg, _ in pickletools.genops(f):
                # genops types `arg` by opcode, which its annotation cannot say: a str for these
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(cast(str, arg))
                elif op.name == "GLOBAL":
                    names.append(cast(str, arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # the stream ends or breaks: report what was seen before
        pass
    allowed = {f"{m}.{n}" for m, n in PLAIN_GLOBALS}
    return [n for n in dict.fromkeys(names) if n not in allowed]
