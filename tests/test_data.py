import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from nasmix.data import load_dataset, search_split, subset
from nasmix.data.cifar10 import Cifar10
from nasmix.errors import DataError

CLASSES = Cifar10.classes


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _image(label: int, i: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), (label * 20 + i) % 256, dtype=np.uint8)


def write_folder(root, classes=CLASSES, per_class=2, size=32, zip_path=None):
    files = {}
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            for i in range(per_class):
                files[f"{split}/{name}/{i:04d}.png"] = _png(_image(c, i, size))
    if zip_path is not None:
        with zipfile.ZipFile(zip_path, "w") as z:
            for name, blob in files.items():
                z.writestr(name, blob)
        return zip_path
    for name, blob in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)
    return root


def write_batches(folder, per_batch=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        batch = {"data": data, "labels": list(rng.integers(0, 10, size=per_batch))}
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


def test_synthetic_is_deterministic():
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert a.task.num_classes == 10 and a.task.shape == (3, 32, 32)


def test_image_folder_directory_and_zip(tmp_path):
    d = load_dataset("cifar10", write_folder(tmp_path / "dir"))
    z = load_dataset("cifar10", write_folder(None, zip_path=tmp_path / "c.zip"))
    for data in (d, z):
        assert data.train.x.shape == (20, 32, 32, 3) and data.test.x.shape == (20, 32, 32, 3)
        assert list(data.train.y[:2]) == [0, 0] and data.classes == CLASSES
        assert np.array_equal(data.train.x[2], _image(1, 0))  # automobile image 0


def test_user_imagefolder_without_split_folders(tmp_path):
    for c in ("cats", "dogs"):
        for i in range(5):
            p = tmp_path / "pets" / c / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_png(_image(len(c), i, 8)))
    data = load_dataset("imagefolder", tmp_path / "pets")
    assert data.classes == ("cats", "dogs")
    assert len(data.train) == 8 and len(data.test) == 2 and data.task.shape == (3, 8, 8)


def test_python_batches_directory_and_tarball(tmp_path):
    folder = write_batches(tmp_path / "cifar-10-batches-py")
    d = load_dataset("cifar10", tmp_path)
    assert d.train.x.shape == (20, 32, 32, 3) and d.test.x.shape == (4, 32, 32, 3)
    raw = pickle.loads((folder / "data_batch_1").read_bytes())["data"][0]
    assert np.array_equal(d.train.x[0], raw.reshape(3, 32, 32).transpose(1, 2, 0))
    tar_path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    t = load_dataset("cifar10", tar_path)
    assert np.array_equal(t.train.x, d.train.x)


def test_cache_is_used_on_second_load(tmp_path, monkeypatch):
    path = write_folder(tmp_path / "c")
    first = load_dataset("cifar10", path)

    def fail(self):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(Cifar10, "read", fail)
    second = load_dataset("cifar10", path)
    assert np.array_equal(first.train.x, second.train.x)


def test_nasmix_data_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NASMIX_DATA", str(write_folder(tmp_path / "env")))
    assert len(load_dataset("cifar10").train) == 20


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope.*does not exist"):
        load_dataset("cifar10", tmp_path / "nope")


def test_corrupt_image_is_named(tmp_path):
    root = write_folder(tmp_path / "c")
    (root / "test/cat/0001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"corrupt image .*test/cat/0001.png"):
        load_dataset("cifar10", root)


def test_wrong_image_size_is_named(tmp_path):
    root = write_folder(tmp_path / "c")
    (root / "train/dog/0000.png").write_bytes(_png(_image(0, 0, 30)))
    with pytest.raises(DataError, match=r"wrong image size .*train/dog/0000.png: 30x30"):
        load_dataset("cifar10", root)


def test_unknown_class_layout(tmp_path):
    root = write_folder(tmp_path / "c", classes=CLASSES[:9] + ("zebra",))
    with pytest.raises(DataError, match=r"unknown class layout.*zebra"):
        load_dataset("cifar10", root)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(_png(_image(0, 0)))
    with pytest.raises(DataError, match="not inside a class folder"):
        load_dataset("imagefolder", flat)


def test_corrupt_batch_file_is_named(tmp_path):
    folder = write_batches(tmp_path / "cifar-10-batches-py")
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"corrupt batch file .*data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_not_a_dataset_file(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hello")
    with pytest.raises(DataError, match="neither a directory nor a zip"):
        load_dataset("cifar10", f)


def test_subset_and_search_split_are_class_balanced():
    data = load_dataset("synthetic")
    sub = subset(data.train, 50, 10)
    assert len(sub) == 50 and np.all(np.bincount(sub.y, minlength=10) == 5)
    a, b = search_split(data.train, 10)
    assert len(a) + len(b) == len(data.train)
    assert np.all(np.abs(np.bincount(a.y, minlength=10) - np.bincount(b.y, minlength=10)) <= 1)
    with pytest.raises(DataError):
        subset(data.train, 5, 10)


@pytest.mark.cifar
def test_real_cifar10_copy(cifar):
    assert cifar.train.x.shape == (50000, 32, 32, 3) and cifar.test.x.shape == (10000, 32, 32, 3)
    assert np.all(np.bincount(cifar.train.y) == 5000) and np.all(np.bincount(cifar.test.y) == 1000)
    assert 0.4 < cifar.task.mean[0] < 0.55


def test_imagefolder_with_too_few_images_for_a_test_split_is_a_data_error(tmp_path):
    for c in ("cats", "dogs"):
        for i in range(3):  # every 5th image of a class is a test image: none here
            p = tmp_path / "pets" / c / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_png(_image(len(c), i, 8)))
    with pytest.raises(DataError, match=r"pets.*no test images"):
        load_dataset("imagefolder", tmp_path / "pets")


def test_imagefolder_mixed_case_extensions_and_split_names(tmp_path):
    for split in ("Train", "TEST"):
        for c in ("a", "b"):
            for i, ext in enumerate((".PNG", ".Png", ".png")):
                p = tmp_path / "d" / split / c / f"{i}{ext}"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(_png(_image(len(c), i, 8)))
    data = load_dataset("imagefolder", tmp_path / "d")
    assert len(data.train) == 6 and len(data.test) == 6 and data.classes == ("a", "b")


def test_a_truncated_cache_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("NASMIX_CACHE", str(tmp_path / "cache"))
    path = write_folder(tmp_path / "c")
    first = load_dataset("cifar10", path)
    (victim,) = (tmp_path / "cache").glob("cifar10-*/train_x.npy")
    victim.write_bytes(b"")  # a crash after the rename, before the data reached the disk
    again = load_dataset("cifar10", path)
    assert np.array_equal(first.train.x, again.train.x)
