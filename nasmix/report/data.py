"""What a report reads from a study store, as plain values.

`load_records` is the report's only contact with the store; everything after
it (metrics, figures, rendering) works on `CellRecord` values, so the metrics
are pure functions that tests feed with hand-made records.

Example:
    >>> rec = CellRecord("c1", "nb201 / random / train / synthetic / seed 0", "nb201", "random", "train",
    ...                  "synthetic", 0, "pending", {}, ())
    >>> rec.combo
    ('nb201', 'random', 'train', 'synthetic')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from nasmix.study.grid import ONESHOT_ESTIMATOR

# Estimator families whose candidate scores are accuracies in [0, 1]; the
# search curve of the other family (zero-cost proxies) is not drawn on
# the accuracy axis.
ACCURACY_ESTIMATOR_KINDS = ("oneshot", "training", "weight_sharing", "tabular", "predictor")


@dataclass(frozen=True)
class EventRecord:
    """One stored event: its key, kind, phase and data."""

    key: str
    kind: str
    phase: str
    data: dict


@dataclass(frozen=True)
class CellRecord:
    """One cell of a study with all its events.

    Attributes:
        id, label, space, strategy, estimator, dataset, seed: the cell.
        state: pending, running, finished, failed or projected.
        settings: the cell's phase settings and module options.
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

    def event(self, key: str) -> dict | None:
        """The data of the event with this key, or None."""
        if not self._by_key:
            self._by_key.update({e.key: e.data for e in self.events})
        return self._by_key.get(key)

    def of_kind(self, *kinds: str) -> list[dict]:
        """The data of every event of these kinds, in order."""
        return [e.data for e in self.events if e.kind in kinds]


def estimator_kind(estimator: str) -> str | None:
    """The family of a registered estimator ("oneshot" for the one-shot marker); None if unknown."""
    if estimator == ONESHOT_ESTIMATOR:
        return "oneshot"
    try:
        from nasmix import registry

        return getattr(registry.get("estimator", estimator).obj, "kind", None)
    except Exception:  # an estimator this nasmix does not know: draw no search curve
        return None


def load_records(path: str | os.PathLike) -> list[CellRecord]:
    """Every cell of a study store with its events.

    Args:
        path: the study's SQLite store.

    Returns:
        One CellRecord per cell, in the order the cells were added.

    Raises:
        StoreError (a NasmixError): the store is missing or unreadable.
    """
    from nasmix.study.store import Store

    store = Store(path, readonly=True)
    try:
        out = []
        by_cell: dict[str, list[EventRecord]] = {}
        for e in store.events():
            by_cell.setdefault(e.cell, []).append(EventRecord(e.key, e.kind, e.phase, e.data))
        for row in store.cells():
            events = tuple(by_cell.get(row.id, ()))
            end = next((e for e in events if e.key == "end"), None)
            state = end.kind if end else ("running" if events else "pending")
            settings = json.loads(row.config).get("settings", {})
            out.append(CellRecord(row.id, row.label, row.space, row.strategy, row.estimator, row.dataset, row.seed,
                                  state, settings, events, estimator_kind(row.estimator), row.study))  # fmt: skip
        return out
    finally:
        store.close()
