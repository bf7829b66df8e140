"""Property-based fuzz of every study-file field and the flags of every command that works.

Each example must exit 0 or 2 (never a traceback), and must never leave a store or any other
file behind when it exits 2. The work itself (run_study, train, search, export, report, serve)
is replaced by a stub that raises `Reached`: an example that gets there passed every check, and
the test asserts nothing was written before it - so every refusal comes before the first write.
Profile "ci" (derandomized, the default here) makes failures reproduce; the example counts are
printed for docs/reliability.md (`pytest -s`).
"""

from __future__ import annotations

import contextlib
import io
import math
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import (  # noqa: E402
    HealthCheck,
    given,
    settings,
    strategies as st,
)

from nasmix.cli import main  # noqa: E402

settings.register_profile(
    "ci", max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
# "explore": random (not derandomized) and longer, to hunt new failures locally.
settings.register_profile(
    "explore", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("NASMIX_FUZZ_PROFILE", "ci"))


class Reached(Exception):
    """The command passed its checks and got to its work."""


def _reached(*args, **kwargs):
    raise Reached


STUBS = [
    "nasmix.commands.study.run_study",
    "nasmix.commands.run.run_study",
    "nasmix.commands.train.fit",
    "nasmix.commands.search.search",
    "nasmix.commands.export.export_arch",
    "nasmix.commands.serve.serve",
]

# Values of every kind a user (or a corrupt file) may give.
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0, 1, 2, 64, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**8]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1e-3, 1e300]),
)
TEXT = st.one_of(
    st.sampled_from(["", " ", "tiny", "search", "eval", "x/y", ".h", "auto", "cpu", "cuda:3", "é"]),
    st.text(max_size=6),
)
SCALAR = st.one_of(NUMBERS, TEXT, st.booleans())
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


FIELDS = {
    "study": [
        "name",
        "store",
        "device",
        "ray_address",
        "spaces",
        "strategies",
        "estimators",
        "datasets",
        "seeds",
    ],
    "search": ["epochs", "candidates", "batch_size", "size", "max_seconds", "max_gpu_seconds"],
    "eval": [
        "preset",
        "size",
        "max_seconds",
        "max_gpu_seconds",
        "epochs",
        "batch_size",
        "lr",
        "lr_min",
        "momentum",
        "weight_decay",
        "label_smoothing",
        "grad_clip",
        "drop_path",
        "aux_weight",
        "cutout",
        "eval_every",
        "checkpoint_every",
        "amp",
    ],
    "data": ["path", "train_subset", "test_subset", "search_portion"],
    "space.nb201": ["channels", "cells", "pool_bn"],
    "estimator.zero_cost": ["proxy"],
}
BASE = {
    "study": {
        "name": "t",
        "spaces": ["nb201"],
        "strategies": ["random"],
        "estimators": ["zero_cost"],
        "datasets": ["synthetic"],
    },
    "search": {"candidates": 1, "size": "tiny"},
    "eval": {"epochs": 1, "size": "tiny"},
}
CHANGES = st.lists(
    st.tuples(st.sampled_from([(s, k) for s, ks in FIELDS.items() for k in ks]), VALUE),
    min_size=1,
    max_size=3,
)

COUNTS = {"study examples": 0, "flag examples": 0, "reached": 0, "refused": 0}


def _files(root):
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def _run(argv, root, monkeypatch, known):
    with monkeypatch.context() as m:
        for target in STUBS:
            m.setattr(target, _reached)
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except Reached:
            code = "reached"
        except SystemExit as exc:  # argparse: a value its type cannot read
            code = exc.code
    assert code in (0, 2, "reached"), (argv, code, err.getvalue()[-400:])
    assert "Traceback" not in err.getvalue()
    left = _files(root) - known
    assert not left, f"{argv} left {sorted(left)} (exit {code})"
    COUNTS["reached" if code in (0, "reached") else "refused"] += 1


