"""`nasmix show SPACE ARCH`: an architecture as text, with parameters and FLOPs."""

from __future__ import annotations

import argparse

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.console import console
from nasmix.data import Task
from nasmix.flags import add_opt_flag, module_options
from nasmix.spaces.base import check_size
from nasmix.timing import count_flops, count_params


def cmd_show(args: argparse.Namespace) -> int:
    options = module_options(args).get("space", {})
    space = registry.create("space", args.space, **options)
    if args.arch in ("random", "sample"):
        arch = space.sample(np.random.default_rng(args.seed))
    elif options:
        arch = Arch.from_str(args.arch, space)  # parsed under the options given
    else:
        arch = Arch.from_str(args.arch, args.space)  # under the options the string names, if any
        space = registry.create("space", args.space, **dict(arch.options))
    task = Task(args.dataset, args.classes, (3, args.image_size, args.image_size))
    console.print(space.describe(arch))
    for size in args.size or ["search", "eval"]:
        net = space.build(arch, task, check_size(size))
        console.print(f"{size} network: {count_params(net):,} parameters, "
                      f"{count_flops(net, task.shape) / 1e6:,.1f} MFLOPs per {args.image_size}x{args.image_size} image")  # fmt: skip
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="print an architecture of a space, with parameters and FLOPs")
    p.add_argument("space", help="search space (nasmix list space)")
    p.add_argument("arch", help="the arch string (with or without 'SPACE:'), or 'random'")
    p.add_argument("--size", action="append", help="tiny, search or eval (default: search and eval)")
    p.add_argument("--num-classes", "--classes", dest="classes", type=int, default=10,
                   help="classes (default 10)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--seed", type=int, default=0, help="seed for 'random'")
    add_opt_flag(p, ("space",))
    p.set_defaults(func=cmd_show)
