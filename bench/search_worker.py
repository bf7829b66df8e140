"""One measurement of bench/search.py: one space x strategy, one batch size, in this process.

It builds the search exactly as `OneShot.prepare` does (supernet, architecture
parameters, optimizers, both halves of the search split held on the device),
runs `--warmup` steps, then times the real loop, `train_epochs`, over one
epoch of `steps` steps: batches, both steps in the method's order, the
loop's bookkeeping and the epoch-end work (decode, entropy, the one host read).

Figures:
- cpu_s: process CPU time of the timed loop (all threads; the benchmark pins one);
- wall_s, gpu_s: the loop's own epoch clock (synchronised) and CUDA-event time;
- peak_rss_mib: the process's resident-set peak since it started (construction
  and warm-up included); peak_gpu_mib likewise for allocated GPU memory;
- with `count`: ATen ops per step (TorchDispatchMode, after the timing) of the
  step alone (forward, backward, optimizers), of the data, and of the whole
  loop; and the step's FLOPs (FlopCounterMode: convolutions and matrix products).

It runs against any nasmix checkout on PYTHONPATH, including one from before
nasmix.accel existed (then only the device's default settings are available).

Usage (bench/search.py runs it): python bench/search_worker.py '{"space": "darts", ...}'
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from nasmix import registry
from nasmix.budget import Budget, Clock
from nasmix.data.base import ImageArrays, Task
from nasmix.data.loader import Augment, DeviceLoader
from nasmix.events import SearchEpoch
from nasmix.search_types import SearchData
from nasmix.timing import Timer, host_peak_bytes

try:  # absent from checkouts older than the Accel settings
    from nasmix.accel import Accel
except ImportError:
    Accel = None

TASK = Task("cifar10-shaped", 10, (3, 32, 32))
EPOCHS = 50  # the schedule of NASLib's search; the timed epoch is its last (architecture steps on)


@dataclass(frozen=True)
class Spec:
    """One measurement.

    Attributes:
        images: images in each half held on the device (a real search holds 25,000).
        count: also count ATen ops and FLOPs (after the timing, which they would slow).
        threads: torch threads (1: the method of the NASLib CPU figures).
        settings: "auto" (the device's own, nasmix.accel.Accel.auto) or "cuda" (CUDA's settings
            on any device: fused optimizers, channels_last, grouped convolutions; bf16 per `precision`).
    """

    space: str
    strategy: str
    device: str = "cpu"
    size: str = "search"
    batch: int = 64
    steps: int = 5
    warmup: int = 2
    precision: str = "fp32"
    images: int = 1024
    count: bool = False
    threads: int = 1
    settings: str = "auto"


def random_half(n: int, seed: int) -> ImageArrays:
    """n random CIFAR-shaped uint8 images (the speed does not depend on their content)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return ImageArrays(x, rng.integers(0, 10, n).astype(np.int64))


def _cycle(loader: DeviceLoader):
    seed = 100
    while True:
        yield from loader.batches(seed)
        seed += 1


def _strategy(spec: Spec, device: torch.device):
    cuda = device.type == "cuda"
    options = {"amp": spec.precision == "bf16"} if cuda else {}
    strategy = registry.create("strategy", spec.strategy, **options)
    if Accel is not None:
        base = Accel.cuda_like() if spec.settings == "cuda" else Accel.auto(device)
        strategy.accel = dataclasses.replace(base, bf16=spec.precision == "bf16")
    elif (spec.precision == "bf16" and not cuda) or spec.settings != "auto":
        raise RuntimeError("this checkout has no nasmix.accel: only its device's own settings")
    return strategy


