"""What a report reads from a study store: typed records.

`load_records` is the report's only contact with the store; everything after
it (metrics, figures, rendering) works on `CellRecord` values, so the metrics
are pure functions that tests feed with hand-made records. The record types
are the store's own (nasmix.study.schema): a cell record carries its state and
its events; an event record its stored data (`data`) and its typed event
(`event`, nasmix.events).

Example:
    >>> rec = CellRecord("c1", "nb201 / random / train / synthetic / seed 0", "nb201", "random", "train",
    ...                  "synthetic", 0, "pending", {}, ())
    >>> rec.combo
    ('nb201', 'random', 'train', 'synthetic')
"""

from __future__ import annotations

import os

from nasmix.study.schema import CellRecord, EventRecord, estimator_kind
from nasmix.study.store import Store

__all__ = ["ACCURACY_ESTIMATOR_KINDS", "CellRecord", "EventRecord", "estimator_kind", "load_records"]

# Estimator families whose candidate scores are accuracies in [0, 1]; the
# search curve of the other family (zero-cost proxies) is not drawn on
# the accuracy axis.
ACCURACY_ESTIMATOR_KINDS = ("oneshot", "training", "weight_sharing", "tabular", "predictor")


def load_records(path: str | os.PathLike) -> list[CellRecord]:
    """Every cell of a study store with its events and state.

    Args:
        path: the study's SQLite store.

    Returns:
        One CellRecord per cell, in the order the cells were added.

    Raises:
        StoreError (a NasmixError): the store is missing or unreadable.
    """
    with Store(path, readonly=True) as store:
        return store.cells()
