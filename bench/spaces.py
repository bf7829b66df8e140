"""Supernet step time of every registered space in the three one-shot modes.

Modes (all at the search batch size, forward + backward, arch weights included):
  sum      every op of every edge, weighted (DARTS, DrNAS): active=None;
  sampled  one op per edge, drawn uniformly each step, straight-through
           one-hot weights (GDAS): only the drawn op runs;
  partial  weighted sum on a supernet with partial channels K=4 (PC-DARTS).

Usage:
    python bench/spaces.py [--size tiny|search|eval] [--steps N] [--batch B]
                           [--device cpu|cuda|all] [--spaces darts,simple_cell] [--fp32]

Prints one row per device, space and mode (median seconds per step, peak GPU
memory, supernet weights), then the ratio sampled/sum per space (goal for
darts: <= 1/3). On CUDA it uses bf16 autocast and channels_last, as training
does, unless --fp32. Figures compare only within one device.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from nasmix import registry
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.base import get_space
from nasmix.timing import Timer, count_params, device_name

MODES = ("sum", "sampled", "partial")
TASK = Task("cifar10-shaped", 10, (3, 32, 32))


def _step(sn, x, y, alphas, mode, rng, amp):
    """One forward + backward; returns nothing (the clock is read outside)."""
    soft = {g: torch.softmax(a, dim=-1) for g, a in alphas.items()}
    active = None
    if mode == "sampled":
        active, weights = {}, {}
        for g, p in soft.items():
            idx = rng.integers(p.shape[1], size=p.shape[0])  # drawn on the host: no device sync
            hard = torch.zeros_like(p)
            hard[torch.arange(p.shape[0]), torch.as_tensor(idx, device=p.device)] = 1.0
            weights[g] = (hard - p).detach() + p
            active[g] = [[int(i)] for i in idx]
    else:
        weights = soft
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = sn(x, weights, active=active)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
    loss.backward()
    sn.zero_grad(set_to_none=True)
    for a in alphas.values():
        a.grad = None


def bench_one(space_name, mode, size, device, batch, steps, amp):
    """Median seconds per step, peak GPU MiB (None on CPU) and the supernet's weights."""
    space = get_space(space_name)
    torch.manual_seed(0)
    sn = space.supernet(TASK, size, partial=4 if mode == "partial" else 1).to(device)
    if amp:
        sn = sn.to(memory_format=torch.channels_last)
    alphas = {g: (1e-3 * torch.randn(s, device=device)).requires_grad_() for g, s in sn.arch_shapes.items()}
    x = torch.randn(batch, *TASK.shape, device=device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, TASK.num_classes, (batch,), device=device)
    rng = np.random.default_rng(0)
    timer = Timer(device)
    for _ in range(2):  # warm-up: kernel selection, allocator
        _step(sn, x, y, alphas, mode, rng, amp)
    times = []
    with timer.measure() as m:
        for _ in range(steps):
            t0 = timer.now()
            _step(sn, x, y, alphas, mode, rng, amp)
            times.append(timer.now() - t0)
    peak = None if m.peak_gpu_bytes is None else m.peak_gpu_bytes / 2**20
    return statistics.median(times), peak, count_params(sn)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="search", choices=("tiny", "search", "eval"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    parser.add_argument(
        "--spaces", default="", help="comma-separated space names (default: every registered space)"
    )
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast / channels_last on CUDA")
    args = parser.parse_args(argv)

    names = [n for n in args.spaces.split(",") if n] or registry.names("space")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    results = {}
    print(f"supernet forward+backward, size {args.size}, batch {args.batch}, median of {args.steps} steps")
    print(f"{'device':<8} {'space':<14} {'mode':<8} {'s/step':>9} {'peak MiB':>9} {'weights':>10}")
    for dev in devices:
        device = torch.device(dev)
        amp = device.type == "cuda" and not args.fp32
        print(f"# {device_name(device)}{' (bf16 autocast, channels_last)' if amp else ''}")
        for name in names:
            for mode in MODES:
                try:
                    s, peak, n = bench_one(name, mode, args.size, device, args.batch, args.steps, amp)
                except (ConfigError, torch.OutOfMemoryError) as err:
                    print(f"{dev:<8} {name:<14} {mode:<8} n/a: {str(err).splitlines()[0][:80]}")
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                results[dev, name, mode] = s
                peak_s = "-" if peak is None else f"{peak:.0f}"
                print(f"{dev:<8} {name:<14} {mode:<8} {s:>9.4f} {peak_s:>9} {n:>10,}", flush=True)
    print("\nratio sampled / sum (darts goal <= 0.33), partial / sum")
    for dev in devices:
        for name in names:
            if (dev, name, "sum") in results:
                base = results[dev, name, "sum"]
                parts = [
                    f"{m}/sum {results[dev, name, m] / base:.2f}"
                    for m in ("sampled", "partial")
                    if (dev, name, m) in results
                ]
                print(f"{dev:<8} {name:<14} " + "  ".join(parts))


if __name__ == "__main__":
    main()
