"""One-shot search speed: seconds per search epoch and peak GPU memory of nasmix's
strategies, beside NASLib's figures for the same card.

Each combination runs the strategy's own step (`OneShot.step`: the
architecture and weight steps in the method's order, exactly as a search
does) on random CIFAR-shaped images held on the device: `--warmup` steps
untimed, then `--steps` timed; one epoch is the median step time x 391 (the
25,000-image half at batch 64, as NASLib's figures). Each timed step ends
with a device synchronisation (as NASLib's per-step `.item()` does), which a
real search loop does not pay, so the figure is slightly conservative.

Peak memory is torch.cuda.max_memory_allocated over the timed steps, after
resetting the peak once the warm-up is done; it includes everything then on
the device: the supernet, both optimizers' states and, as in a real search,
both halves of the search split held on the device as uint8
(`--images` per half, 25,000 by default: about 147 MiB that NASLib, whose
data stays on the host, does not hold).

On a GPU the table adds NASLib's epoch time and peak memory from `--anchors`
(the row of the same card, by name) and the ratios: speed-up = NASLib
s/epoch / nasmix s/epoch, memory = nasmix peak / NASLib peak, and whether
the target (speed-up >= 4 with memory <= 1) is met. NASLib has no CPU
figures: on a CPU only nasmix's own figures print.

Usage:
    python bench/search.py [--device auto|cpu|cuda] [--size search] [--steps 20] [--warmup 3]
                           [--spaces simple_cell,darts,hierarchical] [--strategies darts,gdas,drnas]
                           [--images 25000] [--anchors ../shared/anchors/naslib.json] [--json out.json]

Example (small CPU setting):
    python bench/search.py --device cpu --size tiny --steps 2 --warmup 1 --images 256 \\
        --spaces simple_cell,darts
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from nasmix import registry
from nasmix.data.base import ImageArrays, Task
from nasmix.strategies.base import Budget, SearchData
from nasmix.timing import Timer, device_name

TASK = Task("cifar10-shaped", 10, (3, 32, 32))
STEPS_PER_EPOCH = 391  # ceil(25,000 / 64): NASLib's search epoch
HALF_IMAGES = 25_000  # each half of CIFAR-10's training set, as a real search holds it on the device
SPEEDUP_TARGET = 4.0  # nasmix must be this many times faster than NASLib on the same card, with no more memory
DEFAULT_ANCHORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "anchors" / "naslib.json"


def random_half(n: int, seed: int) -> ImageArrays:
    """n random CIFAR-shaped uint8 images (the speed does not depend on their content)."""
    rng = np.random.default_rng(seed)
    return ImageArrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))


def bench_one(space_name: str, strategy_name: str, device: torch.device, size: str, batch: int, steps: int,
              warmup: int, images: int = HALF_IMAGES) -> dict:  # fmt: skip
    """Median seconds per search step and peak GPU memory of one combination.

    Args:
        images: images in each half of the search split (at least enough for the steps).
    """
    n = max(images, batch * (steps + warmup))
    timer = Timer(device)
    data = SearchData(random_half(n, 0), random_half(n, 1), TASK, device, timer, size=size)
    strategy = registry.create("strategy", strategy_name)
    space = registry.create("space", space_name)
    events: list[dict] = []
    state = strategy.prepare(space, data, Budget(epochs=1, batch_size=batch), np.random.default_rng(0), events.append,
                             total_epochs=50)  # fmt: skip
    strategy.begin_epoch(state, 1, events.append)
    state.lr = strategy.config.lr  # the first epoch's rate (second-order DARTS's virtual step reads it)
    arch_on = strategy.updates_arch(state, 50)  # the steady state, architecture steps included
    train, valid = state.train.batches(0), state.valid.batches(1)

    def step() -> None:
        strategy.step(state, next(train), next(valid), arch_on)

    for _ in range(warmup):
        step()
    times = []
    with timer.measure() as m:  # resets the peak memory at its start: the timed steps' peak
        for _ in range(steps):
            t0 = timer.now()
            step()
            times.append(timer.now() - t0)
    s = statistics.median(times)
    peak = None if m.peak_gpu_bytes is None else m.peak_gpu_bytes / 2**20
    return {"space": space_name, "strategy": strategy_name, "s_per_step": s, "epoch_s": s * STEPS_PER_EPOCH,
            "peak_gpu_mib": peak, "partial": state.partial, "images_per_half": n, "device": timer.name}  # fmt: skip


def naslib_rows(path: Path, device: str) -> dict:
    """NASLib's search rows of the card this device is, keyed by (space, strategy)."""
    if not path.exists():
        return {}
    card = next((c for c in ("H200", "H100") if c in device), None)
    if card is None:
        return {}
    rows = json.loads(path.read_text())["rows"]
    return {(r["space"], r["strategy"]): r for r in rows
            if r.get("gpu") == card and r.get("item", "").startswith("search/") and r.get("ok")}  # fmt: skip


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--size", default="search", choices=("tiny", "search", "eval"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per combination")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (kernel selection, allocator)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=HALF_IMAGES,
                        help="images per half held on the device (a real search holds 25,000)")
    parser.add_argument("--spaces", default="simple_cell,darts,hierarchical")
    parser.add_argument("--strategies", default="darts,gdas,drnas")
    parser.add_argument("--anchors", default=str(DEFAULT_ANCHORS), help="NASLib's figures (naslib.json)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)

    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    label = device_name(device)
    anchors = naslib_rows(Path(args.anchors), label)
    print(f"one-shot search, size {args.size}, batch {args.batch}: median of {args.steps} steps after "
          f"{args.warmup} warm-up, x {STEPS_PER_EPOCH} steps per epoch")  # fmt: skip
    print(f"# {label}{' (bf16 autocast, channels_last)' if device.type == 'cuda' else ''}")
    if device.type == "cuda" and not anchors:
        print("# no NASLib figures for this card: nasmix's own figures only")
    # NASLib's figures are for the search size at batch 64 with 25,000 images per half: compare only those.
    compare = bool(anchors) and args.size == "search" and args.batch == 64 and args.images >= HALF_IMAGES
    if anchors and not compare:
        print(f"# NASLib's figures are for --size search --batch 64 --images {HALF_IMAGES}: "
              "no ratios for this setting")
    head = f"{'space':<13} {'strategy':<9} {'s/step':>8} {'s/epoch':>9} {'peak MiB':>9}"
    print(head + (f" {'NASLib s/ep':>11} {'NASLib MiB':>10} {'speed-up':>8} {'memory':>7} {'target':>6}"
                  if compare else ""))  # fmt: skip
    rows = []
    for space in [s for s in args.spaces.split(",") if s]:
        for strat in [s for s in args.strategies.split(",") if s]:
            gc.collect()  # the previous combination's supernet must not count in this one's peak
            if device.type == "cuda":
                torch.cuda.empty_cache()
            try:
                row = bench_one(space, strat, device, args.size, args.batch, args.steps, args.warmup, args.images)
            except torch.OutOfMemoryError as err:
                print(f"{space:<13} {strat:<9} out of memory: {str(err).splitlines()[0][:60]}")
                torch.cuda.empty_cache()
                continue
            rows.append(row)
            peak = "-" if row["peak_gpu_mib"] is None else f"{row['peak_gpu_mib']:,.0f}"
            line = f"{space:<13} {strat:<9} {row['s_per_step']:>8.4f} {row['epoch_s']:>9.1f} {peak:>9}"
            ref = anchors.get((space, strat))
            if ref and compare:
                row["naslib_epoch_s"], row["naslib_peak_mib"] = ref["epoch_s"], ref["peak_gpu_mib"]
                row["speedup"] = ref["epoch_s"] / row["epoch_s"]
                row["memory_ratio"] = (row["peak_gpu_mib"] or 0) / ref["peak_gpu_mib"]
                row["meets_target"] = row["speedup"] >= SPEEDUP_TARGET and row["memory_ratio"] <= 1.0
                line += (f" {ref['epoch_s']:>11.1f} {ref['peak_gpu_mib']:>10,.0f} {row['speedup']:>7.1f}x"
                         f" {row['memory_ratio']:>7.2f} {'ok' if row['meets_target'] else 'MISS':>6}")  # fmt: skip
            print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
