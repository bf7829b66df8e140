"""No code runs from data: crafted CIFAR batches and benchmark files are refused, and what they
would do never happens."""

from __future__ import annotations

import builtins
import bz2
import fractions
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from nasmix.data import load_dataset
from nasmix.errors import DataError
from nasmix.safeload import CIFAR_GLOBALS, PLAIN_GLOBALS, UnsafeContent, loads

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


class _Evil:
    """Unpickling it calls the given callable with args: open(marker, "w") creates the marker file."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _batch(rng, n=4, labels=None) -> dict:
    labels = list(rng.integers(0, 10, size=n)) if labels is None else labels
    return {
        "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        "labels": labels,
        "batch_label": "b",
    }


def _write_batches(folder, evil=None, protocol=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in BATCHES:
        batch = _batch(rng)
        if evil is not None and name == "data_batch_2":
            batch["filenames"] = [evil]
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    return folder


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote CIFAR's (protocol 2, str payloads, numpy.core names)."""
    raw = data.tobytes()
    n, m = data.shape
    parts = [
        b"\x80\x02}q\x00(U\x04dataq\x01",
        b"cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85q\x04U\x01b\x87q\x05Rq\x06(K\x01",
        b"M" + n.to_bytes(2, "little") + b"M" + m.to_bytes(2, "little") + b"\x86q\x07",
        b"cnumpy\ndtype\nq\x08U\x02u1K\x00K\x01\x87Rq\x09",
        b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
        b"\x89T" + len(raw).to_bytes(4, "little") + raw + b"tb",
        b"U\x06labelsq\x0a]q\x0b(" + b"".join(b"K" + bytes([v]) for v in labels) + b"eu.",
    ]
    return b"".join(parts)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_crafted_cifar_batch_is_refused_and_never_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    _write_batches(tmp_path / "cifar-10-batches-py", _Evil(builtins.open, str(marker), "w"), protocol)
    with pytest.raises(DataError, match=r"refusing batch file .*data_batch_2: it names io\.open"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_a_crafted_batch_inside_the_official_archive_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    folder = _write_batches(tmp_path / "src" / "cifar-10-batches-py", _Evil(os.system, f"touch {marker}"))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    with pytest.raises(
        DataError, match=r"refusing batch file .*data_batch_2: it names (posix|os|nt)\.system"
    ):
        load_dataset("cifar10", archive)
    assert not marker.exists()


def test_python2_batches_read_through_the_restricted_unpickler(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    expected = {}
    for name in BATCHES:
        data = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=3)]
        (folder / name).write_bytes(_py2_batch(data, labels))
        expected[name] = (data, labels)
    ds = load_dataset("cifar10", tmp_path)
    first, labels = expected["data_batch_1"]
    assert np.array_equal(ds.train.x[:3], first.reshape(3, 3, 32, 32).transpose(0, 2, 3, 1))
    assert ds.train.y[:3].tolist() == labels and len(ds.train) == 15 and len(ds.test) == 3


@pytest.mark.parametrize(
    "obj",
    [
        _Evil(eval, "1"),
        _Evil(getattr, object, "__subclasses__"),
        fractions.Fraction(1, 2),
        _Evil(np.load, "x.npy"),
        _Evil(torch.load, "x.pt"),
        {1, 2},
    ],
)
def test_the_cifar_allowlist_refuses_everything_but_containers_and_arrays(obj):
    with pytest.raises(UnsafeContent):
        loads(pickle.dumps({"data": obj}, protocol=2), CIFAR_GLOBALS)


def test_persistent_ids_are_refused():
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: "storage" if isinstance(obj, bytes) else None
    pickler.dump({"data": b"x"})
    with pytest.raises(UnsafeContent, match="persistent id"):
        loads(buf.getvalue(), PLAIN_GLOBALS)


# ---- tabular benchmark files ------------------------------------------------------------------------------
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _meta(extra) -> dict:
    return {
        "meta_archs": [ARCH],
        "arch2infos": {0: {"less": {}, "full": {}}},
        "evaluated_indexes": [0],
        "x": extra,
    }


def _write_pth(path, extra):
    torch.save(_meta(extra), path)
    return path


def _write_pbz2(path, extra):
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(_meta(extra), f, protocol=4)
    return path


def _write_simple(folder, extra):
    folder.mkdir()
    _write_pbz2(folder / "meta.pickle.pbz2", extra)
    return folder


@pytest.mark.parametrize(
    "writer,name",
    [
        (_write_pth, "NAS-Bench-201-v1_1-096897.pth"),
        (_write_pbz2, "NATS-tss-v1_0-3ffb9.pickle.pbz2"),
        (_write_simple, "NATS-tss-v1_0-3ffb9-simple"),
    ],
)
def test_a_crafted_benchmark_file_is_refused_and_never_run(tmp_path, writer, name):
    from nasmix.estimators.tabular import Benchmark

    marker = tmp_path / "pwned"
    path = writer(tmp_path / name, _Evil(builtins.open, str(marker), "w"))
    with pytest.raises(DataError, match=r"refusing .*names .*open.*trusted = true"):
        Benchmark(path)
    assert not marker.exists()


@pytest.mark.parametrize("writer", [_write_pth, _write_pbz2])
def test_benchmark_values_load_safely_and_other_objects_only_when_trusted(tmp_path, writer):
    from nasmix.estimators.tabular import Benchmark

    suffix = ".pth" if writer is _write_pth else ".pickle.pbz2"
    plain = writer(
        tmp_path / f"plain{suffix}", {"acc": np.float64(91.5), "times": np.arange(3), (1, "a"): {2.5}}
    )
    assert Benchmark(plain).meta_archs == [ARCH]
    odd = writer(tmp_path / f"odd{suffix}", fractions.Fraction(1, 3))
    with pytest.raises(DataError, match="Fraction"):
        Benchmark(odd)
    assert Benchmark(odd, trusted=True).meta_archs == [ARCH]
