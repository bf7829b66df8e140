"""The training loop of standalone networks (`nasmix.train`) in NCHW against channels_last.

Each run is one epoch of `--steps` steps of `nasmix.train.train` on random
CIFAR-shaped images, batch norms, optimizer, augmentation and the guard of
narrow strided 1x1 convolutions (`nasmix.spaces.ops.strided_pointwise_guarded`)
included, timed in process CPU time. The two memory formats run interleaved
(A, B, B, A, ...) and the figures are medians, so a busy machine slows both alike.

Usage:
    python bench/train_step.py [--models resnet20,nb201,darts,...] [--size search]
                               [--batch 64] [--steps 6] [--reps 3] [--threads 1]

A model is `resnet20` or a space's name (its arch drawn from seed 0, built at `--size`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nasmix import registry
from nasmix.data.base import ImageArrays, Task
from nasmix.train import TrainConfig, train

TASK = Task("cifar10-shaped", 10, (3, 32, 32))


def build(model: str, size: str) -> torch.nn.Module:
    """ResNet-20, or the network of a space's arch drawn from seed 0."""
    torch.manual_seed(0)
    if model == "resnet20":
        return registry.create("model", "resnet20").build(TASK)
    space = registry.create("space", model)
    return space.build(space.sample(np.random.default_rng(0)), TASK, size)


def one_epoch(model: str, size: str, batch: int, steps: int, channels_last: bool) -> float:
    """Process CPU seconds per step of one epoch of `steps` steps."""
    rng = np.random.default_rng(0)
    images = ImageArrays(
        rng.integers(0, 256, (batch * steps, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, batch * steps).astype(np.int64),
    )
    net = build(model, size)
    config = TrainConfig(epochs=1, batch_size=batch, channels_last=channels_last)
    start = time.process_time()
    train(net, images, TASK, config)
    return (time.process_time() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,nb201,darts,simple_cell,chain")
    parser.add_argument("--size", default="search", choices=("tiny", "search", "eval"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# cpu, {args.threads} thread(s), batch {args.batch}, {args.steps} steps, medians of {args.reps}")
    print(f"{'model':<12} {'NCHW s/step':>12} {'channels_last':>14} {'speed-up':>9}")
    for model in args.models.split(","):
        one_epoch(model, args.size, args.batch, 1, False)  # warm-up: first-call costs of both kernels
        one_epoch(model, args.size, args.batch, 1, True)
        times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(args.reps):
            for last in (False, True) if rep % 2 == 0 else (True, False):
                times[last].append(one_epoch(model, args.size, args.batch, args.steps, last))
        nchw, last = statistics.median(times[False]), statistics.median(times[True])
        print(f"{model:<12} {nchw:>12.3f} {last:>14.3f} {nchw / last:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
