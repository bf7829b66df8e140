"""CIFAR-10 (Krizhevsky, 2009): the official python batches, or an image folder.

Sources, by what the location holds:
- a directory with the python batches (`cifar-10-batches-py/` or its contents)
  or the official `cifar-10-python.tar.gz`;
- an image folder, directory or zip, with `train/<class>/*` and `test/<class>/*`
  (such as a JPEG copy);
- no location (no --data, no NASMIX_DATA): the official archive, downloaded
  once through torchvision into the cache directory.

The python batches are pickles. They are read through a restricted
unpickler (nasmix.safeload) that rebuilds only dicts, lists, str, bytes, int
and numpy arrays; a batch that names anything else is refused with a
DataError naming the file, and nothing in it is run.
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasmix import registry
from nasmix.data.base import Dataset, DatasetArrays, ImageArrays, cache_dir, file_key, resolve_path
from nasmix.data.files import files_key
from nasmix.data.imagefolder import read_image_folder
from nasmix.errors import DataError
from nasmix.safeload import CIFAR_GLOBALS, UnsafeContent, loads


@registry.register("dataset", "cifar10")
class Cifar10(Dataset):
    """CIFAR-10: 50,000 + 10,000 32x32 colour images in 10 classes."""

    classes: tuple[str, ...] = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    folder = "cifar-10-batches-py"
    archive = "cifar-10-python.tar.gz"
    train_files: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files: tuple[str, ...] = ("test_batch",)
    label_key = "labels"
    torchvision_name = "CIFAR10"

    @dataclass(frozen=True)
    class Config:
        path: str | None = None

    def __init__(self, config: Config = Config()):
        self.config = config
        self.path = resolve_path(config.path)

    def location(self) -> str:
        return str(self.path) if self.path is not None else f"{self.registry_name} (downloaded)"

    def source_key(self) -> str:
        if self.path is None:
            return f"download:{self.archive}"
        batches = self._batches_dir(self.path)
        if batches is not None:  # only the batch files: the folder may hold much else
            names = self.train_files + self.test_files
            return files_key([batches / n for n in names if (batches / n).exists()])
        if self.path.is_dir() and (self.path / self.archive).is_file():
            return file_key(self.path / self.archive)
        return file_key(self.path)

    def _batches_dir(self, path: Path) -> Path | None:
        """The folder holding the python batches under `path`, if any."""
        if not path.is_dir():
            return None
        batches = path / self.folder if (path / self.folder).is_dir() else path
        return batches if (batches / self.test_files[0]).exists() else None

    def read(self) -> DatasetArrays:
        path = self.path if self.path is not None else self._download()
        if path.is_file() and tarfile.is_tarfile(path):
            return self._read_tar(path)
        batches = self._batches_dir(path)
        if batches is not None:
            return self._read_batches(lambda name: (batches / name).read_bytes(), str(batches))
        if path.is_dir() and (path / self.archive).is_file():
            return self._read_tar(path / self.archive)
        return read_image_folder(path, self.registry_name, self.classes, (32, 32))

    def _read_tar(self, path: Path) -> DatasetArrays:
        try:
            with tarfile.open(path) as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

                def read(name: str) -> bytes:
                    if name not in members:
                        raise DataError(f"{path} has no member {name!r}: is it the official {self.archive}?")
                    member = tar.extractfile(members[name])
                    if member is None:  # a link or a folder, not a file
                        raise DataError(
                            f"{path}: member {name!r} is not a file: is it the official {self.archive}?"
                        )
                    return member.read()

                return self._read_batches(read, str(path))
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DataError(f"corrupt archive {path}: {err}") from err

    def _read_batches(self, read, where: str) -> DatasetArrays:
        def load(names: tuple[str, ...]) -> ImageArrays:
            xs, ys = [], []
            for name in names:
                try:
                    blob = read(name)
                except FileNotFoundError as err:
                    raise DataError(f"missing batch file {where}/{name}") from err
                data, labels = self._parse_batch(blob, f"{where}/{name}")
                xs.append(data.transpose(0, 2, 3, 1))
                ys.append(labels)
            return ImageArrays(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys))

        return DatasetArrays(self.registry_name, load(self.train_files), load(self.test_files), self.classes)

    def _parse_batch(self, blob: bytes, file: str) -> tuple[np.ndarray, np.ndarray]:
        """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one python batch; DataError naming `file`."""
        try:
            batch = loads(blob, CIFAR_GLOBALS, encoding="latin1")
        except UnsafeContent as err:
            raise DataError(
                f"refusing batch file {file}: it names {', '.join(err.names)} "
                "(a CIFAR batch holds only dicts, lists, str, bytes, "
                "int and numpy arrays); nothing in it was run"
            ) from None
        except Exception as err:  # a corrupt pickle raises almost anything (UnpicklingError, EOFError, ...)
            raise DataError(f"corrupt batch file {file}: {type(err).__name__}: {str(err)[:200]}") from None
        if not isinstance(batch, dict) or "data" not in batch or self.label_key not in batch:
            found = sorted(map(str, batch))[:6] if isinstance(batch, dict) else type(batch).__name__
            raise DataError(
                f"corrupt batch file {file}: expected a dict with 'data' and {self.label_key!r}, "
                f"found {found}"
            )
        raw, labels = batch["data"], batch[self.label_key]
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.size % 3072:
            what = f"{raw.dtype} array of shape {raw.shape}" if isinstance(raw, np.ndarray) else type(raw)
            raise DataError(
                f"corrupt batch file {file}: 'data' must be a uint8 array of 3072 values per image, "
                f"found {what}"
            )
        if not isinstance(labels, (list, np.ndarray)) or len(labels) == 0:
            raise DataError(f"corrupt batch file {file}: {self.label_key!r} is an empty label list")
        try:
            y = np.asarray(labels)
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise ValueError
        except ValueError:
            message = f"{self.label_key!r} must be a list of integers"
            raise DataError(f"corrupt batch file {file}: {message}") from None
        data = raw.reshape(-1, 3, 32, 32)
        if len(data) != len(y):
            raise DataError(f"corrupt batch file {file}: {len(data)} images but {len(y)} labels")
        if y.min() < 0 or y.max() >= len(self.classes):
            found = f"{int(y.min())}..{int(y.max())}"
            k = len(self.classes)
            raise DataError(f"corrupt batch file {file}: labels outside [0, {k}) (found {found})")
        return data, y.astype(np.int64)

    def _download(self) -> Path:
        import torchvision

        root = cache_dir() / "downloads"
        try:
            getattr(torchvision.datasets, self.torchvision_name)(root=str(root), train=True, download=True)
        except Exception as err:  # network errors come in many types
            raise DataError(
                f"no location for {self.registry_name} and the download failed ({err}); "
                "pass --data PATH or set NASMIX_DATA"
            ) from err
        return root / self.folder
