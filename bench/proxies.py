"""How well each zero-cost proxy ranks NAS-Bench-201 archs: Spearman's rank
correlation of the proxy with the validation accuracy after a short training,
and how many candidates per second the proxy scores.

Usage:
    python bench/proxies.py --data PATH [--device cpu|cuda] [--archs 50] [--size tiny|search]
        [--train-images N] [--valid-images N] [--epochs E] [--batch-size B] [--proxy-batch 64]
        [--proxies synflow,nwot,...] [--seed 0] [--threads T]

Defaults: on CUDA, the search-size network (C=16, N=5), 10,000 training and
5,000 validation images of the search split, 10 epochs, batch 256; on the CPU,
the tiny network (C=4, N=1), 1,000 and 500 images, 3 epochs, batch 64. The
archs are distinct (up to isomorphism, nb201's `canonical`) and drawn with the
seed. Training is the "train" estimator's (nasmix.train, SGD with a cosine
schedule); proxies run through the "zero_cost" estimator's `score_many`, one
batch of --proxy-batch training images reused for all candidates. CIFAR-10
comes from --data or $NASMIX_DATA.

Prints one row per proxy: Spearman's rho (and its p-value) against the trained
accuracy, and candidates per second, on the device it names.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from nasmix import registry
from nasmix.data import load_dataset, search_split, subset
from nasmix.strategies.base import Budget, SearchData
from nasmix.timing import device_name


def distinct_archs(space, n: int, rng: np.random.Generator) -> list:
    """n archs of the space, no two computing the same function."""
    seen, out = set(), []
    while len(out) < n:
        arch = space.sample(rng)
        key = space.canonical(arch)
        if key not in seen:
            seen.add(key)
            out.append(arch)
    return out


def main() -> None:
    from scipy.stats import spearmanr

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=None, help="CIFAR-10 location (default: $NASMIX_DATA)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--archs", type=int, default=50, help="archs to train and score")
    parser.add_argument("--size", default=None, help="network size (default: search on CUDA, tiny on CPU)")
    parser.add_argument(
        "--train-images", type=int, default=None, help="training images (default 10000 / 1000)"
    )
    parser.add_argument(
        "--valid-images", type=int, default=None, help="validation images (default 5000 / 500)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 10 / 3)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default 256 / 64)")
    parser.add_argument("--proxy-batch", type=int, default=64, help="images in the proxies' batch")
    parser.add_argument("--proxies", default=None, help="comma-separated proxy names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    size = args.size or ("search" if gpu else "tiny")
    n_train = args.train_images or (10_000 if gpu else 1_000)
    n_valid = args.valid_images or (5_000 if gpu else 500)
    epochs = args.epochs or (10 if gpu else 3)
    batch = args.batch_size or (256 if gpu else 64)
    proxies = args.proxies.split(",") if args.proxies else registry.names("proxy")

    cifar = load_dataset("cifar10", args.data)
    half_w, half_a = search_split(cifar.train, cifar.task.num_classes)
    data = SearchData(subset(half_w, n_train, 10), subset(half_a, n_valid, 10), cifar.task, device, size=size)
    space = registry.create("space", "nb201")
    archs = distinct_archs(space, args.archs, np.random.default_rng(args.seed))
    print(
        f"device: {device_name(device)}; {len(archs)} nb201 archs, size {size}, "
        f"{len(data.train)} training and "
        f"{len(data.valid)} validation images, {epochs} epochs, batch {batch}"
    )

    trainer = registry.create("estimator", "train", epochs=epochs, batch_size=batch)
    trainer.prepare(space, data, Budget(batch_size=batch), np.random.default_rng(args.seed))
    t0 = data.timer.now()
    accs, train_s = [], []
    for i, arch in enumerate(archs):
        e = trainer.estimate(space, arch, data)
        accs.append(e.score)
        train_s.append(e.cost_s)
        if (i + 1) % 10 == 0:
            print(f"  trained {i + 1}/{len(archs)} ({data.timer.now() - t0:.0f} s)", flush=True)
    accs = np.array(accs)
    print(
        f"training: {np.mean(train_s):.2f} s per arch; accuracy {accs.min():.3f} .. {accs.max():.3f} "
        f"(mean {accs.mean():.3f})"
    )

    print(f"{'proxy':<10} {'spearman':>9} {'p-value':>9} {'cand/s':>9} {'speedup':>9}")
    rows = []
    for name in proxies:
        est = registry.create("estimator", "zero_cost", proxy=name, batch_size=args.proxy_batch)
        est.prepare(space, data, Budget(), np.random.default_rng(args.seed))
        est.score_many(space, archs[:1], data)  # warm-up (allocator, kernels)
        out = est.score_many(space, archs, data)
        scores = np.array([e.score for e in out])
        rho, p = spearmanr(scores, accs)
        rate = out[0].extra["candidates_per_s"]
        rows.append((name, rho, p, rate))
        print(f"{name:<10} {rho:>9.3f} {p:>9.1e} {rate:>9.1f} {rate * np.mean(train_s):>8.0f}x", flush=True)
    best = max(rows, key=lambda r: -np.inf if np.isnan(r[1]) else r[1])
    print(f"best: {best[0]} (rho {best[1]:.3f}); speedup = candidates/s x training seconds per arch")


if __name__ == "__main__":
    main()
