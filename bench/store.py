"""What checking a study store costs: SQLite's quick_check on open against reading the store.

Builds a synthetic store of CELLS cells with EVENTS events each (an attempt, the chosen
arch, evaluation epochs and the end, as a study stores them), then times, interleaved
and in process CPU seconds (medians of --repeats):
- open: `Store.open_readonly(path, check=False)` (no quick_check);
- open+check: the same with quick_check (what `status`, `report` and `study` do);
- cells: reading every cell and event with their row checks (what `status` reads next).

    python bench/store.py --cells 300 --events 600      # about 180,000 events

Prints the store's size and the three figures, and quick_check's share of status's reading.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from nasmix.events import ArchChosen, Attempt, End, EvalEpoch
from nasmix.study.schema import CellSpec
from nasmix.study.store import Store


def build(path: Path, cells: int, events: int) -> None:
    specs = [CellSpec("nb201", "random", "train", "synthetic", seed=s, study="bench") for s in range(cells)]
    epochs = max(events - 3, 1)
    arch = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    with Store(path) as store:
        store.add_cells(specs)
        for c in specs:
            store.append(c.id, "attempt/1", Attempt(device="NVIDIA H100 80GB HBM3"))
            store.append(c.id, "arch_chosen", ArchChosen(arch, 1234.5, search_gpu_s=1200.0, params=1_000_000))
            for e in range(1, epochs + 1):
                figures = dict(train_gpu_s=30.1, peak_gpu_bytes=4_000_000_000, device="NVIDIA H100 80GB HBM3")
                tested = dict(test_loss=0.9, test_top1=0.81, test_top5=0.98, checkpoint=f"epoch-{e:04d}.pt")
                epoch = EvalEpoch(e, 0.025, 0.8123, 0.7234, 31.2, 2.1, **figures, **tested)
                store.append(c.id, epoch.key(), epoch)
            store.append(
                c.id, "end", End(arch=arch, epochs_done=epochs, epochs=epochs, test_top1=0.81, test_top5=0.98)
            )


def cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--events", type=int, default=600, help="events per cell")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", default=None, help="reuse (or build) this store")
    args = parser.parse_args()
    path = Path(args.store or Path(tempfile.mkdtemp()) / "bench.db")
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.cells, args.events)
        print(f"built {path} in {time.perf_counter() - t0:.1f}s wall")

    def opened(check: bool):
        return lambda: Store.open_readonly(path, check=check).close()

    def read() -> None:
        with Store.open_readonly(path, check=False) as store:
            store.cells()

    times: dict[str, list[float]] = {"open": [], "open+check": [], "cells": []}
    for _ in range(args.repeats):  # interleaved: A, B, C, A, B, C...
        times["open"].append(cpu(opened(False)))
        times["open+check"].append(cpu(opened(True)))
        times["cells"].append(cpu(read))
    med = {k: statistics.median(v) for k, v in times.items()}
    with Store.open_readonly(path, check=False) as store:
        n = store.last_seq()
    size = os.path.getsize(path)
    print(f"store: {n:,} events, {size / 2**20:.1f} MiB; CPU seconds, median of {args.repeats}")
    for k, v in med.items():
        print(f"  {k:>11}: {v:.4f}")
    check = med["open+check"] - med["open"]
    share, rate = 100 * check / med["cells"], size / 2**20 / max(check, 1e-9)
    print(f"quick_check: {check:.4f}s = {share:.1f}% of reading the cells ({rate:.0f} MiB/s)")


if __name__ == "__main__":
    main()
