"""Configuration: module options as frozen dataclasses, built from TOML or
command-line values with clear errors.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     epochs: int = 1
    >>> build_config(Opts, {"epochs": "3"}, "demo")
    Opts(epochs=3)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasmix.errors import ConfigError, UnknownNameError


def build_config(config_type: type, values: Mapping[str, Any], where: str) -> Any:
    """Build a frozen dataclass from a mapping, refusing unknown keys.

    Values are coerced to the field's simple type (int, float, bool, str,
    tuple) so that TOML and command-line values work alike; a dataclass may
    check its own values in `__post_init__` by raising ConfigError.
    """
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    for key in values:
        if key not in fields:
            raise ConfigError(UnknownNameError(f"option of {where}", key, fields).__str__())
    coerced = {k: _coerce(v, fields[k].type, f"{where}: option {k!r}") for k, v in values.items()}
    try:
        return config_type(**coerced)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise ConfigError(f"{where}: {err}") from None
        raise ConfigError(f"{where}: {err}") from None


_SIMPLE = {"int": int, "float": float, "bool": bool, "str": str}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    text = text.replace(" ", "")
    if "|None" in text or "Optional" in text:
        if value is None:
            return None
        text = text.replace("|None", "").replace("None|", "")
    if text in _SIMPLE:
        kind = _SIMPLE[text]
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be {text}, got {value!r}")
    if text.startswith("tuple") and isinstance(value, (list, tuple)):
        return tuple(value)
    return value


# ---- studies ------------------------------------------------------------------

# Evaluation protocols. "darts": the DARTS paper's CIFAR-10 protocol (600 epochs,
# batch 96, lr 0.025, cutout 16, drop-path 0.2, auxiliary weight 0.4, 20-cell
# 36-channel network). "naslib": what NASLib's defaults run (the same recipe on
# the search-size network). "fast": a short recipe for quick comparisons.
EVAL_PRESETS: dict[str, dict[str, Any]] = {
    "darts": {"size": "eval", "train": {"epochs": 600, "batch_size": 96, "lr": 0.025, "weight_decay": 3e-4,
              "cutout": 16, "drop_path": 0.2, "aux_weight": 0.4, "grad_clip": 5.0, "checkpoint_every": 30,
              "eval_every": 30}},
    "naslib": {"size": "search", "train": {"epochs": 600, "batch_size": 96, "lr": 0.025, "weight_decay": 3e-4,
               "cutout": 16, "drop_path": 0.2, "aux_weight": 0.4, "grad_clip": 5.0, "checkpoint_every": 30,
               "eval_every": 30}},
    "fast": {"size": "search", "train": {"epochs": 10, "batch_size": 128, "lr": 0.05, "weight_decay": 5e-4,
             "nesterov": True, "checkpoint_every": 2, "eval_every": 2}},
}  # fmt: skip

STUDY_KEYS = {"study", "data", "search", "eval", "space", "strategy", "estimator"}
MODULE_TABLES = {"space": "space", "strategy": "strategy", "estimator": "estimator"}


def _check_size(size: str, where: str) -> None:
    from nasmix.spaces.base import SIZES

    if size not in SIZES:
        raise ConfigError(UnknownNameError(f"{where} value", size, SIZES).__str__())


def _check_device(name: str) -> None:
    """auto, cpu, cuda or cuda:N (whether this machine has it is checked when a cell runs)."""
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", name):
        raise ConfigError(f"[study] device must be auto, cpu, cuda or cuda:N, got {name!r}")


def _check_positive(obj: Any, names: tuple[str, ...], where: str) -> None:
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
        _check_positive(self, ("epochs", "candidates", "batch_size", "max_seconds", "max_gpu_seconds"), "search")


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation phase: the chosen arch trained from scratch with `train`."""

    preset: str = "fast"
    size: str = "eval"
    max_seconds: float | None = None
    max_gpu_seconds: float | None = None
    train: Any = None  # a nasmix.train.TrainConfig

    def __post_init__(self) -> None:
        _check_size(self.size, "eval.size")
        _check_positive(self, ("max_seconds", "max_gpu_seconds"), "eval")


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

    def module_options(self, kind: str, name: str) -> dict:
        """The options the study gives one module (empty when none)."""
        return dict((self.options or {}).get(kind, {}).get(name, {}))


