"""Dataset values, the Dataset base class, splits and the decode-once cache.

Images are held as uint8 arrays of shape (N, H, W, C); labels as int64.
A dataset is decoded once and cached as .npy files; later runs load the
cache (see `cache_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasmix import registry
from nasmix.data.files import source_key
from nasmix.errors import ConfigError, DataError

CACHE_VERSION = 1


@dataclass(frozen=True)
class Task:
    """What a network must fit: a name, classes and image shape.

    Attributes:
        name: dataset name.
        num_classes: number of classes.
        shape: (C, H, W) of one image.
        mean, std: per-channel normalisation constants (0..1 scale).
    """

    name: str
    num_classes: int
    shape: tuple[int, int, int]
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)


@dataclass(frozen=True, eq=False)
class ImageArrays:
    """Images (N, H, W, C) uint8 and labels (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.x.dtype} {self.x.shape}")
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> ImageArrays:
        """The images at the given indices."""
        return ImageArrays(self.x[index], self.y[index])


@dataclass(frozen=True, eq=False)
class DatasetArrays:
    """A whole dataset: training and test images, class names, task."""

    name: str
    train: ImageArrays
    test: ImageArrays
    classes: tuple[str, ...]

    @functools.cached_property
    def task(self) -> Task:
        x = self.train.x
        # Per-channel statistics of a strided sample: exact enough, and cheap.
        sample = x[:: max(1, len(x) // 5000)].astype(np.float32) / 255.0
        mean = tuple(float(v) for v in sample.mean(axis=(0, 1, 2)))
        std = tuple(float(max(v, 1e-3)) for v in sample.std(axis=(0, 1, 2)))
        c = x.shape[3]
        return Task(self.name, len(self.classes), (c, x.shape[1], x.shape[2]), mean, std)


class Dataset(ABC):
    """A registered dataset: `load()` returns its arrays.

    Subclasses set `registry_name` through `@registry.register("dataset", ...)`
    and implement `read()`; `load()` adds the decode-once cache.
    """

    cacheable: bool = True
    registry_name: str = "?"

    @abstractmethod
    def read(self) -> DatasetArrays:
        """Decode the dataset from its source (slow; called once per source)."""

    def source_key(self) -> str | None:
        """A string that changes when the source changes; None disables caching."""
        return None

    def location(self) -> str:
        """What error messages call the source (its path, where it has one)."""
        return self.registry_name

    def load(self) -> DatasetArrays:
        """The dataset's arrays, from the cache when it holds them.

        Raises:
            DataError: the source is missing, corrupt, or not a classification
                dataset (fewer than 2 classes, an empty split, labels out of range).
        """
        key = self.source_key() if self.cacheable else None
        if key is None:
            return check_arrays(self.read(), self.location())
        folder = cache_dir() / f"{self.registry_name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        if (folder / "meta.json").exists():
            try:
                return _read_cache(folder)
            except (OSError, ValueError, KeyError, EOFError):  # EOFError: a truncated .npy
                shutil.rmtree(folder, ignore_errors=True)
        data = check_arrays(self.read(), self.location())
        _write_cache(folder, data, key)
        return data


def check_arrays(data: DatasetArrays, where: str) -> DatasetArrays:
    """Return `data` if it can train a classifier, else raise a DataError naming `where`.

    It needs at least 2 classes, training and test images, labels in
    [0, classes), and at least 2 classes among its training labels.
    """
    k = len(data.classes)
    if k < 2:
        found = f" ({', '.join(map(repr, data.classes))})" if data.classes else ""
        raise DataError(f"{where}: {k} class{found}; a classification dataset needs at least 2 classes")
    for split in ("train", "test"):
        y = getattr(data, split).y
        if len(y) == 0:
            raise DataError(f"{where}: no {split} images")
        if y.min() < 0 or y.max() >= k:
            found = f"{int(y.min())}..{int(y.max())}"
            raise DataError(f"{where}: {split} labels outside [0, {k}) (found {found})")
    present = np.unique(data.train.y)
    if len(present) < 2:
        only = data.classes[int(present[0])]
        raise DataError(
            f"{where}: every training image is of class {only!r}; "
            "a classification dataset needs images of at least 2 classes"
        )
    return data


def cache_dir() -> Path:
    """Where decoded datasets are cached: $NASMIX_CACHE or ~/.cache/nasmix."""
    root = os.environ.get("NASMIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nasmix")
    return Path(root)


def _write_cache(folder: Path, data: DatasetArrays, key: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp", dir=folder.parent))
    try:
        for split in ("train", "test"):
            arrays = getattr(data, split)
            np.save(tmp / f"{split}_x.npy", arrays.x)
            np.save(tmp / f"{split}_y.npy", arrays.y)
        meta = {"version": CACHE_VERSION, "name": data.name, "classes": list(data.classes), "key": key}
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process cached it first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot write the dataset cache in {folder.parent}: {err}") from err


def _read_cache(folder: Path) -> DatasetArrays:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError("old cache version")
    splits = {
        s: ImageArrays(np.load(folder / f"{s}_x.npy"), np.load(folder / f"{s}_y.npy"))
        for s in ("train", "test")
    }
    return DatasetArrays(meta["name"], splits["train"], splits["test"], tuple(meta["classes"]))


def resolve_path(path: str | os.PathLike | None) -> Path | None:
    """The dataset location: the given path, else $NASMIX_DATA, else None.

    A path that does not exist is a DataError naming it.
    """
    chosen = path if path not in (None, "") else os.environ.get("NASMIX_DATA") or None
    if chosen is None:
        return None
    p = Path(chosen).expanduser()
    if not p.exists():
        where = "--data" if path not in (None, "") else "NASMIX_DATA"
        raise DataError(f"dataset path {str(p)!r} (from {where}) does not exist")
    return p


def file_key(path: Path) -> str:
    """Cache key of a file, zip or directory: it changes when any file in it does (nasmix.data.files)."""
    return source_key(path)


def load_dataset(name: str, path: str | os.PathLike | None = None) -> DatasetArrays:
    """Load a registered dataset by name.

    Args:
        name: registry name (`nasmix list dataset`).
        path: its location; None falls back to $NASMIX_DATA.

    Returns:
        DatasetArrays with uint8 images.
    """
    options = {"path": None if path is None else str(path)} if takes_path(name) else {}
    return registry.create("dataset", name, **options).load()


def takes_path(name: str) -> bool:
    """Whether a registered dataset reads a location (synthetic data does not)."""
    return "path" in _fields(registry.get("dataset", name).obj)


def check_path_use(names: list[str] | tuple[str, ...], path: str | os.PathLike | None, where: str) -> None:
    """Refuse a dataset location given where no dataset reads one (it would be ignored without a word).

    Args:
        names: the datasets the location would be passed to.
        path: the location the user gave (None: none given).
        where: how the user gave it (--data, data.path) for the message.

    Raises:
        ConfigError: a location was given and none of the datasets reads one.
    """
    if path in (None, "") or any(takes_path(n) for n in names):
        return
    raise ConfigError(
        f"{where} {str(path)!r} is given, but {', '.join(names)} reads no files (it is generated); remove it"
    )


def _fields(cls: type) -> set[str]:
    import dataclasses

    config = getattr(cls, "Config", None)
    return {f.name for f in dataclasses.fields(config)} if config else set()


def subset(images: ImageArrays, n: int | None, num_classes: int) -> ImageArrays:
    """A class-balanced subset: the first n // num_classes images of each class.

    None or n >= len(images) returns the images unchanged.
    """
    if n is None or n >= len(images):
        return images
    if n < num_classes:
        raise DataError(f"a subset of {n} images cannot hold all {num_classes} classes")
    per_class = n // num_classes
    picks = [np.flatnonzero(images.y == c)[:per_class] for c in range(num_classes)]
    return images.take(np.sort(np.concatenate(picks)))


def with_subsets(data: DatasetArrays, train: int | None, test: int | None) -> DatasetArrays:
    """The dataset with class-balanced subsets of its training and test images (None: all)."""
    k = len(data.classes)
    return DatasetArrays(data.name, subset(data.train, train, k), subset(data.test, test, k), data.classes)


def search_split(
    images: ImageArrays, num_classes: int, portion: float = 0.5
) -> tuple[ImageArrays, ImageArrays]:
    """The search split: weights train on one part, architectures on the other.

    DARTS and NASLib take the first half of the training set for weights and
    the second half for architecture; nasmix does the same within each class,
    so that a class-ordered image folder splits as evenly as shuffled batches.
    """
    first, second = [], []
    for c in range(num_classes):
        idx = np.flatnonzero(images.y == c)
        cut = round(len(idx) * portion)
        first.append(idx[:cut])
        second.append(idx[cut:])
    return images.take(np.sort(np.concatenate(first))), images.take(np.sort(np.concatenate(second)))
