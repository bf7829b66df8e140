"""One-shot search_epoch events carry each edge's op probabilities (`arch_probs`, `arch_ops`): what the
dashboard's heatmap draws (strategies/oneshot.py `arch_weights_extra`)."""

from __future__ import annotations

import pytest

import nasmix
from nasmix.budget import Budget
from nasmix.events import SearchEpoch
from nasmix.serve.cellview import heatmaps


@pytest.mark.slow  # about 5 s of CPU: two epochs of a real search
def test_darts_search_epochs_store_the_arch_weights():
    budget = Budget(epochs=2, batch_size=16)
    result = nasmix.search("nb201", "darts", "synthetic", budget=budget, size="tiny", device="cpu")
    epochs = [e for e in result.events if isinstance(e, SearchEpoch)]
    assert len(epochs) == 2
    for e in epochs:
        (group,) = e.extra["arch_probs"]
        rows, ops = e.extra["arch_probs"][group], e.extra["arch_ops"][group]
        assert len(rows) == 6 and all(len(r) == len(ops) == 5 for r in rows)  # nb201: 6 edges of 5 ops
        assert all(abs(sum(r) - 1) < 0.01 for r in rows) and all(round(p, 3) == p for r in rows for p in r)
    maps = heatmaps([e.to_json() for e in epochs])
    assert maps[0]["epochs"] == [1, 2] and maps[0]["ops"] == epochs[0].extra["arch_ops"][group]
