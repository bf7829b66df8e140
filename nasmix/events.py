"""The event schema: every event a search, a training run or a study records,
as a closed set of frozen dataclasses, each with its JSON round trip.

A search logs `SearchEpoch` (one-shot, per epoch) or `Candidate` (discrete, per
evaluated arch), `Capped` when its budget's cap stopped it, one-shot notes
(`PartialFallback`, `EdgeNormFallback`, `MemoryPlanned`, `Subnet`), then
`SearchDone`. A study cell adds `Attempt`, `ArchChosen`, `EvalEpoch` and its
`End` (finished, failed or projected). Fields a strategy adds of its own
(GDAS's tau, DrNAS's stage, few-shot's subnet, an estimator's extras) go in
`extra`, a dict of JSON values, so nothing is lost.

In a store an event is three things: its kind, its phase and its data (the
JSON of `to_json`). The data carries the schema version as "v" (data without
one, written before the version existed, is version 1); data of a newer
version than this nasmix knows is refused with a clear error.

Example:
    >>> e = SearchDone(arch="nb201:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", extra={"tau": 0.1})
    >>> data = e.to_json()
    >>> data["tau"], data["v"]
    (0.1, 1)
    >>> parse(e.kind, e.phase, data) == e
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from nasmix.errors import NasmixError

JSON = Any  # a JSON value: None, bool, int, float, str, or lists and str-keyed dicts of them
# Data keys that are not fields: the version, and the kind (in `nasmix search --json`).
RESERVED = ("v", "event")

_TYPES: dict[str, type[Event]] = {}
# The class `from_json` is called on (typing.Self is Python 3.11+, and requires-python admits 3.10).
_E = TypeVar("_E", bound="Event")


class EventSchemaError(NasmixError):
    """Stored event data this nasmix cannot read (an unknown kind, a newer schema, a missing field)."""


def _omit() -> Any:
    """A field that is left out of the JSON while it is None (it appears only when it applies)."""
    return field(default=None, metadata={"omit": True})


def _column(default: Any) -> Any:
    """A field stored in the event's kind or phase column, not in its data."""
    return field(default=default, metadata={"column": True}, kw_only=True)


def _jsonable(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, float, str)) or hasattr(value, "item"):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _jsonable(v, where)
        return
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        for v in value.values():
            _jsonable(v, where)
        return
    raise TypeError(f"{where}: {value!r} is not a JSON value")


