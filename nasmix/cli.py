"""The `nasmix` command: the parser and `main`. Each subcommand is one file in
nasmix/commands/ (its `add_parser(subparsers)` adds it and sets `func`).

Every user error (unknown name, broken config, bad data) prints one clear
message and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import nasmix.commands
from nasmix.errors import NasmixError
from nasmix.train import DivergedError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (each file of nasmix/commands adds its own)."""
    parser = argparse.ArgumentParser(
        prog="nasmix", description="Mix NAS modules and measure accuracy per compute."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in pkgutil.iter_modules(nasmix.commands.__path__, "nasmix.commands."):
        module = importlib.import_module(info.name)
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nasmix` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
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
