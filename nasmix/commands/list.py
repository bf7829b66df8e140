"""`nasmix list [KIND]`: every registered module, one line each, and any plugin that failed to load."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from nasmix import registry
from nasmix.console import console
from nasmix.errors import UnknownNameError


def add_parser(sub) -> None:
    """Add the `list` subcommand to the `nasmix` parser."""
    p = sub.add_parser("list", help="list every registered module with a one-line description")
    p.add_argument("kind", nargs="?", help=f"one of {', '.join(registry.KINDS)} (or the plural)")
    p.set_defaults(func=cmd_list)


def module_kind(text: str) -> str:
    """A module kind, singular or plural (spaces, strategies, proxies).

    Raises:
        UnknownNameError: not a kind.
    """
    singular = text[:-3] + "y" if text.endswith("ies") else text[:-1] if text.endswith("s") else text
    kind = singular if singular in registry.KINDS else text
    if kind not in registry.KINDS:
        raise UnknownNameError("module kind", text, registry.KINDS)
    return kind


def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered module: kind, name, description, spaces, and the plugin it came from."""
    kinds = [module_kind(args.kind)] if args.kind else list(registry.KINDS)
    table = Table(show_lines=False, title="nasmix modules" if not args.kind else None)
    rows = []
    for kind in kinds:
        for e in registry.entries(kind):
            if e.spaces is not None:
                spaces = ", ".join(e.spaces)
            else:
                spaces = "all" if kind in ("strategy", "estimator") else ""
            rows.append((kind, e.name, e.description, spaces, e.plugin or ""))
    plugged = any(row[-1] for row in rows)
    columns = ("kind", "name", "description", "spaces") + (("plugin",) if plugged else ())
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row[: len(columns)])
    console.print(table)
    for failure in registry.plugin_failures():
        console.print(f"[bold red]plugin failed to load[/]: {escape(str(failure))}")
    return 0
