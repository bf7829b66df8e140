"""`nasmix train --model M`: train a registered reference network, top-1/top-5 per epoch.

Example:
    nasmix train --model resnet20 --dataset cifar10 --data ../shared/datasets/cifar10-jpeg.zip --epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from nasmix import registry
from nasmix.api import fit
from nasmix.budget import Budget
from nasmix.config import pick_device
from nasmix.console import console, epoch_line, percent, progress_bar
from nasmix.flags import (
    add_data_flags,
    add_dataclass_flags,
    add_opt_flag,
    dataclass_from_flags,
    load_data,
    module_options,
)
from nasmix.options import build_config
from nasmix.timing import count_flops, count_params
from nasmix.train import TrainConfig
from nasmix.validate import (
    check_data_flags,
    check_numbers,
    check_output_dir,
    check_output_file,
    check_real,
    write_result_file,
)


def add_parser(sub) -> None:
    """Add the `train` subcommand to the `nasmix` parser."""
    p = sub.add_parser("train", help="train a reference network (nasmix list model)")
    p.add_argument("--model", required=True, help="the reference network (nasmix list model)")
    add_opt_flag(p, ("model",))
    add_data_flags(p)
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="checkpoint folder (every epoch unless --checkpoint-every); an existing one resumes",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop between epochs once this many seconds have passed",
    )
    p.add_argument("--json", default=None, help="also write the per-epoch history to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataclass_flags(p, TrainConfig)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a registered reference network and print top-1/top-5 per epoch."""
    # Every flag is checked before the model is built: nothing is trained only to fail at the end.
    check_output_file(args.json, "--json")
    check_output_dir(args.checkpoint_dir, "--checkpoint-dir")
    check_real(args.max_seconds, "--max-seconds")
    check_data_flags(args)
    opts = module_options(args)
    check_numbers(opts, "", "--opt ")
    model_spec = registry.create("model", args.model, **opts.get("model", {}))
    config = dataclass_from_flags(args, TrainConfig, base=getattr(model_spec, "recipe", None))
    if args.checkpoint_dir and not config.checkpoint_every and args.checkpoint_every is None:
        config = dataclasses.replace(config, checkpoint_every=1)  # a checkpoint folder is for resuming
    budget = None
    if args.max_seconds is not None:
        caps = {"epochs": config.epochs, "max_seconds": args.max_seconds}
        budget = build_config(Budget, caps, "--max-seconds")
    device = pick_device(args.device)
    data = load_data(args)
    torch.manual_seed(config.seed)  # the initial weights follow --seed too (as a study's cells do)
    net = model_spec.build(data.task)
    flops = count_flops(net, data.task.shape) / 1e6
    console.print(
        f"{args.model}: {count_params(net):,} parameters, {flops:.1f} MFLOPs; "
        f"{len(data.train):,} training and {len(data.test):,} test images; device {device}"
    )
    with progress_bar(args.quiet) as bar:
        task = bar.add_task("train", total=None)

        def on_event(event: dict) -> None:
            if event["event"] == "step":
                done = (event["epoch"] - 1) * event["steps"] + event["step"]
                bar.update(task, total=event["steps"] * config.epochs, completed=done)
            else:
                console.print(epoch_line(event, config.epochs))

        result = fit(
            net,
            data,
            config,
            device=args.device,
            checkpoint_dir=args.checkpoint_dir,
            budget=budget,
            callback=on_event,
        )
    final = result.final
    if result.stopped:
        done = len(result.history)
        console.print(f"[yellow]stopped after {done} of {config.epochs} epochs: {result.stopped}[/]")
    seconds = sum(h["train_s"] for h in result.history)
    console.print(
        f"final test top-1 {percent(final['test_top1'])}  top-5 {percent(final['test_top5'])}  "
        f"({seconds:.1f}s training)"
    )
    if args.json:
        write_result_file(args.json, {"history": result.history, "final": final}, "--json")
    return 0
