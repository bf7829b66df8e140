"""A hand-made study store for the report tests: finished, projected and failed cells
with round numbers, so every metric can be checked against a hand computation.

Cells (device H100, every chosen cell with GPU time, so costs are GPU hours):
  A nb201 / gdas, seed 0, finished: search 1 h (GPU 3000 s), 4 epochs of 0.5 h,
    tested at epoch 2 (60% / 90%) and 4 (80% / 95%); energy 1.4 MJ; 1000 params.
  B nb201 / gdas, seed 1, finished: search 1 h (GPU 1 h), 2 epochs of 1 h,
    tested at 1 (50% / 80%) and 2 (70% / 90%); 1200 params.
  C nb201 / random + train, seed 0, projected: 2 candidates of 600 s, search
    0.5 h; 2 of 10 epochs of 900 s (30%, 50%); eval projected to 9000 s; 500 params.
  D simple_cell / gdas, seed 0, failed: out of GPU memory in the search (peak 15.9 GB).
  E simple_cell / random + train, seed 0, finished: 3 looked-up candidates,
    search 3000 s wall (2400 s GPU), 1 epoch of 600 s (60% / 90%); 800 params.
"""

from __future__ import annotations

import numpy as np

from nasmix.config import EvalSettings, SearchSettings
from nasmix.events import ArchChosen, Attempt, End, EvalEpoch, parse
from nasmix.spaces.base import get_space
from nasmix.study.schema import ONESHOT_ESTIMATOR, CellSpec, ModuleOptions
from nasmix.study.store import Store
from nasmix.train import TrainConfig

DEVICE = "cuda: NVIDIA H100 80GB HBM3"
SEARCH = SearchSettings(epochs=2, candidates=2, size="tiny")
EVAL = EvalSettings(size="tiny", train=TrainConfig(epochs=4, batch_size=96, lr=0.025))
# Fields the hand-made events leave out (they do not enter the figures checked).
EPOCH_FILL = {"epochs": 2, "train_loss": 1.0, "train_top1": 0.5, "valid_loss": 1.0, "entropy": 1.0}
CLOCKS_FILL = {"gpu_s": None, "peak_gpu_bytes": None, "peak_host_bytes": None}
FILL = {"search_epoch": {**EPOCH_FILL, **CLOCKS_FILL, "steps": 10, "lr": 0.01}}


def arch_of(space: str, seed: int) -> str:
    return get_space(space).sample(np.random.default_rng(seed)).to_str()


def cell(space, strategy, seed, estimator=ONESHOT_ESTIMATOR, study="fixture") -> CellSpec:
    options = ModuleOptions(estimator=None if estimator == ONESHOT_ESTIMATOR else {})
    return CellSpec(
        space, strategy, estimator, "synthetic", seed, study, SEARCH, EVAL, options=options, device="cuda"
    )


def _append(store: Store, c: CellSpec, key: str, kind: str, phase: str, data: dict) -> None:
    store.append(c.id, key, parse(kind, phase, {**FILL.get(kind, {}), **data}))


def write_cell(
    store: Store, c: CellSpec, search: list, chosen: dict | None, epochs: list, end: tuple
) -> None:
    """Append a cell's events the way run_cell emits them."""
    store.append(c.id, "attempt/1", Attempt(DEVICE))
    for kind, data in search:
        key = (
            f"search/epoch/{data['epoch']}" if kind == "search_epoch" else f"search/candidate/{data['index']}"
        )
        _append(store, c, key, kind, "search", {"device": DEVICE, **data})
    if chosen is not None:
        chosen = {"device": DEVICE, "peak_gpu_bytes": 2e9, **chosen}
        _append(store, c, "arch_chosen", "arch_chosen", "search", chosen)
    for e in epochs:
        body = {
            "lr": 0.01,
            "train_loss": 1.0,
            "train_top1": 0.5,
            "eval_s": 10.0,
            "peak_gpu_bytes": 3e9,
            "device": DEVICE,
            **e,
        }
        _append(store, c, f"eval/epoch/{e['epoch']}", "eval_epoch", "eval", body)
    kind, data = end
    _append(store, c, "end", kind, "end", data)


