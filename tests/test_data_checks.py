"""Bad datasets get a clear DataError naming the file: one class, empty labels, corrupt zip members,
decompression bombs; and the decode-once cache notices any changed file."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from nasmix.cli import main
from nasmix.data import load_dataset
from nasmix.data.files import MAX_FILE_BYTES, MAX_PIXELS
from nasmix.errors import DataError


def _png(value: int, size: int = 8, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _folder_files(classes=("a", "b"), per_class=2, size=8, fmt="PNG") -> dict[str, bytes]:
    return {
        f"{split}/{c}/{i}.png": _png(40 * k + i, size, fmt)
        for split in ("train", "test")
        for k, c in enumerate(classes)
        for i in range(per_class)
    }


def _write_dir(root, files):
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    return root


def _write_zip(path, files, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return path


def _load(path):
    return load_dataset("imagefolder", path)


# ---- not a classification dataset ---------------------------------------------------------------
def test_a_one_class_dataset_is_refused(tmp_path):
    root = _write_dir(tmp_path / "one", _folder_files(classes=("cat",)))
    with pytest.raises(DataError, match=r"one.*1 class \('cat'\); .*at least 2 classes"):
        _load(root)


def test_a_class_missing_from_one_split_is_named(tmp_path):
    files = {k: v for k, v in _folder_files().items() if not k.startswith("train/b/")}
    files["train/b/readme.txt"] = b"no images"  # the class folder exists but holds no image
    with pytest.raises(DataError, match=r"d: train has no images of the classes \['b'\]"):
        _load(_write_dir(tmp_path / "d", files))


def test_training_images_of_one_class_only_are_refused(tmp_path):
    files = {k: v for k, v in _folder_files(classes=("a",), per_class=5).items() if k.startswith("train/")}
    files = {k.replace("train/", ""): v for k, v in files.items()}  # no split folders: 1 of 5 is a test image
    with pytest.raises(DataError, match=r"1 class \('a'\)"):
        _load(_write_dir(tmp_path / "d", files))


def _batches(folder, make):
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(make(name)))


@pytest.mark.parametrize(
    "case,message",
    [
        ("empty labels", "data_batch_1: 'labels' is an empty label list"),
        ("fewer labels", "data_batch_1: 2 images but 1 labels"),
        ("label 10", r"data_batch_1: labels outside \[0, 10\)"),
        ("negative label", r"data_batch_1: labels outside \[0, 10\)"),
        ("float labels", "data_batch_1: 'labels' must be a list of integers"),
        ("string labels", "data_batch_1: 'labels' must be a list of integers"),
        ("no data key", "data_batch_1: expected a dict with 'data' and 'labels'"),
        ("a list", "data_batch_1: expected a dict"),
        ("float images", "data_batch_1: 'data' must be a uint8 array"),
        ("odd image size", "data_batch_1: 'data' must be a uint8 array of 3072 values per image"),
    ],
)
def test_malformed_batches_are_named(tmp_path, case, message):
    good = {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [0, 1]}
    bad = {
        "empty labels": {"data": np.zeros((0, 3072), dtype=np.uint8), "labels": []},
        "fewer labels": {**good, "labels": [0]},
        "label 10": {**good, "labels": [0, 10]},
        "negative label": {**good, "labels": [-1, 0]},
        "float labels": {**good, "labels": [0.5, 1.0]},
        "string labels": {**good, "labels": ["cat", "dog"]},
        "no data key": {"labels": [0, 1]},
        "a list": [good],
        "float images": {**good, "data": np.zeros((2, 3072), dtype=np.float32)},
        "odd image size": {**good, "data": np.zeros((2, 3000), dtype=np.uint8)},
    }[case]
    _batches(tmp_path / "cifar-10-batches-py", lambda name: bad if name == "data_batch_1" else good)
    with pytest.raises(DataError, match=message):
        load_dataset("cifar10", tmp_path)


# ---- corrupt zip members -------------------------------------------------------------------------
def _corrupt_member(path, name, how):
    """Damage one member of a zip in place: its compressed bytes, or its stored CRC."""
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    header = info.header_offset
    name_len, extra_len = struct.unpack("<HH", blob[header + 26 : header + 30])
    start = header + 30 + name_len + extra_len
    if how == "deflate stream":
        blob[start : start + 8] = b"\xff" * 8  # an invalid block type for zlib
    elif how == "crc":
        middle = start + info.compress_size // 2
        blob[middle] ^= 0x01  # decodes, but to other bytes: the CRC-32 check fails
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "how,method,error",
    [
        ("deflate stream", zipfile.ZIP_DEFLATED, "error|invalid"),
        ("crc", zipfile.ZIP_STORED, "CRC"),
    ],
)
def test_corrupt_zip_members_are_named(tmp_path, how, method, error):
    files = _folder_files()
    path = _write_zip(tmp_path / "d.zip", files, method)
    _corrupt_member(path, "train/a/1.png", how)
    with pytest.raises(DataError, match=rf"d\.zip/train/a/1\.png: .*({error})"):
        _load(path)


def test_zlib_errors_are_data_errors(tmp_path):
    """The raw error of a broken deflate stream is zlib.error, not an OSError: it must not escape."""
    files = _folder_files()
    path = _write_zip(tmp_path / "d.zip", files)
    _corrupt_member(path, "test/b/0.png", "deflate stream")
    with pytest.raises(DataError) as caught:
        _load(path)
    assert isinstance(caught.value.__cause__, zlib.error)


# ---- decompression bombs ---------------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds almost no data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [5000, 100_000])
def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, side):
    assert side * side > MAX_PIXELS
    files = _folder_files()
    files["train/a/1.png"] = _png_header_only(side, side)
    for path in (_write_dir(tmp_path / "dir", files), _write_zip(tmp_path / "d.zip", files)):
        with pytest.raises(
            DataError, match=rf"train/a/1\.png: it declares {side}x{side} pixels|train/a/1\.png"
        ):
            _load(path)


def test_a_zip_member_declaring_an_absurd_size_is_refused_before_inflating(tmp_path):
    files = _folder_files()
    path = _write_zip(tmp_path / "bomb.zip", files)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("train/a/9.png", "w", force_zip64=True) as member,  # 65 MiB of zeros, about 64 KiB packed
    ):
        block = b"\0" * 2**20
        for _ in range(MAX_FILE_BYTES // 2**20 + 1):
            member.write(block)
    assert path.stat().st_size < 2**20
    with pytest.raises(DataError, match=r"bomb\.zip/train/a/9\.png: it declares 68,157,440 bytes"):
        _load(path)


def test_an_image_whose_header_lies_about_its_size_is_named(tmp_path):
    files = _folder_files()
    files["train/b/0.png"] = _png(1, size=9)
    with pytest.raises(DataError, match=r"wrong image size in .*train/b/0\.png: 9x9, expected 8x8"):
        _load(_write_dir(tmp_path / "d", files))


# ---- the cache notices every changed file ------------------------------------------------------------
def test_replacing_one_image_in_a_directory_is_noticed(tmp_path):
    root = _write_dir(tmp_path / "d", _folder_files())
    before = _load(root)
    target = root / "train" / "b" / "1.png"
    folders = {p: p.stat().st_mtime_ns for p in (root, root / "train", root / "train" / "b")}
    target.write_bytes(_png(200))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    for folder, stamp in folders.items():  # the folders themselves look unchanged
        os.utime(folder, ns=(stamp, stamp))
    after = _load(root)
    assert not np.array_equal(before.train.x, after.train.x)
    assert (after.train.x == 200).all(axis=(1, 2, 3)).sum() == 1


def test_replacing_a_zip_member_is_noticed_even_with_the_same_size_and_time(tmp_path):
    files = _folder_files(fmt="BMP")  # uncompressed: the replacement has the same size
    path = _write_zip(tmp_path / "d.zip", files, zipfile.ZIP_STORED)
    before = _load(path)
    st = path.stat()
    _write_zip(path, {**files, "train/b/1.png": _png(200, fmt="BMP")}, zipfile.ZIP_STORED)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = _load(path)
    assert not np.array_equal(before.train.x, after.train.x)


# ---- a location for a dataset that reads none ------------------------------------------------------
def test_data_path_for_synthetic_is_refused(tmp_path, capsys):
    argv = [
        "train",
        "--model",
        "resnet20",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    code = main([*argv, "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--data" in err and "synthetic reads no files" in err and "Traceback" not in err


def test_training_labels_of_one_class_are_refused(tmp_path):
    def make(name):
        labels = [3, 3] if name.startswith("data_batch") else [0, 1]
        return {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": labels}

    _batches(tmp_path / "cifar-10-batches-py", make)
    with pytest.raises(DataError, match="every training image is of class 'cat'"):
        load_dataset("cifar10", tmp_path)
