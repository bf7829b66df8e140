"""Image folders, as a directory or a zip: `split/class/image` files.

Used by `imagefolder` for any user dataset and by `cifar10`/`cifar100` for
image-folder copies such as the JPEG CIFAR-10 zip.

Every file is untrusted input: a corrupt zip member (bad CRC, broken deflate
stream, an encrypted or unsupported member), an undecodable image, and a
decompression bomb (a member or file beyond MAX_FILE_BYTES, an image whose
header declares more than MAX_PIXELS pixels, see nasmix.data.files) each stop
the read with a DataError naming the file, before anything large is decoded.
"""

from __future__ import annotations

import io
import lzma
import warnings
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from nasmix import registry
from nasmix.data.base import Dataset, DatasetArrays, ImageArrays, file_key, resolve_path
from nasmix.data.files import MAX_FILE_BYTES, MAX_PIXELS, list_files
from nasmix.errors import ConfigError, DataError

# What reading one zip member can raise besides OSError: a bad CRC or header (BadZipFile), a broken
# deflate/bzip2/lzma stream, an encrypted member (RuntimeError), an unsupported method (NotImplementedError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    KeyError,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}
TRAIN_NAMES = ("train", "training")
TEST_NAMES = ("test", "val", "validation")


class _Source:
    """Uniform access to the files of a directory or a zip."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise DataError(f"{path} is neither a directory nor a zip file")
            try:
                self.zip = zipfile.ZipFile(path)
                infos = [i for i in self.zip.infolist() if not i.is_dir()]
            except (OSError, *_ZIP_ERRORS) as err:
                raise DataError(f"cannot read zip {path}: {err}") from err
            self.sizes = {i.filename: i.file_size for i in infos}  # as declared: checked before inflating
        else:
            try:
                self.sizes = {name: size for name, size, _ in list_files(path)}
            except OSError as err:
                raise DataError(f"cannot list {path}: {err}") from err
        self.files = sorted(self.sizes)

    def read(self, name: str) -> bytes:
        size = self.sizes.get(name, 0)
        if size > MAX_FILE_BYTES:
            raise DataError(
                f"refusing {self.path}/{name}: it declares {size:,} bytes, over the "
                f"{MAX_FILE_BYTES:,}-byte limit for one image (a decompression bomb?)"
            )
        try:
            if self.zip is not None:
                return self.zip.read(name)
            return (self.path / name).read_bytes()
        except (OSError, *_ZIP_ERRORS) as err:
            raise DataError(f"corrupt or unreadable {self.path}/{name}: {type(err).__name__}: {err}") from err

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _layout(files: list[str]) -> dict[str, dict[str, list[str]]]:
    """Find `[prefix/][split/]class/image` in a listing; returns split -> class -> files.

    Without split folders the single split is called "all".
    """
    images = [PurePosixPath(f) for f in files if PurePosixPath(f).suffix.lower() in IMAGE_SUFFIXES]
    images = [p for p in images if not any(part.startswith((".", "__MACOSX")) for part in p.parts)]
    if not images:
        raise DataError("no image files found")
    depths = {len(p.parts) for p in images}
    if len(depths) != 1:
        shallow = min(images, key=lambda p: len(p.parts))
        raise DataError(
            f"unknown class layout: images at different depths, e.g. {shallow}; expected split/class/image"
        )
    depth = depths.pop()
    if depth < 2:
        raise DataError(f"unknown class layout: {images[0]} is not inside a class folder")
    split_names = TRAIN_NAMES + TEST_NAMES
    has_splits = depth >= 3 and all(p.parts[depth - 3].lower() in split_names for p in images)
    class_at = depth - 2
    prefixes = {p.parts[: class_at - 1 if has_splits else class_at] for p in images}
    if len(prefixes) != 1:
        raise DataError(
            f"unknown class layout: several top folders {sorted('/'.join(q) for q in prefixes)[:4]}"
        )
    tree: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for p in images:
        tree[p.parts[class_at - 1] if has_splits else "all"][p.parts[class_at]].append(str(p))
    return {k: dict(v) for k, v in tree.items()}


def _open_image(source: _Source, name: str, size: tuple[int, int] | None) -> np.ndarray:
    """Decode one image to (H, W, 3) uint8, checking its declared size before decoding it."""
    where = f"{source.path}/{name}"
    blob = source.read(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as im:
                w, h = im.size  # from the header: nothing decoded yet
                if w * h > MAX_PIXELS:
                    raise DataError(
                        f"refusing {where}: it declares {w}x{h} pixels, over the {MAX_PIXELS:,}-pixel "
                        "limit for one image (a decompression bomb?)"
                    )
                if size is not None and (h, w) != tuple(size):
                    raise DataError(f"wrong image size in {where}: {w}x{h}, expected {size[1]}x{size[0]}")
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"refusing {where}: {err}") from None
    except MemoryError:
        raise DataError(f"refusing {where}: decoding it ran out of memory") from None
    except Exception as err:  # decoders of hostile files raise almost anything (struct.error, IndexError...)
        raise DataError(f"corrupt image {where}: {type(err).__name__}: {err}") from None


def _decode(source: _Source, names: list[str], size: tuple[int, int] | None) -> np.ndarray:
    out: np.ndarray | None = None
    for i, name in enumerate(names):
        arr = _open_image(source, name, size)
        if out is None:
            size = (arr.shape[0], arr.shape[1])
            try:
                out = np.empty((len(names), size[0], size[1], 3), dtype=np.uint8)
            except MemoryError:
                need = len(names) * size[0] * size[1] * 3 / 2**30
                raise DataError(
                    f"{source.path}: {len(names):,} images of {size[1]}x{size[0]} need {need:,.1f} GiB "
                    "of memory, more than this machine has"
                ) from None
        assert size is not None  # set with `out`, from the first image
        if arr.shape[:2] != tuple(size):  # a header that lied about the size
            raise DataError(
                f"wrong image size in {source.path}/{name}: {arr.shape[1]}x{arr.shape[0]}, "
                f"expected {size[1]}x{size[0]}"
            )
        out[i] = arr
    assert out is not None
    return out


def read_image_folder(
    path: Path,
    name: str,
    classes: tuple[str, ...] | None = None,
    size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
) -> DatasetArrays:
    """Decode an image folder (directory or zip) into uint8 arrays.

    Args:
        path: directory or zip with `train/<class>/*` and `test/<class>/*`
            (or just `<class>/*`, split by `test_fraction`, every k-th image
            of each class going to the test set).
        name: dataset name for the result.
        classes: the expected class names in label order (None: sorted folders).
        size: expected (H, W); None takes the first image's size.
        test_fraction: share of each class held out when there is no test folder.
    """
    source = _Source(path)
    try:
        tree = _layout(source.files)
        splits = _pick_splits(tree, path)
        found = sorted(set().union(*[set(v) for v in splits.values()]))
        if classes is None:
            classes = tuple(found)
            for split, per_class in splits.items():
                absent = [c for c in classes if c not in per_class]
                if absent:
                    raise DataError(
                        f"unknown class layout in {path}: {split} has no images of the classes {absent}, "
                        "which the other split has"
                    )
        elif sorted(classes) != found or any(set(v) != set(classes) for v in splits.values()):
            raise DataError(
                f"unknown class layout in {path}: class folders {found} "
                f"do not match the expected {sorted(classes)}"
            )
        label = {c: i for i, c in enumerate(classes)}
        arrays = {}
        if set(splits) == {"all"}:
            train_names: list[str] = []
            test_names: list[str] = []
            train_y: list[int] = []
            test_y: list[int] = []
            step = max(2, round(1 / test_fraction))
            for c in classes:
                files = sorted(splits["all"][c])
                for j, f in enumerate(files):
                    (test_names if j % step == step - 1 else train_names).append(f)
                    (test_y if j % step == step - 1 else train_y).append(label[c])
            listing = {"train": (train_names, train_y), "test": (test_names, test_y)}
        else:
            listing = {}
            for split, per_class in splits.items():
                names = [f for c in classes for f in sorted(per_class[c])]
                ys = [label[c] for c in classes for _ in per_class[c]]
                listing[split] = (names, ys)
        for split, (names, ys) in listing.items():
            if not names:
                hint = (
                    f": without split folders every {step}th image of a class is a test image, "
                    f"so a class needs at least {step} images"
                    if set(splits) == {"all"}
                    else ""
                )
                raise DataError(f"no {split} images{hint}")
            x = _decode(source, names, size)
            size = x.shape[1:3]
            arrays[split] = ImageArrays(x, np.asarray(ys, dtype=np.int64))
        return DatasetArrays(name, arrays["train"], arrays["test"], tuple(classes))
    except DataError as err:
        if str(path) in str(err):
            raise
        raise DataError(f"{path}: {err}") from None
    finally:
        source.close()


def _pick_splits(tree: dict[str, dict[str, list[str]]], path: Path) -> dict[str, dict[str, list[str]]]:
    if set(tree) == {"all"}:
        return tree
    train = [k for k in tree if k.lower() in TRAIN_NAMES]
    test = [k for k in tree if k.lower() in TEST_NAMES]
    if len(train) != 1 or len(test) != 1:
        raise DataError(
            f"unknown class layout in {path}: expected one train and one test folder "
            f"(train/<class>/..., test/<class>/...), found {sorted(tree)}"
        )
    return {"train": tree[train[0]], "test": tree[test[0]]}


@registry.register("dataset", "imagefolder")
class ImageFolder(Dataset):
    """Any image dataset laid out as class subfolders, in a directory or a zip."""

    @dataclass(frozen=True)
    class Config:
        path: str | None = None
        image_size: int = 0
        test_fraction: float = 0.2

        def __post_init__(self) -> None:
            if not 0 < self.test_fraction < 1:
                raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
            if self.image_size < 0:
                raise ConfigError(f"image_size must be >= 0, got {self.image_size}")

    def __init__(self, config: Config = Config()):
        self.config = config

    def _path(self) -> Path:
        path = resolve_path(self.config.path)
        if path is None:
            raise DataError("imagefolder needs a location: pass --data PATH or set NASMIX_DATA")
        return path

    def location(self) -> str:
        return str(self.config.path or self._path())

    def source_key(self) -> str:
        return f"{file_key(self._path())}|{self.config}"

    def read(self) -> DatasetArrays:
        size = (self.config.image_size,) * 2 if self.config.image_size else None
        return read_image_folder(self._path(), "imagefolder", None, size, self.config.test_fraction)
