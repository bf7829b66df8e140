"""The `nasmix` command: list | train (and the commands of later modules).

Every user error (unknown name, broken config, bad data) prints one clear
message and exits with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence

import torch
from rich.table import Table

import nasmix.commands
from nasmix import registry
from nasmix.config import pick_device
from nasmix.console import console, epoch_line, percent, progress_bar
from nasmix.data import check_path_use, load_dataset, with_subsets
from nasmix.errors import NasmixError, UnknownNameError
from nasmix.options import build_config, parse_options
from nasmix.timing import count_flops, count_params
from nasmix.train import DivergedError, TrainConfig, train

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _kind(text: str) -> str:
    """A module kind, singular or plural (spaces, strategies, proxies)."""
    singular = text[:-3] + "y" if text.endswith("ies") else text[:-1] if text.endswith("s") else text
    kind = singular if singular in registry.KINDS else text
    if kind not in registry.KINDS:
        raise UnknownNameError("module kind", text, registry.KINDS)
    return kind


def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered module: kind, name, description (and spaces for strategies)."""
    kinds = [_kind(args.kind)] if args.kind else list(registry.KINDS)
    table = Table(show_lines=False, title="nasmix modules" if not args.kind else None)
    for col in ("kind", "name", "description", "spaces"):
        table.add_column(col, overflow="fold")
    for kind in kinds:
        for e in registry.entries(kind):
            if e.spaces is not None:
                spaces = ", ".join(e.spaces)
            else:
                spaces = "all" if kind in ("strategy", "estimator") else ""
            table.add_row(kind, e.name, e.description, spaces)
    console.print(table)
    return 0


def add_dataclass_flags(parser: argparse.ArgumentParser, config_type: type, skip: Sequence[str] = ()) -> None:
    """One --flag per field of a frozen config dataclass (kept in step with the code)."""
    group = parser.add_argument_group(config_type.__name__)
    for f in dataclasses.fields(config_type):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            group.add_argument(flag, type={"int": int, "float": float}.get(kind, str), default=None, metavar=kind.upper())


def dataclass_from_flags(args: argparse.Namespace, config_type: type, base: dict | None = None):
    """Build a config from the flags the user gave, over `base` values, over the defaults."""
    values = dict(base or {})
    values.update({f.name: getattr(args, f.name) for f in dataclasses.fields(config_type)
                   if getattr(args, f.name, None) is not None})  # fmt: skip
    return build_config(config_type, values, config_type.__name__)


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """--dataset, --data, subsets: the same in every command."""
    parser.add_argument("--dataset", default="cifar10", help="dataset name (nasmix list dataset)")
    parser.add_argument("--data", default=None, help="dataset location (default: $NASMIX_DATA)")
    parser.add_argument("--train-subset", type=int, default=None, help="class-balanced training subset size")
    parser.add_argument("--test-subset", type=int, default=None, help="class-balanced test subset size")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def load_data(args: argparse.Namespace):
    """The dataset of the flags, with its subsets applied."""
    check_path_use([args.dataset], args.data, "--data")
    return with_subsets(load_dataset(args.dataset, args.data), args.train_subset, args.test_subset)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a registered reference network and print top-1/top-5 per epoch."""
    options = parse_options(args.model_opt, f"model {args.model!r}")
    model_spec = registry.create("model", args.model, **options)
    config = dataclass_from_flags(args, TrainConfig, base=getattr(model_spec, "recipe", None))
    if args.checkpoint_dir and not config.checkpoint_every and args.checkpoint_every is None:
        config = dataclasses.replace(config, checkpoint_every=1)  # a checkpoint folder is for resuming
    device = pick_device(args.device)
    data = load_data(args)
    torch.manual_seed(config.seed)  # the initial weights follow --seed too (as a study's cells do)
    net = model_spec.build(data.task)
    console.print(f"{args.model}: {count_params(net):,} parameters, {count_flops(net, data.task.shape) / 1e6:.1f} MFLOPs; "
                  f"{len(data.train):,} training and {len(data.test):,} test images; device {device}")  # fmt: skip
    with progress_bar(args.quiet) as bar:
        task = bar.add_task("train", total=None)

        def on_event(event: dict) -> None:
            if event["event"] == "step":
                bar.update(task, total=event["steps"] * config.epochs,
                           completed=(event["epoch"] - 1) * event["steps"] + event["step"])  # fmt: skip
            else:
                console.print(epoch_line(event, config.epochs))

        result = train(net, data.train, data.task, config, device, test=data.test,
                       checkpoint_dir=args.checkpoint_dir, callback=on_event)  # fmt: skip
    final = result.final
    console.print(f"final test top-1 {percent(final['test_top1'])}  top-5 {percent(final['test_top5'])}  "
                  f"({sum(h['train_s'] for h in result.history):.1f}s training)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"history": result.history, "final": final}, f, indent=1)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="nasmix", description="Mix NAS modules and measure accuracy per compute.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list every registered module with a one-line description")
    p.add_argument("kind", nargs="?", help=f"one of {', '.join(registry.KINDS)}")
    p = sub.add_parser("train", help="train a reference network (nasmix list model)")
    p.add_argument("--model", required=True)
    p.add_argument("--model-opt", action="append", metavar="KEY=VALUE", help="a model option (repeatable)")
    add_data_flags(p)
    p.add_argument("--checkpoint-dir", default=None,
                   help="checkpoint folder (every epoch unless --checkpoint-every); an existing one resumes")
    p.add_argument("--json", default=None, help="also write the per-epoch history to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataclass_flags(p, TrainConfig)
    for info in pkgutil.iter_modules(nasmix.commands.__path__, "nasmix.commands."):
        importlib.import_module(info.name).add_parser(sub)
    return parser


COMMANDS.update({"list": cmd_list, "train": cmd_train})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nasmix` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = getattr(args, "func", None) or COMMANDS[args.command]
        return handler(args)
    except NasmixError as err:
        print(f"nasmix: error: {err}", file=sys.stderr)
        return err.exit_code
    except DivergedError as err:
        # Outside a study a diverged run is the user's recipe (an lr of inf, or too high): no traceback.
        message = f"training diverged ({err}); lower the learning rate"
        print(f"nasmix: error: {message}", file=sys.stderr)
        return NasmixError.exit_code
    except KeyboardInterrupt:
        print("nasmix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
