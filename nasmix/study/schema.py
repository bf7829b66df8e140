"""The typed schema of a study, shared by grid, run, store, status and report.

- `CellSpec`: what one cell runs (space, strategy, estimator, dataset, seed)
  with its typed search budget, evaluation recipe, data settings and module
  options, and one JSON round trip. Its id is the hash of that JSON, the same
  JSON (and so the same id) as stores written before this module existed.
- `EventRecord` and `CellRecord`: what a store holds, as the store returns it;
  a record carries its typed event (`EventRecord.event`, nasmix.events) and
  a cell record its state, derived once (`cell_state`).
- The events (nasmix.events) and the budget and its clock (nasmix.budget) live
  below strategies and estimators, which log and poll them; they are
  re-exported here.

Example:
    >>> spec = CellSpec("nb201", "random", "train", "synthetic", seed=0, study="demo")
    >>> spec.label
    'nb201 / random / train / synthetic / seed 0'
    >>> CellSpec.from_json(spec.to_json(), "demo") == spec
    True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nasmix import registry
from nasmix.budget import Budget, Clock
from nasmix.config import DataSettings, EvalSettings, SearchSettings
from nasmix.events import END_STATES, Event, parse
from nasmix.options import build_config
from nasmix.train import TrainConfig

_E = TypeVar("_E", bound=Event)

__all__ = [
    "ONESHOT_ESTIMATOR",
    "STATES",
    "Budget",
    "CellRecord",
    "CellSpec",
    "Clock",
    "EventRecord",
    "ModuleOptions",
    "cell_state",
    "estimator_kind",
]

# One-shot strategies estimate with their own supernet: the estimator axis does
# not apply to them, and their cells carry this estimator name.
ONESHOT_ESTIMATOR = "supernet"
STATES = ("pending", "running") + END_STATES


def config_id(text: str) -> str:
    """A cell's id: the first 12 hexadecimal digits of its config JSON's SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ModuleOptions:
    """The options a cell gives its modules (as the study file wrote them).

    Attributes:
        space, strategy: options of the cell's space and strategy.
        estimator: options of its estimator; None for a one-shot cell, which has none.
    """

    space: dict[str, Any] = field(default_factory=dict)
    strategy: dict[str, Any] = field(default_factory=dict)
    estimator: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"space": dict(self.space), "strategy": dict(self.strategy)}
        if self.estimator is not None:
            out["estimator"] = dict(self.estimator)
        return out


@dataclass(frozen=True)
class CellSpec:
    """One cell of a study: a combination and everything it runs with.

    Attributes:
        space, strategy, estimator, dataset, seed: the combination.
        study: the study's name (not part of the id).
        search: the search phase: budget, caps and network size.
        eval: the evaluation phase: recipe, caps and network size.
        data: subsets and the search split (the data's location is not part of a cell).
        options: the modules' options.
        device: auto, cpu, cuda or cuda:N.
    """

    space: str
    strategy: str
    estimator: str
    dataset: str
    seed: int
    study: str = ""
    search: SearchSettings = SearchSettings()
    eval: EvalSettings = EvalSettings()
    data: DataSettings = DataSettings()
    options: ModuleOptions = ModuleOptions()
    device: str = "auto"

    def __hash__(self) -> int:
        return hash(self.id)

    @functools.cached_property
    def id(self) -> str:
        """A stable 12-character hash of the cell's whole configuration."""
        return config_id(self.to_json())

    @property
    def label(self) -> str:
        """Readable: 'space / strategy / estimator / dataset / seed N'."""
        est = "" if self.estimator == ONESHOT_ESTIMATOR else f" / {self.estimator}"
        return f"{self.space} / {self.strategy}{est} / {self.dataset} / seed {self.seed}"

    @property
    def oneshot(self) -> bool:
        """Whether a one-shot strategy runs it (no estimator)."""
        return self.estimator == ONESHOT_ESTIMATOR

    def budget(self, replay: float | None = None) -> Budget:
        """The search's budget (replaying a stored cap when a capped search resumes)."""
        return self.search.budget(replay)

    @property
    def train_config(self) -> TrainConfig:
        """The evaluation recipe with the cell's seed."""
        return dataclasses.replace(self.eval.train, seed=self.seed)

    @property
    def settings(self) -> dict[str, Any]:
        """The phase settings and module options as JSON values (what a store keeps)."""
        return {
            # The data's location is not part of a cell: machines differ.
            "data": {k: v for k, v in dataclasses.asdict(self.data).items() if k != "path"},
            "search": dataclasses.asdict(self.search),
            "eval": dataclasses.asdict(self.eval),
            "options": self.options.to_json(),
            "device": self.device,
        }

    def to_json(self) -> str:
        """The canonical JSON of the cell (sorted keys); its id is this text's hash."""
        return json.dumps(_body(self, self.settings), sort_keys=True, default=str)

    @staticmethod
    def from_json(text: str, study: str = "") -> CellSpec:
        """The inverse of `to_json`.

        Raises:
            ConfigError: settings this nasmix cannot read (an unknown or impossible value).
        """
        return CellSpec.from_dict(json.loads(text), study)

    @staticmethod
    def from_dict(d: Mapping[str, Any], study: str = "") -> CellSpec:
        """A cell from the parsed JSON of `to_json`."""
        s = d["settings"]
        where = f"stored cell {d['space']} / {d['strategy']} / {d['estimator']}"
        ev = dict(s["eval"])
        train = build_config(TrainConfig, ev.pop("train"), f"{where}: eval.train")
        options = s.get("options", {})
        return CellSpec(
            d["space"],
            d["strategy"],
            d["estimator"],
            d["dataset"],
            d["seed"],
            study,
            search=build_config(SearchSettings, s["search"], f"{where}: search"),
            eval=dataclasses.replace(build_config(EvalSettings, ev, f"{where}: eval"), train=train),
            data=build_config(DataSettings, s["data"], f"{where}: data"),
            options=ModuleOptions(
                options.get("space", {}), options.get("strategy", {}), options.get("estimator")
            ),
            device=s.get("device", "auto"),
        )


