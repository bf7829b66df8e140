"""`nasmix export`: a found network as standalone files (torch-only source, safetensors, .pt2, ONNX, card).

Example:
    nasmix export runs/thesis-mini.db 3f2a -o exports/best
    nasmix export --space darts --arch "normal=...;reduce=..." -o exports/darts-v2 --num-classes 10
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from nasmix import registry
from nasmix.arch import split
from nasmix.console import console
from nasmix.errors import ConfigError
from nasmix.export import export_arch, export_cell
from nasmix.flags import add_opt_flag, module_options
from nasmix.spaces.base import check_size
from nasmix.validate import check_count, check_network_size, check_numbers, check_output_dir, check_seed

ARCH_FLAGS = (
    ("--num-classes", int, 10, "classes"),
    ("--image-size", int, 32, "image height and width"),
    ("--channels", int, 3, "image channels"),
    ("--size", str, "eval", "network size: tiny, search or eval"),
    ("--seed", int, 0, "seed of the initial weights"),
)


def add_parser(sub) -> None:
    """Add the `export` subcommand to the `nasmix` parser."""
    p = sub.add_parser(
        "export",
        help="a finished cell's network (or an arch's) as standalone model files",
        description="Export a finished cell of a store (DB CELL), or the untrained network of an "
        "arch (--space/--arch), as model.py (needs only torch), model.safetensors, "
        "model.pt2, model.onnx and a model card.",
    )
    p.add_argument("db", nargs="?", help="the study's store")
    p.add_argument("cell", nargs="?", help="a cell id, or its first characters (nasmix status DB lists them)")
    p.add_argument("-o", "--out", required=True, help="the export folder (new, empty, or an earlier export)")
    p.add_argument(
        "--data",
        default=None,
        help="the cell's dataset, to record its input normalisation (default: $NASMIX_DATA)",
    )
    p.add_argument("--space", default=None, help="with --arch: the search space (nasmix list space)")
    p.add_argument(
        "--arch", default=None, help="an arch string (with or without 'SPACE:'); exports it untrained"
    )
    add_opt_flag(p, ("space",))
    # The arch-only flags default to None, so that giving one with DB CELL can be refused.
    for flag, kind, default, what in ARCH_FLAGS:
        p.add_argument(flag, type=kind, default=None, help=f"with --arch: {what} (default {default})")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("pt2", "onnx"),
        help="do not write this format (repeatable)",
    )
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export, then list the files written, the formats that failed and why."""
    check_output_dir(args.out, "-o/--out")
    check_numbers(module_options(args), "", "--opt ")
    by_arch = args.arch is not None or args.space is not None
    if by_arch and args.db is not None:
        raise ConfigError("give either DB CELL (a study's cell) or --space/--arch (an arch alone), not both")
    if by_arch:
        if args.arch is None:
            raise ConfigError("--space needs --arch STRING (the arch to export)")
        text = args.arch.strip()
        named = split(text)[0]  # the space the string names, if it names one
        if args.space is not None and named is None:
            text = f"{args.space}:{text}"
        elif args.space is not None and named != args.space:
            raise ConfigError(f"--arch {text!r} is of space {named!r}, not of --space {args.space!r}")
        if args.data is not None:
            raise ConfigError("--data applies to DB CELL (the cell's dataset); an arch alone has none")
        given: dict[str, Any] = {f[2:].replace("-", "_"): v for f, _, v, _ in ARCH_FLAGS}
        given.update({k: getattr(args, k) for k in given if getattr(args, k) is not None})
        for key in ("num_classes", "image_size", "channels"):
            check_count(given[key], "--" + key.replace("_", "-"))
        check_seed(given["seed"], "--seed")
        check_size(given["size"])
        space_name = split(text)[0]
        if space_name is not None and space_name in registry.names("space"):
            options = module_options(args).get("space", {})
            runs = [(given["size"], 1)]
            task = (given["num_classes"], given["image_size"])
            check_network_size(space_name, options, runs, "--opt space.*", *task)
        info = export_arch(
            text,
            args.out,
            module_options(args).get("space", {}),
            given["num_classes"],
            (given["channels"], given["image_size"], given["image_size"]),
            given["size"],
            given["seed"],
            args.skip,
        )
        source = f"arch {info.arch}"
    else:
        if args.db is None or args.cell is None:
            raise ConfigError("give DB CELL (a store and a cell id), or --space and --arch")
        stray = [f for f, *_ in ARCH_FLAGS if getattr(args, f[2:].replace("-", "_")) is not None]
        if args.opt or stray:
            flags = ", ".join((["--opt"] if args.opt else []) + stray)
            raise ConfigError(f"{flags} apply to --arch only: a cell's network is built as the cell ran")
        info = export_cell(args.db, args.cell, args.out, args.data, args.skip)
        record = info.record
        assert record is not None  # export_cell's result always names its cell
        source = f"cell {record.cell.id} ({record.cell.label})"
    console.print(escape(f"exported {source} to {args.out}"))
    for a in info.artifacts:
        mark = "[green]written[/]" if a.ok else "[yellow]not written[/]"
        console.print(f"  {a.name:<18} {mark}  {escape(a.note)}")
    console.print("  config.json, README.md (the model card)")
    if info.weights == "absent":
        console.print(
            f"[bold yellow]no weights: {escape(info.weights_note)}[/]: the files hold the architecture only"
        )
    else:
        console.print(f"weights: {escape(info.weights_note)}")
    return 0
