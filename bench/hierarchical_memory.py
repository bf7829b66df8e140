"""Peak memory of one-shot search on the hierarchical space under its automatic checkpointing plan.

For each strategy: build the space's search-size supernet (variant naslib, NASLib's
network, unless --variant), run its real search step (`OneShot.step`, as
bench/search.py does) on random CIFAR-shaped images, and print

- the plan the supernet chose: per cell, whether its weighted motifs recompute
  in the backward pass (nasmix.spaces.motif_memory);
- the plan's estimate: bytes the cells keep for the backward pass, and what
  they would keep without recomputation;
- the measured peak over two search steps: on a GPU
  torch.cuda.max_memory_allocated, on a CPU the process's peak resident memory,
  and its growth over what the process held before the steps ("before": the
  supernet, the data, the interpreter); run it with MALLOC_MMAP_THRESHOLD_=65536
  so that freed tensors leave the resident set;
- the seconds of the second step.

The plan's budget emulates a card of --card-gib GiB: FREE_SHARE of it, scaled
by batch / --plan-batch, so that a smaller --batch gets the plan the card
would get at --plan-batch (64): activations grow linearly with the batch, so
the step's growth times plan-batch / batch estimates the card's. --checkpoint
on|off forces recomputation instead.

Usage:
    python bench/hierarchical_memory.py [--device cpu] [--batch 16] [--card-gib 16]
                                        [--strategies darts,gdas,drnas] [--variant naslib]
"""

from __future__ import annotations

import argparse
import gc

import numpy as np
import torch

from nasmix import registry
from nasmix.data.base import ImageArrays, Task
from nasmix.spaces.motif_memory import FREE_SHARE
from nasmix.spaces.supernet import EdgeContext
from nasmix.strategies.base import Budget, SearchData
from nasmix.timing import Timer, device_name, host_peak_bytes

TASK = Task("cifar10-shaped", 10, (3, 32, 32))
GIB = 2**30


def _current_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _half(n: int, seed: int) -> ImageArrays:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return ImageArrays(x, rng.integers(0, 10, n).astype(np.int64))


def measure(
    name: str, variant: str, device: torch.device, batch: int, memory_gib: float, checkpoint: bool | None
) -> dict:
    """One strategy: the plan, its estimate and the measured peak of one search step."""
    timer = Timer(device)
    data = SearchData(_half(4 * batch, 0), _half(4 * batch, 1), TASK, device, timer, size="search")
    options = {"variant": variant, "memory_gib": memory_gib, "checkpoint": checkpoint}
    space = registry.create("space", "hierarchical", **options)
    strategy = registry.create("strategy", name)
    budget, rng = Budget(epochs=1, batch_size=batch), np.random.default_rng(0)
    state = strategy.prepare(space, data, budget, rng, lambda e: None, total_epochs=50)
    strategy.begin_epoch(state, 1, lambda e: None)
    state.lr = strategy.config.lr
    arch_on = strategy.updates_arch(state, 50)
    train, valid = state.train.batches(0), state.valid.batches(1)
    gc.collect()
    before = _current_rss()  # the supernet, the data, the optimizers (their state comes with the first step)
    with timer.measure() as m:
        for _ in range(2):  # the first step also plans and creates the optimizer state
            t0 = timer.now()
            strategy.step(state, next(train), next(valid), arch_on)
            step_s = timer.now() - t0
    supernet = state.net
    est = supernet.planner.last
    if est is None:  # recomputation forced on or off: estimate the weighted sum of every op all the same
        meta = torch.empty(batch, *TASK.shape, device="meta")
        supernet.planner.plan(meta, EdgeContext(supernet.uniform_weights()))
        est = supernet.planner.last
    if device.type == "cuda":
        peak, growth = m.peak_gpu_bytes, None
    else:
        peak = max(m.peak_host_bytes or 0, host_peak_bytes())
        growth = peak - before
    estimated = any(est.kept)  # sampled mode (one op per edge) skips the estimate
    kept = [r if p else k for k, r, p in zip(est.kept, est.recomputed, supernet.last_plan)]
    return {
        "strategy": name,
        "plan": supernet.last_plan,
        "need": est.batch * sum(kept) if estimated else None,
        "full": est.batch * sum(est.kept) if estimated else None,
        "budget": est.budget,
        "peak": peak,
        "growth": growth,
        "before": before,
        "step_s": step_s,
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--plan-batch", type=int, default=64, help="the batch the card's plan is made for")
    parser.add_argument("--card-gib", type=float, default=16.0, help="the emulated card's memory")
    parser.add_argument("--checkpoint", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--strategies", default="darts,gdas,drnas")
    parser.add_argument("--variant", default="naslib")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    checkpoint = {"auto": None, "on": True, "off": False}[args.checkpoint]
    memory_gib = FREE_SHARE * args.card_gib * args.batch / args.plan_batch
    scale = args.plan_batch / args.batch
    print(
        f"# {device_name(device)}; hierarchical ({args.variant}), search size, batch {args.batch}; "
        f"plan budget {memory_gib:.2f} GiB = {FREE_SHARE} x {args.card_gib:g} GiB"
        f" x {args.batch}/{args.plan_batch}"
        " (sampled mode needs no estimate: '-')"
    )
    scaled = "growth x" + format(scale, "g")
    print(
        f"{'strategy':<9} {'plan':<6} {'est. kept':>10} {'no recompute':>12} {'before':>8} {'step peak':>10} "
        f"{'growth':>8} {scaled:>11} {'s/step':>7}"
    )
    rows = []
    for name in [s for s in args.strategies.split(",") if s]:
        gc.collect()
        row = measure(name, args.variant, device, args.batch, memory_gib, checkpoint)
        rows.append(row)
        gib = lambda b: "-" if b is None else f"{b / GIB:.2f}"  # noqa: E731
        plan = "".join("R" if p else "." for p in row["plan"])
        grown = None if row["growth"] is None else row["growth"] * scale
        print(
            f"{name:<9} {plan:<6} {gib(row['need']):>10} {gib(row['full']):>12} {gib(row['before']):>8} "
            f"{gib(row['peak']):>10} {gib(row['growth']):>8} {gib(grown):>11} {row['step_s']:>7.1f}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main()
