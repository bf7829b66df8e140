"""Whether each space's search step fits a card: the memory plan of nasmix.spaces.memory per space.

For every space it builds the search-size supernet as a search would (channels_last,
grouped convolutions on a GPU) and prints the plan's estimate at batch 64: weights with
gradients and momentum, both halves of the search split held on the device (25,000
images each), the activations autograd keeps (measured at batches 1 and 2 and
extrapolated, x1.25 headroom), in fp32 and under bf16 autocast, and whether the plan
checkpoints the cells for a `--budget-gib` card (16 GiB: the seed study's card). The
estimates are shapes times bytes, so a CPU gives the same figures a GPU would, cuDNN's
workspace aside.

A supernet that plans its own memory (`own_memory_plan`: the hierarchical space,
nasmix.spaces.motif_memory) gets its own plan instead, the one a search would use: the
cells' activations estimated on the meta device in fp32 (an upper bound under bf16, so
one row), with FREE_SHARE of what the fixed bytes leave of the budget as what its
planner may fill (as on such a card); "checkpoint" then lists the cells whose motifs recompute.

Usage:
    python bench/memory.py [--spaces simple_cell,darts,hierarchical] [--budget-gib 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from nasmix import registry
from nasmix.accel import Accel
from nasmix.data.base import Task
from nasmix.spaces.memory import plan_memory
from nasmix.spaces.motif_memory import FREE_SHARE
from nasmix.spaces.supernet import EdgeContext

TASK = Task("cifar10-shaped", 10, (3, 32, 32))
HELD = 2 * 25_000 * 32 * 32 * 3  # both halves of the search split, uint8, on the device


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="simple_cell,darts,hierarchical")
    parser.add_argument("--budget-gib", type=float, default=16.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    budget = int(args.budget_gib * 2**30)
    cuda_like = Accel.cuda_like()
    print(
        f"# memory plan at batch {args.batch}, budget {args.budget_gib:g} GiB, settings of a CUDA search; "
        f"estimates computed on {device}"
    )
    print(
        f"{'space':<13} {'precision':<9} {'params':>10} {'fixed MiB':>10} {'activ. MiB':>11} "
        f"{'total MiB':>10} {'checkpoint':>10} {'ckpt MiB':>9} {'fits':>5}"
    )
    rows = []
    for name in [s for s in args.spaces.split(",") if s]:
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            net = registry.create("space", name).supernet(TASK, "search").to(device)
            net = net.to(memory_format=torch.channels_last).train()
            net.grouped_convs = cuda_like.grouped_convs
            if net.own_memory_plan:
                rows.append(own_plan(name, net, args.batch, budget))
                del net
                break
            accel = dataclasses.replace(cuda_like, bf16=precision == "bf16")
            plan = plan_memory(net, TASK.shape, args.batch, budget, HELD, accel.autocast(device))
            params = sum(p.numel() for p in net.parameters())
            ckpt = "-" if plan.checkpointed_bytes is None else f"{plan.checkpointed_bytes / 2**20:,.0f}"
            print(
                f"{name:<13} {precision:<9} {params:>10,} {plan.fixed_bytes / 2**20:>10,.0f} "
                f"{plan.activation_bytes / 2**20:>11,.0f} {plan.total_bytes / 2**20:>10,.0f} "
                f"{'yes' if plan.checkpoint else 'no':>10} {ckpt:>9} {'yes' if plan.fits else 'NO':>5}"
            )
            rows.append({"space": name, "precision": precision, "params": params, **dataclasses.asdict(plan)})
            del net
    return rows


def own_plan(name: str, net: torch.nn.Module, batch: int, budget: int) -> dict:
    """The plan of a supernet that plans its own memory (the hierarchical space's motifs)."""
    params = sum(p.numel() for p in net.parameters())
    fixed = 3 * sum(p.numel() * p.element_size() for p in net.parameters()) + HELD
    # as on a card of `budget` bytes holding the fixed bytes: the planner's share of what is free
    net.planner.memory_gib = FREE_SHARE * max(budget - fixed, 0) / 2**30
    meta = torch.empty(batch, *TASK.shape, device="meta")  # the planner reads the shape only
    net.planner.plan(meta, EdgeContext(net.uniform_weights()))
    est = net.planner.last
    full = est.batch * sum(est.kept)
    need = est.need()
    cells = ",".join(str(i + 1) for i, flag in enumerate(est.plan) if flag)
    fits = fixed + need <= budget
    ckpt = f"{need / 2**20:,.0f}" if cells else "-"
    print(
        f"{name:<13} {'fp32 bound':<9} {params:>10,} {fixed / 2**20:>10,.0f} {full / 2**20:>11,.0f} "
        f"{(fixed + need) / 2**20:>10,.0f} {'cells ' + cells if cells else 'no':>10} "
        f"{ckpt:>9} {'yes' if fits else 'NO':>5}"
    )
    return {
        "space": name,
        "precision": "fp32 bound",
        "params": params,
        "batch": batch,
        "budget_bytes": budget,
        "fixed_bytes": fixed,
        "activation_bytes": full,
        "checkpointed_bytes": need,
        "checkpoint_cells": [i + 1 for i, flag in enumerate(est.plan) if flag],
        "fits": fits,
    }


if __name__ == "__main__":
    main()
