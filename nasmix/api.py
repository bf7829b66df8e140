"""The public Python API; `import nasmix` loads it lazily (see nasmix/__init__.py
and docs/api.md).

Example:
    >>> import nasmix
    >>> result = nasmix.search(space="nb201", strategy="darts", data="synthetic", size="tiny",
    ...                        budget=nasmix.Budget(epochs=1, batch_size=32), device="cpu")
    >>> result.arch.space, type(result.events[-1]).__name__
    ('nb201', 'SearchDone')
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Budget
from nasmix.config import StudyConfig, load_study as read_study_file, pick_device, study_from_dict
from nasmix.data import DatasetArrays, load_dataset, search_split
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimator
from nasmix.events import Capped, Event
from nasmix.report.metrics import CellMetrics, study_metrics
from nasmix.search_types import Log, SearchData
from nasmix.spaces.base import SearchSpace, check_size
from nasmix.strategies.base import Strategy
from nasmix.study.driver import run_study as _run_study
from nasmix.study.grid import compatible
from nasmix.study.schema import ONESHOT_ESTIMATOR, CellRecord
from nasmix.study.store import Store
from nasmix.timing import Timer
from nasmix.train import Callback, TrainConfig, TrainResult, train

__all__ = [
    "SearchResult",
    "Study",
    "create",
    "fit",
    "load_study",
    "names",
    "run_study",
    "search",
    "write_report",
]


def create(kind: str, name: str, /, **options: Any) -> Any:
    """A registered module (space, strategy, estimator, proxy, dataset, model) built
    with its options; unknown names and options are errors that list the valid ones.

    Example:
        >>> create("space", "chain", layers=3).config.layers
        3
    """
    return registry.create(kind, name, **options)


def names(kind: str, pattern: str | None = None) -> list[str]:
    """The registered names of a kind, optionally filtered by a glob pattern.

    Example:
        >>> names("strategy", "*darts")
        ['darts', 'pcdarts']
    """
    return registry.names(kind, pattern)


def _module(kind: str, value: Any, base: type) -> Any:
    """A module given as an instance, or by name (built with default options)."""
    if isinstance(value, str):
        return registry.create(kind, value)
    if not isinstance(value, base):
        raise ConfigError(f"{kind} must be a registered name or a {base.__name__}, got {value!r}")
    return value


def _dataset(data: str | DatasetArrays, data_path: str | os.PathLike | None) -> DatasetArrays:
    if isinstance(data, str):
        return load_dataset(data, str(data_path) if data_path is not None else None)
    if not isinstance(data, DatasetArrays):
        raise ConfigError(f"data must be a dataset name or DatasetArrays, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class SearchResult:
    """What one search returned.

    Attributes:
        arch: the chosen architecture.
        events: every event the search logged, in order (nasmix.events).
        search_s: the search's wall seconds.
        device: the device that ran it, in words.
        peak_gpu_bytes: its peak GPU memory (None on a CPU).
    """

    arch: Arch
    events: tuple[Event, ...]
    search_s: float
    device: str
    peak_gpu_bytes: int | None = None

    @property
    def capped(self) -> Capped | None:
        """The cap that stopped the search early, if one did."""
        return next((e for e in self.events if isinstance(e, Capped)), None)


def search(
    space: str | SearchSpace,
    strategy: str | Strategy,
    data: str | DatasetArrays | SearchData,
    *,
    estimator: str | Estimator | None = None,
    budget: Budget | None = None,
    seed: int = 0,
    device: str = "auto",
    size: str = "search",
    portion: float = 0.5,
    data_path: str | os.PathLike | None = None,
    log: Log | None = None,
) -> SearchResult:
    """Run one search and return the chosen arch with its events.

    Args:
        space, strategy, estimator: registered names (default options) or modules
            built with `create`; discrete strategies need an estimator.
        data: a dataset name, its arrays (split into the search halves by
            `portion`), or a ready SearchData (then device, size and portion are its own).
        budget: epochs or candidates, batch size and caps (default Budget()).
        seed: the seed of every random choice; the same seed gives the same arch.
        device: auto, cpu, cuda or cuda:N.
        size: the network size searched: tiny, search or eval.
        portion: the share of the training images that train weights.
        data_path: where the dataset is (default $NASMIX_DATA).
        log: also receives each event as it happens.

    Returns:
        SearchResult: the arch, the typed events, the wall seconds, the device.

    Raises:
        ConfigError: unknown names or options, a combination that makes no sense.
    """
    # _module checks the class (mypy takes no abstract class for a type[T] argument, hence the casts)
    space = cast(SearchSpace, _module("space", space, SearchSpace))
    strategy = cast(Strategy, _module("strategy", strategy, Strategy))
    if estimator is not None:
        estimator = cast(Estimator, _module("estimator", estimator, Estimator))
    if strategy.kind != "oneshot" and estimator is None:
        valid = ", ".join(registry.names("estimator"))
        raise ConfigError(f"strategy {strategy.registry_name!r} is discrete: it needs an estimator ({valid})")
    why = compatible(space.registry_name, strategy, estimator if estimator is not None else ONESHOT_ESTIMATOR)
    if why is not None:
        raise ConfigError(why)
    if isinstance(data, SearchData):
        sdata = data
    else:
        check_size(size)
        torch_device = pick_device(device)
        arrays = _dataset(data, data_path)
        if not 0 < portion < 1:
            raise ConfigError(f"portion must be between 0 and 1, got {portion}")
        halves = search_split(arrays.train, len(arrays.classes), portion)
        sdata = SearchData(*halves, arrays.task, torch_device, Timer(torch_device), size=size)
    events: list[Event] = []

    def record(event: Event) -> None:
        events.append(event)
        if log is not None:
            log(event)

    torch.manual_seed(seed)
    assert sdata.timer is not None
    with sdata.timer.measure() as m:
        rng = np.random.default_rng(seed)
        arch = strategy.search(space, estimator, sdata, budget or Budget(), record, rng)
    return SearchResult(arch, tuple(events), m.wall_s, m.device, m.peak_gpu_bytes)


def fit(
    model: str | nn.Module | Arch,
    data: str | DatasetArrays,
    config: TrainConfig | None = None,
    *,
    size: str = "eval",
    device: str = "auto",
    data_path: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    budget: Budget | None = None,
    callback: Callback | None = None,
) -> TrainResult:
    """Train a network from scratch (or from its checkpoint) and test it after each evaluated epoch.

    Args:
        model: a network, an Arch or arch string (built at `size`), or a registered
            model name (built with its default options and trained with its recipe
            unless `config` is given).
        data: a dataset name or its arrays.
        config: the recipe (default: the model's recipe, else TrainConfig()).
        size: the network size of an arch: tiny, search or eval.
        device: auto, cpu, cuda or cuda:N.
        data_path: where the dataset is (default $NASMIX_DATA).
        checkpoint_dir: save checkpoints here (TrainConfig.checkpoint_every); an
            existing one resumes the run.
        budget: caps (max_seconds, max_gpu_seconds) checked between epochs.
        callback: receives nasmix.train's step and epoch dicts.

    Returns:
        TrainResult: one dict per epoch (`final` the last), and why a cap stopped it.
    """
    arrays = _dataset(data, data_path)
    recipe = None
    if isinstance(model, str) and ":" not in model and "{" not in model:
        spec = registry.create("model", model)
        recipe = getattr(spec, "recipe", None)
        model = spec.build(arrays.task)
    elif isinstance(model, (str, Arch)):
        arch = Arch.from_str(model) if isinstance(model, str) else model
        space = registry.create("space", arch.space, **dict(arch.options))
        model = space.build(arch, arrays.task, check_size(size))
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a network, an arch or a model name, got {type(model).__name__}")
    config = config or (TrainConfig(**recipe) if recipe else TrainConfig())
    clock = budget.clock(timer=None, total=config.epochs) if budget is not None else None
    target = pick_device(device)
    return train(
        model,
        arrays.train,
        arrays.task,
        config,
        target,
        test=arrays.test,
        checkpoint_dir=checkpoint_dir,
        callback=callback,
        clock=clock,
    )


@dataclass(frozen=True)
class Study:
    """A study store, read: its cells (typed records with their state and events) and
    their metrics (the report's).

    Attributes:
        path: the store.
        cells: one record per cell, in the order added.
    """

    path: Path
    cells: tuple[CellRecord, ...]

    @functools.cached_property
    def metrics(self) -> tuple[CellMetrics, ...]:
        """The report's per-cell metrics (nasmix.report.metrics), in the order of `cells`."""
        return tuple(study_metrics(self.cells))

    def cell(self, cell_id: str) -> CellRecord:
        """The cell with this id."""
        for rec in self.cells:
            if rec.id == cell_id:
                return rec
        raise ConfigError(f"store {self.path} has no cell {cell_id!r}")

    def states(self) -> dict[str, int]:
        """How many cells are in each state."""
        out: dict[str, int] = {}
        for rec in self.cells:
            out[rec.state] = out.get(rec.state, 0) + 1
        return out

    def __iter__(self) -> Iterator[CellRecord]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)


def load_study(db: str | os.PathLike) -> Study:
    """A study store's cells, events and metrics.

    Raises:
        StoreError: the store is missing or unreadable.
    """
    with Store(db, readonly=True) as store:
        return Study(Path(db), tuple(store.cells()))


def run_study(
    study: str | os.PathLike | StudyConfig | Mapping[str, Any],
    *,
    store: str | os.PathLike | None = None,
    data_path: str | os.PathLike | None = None,
    backend: str = "inprocess",
    workers: int | None = None,
    address: str | None = None,
    quiet: bool = True,
) -> Study:
    """Run every cell of a study that has not ended yet (a re-run resumes it).

    Args:
        study: a TOML study file, its parsed tables (a dict), or a StudyConfig.
        store: another store path than the study's.
        data_path: the dataset location (default: the study's data.path, then $NASMIX_DATA).
        backend: inprocess, local or ray.
        workers: local worker processes (default: one per GPU).
        address: a Ray cluster's address (None: a local Ray instance).
        quiet: no progress bars.

    Returns:
        The study's store, read after the run.
    """
    if isinstance(study, StudyConfig):
        cfg = study
    elif isinstance(study, Mapping):
        cfg = study_from_dict(study)
    else:
        cfg = read_study_file(os.fspath(study))
    if store is not None:
        cfg = dataclasses.replace(cfg, store=os.fspath(store))
    path = None if data_path is None else os.fspath(data_path)
    _run_study(cfg, path, backend, workers, address, quiet)
    return load_study(cfg.store)


def write_report(db: str | os.PathLike, out: str | os.PathLike, **options: Any) -> dict[str, Path]:
    """Write a study's report (HTML, Markdown, figures, CSV) into a folder.

    Args:
        db: the study's store.
        out: the output folder.
        options: target, shared_time_axis, basis, workers (see `nasmix report --help`).

    Returns:
        The files written, by role (html, md, figures, layout, summary_csv, marginal_csv).
    """
    from nasmix.report.render import write_report as render  # matplotlib: loaded only to draw

    return render(db, out, **options)