def _body(cell: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a cell (a CellSpec or a CellRecord) with its settings."""
    keys = ("space", "strategy", "estimator", "dataset", "seed")
    return {**{k: getattr(cell, k) for k in keys}, "settings": settings}


def cell_state(end: str | None, started: bool) -> str:
    """A cell's state: its end event's kind (finished, failed, projected), else
    running (events but no end: live or killed, the store cannot tell) or pending."""
    if end is not None:
        return end
    return "running" if started else "pending"


def estimator_kind(estimator: str) -> str | None:
    """The family of a registered estimator ("oneshot" for the one-shot marker); None if unknown."""
    if estimator == ONESHOT_ESTIMATOR:
        return "oneshot"
    try:
        return getattr(registry.get("estimator", estimator).obj, "kind", None)
    except Exception:  # an estimator this nasmix does not know: reports draw no search curve
        return None


@dataclass(frozen=True)
class EventRecord:
    """One stored event: its key, kind, phase and data (JSON, as stored), and where it is.

    `event` is the typed event (nasmix.events) of the data.
    """

    key: str
    kind: str
    phase: str
    data: dict
    seq: int = 0
    cell: str = ""
    time: float = 0.0

    @functools.cached_property
    def event(self) -> Event:
        """The typed event (raises EventSchemaError for data this nasmix cannot read)."""
        return parse(self.kind, self.phase, self.data)

    @staticmethod
    def of(key: str, event: Event, **where: Any) -> EventRecord:
        """The record of a typed event under a key."""
        return EventRecord(key, event.kind, event.phase, event.to_json(), **where)


@dataclass(frozen=True)
class CellRecord:
    """One cell of a study store with all its events and its state.

    Attributes:
        id, label, space, strategy, estimator, dataset, seed: the cell.
        state: pending, running, finished, failed or projected (`cell_state`).
        settings: the cell's phase settings and module options (JSON, as stored).
        events: its events in the order stored.
        estimator_kind: "oneshot" for one-shot strategies, else the
            estimator's family ("training", "proxy", ...); None if unknown.
        study: the study's name.
    """

    id: str
    label: str
    space: str
    strategy: str
    estimator: str
    dataset: str
    seed: int
    state: str
    settings: dict
    events: tuple[EventRecord, ...]
    estimator_kind: str | None = None
    study: str = ""
    _by_key: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def combo(self) -> tuple[str, str, str, str]:
        """(space, strategy, estimator, dataset): the cell without its seed."""
        return (self.space, self.strategy, self.estimator, self.dataset)

    @property
    def method(self) -> str:
        """The strategy, with its estimator for discrete strategies."""
        return self.strategy if self.estimator == ONESHOT_ESTIMATOR else f"{self.strategy} + {self.estimator}"

    @functools.cached_property
    def spec(self) -> CellSpec:
        """The typed cell (ConfigError for settings this nasmix cannot read)."""
        return CellSpec.from_dict(_body(self, self.settings), self.study)

    # ---- typed events ----------------------------------------------------------------
    def events_of(self, *types: type[_E]) -> list[_E]:
        """The typed events of these classes (nasmix.events), in order."""
        return [r.event for r in self.events if isinstance(r.event, types)]

    def first(self, event_type: type[Event], **fields: Any) -> Any:
        """The first typed event of a class whose fields have these values, or None."""
        for e in self.events_of(event_type):
            if all(getattr(e, k) == v for k, v in fields.items()):
                return e
        return None

    # ---- the stored data, by key or kind ---------------------------------------------
    def event(self, key: str) -> dict | None:
        """The data of the event with this key, or None."""
        if not self._by_key:
            self._by_key.update({e.key: e.data for e in self.events})
        return self._by_key.get(key)

    def of_kind(self, *kinds: str | type[Event]) -> list[dict]:
        """The data of every event of these kinds (names or event classes), in order."""
        names: set[str] = set()
        for k in kinds:
            names.update((k,) if isinstance(k, str) else getattr(k, "kinds", None) or (k.kind,))
        return [e.data for e in self.events if e.kind in names]
