"""`nasmix search`: run one one-shot search and print its progress and chosen arch.

The flags become the same typed values a study uses (`SearchSettings` and its
`Budget`, `DataSettings`) and the search runs through `nasmix.search`.

Example:
    nasmix search --space darts --strategy gdas --dataset cifar10 --data ../shared/datasets/cifar10-jpeg.zip \\
        --epochs 1 --train-subset 5000
"""

from __future__ import annotations

import argparse
import json

from nasmix import registry
from nasmix.api import search
from nasmix.cli import add_data_flags, load_data
from nasmix.config import DataSettings, SearchSettings, pick_device
from nasmix.console import console, percent, progress_bar
from nasmix.data import search_split
from nasmix.errors import ConfigError
from nasmix.events import (
    Capped,
    EdgeNormFallback,
    Event,
    MemoryPlanned,
    PartialFallback,
    SearchEpoch,
    Subnet,
)
from nasmix.options import build_config, parse_options
from nasmix.search_types import SearchData
from nasmix.spaces.base import check_size
from nasmix.timing import Timer


def add_parser(sub) -> None:
    """Add the `search` subcommand to the `nasmix` parser."""
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


def epoch_text(event: SearchEpoch) -> str:
    """One line per search epoch: losses, accuracies, entropy, time and the current arch."""
    parts = [f"epoch {event.epoch:>3}/{event.epochs}"]
    if event.extra.get("subnet") is not None:
        parts.append(f"[{event.extra['split']}]")
    parts.append(f"train loss {event.train_loss:.3f} top-1 {percent(event.train_top1)}")
    if event.valid_loss is not None:
        parts.append(f"valid loss {event.valid_loss:.3f} top-1 {percent(event.valid_top1)}")
    parts += [f"entropy {event.entropy:.3f}", f"{event.epoch_s:.1f}s"]
    if event.extra.get("tau") is not None:
        parts.append(f"tau {event.extra['tau']:.2f}")
    return "  ".join(parts) + f"\n    arch {event.arch}"


def cmd_search(args: argparse.Namespace) -> int:
    """Load the data, split it, run the strategy, print one line per epoch and the result."""
    flags = {
        "epochs": args.epochs,
        "candidates": args.candidates,
        "batch_size": args.batch_size,
        "size": check_size(args.size),
        "max_seconds": args.max_seconds,
    }
    settings = build_config(SearchSettings, flags, "search")
    split = build_config(DataSettings, {"search_portion": args.portion}, "--portion")
    strategy = registry.create(
        "strategy", args.strategy, **parse_options(args.strategy_opt, f"strategy {args.strategy!r}")
    )
    if strategy.kind != "oneshot":
        oneshot = [e.name for e in registry.entries("strategy") if getattr(e.obj, "kind", "") == "oneshot"]
        raise ConfigError(f"strategy {args.strategy!r} is not one-shot (use `nasmix study` for discrete "
                          f"strategies); one-shot: {', '.join(oneshot)}")  # fmt: skip
    space = registry.create("space", args.space, **parse_options(args.space_opt, f"space {args.space!r}"))
    device = pick_device(args.device)
    data = load_data(args)
    train_half, valid_half = search_split(data.train, len(data.classes), split.search_portion)
    timer = Timer(device)
    sdata = SearchData(train_half, valid_half, data.task, device, timer, size=settings.size)
    console.print(f"{args.strategy} on {args.space} ({args.size}): {len(train_half):,} images train weights, "
                  f"{len(valid_half):,} the architecture; {args.epochs} epochs, batch {args.batch_size}; "
                  f"device {timer.name}")  # fmt: skip
    with progress_bar(args.quiet) as bar:
        task = bar.add_task("search", total=None)
        strategy.progress = lambda done, steps: bar.update(task, completed=done, total=steps)

        def show(event: Event) -> None:
            if isinstance(event, SearchEpoch):
                console.print(epoch_text(event))
                bar.update(task, description=f"epoch {event.epoch + 1}/{event.epochs}", completed=0)
            elif isinstance(event, Subnet):
                top1 = f"{100 * event.valid_top1:.2f}%"
                console.print(f"sub-supernet {event.op}: {event.arch}  valid top-1 {top1}")
            elif isinstance(event, (Capped, PartialFallback, EdgeNormFallback, MemoryPlanned)):
                fields = ", ".join(f"{k}={v}" for k, v in event.to_json().items() if k != "v")
                console.print(f"[yellow]{event.kind}[/]: {fields}")

        result = search(space, strategy, sdata, budget=settings.budget(), seed=args.seed, log=show)
    console.print(f"chosen arch: {result.arch.to_str()}")
    peak = f", peak GPU memory {result.peak_gpu_bytes / 2**20:,.0f} MiB" if result.peak_gpu_bytes else ""
    console.print(f"search time: {result.search_s:.1f}s on {result.device}{peak}")
    if args.json:
        events = [{"event": e.kind, **e.to_json()} for e in result.events]
        summary = {"arch": result.arch.to_str(), "search_s": result.search_s, "device": result.device}
        with open(args.json, "w") as f:
            json.dump({**summary, "events": events}, f, indent=1)
    return 0