def build_fixture(path) -> dict[str, CellSpec]:
    """The five cells above in a new store at `path`; returns them by letter."""
    store = Store(path)
    cells = {
        "A": cell("nb201", "gdas", 0),
        "B": cell("nb201", "gdas", 1),
        "C": cell("nb201", "random", 0, "train"),
        "D": cell("simple_cell", "gdas", 0),
        "E": cell("simple_cell", "random", 0, "train"),
    }
    store.add_cells(cells.values())
    a, b, c, e = arch_of("nb201", 1), arch_of("nb201", 2), arch_of("nb201", 3), arch_of("simple_cell", 4)
    write_cell(
        store,
        cells["A"],
        [
            ("search_epoch", {"epoch": i, "epoch_s": 1800.0, "gpu_s": 1500.0, "valid_top1": v, "arch": a})
            for i, v in ((1, 0.3), (2, 0.5))
        ],
        {
            "arch": a,
            "search_s": 3600.0,
            "search_gpu_s": 3000.0,
            "energy_j": 1e6,
            "params": 1000,
            "flops": 2_000_000,
            "kind": "oneshot",
            "search_projected_s": None,
        },
        [
            {
                "epoch": i,
                "train_s": 1800.0,
                "train_gpu_s": 1800.0,
                "energy_j": 1e5,
                **({"test_top1": t1, "test_top5": t5, "checkpoint": f"ck{i}"} if t1 else {}),
            }
            for i, t1, t5 in ((1, None, None), (2, 0.6, 0.9), (3, None, None), (4, 0.8, 0.95))
        ],
        (
            "finished",
            {
                "arch": a,
                "epochs_done": 4,
                "epochs": 4,
                "test_top1": 0.8,
                "test_top5": 0.95,
                "eval_train_s": 7200.0,
                "eval_train_gpu_s": 7200.0,
                "search_s": 3600.0,
                "search_gpu_s": 3000.0,
                "params": 1000,
                "flops": 2_000_000,
            },
        ),
    )
    write_cell(
        store,
        cells["B"],
        [("search_epoch", {"epoch": 1, "epoch_s": 3600.0, "valid_top1": 0.4, "arch": b})],
        {
            "arch": b,
            "search_s": 3600.0,
            "search_gpu_s": 3600.0,
            "params": 1200,
            "flops": 3_000_000,
            "kind": "oneshot",
        },
        [
            {"epoch": 1, "train_s": 3600.0, "train_gpu_s": 3600.0, "test_top1": 0.5, "test_top5": 0.8},
            {"epoch": 2, "train_s": 3600.0, "train_gpu_s": 3600.0, "test_top1": 0.7, "test_top5": 0.9},
        ],
        (
            "finished",
            {
                "arch": b,
                "epochs_done": 2,
                "epochs": 2,
                "test_top1": 0.7,
                "test_top5": 0.9,
                "eval_train_s": 7200.0,
                "params": 1200,
                "flops": 3_000_000,
            },
        ),
    )
    write_cell(
        store,
        cells["C"],
        [
            (
                "candidate",
                {
                    "index": i,
                    "arch": c,
                    "score": s,
                    "cost_s": 600.0,
                    "cumulative_cost_s": 600.0 * i,
                    "best_score": s,
                    "best_arch": c,
                    "simulated": False,
                },
            )
            for i, s in ((1, 0.4), (2, 0.45))
        ],
        {
            "arch": c,
            "search_s": 1800.0,
            "search_gpu_s": 1800.0,
            "params": 500,
            "flops": 1_000_000,
            "kind": "discrete",
        },
        [
            {"epoch": 1, "train_s": 900.0, "train_gpu_s": 900.0, "test_top1": 0.3, "test_top5": 0.6},
            {"epoch": 2, "train_s": 900.0, "train_gpu_s": 900.0, "test_top1": 0.5, "test_top5": 0.8},
        ],
        (
            "projected",
            {
                "arch": c,
                "epochs_done": 2,
                "epochs": 10,
                "test_top1": 0.5,
                "test_top5": 0.8,
                "eval_train_s": 1800.0,
                "eval_projected_s": 9000.0,
                "params": 500,
                "flops": 1_000_000,
            },
        ),
    )
    capped = {"done": 2, "total": 10, "elapsed_s": 1800.0, "projected_s": 9000.0}
    _append(store, cells["C"], "eval/capped", "capped", "eval", capped)
    write_cell(
        store,
        cells["D"],
        [("search_epoch", {"epoch": 1, "epoch_s": 600.0, "valid_top1": 0.2, "arch": e})],
        None,
        [],
        ("failed", {"reason": "out of GPU memory", "error": "CUDA out of memory", "peak_gpu_bytes": 15.9e9}),
    )
    write_cell(
        store,
        cells["E"],
        [
            (
                "candidate",
                {
                    "index": i,
                    "arch": e,
                    "score": 0.5,
                    "cost_s": 5000.0,
                    "cumulative_cost_s": 5000.0 * i,
                    "best_score": 0.5,
                    "best_arch": e,
                    "simulated": True,
                },
            )
            for i in (1, 2, 3)
        ],
        {
            "arch": e,
            "search_s": 3000.0,
            "search_gpu_s": 2400.0,
            "params": 800,
            "flops": 1_500_000,
            "kind": "discrete",
        },
        [{"epoch": 1, "train_s": 600.0, "train_gpu_s": 600.0, "test_top1": 0.6, "test_top5": 0.9}],
        (
            "finished",
            {
                "arch": e,
                "epochs_done": 1,
                "epochs": 1,
                "test_top1": 0.6,
                "test_top5": 0.9,
                "eval_train_s": 600.0,
                "params": 800,
                "flops": 1_500_000,
            },
        ),
    )
    store.close()
    return cells


