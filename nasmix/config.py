"""Study files: the typed sections of a study (`DataSettings`, `SearchSettings`,
`EvalSettings`) and the validated `StudyConfig`, read from TOML with clear
errors. Module options are built by nasmix.options.

Example:
    >>> cfg = study_from_dict({"study": {"spaces": ["nb201"], "strategies": ["random"]},
    ...                        "search": {"candidates": 3}})
    >>> cfg.search.budget()
    Budget(epochs=50, candidates=3, batch_size=64, max_seconds=None, max_gpu_seconds=None, replay=None)
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nasmix import registry
from nasmix.budget import Budget
from nasmix.data.base import check_path_use
from nasmix.errors import ConfigError, UnknownNameError
from nasmix.options import build_config
from nasmix.spaces.base import SIZES
from nasmix.train import TrainConfig
from nasmix.validate import check_network_size, check_numbers, depth, field_problems, seed_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "DataSettings",
    "EvalSettings",
    "SearchSettings",
    "StudyConfig",
    "build_config",
    "check_name",
    "eval_settings",
    "load_study",
    "make_study",
    "pick_device",
    "study_from_dict",
]


# ---- studies ------------------------------------------------------------------

# DARTS's evaluation recipe (train.py of its code), shared by the presets that train this way.
DARTS_EVAL_TRAIN: dict[str, Any] = {
    "epochs": 600,
    "batch_size": 96,
    "lr": 0.025,
    "weight_decay": 3e-4,
    "cutout": 16,
    "drop_path": 0.2,
    "aux_weight": 0.4,
    "grad_clip": 5.0,
    "checkpoint_every": 30,
    "eval_every": 30,
}

# Evaluation protocols. "darts": the DARTS paper's CIFAR-10 protocol (600 epochs,
# batch 96, lr 0.025, cutout 16, drop-path 0.2, auxiliary weight 0.4, 20-cell
# 36-channel network). "naslib": what NASLib's defaults run (the same recipe on
# the search-size network). "fast": a short recipe for quick comparisons.
EVAL_PRESETS: dict[str, dict[str, Any]] = {
    "darts": {
        "size": "eval",
        "train": DARTS_EVAL_TRAIN,
    },
    "naslib": {
        "size": "search",
        "train": DARTS_EVAL_TRAIN,
    },
    "fast": {
        "size": "search",
        "train": {
            "epochs": 10,
            "batch_size": 128,
            "lr": 0.05,
            "weight_decay": 5e-4,
            "nesterov": True,
            "checkpoint_every": 2,
            "eval_every": 2,
        },
    },
}

MAX_DEPTH = 8  # [kind.module] option = [list of lists]: 4; anything deeper is not a study
MAX_STUDY_BYTES = 1 << 20  # a study file is a page of TOML, not a data file
STUDY_KEYS = {"study", "data", "search", "eval", "space", "strategy", "estimator"}
MODULE_TABLES = {"space": "space", "strategy": "strategy", "estimator": "estimator"}


def _check_size(size: str, where: str) -> None:
    if size not in SIZES:
        raise ConfigError(UnknownNameError(f"{where} value", size, SIZES).__str__())


def _check_device(name: str) -> None:
    """auto, cpu, cuda or cuda:N (whether this machine has it is checked when a cell runs)."""
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", name):
        raise ConfigError(f"[study] device must be auto, cpu, cuda or cuda:N, got {name!r}")


# A study name becomes a file name (runs/NAME.db): one path component, nothing hidden.
_NAME_BAD = re.compile(r"[/\\:\x00-\x1f\x7f]")
# A Ray cluster's address: auto, local, host:port, or ray://host:port (Ray Client).
_HOST = r"([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])"  # a name, an IPv4 address, or an IPv6 one in brackets
_RAY_ADDRESS = re.compile(rf"auto|local|(ray://)?{_HOST}:[0-9]{{1,5}}")


def check_name(name: Any, what: str = "study name") -> str:
    """A name that becomes a file name: one path component (no / \\ or :), no control
    characters, not hidden (no leading dot), no surrounding spaces, at most 100 characters.

    Raises:
        ConfigError: any other name.
    """
    rule = "letters, digits, spaces and . _ - + (one path component, not starting with a dot)"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{what} must be a non-empty text of {rule}, got {name!r}")
    if _NAME_BAD.search(name) or name.startswith(".") or name != name.strip() or len(name) > 100:
        raise ConfigError(f"{what} {name!r} cannot be a file name: use {rule}")
    return name


def check_store_path(store: Any) -> str:
    """A store path: a file (not a folder), with a file name.

    Raises:
        ConfigError: an empty path, one that ends in a separator or names a folder, a NUL.
    """
    if not isinstance(store, str) or not store.strip() or "\x00" in store:
        raise ConfigError(f"[study] store must be a file path, got {store!r}")
    name = os.path.basename(store)
    if store.endswith(("/", os.sep)) or name in ("", ".", "..") or os.path.isdir(store):
        example = os.path.join(store.rstrip("/" + os.sep) or ".", "study.db")
        raise ConfigError(f"[study] store {store!r} names a folder: give the store's file, e.g. {example}")
    return store


def check_ray_address(address: Any) -> str | None:
    """A Ray cluster address (auto, host:port, ray://host:port) or None.

    Raises:
        ConfigError: anything else.
    """
    if address is None:
        return None
    if not isinstance(address, str) or not _RAY_ADDRESS.fullmatch(address):
        what = "the Ray address (--ray-address, [study] ray_address)"
        raise ConfigError(f"{what} must be 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {address!r}")
    return address


def _check_positive(obj: Any, names: tuple[str, ...], where: str) -> None:
    problems = field_problems(obj)  # types, NaN or inf, int64 first: NaN passes no range test
    if problems:
        raise ConfigError(f"impossible values: {'; '.join(problems)}")
    for name in names:
        value = getattr(obj, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{where}.{name} must be > 0, got {value}")


@dataclass(frozen=True)
class DataSettings:
    """Which images a study uses. `path` falls back to --data, then $NASMIX_DATA."""

    path: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    search_portion: float = 0.5

    def __post_init__(self) -> None:
        _check_positive(self, (), "data")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {value}")
        if not 0 < self.search_portion < 1:
            raise ConfigError(f"data.search_portion must be in (0, 1), got {self.search_portion}")


@dataclass(frozen=True)
class SearchSettings:
    """The search phase: the budget and its caps (wall or GPU seconds)."""

    epochs: int = 50
    candidates: int = 100
    batch_size: int = 64
    size: str = "search"
    max_seconds: float | None = None
    max_gpu_seconds: float | None = None

    def __post_init__(self) -> None:
        _check_size(self.size, "search.size")
        _check_positive(
            self, ("epochs", "candidates", "batch_size", "max_seconds", "max_gpu_seconds"), "search"
        )

    def budget(self, replay: float | None = None) -> Budget:
        """The search's Budget (with a stored cap to replay, when a capped search resumes)."""
        caps = {"max_seconds": self.max_seconds, "max_gpu_seconds": self.max_gpu_seconds, "replay": replay}
        return Budget(self.epochs, self.candidates, self.batch_size, **caps)


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation phase: the chosen arch trained from scratch with `train`."""

    preset: str = "fast"
    size: str = "eval"
    max_seconds: float | None = None
    max_gpu_seconds: float | None = None
    train: TrainConfig = TrainConfig()

    def __post_init__(self) -> None:
        _check_size(self.size, "eval.size")
        _check_positive(self, ("max_seconds", "max_gpu_seconds"), "eval")

    def budget(self) -> Budget:
        """The evaluation's caps as a Budget of `train.epochs` epochs."""
        return Budget(
            epochs=self.train.epochs, max_seconds=self.max_seconds, max_gpu_seconds=self.max_gpu_seconds
        )


@dataclass(frozen=True)
class StudyConfig:
    """A validated study file.

    Attributes:
        name: the study's name.
        store: path of the SQLite store (checkpoints go beside it).
        spaces, strategies, estimators, datasets, seeds: the grid's axes.
        device: auto, cpu, cuda or cuda:N.
        data, search, eval: phase settings.
        options: kind -> module name -> that module's options.
        ray_address: the Ray cluster the ray backend joins (None: a local instance on 127.0.0.1).
    """

    name: str
    store: str
    spaces: tuple[str, ...]
    strategies: tuple[str, ...]
    estimators: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    device: str = "auto"
    data: DataSettings = DataSettings()
    search: SearchSettings = SearchSettings()
    eval: EvalSettings = EvalSettings()
    options: Any = None  # {kind: {name: {key: value}}}, as read
    ray_address: str | None = None

    def module_options(self, kind: str, name: str) -> dict:
        """The options the study gives one module (empty when none)."""
        return dict((self.options or {}).get(kind, {}).get(name, {}))


def _table(raw: Mapping[str, Any], key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table, got {value!r}")
    return dict(value)


def _names(value: Any, key: str, kind: str) -> tuple[str, ...]:
    if value is None:
        raise ConfigError(f"[study] needs {key} = [...]; valid: {', '.join(registry.names(kind))}")
    value = [value] if isinstance(value, str) else list(value) if isinstance(value, tuple) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"[study] {key} must be a list of names, got {value!r}; valid: {', '.join(registry.names(kind))}"
        )
    if not value:
        raise ConfigError(f"[study] {key} is empty")
    for name in value:
        registry.get(kind, name)  # unknown names list the valid ones
    return tuple(value)


def make_study(
    name: str = "study",
    *,
    spaces: Any,
    strategies: Any,
    estimators: Any = ("train",),
    datasets: Any = ("cifar10",),
    seeds: Any = (0,),
    device: str = "auto",
    store: str | None = None,
    data: DataSettings | None = None,
    search: SearchSettings | None = None,
    eval: EvalSettings | None = None,
    options: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    ray_address: str | None = None,
) -> StudyConfig:
    """A validated study from typed parts: what `study_from_dict` builds from a study
    file, and `nasmix run` from its flags.

    Args:
        name: the study's name (default store runs/NAME.db).
        spaces, strategies, estimators, datasets: registered names (a name or a list).
        seeds: an integer or a list of integers in [0, 2**63).
        device: auto, cpu, cuda or cuda:N.
        store: the store's path.
        data, search, eval: the phase settings (defaults when None).
        options: kind -> module name -> options, validated by building each module.
        ray_address: the Ray cluster the ray backend joins (None: a local instance).

    Raises:
        ConfigError / UnknownNameError: unknown names, impossible values; the
            message lists the valid choices.
    """
    check_name(name)
    ray_address = check_ray_address(ray_address)
    axes = (
        _names(spaces, "spaces", "space"),
        _names(strategies, "strategies", "strategy"),
        _names(estimators, "estimators", "estimator"),
        _names(datasets, "datasets", "dataset"),
    )
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    # The rule of `train --seed` and `search --seed` (nasmix.validate.seed_problem).
    if not isinstance(seeds, (list, tuple)) or not seeds or any(seed_problem(s) for s in seeds):
        raise ConfigError(f"[study] seeds must be a list of integers in [0, 2**63), got {seeds!r}")
    _check_device(device)
    check_numbers(options or {}, "options")
    checked: dict[str, dict[str, dict]] = {}
    for kind, modules in (options or {}).items():
        if kind not in MODULE_TABLES:
            raise ConfigError(UnknownNameError("module kind of options", kind, MODULE_TABLES).__str__())
        for mod_name, opts in modules.items():
            registry.get(kind, mod_name)
            if not isinstance(opts, Mapping):
                raise ConfigError(f"[{kind}.{mod_name}] must be a table of options")
            registry.create(kind, mod_name, **opts)  # validates the options now, not mid-study
            checked.setdefault(kind, {})[mod_name] = dict(opts)
    phases = (data or DataSettings(), search or SearchSettings(), eval or eval_settings("fast", {}))
    check_path_use(axes[3], phases[0].path, "data.path")
    runs = ((phases[1].size, phases[1].batch_size), (phases[2].size, phases[2].train.batch_size))
    for space in axes[0]:  # widths no card holds: refused before anything is built or written
        check_network_size(space, checked.get("space", {}).get(space, {}), runs, f"space {space!r}")
    store = check_store_path(f"runs/{name}.db" if store is None else store)
    return StudyConfig(name, store, *axes, tuple(seeds), device, *phases, checked, ray_address)


def study_from_dict(raw: Mapping[str, Any], default_name: str = "study") -> StudyConfig:
    """Validate a study read from TOML (see examples/*.toml for the layout).

    Raises:
        ConfigError / UnknownNameError: unknown keys, unknown module names,
            impossible values; the message lists the valid choices.
    """
    if depth(raw) > MAX_DEPTH:
        deep = depth(raw)
        raise ConfigError(f"the study nests tables or lists {deep} deep; a study needs at most {MAX_DEPTH}")
    for key in raw:
        if key not in STUDY_KEYS:
            raise ConfigError(UnknownNameError("study table", key, STUDY_KEYS).__str__())
    study = _table(raw, "study")
    axes = {
        k: study.pop(k) for k in ("spaces", "strategies", "estimators", "datasets", "seeds") if k in study
    }
    name = study.pop("name", default_name)
    store, device = study.pop("store", None), study.pop("device", "auto")
    ray_address = study.pop("ray_address", None)
    if study:
        valid = [
            "name",
            "store",
            "device",
            "ray_address",
            "spaces",
            "strategies",
            "estimators",
            "datasets",
            "seeds",
        ]
        raise ConfigError(UnknownNameError("key of [study]", sorted(study)[0], valid).__str__())
    ev = _table(raw, "eval")
    return make_study(
        name,
        spaces=axes.get("spaces"),
        strategies=axes.get("strategies"),
        estimators=axes.get("estimators", ["train"]),
        datasets=axes.get("datasets", ["cifar10"]),
        seeds=axes.get("seeds", [0]),
        device=str(device),
        store=store,
        ray_address=ray_address,
        data=build_config(DataSettings, _table(raw, "data"), "[data]"),
        search=build_config(SearchSettings, _table(raw, "search"), "[search]"),
        eval=eval_settings(ev.pop("preset", "fast"), ev),
        options={kind: _table(raw, kind) for kind in MODULE_TABLES if kind in raw},
    )


def eval_settings(preset: str, values: Mapping[str, Any], where: str = "[eval]") -> EvalSettings:
    """The evaluation phase of a preset (EVAL_PRESETS) with some values changed: size,
    max_seconds, max_gpu_seconds, and any TrainConfig field.

    Raises:
        ConfigError: an unknown preset or key, an impossible value, or a seed (each cell
            trains with its own).
    """
    if not isinstance(preset, str) or preset not in EVAL_PRESETS:  # a list is unhashable
        raise ConfigError(UnknownNameError("eval preset", str(preset), EVAL_PRESETS).__str__())
    values = dict(values)
    base = EVAL_PRESETS[preset]
    phase: dict[str, Any] = {
        k: values.pop(k) for k in ("size", "max_seconds", "max_gpu_seconds") if k in values
    }
    if "seed" in values:  # it would be overridden without a word
        hint = "set [study] seeds = [...] instead"
        raise ConfigError(f"{where} seed: each cell trains with its own seed; {hint}")
    train_cfg = build_config(TrainConfig, {**base["train"], **values}, where)  # the other keys: TrainConfig's
    evaluation = build_config(EvalSettings, {"preset": preset, "size": base["size"], **phase}, where)
    return dataclasses.replace(evaluation, train=train_cfg)


def load_study(path: str) -> StudyConfig:
    """Read and validate a TOML study file."""
    if os.path.isdir(path):
        raise ConfigError(f"study file {path!r} is a folder: give the TOML file (see examples/)")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_STUDY_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"study file {path!r} does not exist") from None
    except OSError as err:
        raise ConfigError(f"study file {path!r} cannot be read: {err.strerror or err}") from None
    if len(data) > MAX_STUDY_BYTES:
        raise ConfigError(f"study file {path!r} is over {MAX_STUDY_BYTES >> 20} MiB: not a study file")
    if b"\x00" in data:
        raise ConfigError(f"study file {path!r} is binary (it holds NUL bytes), not TOML text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        what = f"study file {path!r} is not UTF-8 text (byte {err.start})"
        raise ConfigError(f"{what}: TOML files are UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"study file {path!r} is not valid TOML: {err}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"study file {path!r} nests arrays or tables too deep to read") from None
    return study_from_dict(raw, os.path.splitext(os.path.basename(path))[0])


def pick_device(name: str) -> torch.device:
    """The torch device of a setting (auto, cpu, cuda, cuda:N): auto is CUDA when
    present; an unknown device, or a CUDA device this machine lacks, is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {name!r} (auto, cpu, cuda or cuda:N): {err}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ConfigError(
                f"device {name!r} asked for, but this machine (or worker) sees {count} CUDA GPU(s)"
            )
    return device