def measure(spec: Spec) -> dict:
    """Build, warm up, time one epoch of `spec.steps` steps, optionally count; see the module docstring."""
    torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    cuda = device.type == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    timer = Timer(device)
    hold = max(spec.images, spec.batch * spec.steps)
    data = SearchData(random_half(hold, 0), random_half(hold, 1), TASK, device, timer, size=spec.size)
    strategy = _strategy(spec, device)
    events: list = []
    budget = Budget(epochs=EPOCHS, batch_size=spec.batch)
    space = registry.create("space", spec.space)
    rng = np.random.default_rng(0)
    state = strategy.prepare(space, data, budget, rng, events.append, total_epochs=EPOCHS)
    params = sum(p.numel() for p in state.net.parameters() if p.requires_grad)
    # The timed epoch walks the first `steps` batches of each half; the full halves stay held.
    held = (state.train, state.valid)
    n = spec.batch * spec.steps
    state.train, state.valid = [
        DeviceLoader(
            ImageArrays(half.x[:n], half.y[:n]),
            TASK,
            spec.batch,
            device,
            Augment(),
            shuffle=True,
            channels_last=loader.channels_last,
        )
        for half, loader in zip((data.train, data.valid), held)
    ]
    strategy.begin_epoch(state, EPOCHS, events.append)
    state.lr = strategy.config.lr
    arch_on = strategy.updates_arch(state, EPOCHS)
    train, valid = _cycle(state.train), _cycle(state.valid)
    for _ in range(spec.warmup):
        strategy.step(state, next(train), next(valid), arch_on)
    timer.now()
    peak_rss = host_peak_bytes()  # construction and warm-up (the loop's own clock resets the counter)
    peak_gpu = torch.cuda.max_memory_allocated(device) if cuda else None

    cpu0 = time.process_time()
    strategy.train_epochs(state, EPOCHS, EPOCHS, Clock(budget, EPOCHS, timer), events.append)
    cpu_s = time.process_time() - cpu0
    epoch = next(e for e in reversed(events) if isinstance(e, SearchEpoch))
    if epoch.steps != spec.steps:
        raise RuntimeError(f"the timed epoch ran {epoch['steps']} steps, not {spec.steps}")
    peak_rss = max(peak_rss, host_peak_bytes(), epoch.peak_host_bytes or 0)
    if cuda:
        peak_gpu = max(peak_gpu, torch.cuda.max_memory_allocated(device), epoch.peak_gpu_bytes or 0)
    row = {
        **dataclasses.asdict(spec),
        "params": params,
        "partial": state.partial,
        "device_name": timer.name,
        "cpu_s_per_step": cpu_s / spec.steps,
        "wall_s_per_step": epoch.epoch_s / spec.steps,
        "gpu_s_per_step": None if epoch.gpu_s is None else epoch.gpu_s / spec.steps,
        "peak_rss_mib": peak_rss / 2**20,
        "peak_gpu_mib": None if peak_gpu is None else peak_gpu / 2**20,
        "held_images": hold,
    }
    if spec.count:
        row.update(_count(strategy, state, train, valid, arch_on, budget))
    return row


def _count(strategy, state, train, valid, arch_on: bool, budget: Budget, k: int = 3) -> dict:
    from opcount import OpCounter, flop_counter

    with OpCounter() as data_ops:
        batches = [(next(train), next(valid)) for _ in range(k)]
    with OpCounter() as step_ops:
        for t, v in batches:
            strategy.step(state, t, v, arch_on)
    with OpCounter() as loop_ops:
        strategy.train_epochs(state, EPOCHS, EPOCHS, Clock(budget, EPOCHS, state.data.timer), lambda e: None)
    with flop_counter() as flops:
        strategy.step(state, *batches[0], arch_on)
    steps = len(state.train)
    return {
        "step_ops": step_ops.total / k,
        "step_views": step_ops.views / k,
        "data_ops": data_ops.total / k,
        "loop_ops": loop_ops.total / steps,
        "top_ops": step_ops.top(12, per=k),
        "flops_per_step": flops.get_total_flops(),
    }


if __name__ == "__main__":
    result = measure(Spec(**json.loads(sys.argv[1])))
    print("RESULT " + json.dumps(result))
