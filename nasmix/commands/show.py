"""`nasmix show SPACE ARCH`: an architecture as text, with parameters and FLOPs."""

from __future__ import annotations

import argparse

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.console import console
from nasmix.data import Task
from nasmix.errors import ConfigError
from nasmix.flags import add_opt_flag, module_options
from nasmix.spaces.base import check_size
from nasmix.timing import count_flops, count_params
from nasmix.validate import check_count, check_network_size, check_numbers, check_seed

MAX_IMAGE_SIZE = 4096  # a FLOP count of larger images is a typo's, and costly to run


def cmd_show(args: argparse.Namespace) -> int:
    check_count(args.classes, "--num-classes")
    check_seed(args.seed, "--seed")
    if not isinstance(args.image_size, int) or not 1 <= args.image_size <= MAX_IMAGE_SIZE:
        rule = f"an integer in [1, {MAX_IMAGE_SIZE}]"
        raise ConfigError(f"--image-size must be {rule}, got {args.image_size!r}")
    sizes = [check_size(size) for size in args.size or ["search", "eval"]]
    check_numbers(module_options(args), "", "--opt ")
    options = module_options(args).get("space", {})
    runs = [(size, 1) for size in sizes]
    check_network_size(args.space, options, runs, "--opt space.*", args.classes, args.image_size)
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
    for size in sizes:
        net = space.build(arch, task, size)
        try:
            flops = count_flops(net, task.shape)
        except RuntimeError as err:  # e.g. reductions that shrink a small image below 1 pixel
            raise ConfigError(
                f"the {size} network cannot take {args.image_size}x{args.image_size} images: "
                f"{str(err).splitlines()[0]}"
            ) from None
        console.print(
            f"{size} network: {count_params(net):,} parameters, "
            f"{flops / 1e6:,.1f} MFLOPs per {args.image_size}x{args.image_size} image"
        )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="print an architecture of a space, with parameters and FLOPs")
    p.add_argument("space", help="search space (nasmix list space)")
    p.add_argument("arch", help="the arch string (with or without 'SPACE:'), or 'random'")
    p.add_argument("--size", action="append", help="tiny, search or eval (default: search and eval)")
    p.add_argument(
        "--num-classes", "--classes", dest="classes", type=int, default=10, help="classes (default 10)"
    )
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--seed", type=int, default=0, help="seed for 'random'")
    add_opt_flag(p, ("space",))
    p.set_defaults(func=cmd_show)
