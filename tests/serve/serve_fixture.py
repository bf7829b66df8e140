"""A small study store for the dashboard's tests: one cell in every state, hostile names.

Cells (nb201 one-shot cells carry each edge's op probabilities, as nasmix records them):
  done     nb201 / darts, seed 0, finished: 2 search epochs, 2 eval epochs tested (60%, 70%).
  running  nb201 / gdas, seed 1, running: 2 search epochs, arch chosen, eval epoch 1 of 3
           tested (40%); `add_eval_epoch` appends the next one.
  failed   simple_cell / gdas, seed 2, failed in the search with a hostile reason.
  pending  nb201 / darts, seed 3, no events.
Every cell's study and dataset are hostile (markup that would run script if written as HTML).
"""

from __future__ import annotations

import numpy as np

from nasmix.config import EvalSettings, SearchSettings
from nasmix.events import ArchChosen, Attempt, End, EvalEpoch, SearchEpoch
from nasmix.spaces.base import get_space
from nasmix.study.schema import ONESHOT_ESTIMATOR, CellSpec
from nasmix.study.store import Store
from nasmix.train import TrainConfig

STUDY = "<script>window.__pwned='study'</script>"
DATASET = "<img src=x onerror=\"window.__pwned='dataset'\">"
REASON = "<img src=x onerror=\"window.__pwned='reason'\"> out of memory"
HOSTILE_ARCH = "<svg onload=\"window.__pwned='arch'\">"
DEVICE = "cpu"
NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
SEARCH = SearchSettings(epochs=2, candidates=2, size="tiny")
EVAL = EvalSettings(size="tiny", train=TrainConfig(epochs=3, batch_size=8, lr=0.025))


def arch_of(space: str, seed: int) -> str:
    return get_space(space).sample(np.random.default_rng(seed)).to_str()


def _cell(space: str, strategy: str, seed: int) -> CellSpec:
    return CellSpec(
        space,
        strategy,
        ONESHOT_ESTIMATOR,
        DATASET,
        seed,
        STUDY,
        SEARCH,
        EVAL,
        device="cpu",
    )


def _probs(epoch: int) -> dict:
    """nb201's 6 edges x 5 ops, sharpening towards op (edge % 5) as epochs go, later edges faster."""
    rows = []
    for e in range(6):
        p = np.full(5, 1.0)
        p[e % 5] += (0.5 + 0.4 * e) * epoch
        rows.append([round(float(x), 3) for x in p / p.sum()])
    return {"arch_probs": {"cell": rows}, "arch_ops": {"cell": NB201_OPS}}


def _search_epoch(epoch: int, arch: str, valid: float) -> SearchEpoch:
    train = (1.0, 0.5)
    return SearchEpoch(
        epoch,
        2,
        *train,
        1.2,
        valid,
        arch,
        1.5 - 0.3 * epoch,
        2.0,
        None,
        10**8,
        2 * 10**8,
        DEVICE,
        5,
        0.025,
        extra=_probs(epoch),
    )


def eval_epoch(epoch: int, top1: float) -> EvalEpoch:
    """An evaluation epoch tested at the end (top-5 a bit above top-1)."""
    return EvalEpoch(
        epoch,
        0.01,
        1.0,
        0.5,
        3.0,
        0.5,
        train_gpu_s=2.5,
        peak_gpu_bytes=3 * 10**9,
        device=DEVICE,
        test_top1=top1,
        test_top5=min(1.0, top1 + 0.2),
    )


def build_store(path) -> dict[str, CellSpec]:
    """The four cells above in a new store at `path`; returns them by name."""
    cells = {
        "done": _cell("nb201", "darts", 0),
        "running": _cell("nb201", "gdas", 1),
        "failed": _cell("simple_cell", "gdas", 2),
        "pending": _cell("nb201", "darts", 3),
    }
    with Store(path) as store:
        store.add_cells(cells.values())
        for name, top1s in (("done", (0.6, 0.7)), ("running", (0.4,))):
            c = cells[name]
            arch = arch_of("nb201", c.seed + 1)
            store.append(c.id, "attempt/1", Attempt(DEVICE))
            for i, v in ((1, 0.3), (2, 0.45)):
                store.append(c.id, f"search/epoch/{i}", _search_epoch(i, arch, v))
            store.append(
                c.id,
                "arch_chosen",
                ArchChosen(arch, 4.0, 3.5, device=DEVICE, params=1234, flops=5678),
            )
            for i, t in enumerate(top1s, 1):
                store.append(c.id, f"eval/epoch/{i}", eval_epoch(i, t))
            if name == "done":
                store.append(
                    c.id,
                    "end",
                    End(
                        state="finished",
                        arch=arch,
                        test_top1=0.7,
                        test_top5=0.9,
                        epochs_done=2,
                        epochs=2,
                    ),
                )
        failed = cells["failed"]
        store.append(failed.id, "attempt/1", Attempt(DEVICE))
        store.append(failed.id, "search/epoch/1", _search_epoch(1, HOSTILE_ARCH, 0.2))
        store.append(
            failed.id,
            "end",
            End(state="failed", reason=REASON, error="<b>CUDA</b> out of memory"),
        )
    return cells


def add_eval_epoch(path, cell: CellSpec, epoch: int, top1: float) -> None:
    """Append an evaluation epoch to a cell, as a running study's worker does (its own connection)."""
    with Store(path) as store:
        store.append(cell.id, f"eval/epoch/{epoch}", eval_epoch(epoch, top1))
