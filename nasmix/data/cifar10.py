"""CIFAR-10 (Krizhevsky, 2009): the official python batches, or an image folder.

Sources, by what the location holds:
- a directory with the python batches (`cifar-10-batches-py/` or its contents)
  or the official `cifar-10-python.tar.gz`;
- an image folder, directory or zip, with `train/<class>/*` and `test/<class>/*`
  (such as a JPEG copy);
- no location (no --data, no NASMIX_DATA): the official archive, downloaded
  once through torchvision into the cache directory.
"""

from __future__ import annotations

import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasmix import registry
from nasmix.data.base import Dataset, DatasetArrays, ImageArrays, cache_dir, file_key, resolve_path
from nasmix.data.imagefolder import read_image_folder
from nasmix.errors import DataError


@registry.register("dataset", "cifar10")
class Cifar10(Dataset):
    """CIFAR-10: 50,000 + 10,000 32x32 colour images in 10 classes."""

    classes: tuple[str, ...] = (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip
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

    def source_key(self) -> str:
        return file_key(self.path) if self.path is not None else f"download:{self.archive}"

    def read(self) -> DatasetArrays:
        path = self.path if self.path is not None else self._download()
        if path.is_file() and tarfile.is_tarfile(path):
            return self._read_tar(path)
        if path.is_dir():
            batches = path / self.folder if (path / self.folder).is_dir() else path
            if (batches / self.test_files[0]).exists():
                return self._read_batches(lambda name: (batches / name).read_bytes(), str(batches))
            if (path / self.archive).is_file():
                return self._read_tar(path / self.archive)
        return read_image_folder(path, self.registry_name, self.classes, (32, 32))

    def _read_tar(self, path: Path) -> DatasetArrays:
        try:
            with tarfile.open(path) as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

                def read(name: str) -> bytes:
                    if name not in members:
                        raise DataError(f"{path} has no member {name!r}: is it the official {self.archive}?")
                    return tar.extractfile(members[name]).read()

                return self._read_batches(read, str(path))
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"corrupt archive {path}: {err}") from err

    def _read_batches(self, read, where: str) -> DatasetArrays:
        def load(names: tuple[str, ...]) -> ImageArrays:
            xs, ys = [], []
            for name in names:
                try:
                    batch = pickle.loads(read(name), encoding="latin1")
                    data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                    labels = np.asarray(batch[self.label_key], dtype=np.int64)
                except FileNotFoundError as err:
                    raise DataError(f"missing batch file {where}/{name}") from err
                except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as err:
                    raise DataError(f"corrupt batch file {where}/{name}: {err!r}") from err
                if len(data) != len(labels) or labels.min() < 0 or labels.max() >= len(self.classes):
                    raise DataError(f"corrupt batch file {where}/{name}: labels do not match the images")
                xs.append(data.transpose(0, 2, 3, 1))
                ys.append(labels)
            return ImageArrays(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys))

        return DatasetArrays(self.registry_name, load(self.train_files), load(self.test_files), self.classes)

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