def build_nine(path, search_epochs: int = 50, eval_epochs: int = 100, eval_every: int = 10) -> list[CellSpec]:
    """A study of 9 finished cells (3 spaces x 3 one-shot strategies), sized like a real run."""
    store = Store(path)
    cells = [
        cell(s, t, 0, study="nine")
        for s in ("simple_cell", "darts", "hierarchical")
        for t in ("darts", "gdas", "drnas")
    ]
    store.add_cells(cells)
    for k, c in enumerate(cells):
        arch = arch_of(c.space, k)
        search = [
            (
                "search_epoch",
                {
                    "epoch": i,
                    "epoch_s": 60.0 * (k + 1),
                    "gpu_s": 55.0 * (k + 1),
                    "valid_top1": 0.1 + 0.8 * i / search_epochs,
                    "arch": arch,
                },
            )
            for i in range(1, search_epochs + 1)
        ]
        epochs = [
            {
                "epoch": i,
                "train_s": 30.0,
                "train_gpu_s": 29.0,
                "energy_j": 9000.0,
                **(
                    {"test_top1": 0.5 + 0.4 * i / eval_epochs, "test_top5": 0.9, "checkpoint": "x"}
                    if i % eval_every == 0
                    else {}
                ),
            }
            for i in range(1, eval_epochs + 1)
        ]
        search_s = 60.0 * (k + 1) * search_epochs
        gpu_s = 55.0 * (k + 1) * search_epochs
        write_cell(
            store,
            c,
            search,
            {
                "arch": arch,
                "search_s": search_s,
                "search_gpu_s": gpu_s,
                "params": 10_000 * (k + 1),
                "flops": 10**7 * (k + 1),
                "kind": "oneshot",
            },
            epochs,
            (
                "finished",
                {
                    "arch": arch,
                    "epochs_done": eval_epochs,
                    "epochs": eval_epochs,
                    "test_top1": 0.9,
                    "test_top5": 0.99,
                },
            ),
        )
    store.close()
    return cells


SCRIPT = "<script>alert('x')</script>"
FORMULA = '=HYPERLINK("http://evil.example","x")'
LINK = "[click](javascript:alert(1))"
HOSTILE_DEVICE = "cuda: <script>gpu</script> $x$"


def build_hostile(path) -> dict[str, CellSpec]:
    """A store whose every name, label, reason, arch string, device and setting is hostile: HTML and
    script, Markdown links, code fences, table pipes, spreadsheet formulas, matplotlib math.

    The typed settings hold numbers and checked names, and the data's location is not part of a cell;
    the free text a cell's settings carry is its device, so the hostile setting goes there."""
    store = Store(path)
    device = "``` </pre><script>x</script> |a|b|"

    def hostile(space, strategy, estimator, seed):
        options = ModuleOptions(estimator=None if estimator == ONESHOT_ESTIMATOR else {})
        study = f"{LINK} <b>study</b>"
        return CellSpec(
            space, strategy, estimator, "@data", seed, study, SEARCH, EVAL, options=options, device=device
        )

    cells = {
        "ok": hostile(f"{SCRIPT} sp", FORMULA, ONESHOT_ESTIMATOR, 0),
        "bad": hostile("+space", "-cmd", "|pipe|", 1),
    }
    store.add_cells(cells.values())
    ok = cells["ok"]
    arch = "<img src=x onerror=alert(1)> ``` |x| $y$"
    store.append(ok.id, "attempt/1", Attempt(HOSTILE_DEVICE))
    store.append(ok.id, "arch_chosen", ArchChosen(arch, 30.0, device=HOSTILE_DEVICE, params=10, flops=20))
    for i, t in ((1, 0.3), (2, 0.4)):
        epoch = EvalEpoch(i, 0.01, 1.0, 0.5, 10.0, 1.0, device=HOSTILE_DEVICE, test_top1=t, test_top5=0.8)
        store.append(ok.id, f"eval/epoch/{i}", epoch)
    store.append(ok.id, "end", End(state="finished", arch=arch, test_top1=0.4, epochs_done=2))
    reason = f"-2+3 {SCRIPT} ``` {FORMULA}"
    store.append(cells["bad"].id, "end", End(state="failed", reason=reason, error=SCRIPT))
    store.close()
    return cells