@dataclass(frozen=True)
class Event:
    """Base of every event: the kind, the phase, the version and the extra fields.

    Attributes:
        extra: further fields (JSON values) that a strategy or estimator adds.
    """

    kind: ClassVar[str] = ""
    phase: ClassVar[str] = ""
    version: ClassVar[int] = 1
    extra: dict[str, JSON] = field(default_factory=dict, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in getattr(cls, "kinds", (cls.__dict__.get("kind"),)):
            if kind:
                _TYPES[kind] = cls

    def __post_init__(self) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in self.extra.items():
            if key in names or key in RESERVED:
                what = f"{type(self).__name__}: extra field {key!r}"
                raise TypeError(f"{what} clashes with a field or a reserved key")
            _jsonable(value, f"{type(self).__name__}.extra[{key!r}]")

    def key(self, n: int = 1) -> str:
        """The event's key within its cell; `n` numbers events of a kind that may repeat."""
        return f"{self.phase}/{self.kind}/{n}"

    def to_json(self) -> dict[str, JSON]:
        """The event's data: its fields (those marked optional only when set), its extra
        fields and the schema version."""
        out: dict[str, JSON] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or f.metadata.get("column") or (f.metadata.get("omit") and value is None):
                continue
            out[f.name] = value
        out.update(self.extra)
        out["v"] = self.version
        return out

    @classmethod
    def from_json(cls: type[_E], data: Mapping[str, JSON], **columns: Any) -> _E:
        """The event of stored data (the inverse of `to_json`); unknown keys go to `extra`.

        Args:
            data: the data.
            columns: values of the fields stored in columns (Capped's phase, End's state).

        Raises:
            EventSchemaError: a newer schema version, or a required field missing.
        """
        version = data.get("v", 1)
        if not isinstance(version, int) or version > cls.version:
            readable = f"this nasmix reads versions up to {cls.version}; update nasmix"
            raise EventSchemaError(f"{cls.__name__} event of schema version {version!r}: {readable}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in names}
        values.update({k: v for k, v in columns.items() if k in names and v is not None})
        extra = {k: v for k, v in data.items() if k not in names and k not in RESERVED}
        try:
            return cls(**values, extra=extra)
        except TypeError as err:
            what = f"{cls.__name__} event data {sorted(data)}"
            raise EventSchemaError(f"{what} cannot be read: {err}") from None


def parse(kind: str, phase: str, data: Mapping[str, JSON]) -> Event:
    """The typed event of a stored (kind, phase, data).

    Raises:
        EventSchemaError: a kind this nasmix does not know, or unreadable data.
    """
    cls = _TYPES.get(kind)
    if cls is None:
        raise EventSchemaError(f"unknown event kind {kind!r}; this nasmix knows {', '.join(sorted(_TYPES))}")
    return cls.from_json(data, phase=phase, state=kind)


def kinds() -> list[str]:
    """Every event kind, sorted."""
    return sorted(_TYPES)


# ---- set-up ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt(Event):
    """A cell's run starts (the first time, or resumed): the device and the arch it resumes with."""

    kind: ClassVar[str] = "attempt"
    phase: ClassVar[str] = "setup"
    device: str
    resumed_arch: str | None = None

    def key(self, n: int = 1) -> str:
        return f"attempt/{n}"


# ---- search ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchEpoch(Event):
    """One epoch of a one-shot search. Losses and accuracies are None for a half that
    did not step; `arch` is the arch the architecture parameters prefer after it;
    `entropy` the mean entropy (nats) of its op distributions; `elapsed_s` the wall
    seconds since the search started."""

    kind: ClassVar[str] = "search_epoch"
    phase: ClassVar[str] = "search"
    epoch: int
    epochs: int
    train_loss: float | None
    train_top1: float | None
    valid_loss: float | None
    valid_top1: float | None
    arch: str
    entropy: float | None
    epoch_s: float
    gpu_s: float | None
    peak_gpu_bytes: int | None
    peak_host_bytes: int | None
    device: str
    steps: int
    lr: float
    partial: int = 1
    elapsed_s: float | None = _omit()

    def key(self, n: int = 1) -> str:
        return f"search/epoch/{self.epoch}"


@dataclass(frozen=True)
class Candidate(Event):
    """One arch a discrete search evaluated: its score (higher is better), the compute
    charged (`cost_s`; a lookup's recorded time when `simulated`), the best so far,
    and, where the estimator measured them, its GPU seconds and device. The
    estimate's scalar extras go in `extra` (one named like a field as "estimate_NAME")."""

    kind: ClassVar[str] = "candidate"
    phase: ClassVar[str] = "search"
    index: int
    arch: str
    score: float
    cost_s: float
    cumulative_cost_s: float
    best_score: float
    best_arch: str
    fidelity: dict[str, JSON] = field(default_factory=dict)
    simulated: bool = False
    gpu_s: float | None = _omit()
    device: str | None = _omit()
    elapsed_s: float | None = _omit()

    def key(self, n: int = 1) -> str:
        return f"search/candidate/{self.index}"


@dataclass(frozen=True)
class Capped(Event):
    """A cap stopped a phase early: `done` of `total` units (epochs, candidates) in
    `elapsed_s`; a study adds the runtime `projected_s` from that pace. `reason`
    names the cap (max_seconds, max_gpu_seconds, or replay of a stored cap)."""

    kind: ClassVar[str] = "capped"
    done: float
    total: float
    elapsed_s: float
    projected_s: float | None = _omit()
    reason: str | None = _omit()
    phase: str = _column("search")  # type: ignore[misc]  # "search" or "eval"

    def key(self, n: int = 1) -> str:
        return f"{self.phase}/capped"


@dataclass(frozen=True)
class SearchDone(Event):
    """The search's chosen arch, with its score where it has one and the strategy's summary in `extra`."""

    kind: ClassVar[str] = "search_done"
    phase: ClassVar[str] = "search"
    arch: str
    score: float | None = _omit()


@dataclass(frozen=True)
class PartialFallback(Event):
    """PC-DARTS's K lowered to the largest value that divides the space's channels."""

    kind: ClassVar[str] = "partial_fallback"
    phase: ClassVar[str] = "search"
    requested: int
    used: int
    space: str
    reason: str


@dataclass(frozen=True)
class EdgeNormFallback(Event):
    """A supernet without `edge_nodes`: PC-DARTS's edge weights normalised over each group."""

    kind: ClassVar[str] = "edge_norm_fallback"
    phase: ClassVar[str] = "search"
    space: str
    reason: str


@dataclass(frozen=True)
class MemoryPlanned(Event):
    """A one-shot search's memory plan (nasmix.spaces.memory), logged when it checkpoints
    the supernet's cells or when even that does not fit: the estimate at `batch` in bytes
    (`fixed_bytes`: weights, gradients, momentum and the held images; `activation_bytes`
    kept without checkpointing, `checkpointed_bytes` with it, None when not measured),
    the device's `budget_bytes` (None: unknown) and the choice."""

    kind: ClassVar[str] = "memory_plan"
    phase: ClassVar[str] = "search"
    space: str
    batch: int
    budget_bytes: int | None
    fixed_bytes: int
    activation_bytes: int
    checkpointed_bytes: int | None
    checkpoint: bool
    fits: bool
    total_bytes: int


@dataclass(frozen=True)
class Subnet(Event):
    """Few-shot NAS: one sub-supernet's arch and its shared-weight validation score."""

    kind: ClassVar[str] = "subnet"
    phase: ClassVar[str] = "search"
    index: int
    op: str
    arch: str
    valid_loss: float
    valid_top1: float


@dataclass(frozen=True)
class ArchChosen(Event):
    """The search's end in a study: the arch, the search's clocks (`search_projected_s`
    when a cap stopped it), and the standalone network's size."""

    kind: ClassVar[str] = "arch_chosen"
    phase: ClassVar[str] = "search"
    arch: str
    search_s: float
    search_gpu_s: float | None = None
    search_projected_s: float | None = None
    peak_gpu_bytes: int | None = None
    peak_host_bytes: int | None = None
    energy_j: float | None = None
    device: str | None = None
    params: int | None = None
    flops: int | None = None
    strategy_kind: str | None = None  # stored as "kind": "oneshot" or "discrete"
    num_classes: int | None = None

    def key(self, n: int = 1) -> str:
        return "arch_chosen"

    def to_json(self) -> dict[str, JSON]:
        out = super().to_json()
        out["kind"] = out.pop("strategy_kind")  # stored as "kind": "oneshot" or "discrete"
        return out

    @classmethod
    def from_json(cls: type[_E], data: Mapping[str, JSON], **columns: Any) -> _E:
        data = dict(data)
        if "kind" in data:
            data["strategy_kind"] = data.pop("kind")
        return super().from_json(data, **columns)


# ---- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalEpoch(Event):
    """One epoch of the chosen arch's training (nasmix.train's epoch record): validation
    and test figures on the epochs that evaluate, `checkpoint` on those that save one."""

    kind: ClassVar[str] = "eval_epoch"
    phase: ClassVar[str] = "eval"
    epoch: int
    lr: float
    train_loss: float
    train_top1: float
    train_s: float
    eval_s: float
    train_gpu_s: float | None = None
    peak_gpu_bytes: int | None = None
    peak_host_bytes: int | None = None
    energy_j: float | None = None
    device: str | None = None
    val_loss: float | None = _omit()
    val_top1: float | None = _omit()
    val_top5: float | None = _omit()
    test_loss: float | None = _omit()
    test_top1: float | None = _omit()
    test_top5: float | None = _omit()
    checkpoint: str | None = _omit()

    def key(self, n: int = 1) -> str:
        return f"eval/epoch/{self.epoch}"


END_STATES = ("finished", "failed", "projected")


@dataclass(frozen=True)
class End(Event):
    """A cell's end: `state` finished, projected (a cap stopped a phase; the rest is
    projected from its pace) or failed (with the reason). Stored with the state as its kind."""

    kinds: ClassVar[tuple[str, ...]] = END_STATES
    phase: ClassVar[str] = "end"
    state: str = _column("finished")
    arch: str | None = None
    epochs_done: int | None = None
    epochs: int | None = None
    test_top1: float | None = None
    test_top5: float | None = None
    eval_train_s: float | None = None
    eval_train_gpu_s: float | None = None
    search_s: float | None = None
    search_gpu_s: float | None = None
    params: int | None = None
    flops: int | None = None
    eval_projected_s: float | None = _omit()
    search_projected_s: float | None = _omit()
    reason: str | None = _omit()
    error: str | None = _omit()
    traceback: str | None = _omit()
    peak_gpu_bytes: int | None = _omit()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.state not in END_STATES:
            raise TypeError(f"End.state must be one of {', '.join(END_STATES)}, got {self.state!r}")

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.state

    def key(self, n: int = 1) -> str:
        return "end"

    def to_json(self) -> dict[str, JSON]:
        out = super().to_json()
        if self.state == "failed":  # a failure records why, not results it never had
            out = {k: v for k, v in out.items() if v is not None}
        return out
