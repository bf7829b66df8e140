"""`nasmix search`: run one search, one-shot (DARTS, GDAS...) or discrete (random,
evolution... with an `--estimator`), and print its progress and the chosen arch.

The flags become the same typed values a study uses (`SearchSettings` and its
`Budget`, `DataSettings`), module options come as `--opt KIND.KEY=VALUE`, and the
search runs through `nasmix.search`.

Example:
    nasmix search --space darts --strategy gdas --dataset cifar10 \\
        --data ../shared/datasets/cifar10-jpeg.zip \\
        --epochs 1 --train-subset 5000
    nasmix search --space nb201 --strategy evolution --estimator zero_cost --opt estimator.proxy=snip \\
        --candidates 50 --dataset cifar10
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from nasmix import registry
from nasmix.api import search
from nasmix.config import DataSettings, SearchSettings, pick_device
from nasmix.console import console, percent, progress_bar
from nasmix.data import search_split
from nasmix.errors import ConfigError
from nasmix.events import (
    Candidate,
    Capped,
    EdgeNormFallback,
    Event,
    MemoryPlanned,
    PartialFallback,
    SearchEpoch,
    Subnet,
)
from nasmix.flags import add_data_flags, add_opt_flag, load_data, module_options
from nasmix.options import build_config
from nasmix.search_types import SearchData
from nasmix.spaces.base import check_size
from nasmix.timing import Timer
from nasmix.validate import (
    check_data_flags,
    check_network_size,
    check_numbers,
    check_output_file,
    check_seed,
    write_result_file,
)

KINDS = ("space", "strategy", "estimator")


def add_parser(sub) -> None:
    """Add the `search` subcommand to the `nasmix` parser."""
    p = sub.add_parser("search", help="run one search (one-shot, or discrete with --estimator)")
    p.add_argument("--space", required=True, help="search space (nasmix list space)")
    p.add_argument("--strategy", required=True, help="search strategy (nasmix list strategy)")
    p.add_argument(
        "--estimator",
        default=None,
        help="how a discrete strategy scores candidates (nasmix list estimator); one-shot: none",
    )
    add_opt_flag(p, KINDS)
    add_data_flags(p)
    p.add_argument("--epochs", type=int, default=50, help="supernet training epochs (one-shot; default 50)")
    p.add_argument(
        "--candidates", type=int, default=100, help="archs a strategy may score (discrete, rsws; default 100)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="search batch size, also of the estimators that train (default 64)",
    )
    p.add_argument("--size", default="search", help="network size: tiny, search or eval (default search)")
    p.add_argument(
        "--portion", type=float, default=0.5, help="share of the training images that train weights"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=None, help="stop the search after this many seconds")
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


def candidate_text(event: Candidate, total: int) -> str:
    """One line per scored candidate: its score, the best so far, the seconds it cost."""
    return (
        f"candidate {event.index:>3}/{total}  score {event.score:.4g}  best {event.best_score:.4g}  "
        f"{event.cost_s:.2f}s\n    arch {event.arch}"
    )


def _modules(args: argparse.Namespace):
    """The space, strategy and estimator of the flags, with their --opt options."""
    options = module_options(args)
    strategy = registry.create("strategy", args.strategy, **options.get("strategy", {}))
    space = registry.create("space", args.space, **options.get("space", {}))
    estimator = None
    if strategy.kind == "oneshot":
        if args.estimator is not None or "estimator" in options:
            raise ConfigError(
                f"strategy {args.strategy!r} is one-shot: its supernet scores archs, "
                "so it takes no --estimator"
            )
    elif args.estimator is None:
        valid = ", ".join(registry.names("estimator"))
        raise ConfigError(f"strategy {args.strategy!r} is discrete: give --estimator NAME ({valid})")
    else:
        estimator = registry.create("estimator", args.estimator, **options.get("estimator", {}))
    return space, strategy, estimator


def cmd_search(args: argparse.Namespace) -> int:
    """Load the data, split it, run the strategy, print one line per epoch or candidate and the result."""
    flags = {
        "epochs": args.epochs,
        "candidates": args.candidates,
        "batch_size": args.batch_size,
        "size": check_size(args.size),
        "max_seconds": args.max_seconds,
    }
    settings = build_config(SearchSettings, flags, "search")
    check_seed(args.seed, "--seed")
    check_output_file(args.json, "--json")  # before the search, not after it
    check_data_flags(args)
    check_numbers(module_options(args), "", "--opt ")
    split = build_config(DataSettings, {"search_portion": args.portion}, "--portion")
    space, strategy, estimator = _modules(args)
    space_options = module_options(args).get("space", {})
    check_network_size(args.space, space_options, [(settings.size, settings.batch_size)], "--opt space.*")
    device = pick_device(args.device)
    data = load_data(args)
    train_half, valid_half = search_split(data.train, len(data.classes), split.search_portion)
    timer = Timer(device)
    sdata = SearchData(train_half, valid_half, data.task, device, timer, size=settings.size)
    steps = f"{args.candidates} candidates, {args.estimator}" if estimator else f"{args.epochs} epochs"
    console.print(
        f"{args.strategy} on {args.space} ({args.size}): {len(train_half):,} images train weights, "
        f"{len(valid_half):,} the architecture; {steps}, batch {args.batch_size}; "
        f"device {timer.name}"
    )
    with progress_bar(args.quiet) as bar:
        task = bar.add_task("search", total=None)
        strategy.progress = lambda done, steps: bar.update(task, completed=done, total=steps)

        def show(event: Event) -> None:
            if isinstance(event, SearchEpoch):
                console.print(escape(epoch_text(event)))
                bar.update(task, description=f"epoch {event.epoch + 1}/{event.epochs}", completed=0)
            elif isinstance(event, Candidate):
                console.print(escape(candidate_text(event, args.candidates)))
                bar.update(task, description="candidates", completed=event.index, total=args.candidates)
            elif isinstance(event, Subnet):
                top1 = f"{100 * event.valid_top1:.2f}%"
                console.print(escape(f"sub-supernet {event.op}: {event.arch}  valid top-1 {top1}"))
            elif isinstance(event, (Capped, PartialFallback, EdgeNormFallback, MemoryPlanned)):
                fields = ", ".join(f"{k}={v}" for k, v in event.to_json().items() if k != "v")
                console.print(f"[yellow]{event.kind}[/]: {escape(fields)}")

        result = search(
            space, strategy, sdata, estimator=estimator, budget=settings.budget(), seed=args.seed, log=show
        )
    console.print(escape(f"chosen arch: {result.arch.to_str()}"))
    peak = f", peak GPU memory {result.peak_gpu_bytes / 2**20:,.0f} MiB" if result.peak_gpu_bytes else ""
    console.print(f"search time: {result.search_s:.1f}s on {result.device}{peak}")
    if args.json:
        events = [{"event": e.kind, **e.to_json()} for e in result.events]
        summary = {"arch": result.arch.to_str(), "search_s": result.search_s, "device": result.device}
        write_result_file(args.json, {**summary, "events": events}, "--json")
    return 0
