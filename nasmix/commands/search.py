"""`nasmix search`: run one one-shot search and print its progress and chosen arch.

Example:
    nasmix search --space darts --strategy gdas --dataset cifar10 --data ../shared/datasets/cifar10-jpeg.zip \\
        --epochs 1 --train-subset 5000
"""

from __future__ import annotations

import argparse
import json

from nasmix import registry
from nasmix.errors import ConfigError


def add_parser(sub) -> None:
    """Add the `search` subcommand to the `nasmix` parser."""
    from nasmix.cli import add_data_flags

    p = sub.add_parser("search", help="run a one-shot search (DARTS, GDAS, DrNAS...) and print the chosen arch")
    p.add_argument("--space", required=True, help="search space (nasmix list space)")
    p.add_argument("--strategy", required=True, help="one-shot strategy (nasmix list strategy)")
    add_data_flags(p)
    p.add_argument("--epochs", type=int, default=50, help="supernet training epochs (default 50)")
    p.add_argument("--batch-size", type=int, default=64, help="search batch size (default 64)")
    p.add_argument("--candidates", type=int, default=100, help="archs a strategy may rank (rsws; default 100)")
    p.add_argument("--size", default="search", help="network size: tiny, search or eval (default search)")
    p.add_argument("--portion", type=float, default=0.5, help="share of the training images that train weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=None, help="stop the search after this many seconds")
    p.add_argument("--strategy-opt", action="append", metavar="KEY=VALUE", help="a strategy option (repeatable)")
    p.add_argument("--space-opt", action="append", metavar="KEY=VALUE", help="a space option (repeatable)")
    p.add_argument("--json", default=None, help="also write every event to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_search)


def epoch_text(event: dict) -> str:
    """One line per search epoch: losses, accuracies, entropy, time and the current arch."""
    from nasmix.console import percent

    parts = [f"epoch {event['epoch']:>3}/{event['epochs']}"]
    if event.get("subnet") is not None:
        parts.append(f"[{event['split']}]")
    parts.append(f"train loss {event['train_loss']:.3f} top-1 {percent(event['train_top1'])}")
    if event.get("valid_loss") is not None:
        parts.append(f"valid loss {event['valid_loss']:.3f} top-1 {percent(event['valid_top1'])}")
    parts += [f"entropy {event['entropy']:.3f}", f"{event['epoch_s']:.1f}s"]
    if event.get("tau") is not None:
        parts.append(f"tau {event['tau']:.2f}")
    return "  ".join(parts) + f"\n    arch {event['arch']}"


def cmd_search(args: argparse.Namespace) -> int:
    """Load the data, split it, run the strategy, print one line per epoch and the result."""
    import numpy as np
    import torch

    from nasmix.cli import _parse_options, load_data
    from nasmix.config import pick_device
    from nasmix.console import console, progress_bar
    from nasmix.data import search_split
    from nasmix.spaces.base import check_size
    from nasmix.strategies.base import Budget, SearchData
    from nasmix.timing import Timer

    check_size(args.size)
    if not 0 < args.portion < 1:
        raise ConfigError(f"--portion must be between 0 and 1, got {args.portion}")
    strategy = registry.create(
        "strategy", args.strategy, **_parse_options(args.strategy_opt, f"strategy {args.strategy!r}")
    )
    if strategy.kind != "oneshot":
        oneshot = [e.name for e in registry.entries("strategy") if getattr(e.obj, "kind", "") == "oneshot"]
        raise ConfigError(f"strategy {args.strategy!r} is not one-shot (use `nasmix study` for discrete "
                          f"strategies); one-shot: {', '.join(oneshot)}")  # fmt: skip
    if strategy.spaces is not None and args.space not in strategy.spaces:
        raise ConfigError(f"strategy {args.strategy!r} supports only the spaces {', '.join(strategy.spaces)}")
    space = registry.create("space", args.space, **_parse_options(args.space_opt, f"space {args.space!r}"))
    budget = Budget(epochs=args.epochs, candidates=args.candidates, max_seconds=args.max_seconds,
                    batch_size=args.batch_size)  # fmt: skip
    device = pick_device(args.device)
    data = load_data(args)
    train_half, valid_half = search_split(data.train, len(data.classes), args.portion)
    timer = Timer(device)
    sdata = SearchData(train_half, valid_half, data.task, device, timer, size=args.size)
    console.print(f"{args.strategy} on {args.space} ({args.size}): {len(train_half):,} images train weights, "
                  f"{len(valid_half):,} the architecture; {args.epochs} epochs, batch {args.batch_size}; "
                  f"device {timer.name}")  # fmt: skip
    events: list[dict] = []
    with progress_bar(args.quiet) as bar:
        task = bar.add_task("search", total=None)
        strategy.progress = lambda done, steps: bar.update(task, completed=done, total=steps)

        def log(event: dict) -> None:
            events.append(event)
            kind = event["event"]
            if kind == "search_epoch":
                console.print(epoch_text(event))
                bar.update(task, description=f"epoch {event['epoch'] + 1}/{event['epochs']}", completed=0)
            elif kind == "subnet":
                console.print(
                    f"sub-supernet {event['op']}: {event['arch']}  valid top-1 {100 * event['valid_top1']:.2f}%"
                )
            elif kind in ("capped", "partial_fallback", "edge_norm_fallback"):
                console.print(f"[yellow]{kind}[/]: " + ", ".join(f"{k}={v}" for k, v in event.items() if k != "event"))

        torch.manual_seed(args.seed)
        with timer.measure() as m:
            arch = strategy.search(space, None, sdata, budget, log, np.random.default_rng(args.seed))
    console.print(f"chosen arch: {arch.to_str()}")
    peak = f", peak GPU memory {m.peak_gpu_bytes / 2**20:,.0f} MiB" if m.peak_gpu_bytes else ""
    console.print(f"search time: {m.wall_s:.1f}s on {m.device}{peak}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"arch": arch.to_str(), "search_s": m.wall_s, "device": m.device, "events": events}, f, indent=1)
    return 0