def _table(raw: Mapping[str, Any], key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table, got {value!r}")
    return dict(value)


def _names(study: dict, key: str, kind: str, default: list | None = None) -> tuple[str, ...]:
    from nasmix import registry

    value = study.pop(key, default)
    if value is None:
        raise ConfigError(f"[study] needs {key} = [...]; valid: {', '.join(registry.names(kind))}")
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[study] {key} must be a list of names, got {value!r}; "
                          f"valid: {', '.join(registry.names(kind))}")  # fmt: skip
    if not value:
        raise ConfigError(f"[study] {key} is empty")
    for name in value:
        registry.get(kind, name)  # unknown names list the valid ones
    return tuple(value)


def study_from_dict(raw: Mapping[str, Any], default_name: str = "study") -> StudyConfig:
    """Validate a study read from TOML (see examples/*.toml for the layout).

    Raises:
        ConfigError / UnknownNameError: unknown keys, unknown module names,
            impossible values; the message lists the valid choices.
    """
    from nasmix import registry
    from nasmix.train import TrainConfig

    for key in raw:
        if key not in STUDY_KEYS:
            raise ConfigError(UnknownNameError("study table", key, STUDY_KEYS).__str__())
    study = _table(raw, "study")
    name = str(study.pop("name", default_name))
    store = str(study.pop("store", f"runs/{name}.db"))
    device = str(study.pop("device", "auto"))
    spaces = _names(study, "spaces", "space")
    strategies = _names(study, "strategies", "strategy")
    estimators = _names(study, "estimators", "estimator", ["train"])
    datasets = _names(study, "datasets", "dataset", ["cifar10"])
    seeds = study.pop("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if (not isinstance(seeds, (list, tuple)) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in seeds)):  # fmt: skip
        raise ConfigError(f"[study] seeds must be a list of integers in [0, 2**63), got {seeds!r}")
    seeds = tuple(seeds)
    _check_device(device)
    if study:
        valid = ["name", "store", "device", "spaces", "strategies", "estimators", "datasets", "seeds"]
        raise ConfigError(UnknownNameError("key of [study]", sorted(study)[0], valid).__str__())
    data = build_config(DataSettings, _table(raw, "data"), "[data]")
    search = build_config(SearchSettings, _table(raw, "search"), "[search]")
    ev = _table(raw, "eval")
    preset = ev.pop("preset", "fast")
    if preset not in EVAL_PRESETS:
        raise ConfigError(UnknownNameError("eval preset", str(preset), EVAL_PRESETS).__str__())
    base = EVAL_PRESETS[preset]
    phase = {k: ev.pop(k) for k in ("size", "max_seconds", "max_gpu_seconds") if k in ev}
    if "seed" in ev:  # it would be overridden without a word
        raise ConfigError("[eval] seed: each cell trains with its own seed; set [study] seeds = [...] instead")
    recipe = {**base["train"], **ev}  # the remaining keys are TrainConfig fields
    train_cfg = build_config(TrainConfig, recipe, "[eval]")
    evaluation = build_config(EvalSettings, {"preset": preset, "size": base["size"], **phase}, "[eval]")
    evaluation = dataclasses.replace(evaluation, train=train_cfg)
    options: dict[str, dict[str, dict]] = {}
    for kind in MODULE_TABLES:
        for mod_name, opts in _table(raw, kind).items():
            registry.get(kind, mod_name)
            if not isinstance(opts, Mapping):
                raise ConfigError(f"[{kind}.{mod_name}] must be a table of options")
            registry.create(kind, mod_name, **opts)  # validates the options now, not mid-study
            options.setdefault(kind, {})[mod_name] = dict(opts)
    return StudyConfig(name, store, spaces, strategies, estimators, datasets, seeds, device, data, search,
                       evaluation, options)  # fmt: skip


def load_study(path: str) -> StudyConfig:
    """Read and validate a TOML study file."""
    import os

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"study file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"study file {path!r} is not valid TOML: {err}") from None
    return study_from_dict(raw, os.path.splitext(os.path.basename(path))[0])


def pick_device(name: str):
    """The torch device of a setting (auto, cpu, cuda, cuda:N): auto is CUDA when
    present; an unknown device, or a CUDA device this machine lacks, is a ConfigError."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {name!r} (auto, cpu, cuda or cuda:N): {err}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ConfigError(f"device {name!r} asked for, but this machine (or worker) sees {count} CUDA GPU(s)")
    return device