@given(changes=CHANGES)
def test_fuzz_study_fields(tmp_path_factory, monkeypatch, changes):
    root = str(tmp_path_factory.mktemp("fuzz"))
    study = {s: dict(v) for s, v in BASE.items()}
    study["study"]["store"] = os.path.join(root, "s.db")
    for (section, key), value in changes:
        study.setdefault(section, {})[key] = value
    text = "".join(
        f"[{s}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in t.items()) for s, t in study.items()
    )
    path = os.path.join(root, "fuzz.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    COUNTS["study examples"] += 1
    _run(["study", path], root, monkeypatch, {path})


FLAG_VALUES = st.one_of(
    NUMBERS.map(str), TEXT, st.sampled_from(["nan", "inf", "-inf", "1e309", "0x10", "-0"])
)
COMMANDS = {
    "train": (
        ["train", "--model", "resnet20", "--dataset", "synthetic"],
        [
            "--epochs",
            "--batch-size",
            "--lr",
            "--weight-decay",
            "--aux-weight",
            "--seed",
            "--max-seconds",
            "--json",
            "--checkpoint-dir",
            "--train-subset",
            "--test-subset",
            "--device",
            "--data",
            "--cutout",
            "--momentum",
            "--drop-path",
            "--eval-every",
            "--checkpoint-every",
        ],
    ),
    "search": (
        [
            "search",
            "--space",
            "nb201",
            "--strategy",
            "random",
            "--estimator",
            "zero_cost",
            "--dataset",
            "synthetic",
            "--size",
            "tiny",
        ],
        [
            "--epochs",
            "--candidates",
            "--batch-size",
            "--size",
            "--portion",
            "--seed",
            "--max-seconds",
            "--json",
            "--train-subset",
            "--device",
        ],
    ),
    "run": (
        [
            "run",
            "--space",
            "nb201",
            "--strategy",
            "random",
            "--estimator",
            "zero_cost",
            "--dataset",
            "synthetic",
            "--search-size",
            "tiny",
            "--eval-size",
            "tiny",
        ],
        [
            "--seed",
            "--name",
            "--store",
            "--workers",
            "--portion",
            "--search-epochs",
            "--candidates",
            "--search-max-seconds",
            "--eval-epochs",
            "--eval-batch-size",
            "--eval-max-seconds",
            "--checkpoint-every",
            "--eval-size",
            "--eval-preset",
            "--ray-address",
        ],
    ),
    "show": (["show", "nb201", "random"], ["--num-classes", "--image-size", "--seed", "--size"]),
    "export": (
        ["export", "--space", "nb201", "--arch", "random", "--skip", "pt2", "--skip", "onnx"],
        ["-o", "--num-classes", "--image-size", "--channels", "--seed", "--size"],
    ),
    "serve": (["serve", "x.db"], ["--port", "--interval"]),
}
OPTS = {
    "train": "model.width",
    "search": "space.channels",
    "run": "space.channels",
    "show": "space.channels",
    "export": "space.channels",
}


@given(command=st.sampled_from(sorted(COMMANDS)), data=st.data())
def test_fuzz_flags(tmp_path_factory, monkeypatch, command, data):
    root = str(tmp_path_factory.mktemp("fuzz"))
    base, flags = COMMANDS[command]
    argv = list(base)
    for flag in data.draw(st.lists(st.sampled_from(flags), min_size=1, max_size=3, unique=True)):
        value = data.draw(FLAG_VALUES)
        if flag in ("--json", "--checkpoint-dir", "--store", "-o"):  # paths: inside the example's folder
            value = os.path.join(root, data.draw(st.sampled_from(["a", "a/b", "", "f.txt", "f.txt/x", "."])))
        argv += [flag, value]
    if command in OPTS and data.draw(st.booleans()):
        argv += ["--opt", f"{OPTS[command]}={data.draw(FLAG_VALUES)}"]
    if command == "export" and "-o" not in argv:
        argv += ["-o", os.path.join(root, "e")]
    if command == "run" and "--store" not in argv:
        argv += ["--store", os.path.join(root, "r.db")]
    with open(os.path.join(root, "f.txt"), "w") as f:
        f.write("x")
    COUNTS["flag examples"] += 1
    cwd = os.getcwd()
    os.chdir(root)  # a default store (runs/NAME.db) lands in the example's folder
    try:
        _run(argv, root, monkeypatch, {os.path.join(root, "f.txt")})
    finally:
        os.chdir(cwd)


def test_fuzz_counts():
    """Runs after the two fuzz tests (file order): both drove examples and both outcomes occurred."""
    print(f"\nfuzz: {COUNTS}")
    if COUNTS["study examples"] and COUNTS["flag examples"]:
        assert COUNTS["reached"] > 0 and COUNTS["refused"] > 0
