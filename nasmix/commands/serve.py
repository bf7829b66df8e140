"""`nasmix serve DB`: a live, read-only web dashboard of a study store (docs/serve.md).

Example:
    nasmix serve runs/thesis.db                  # http://127.0.0.1:8050/
    nasmix serve runs/thesis.db --port 0         # a free port (the URL printed names it)
"""

from __future__ import annotations

import argparse

from nasmix.errors import ConfigError
from nasmix.serve.launch import serve
from nasmix.serve.live import INTERVAL_S
from nasmix.validate import check_real


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in [0, 65535] (0: a free one), got {args.port}")
    check_real(args.interval, "--interval")
    return serve(args.db, host=args.host, port=args.port, interval=args.interval)


def add_parser(sub) -> None:
    """Add the `serve` subcommand to the `nasmix` parser."""
    p = sub.add_parser(
        "serve",
        help="a live web dashboard of a study store (read-only; safe while the study runs)",
        description="Serve a live, read-only dashboard of a study store: every cell's state, progress, "
        "elapsed time and ETA, accuracy over runtime, the efficiency ranking and Pareto front, and per "
        "cell the search trajectory, architecture weights, chosen arch and evaluation; with a JSON API "
        "under /api/. Needs the serve extra: pip install 'nasmix[serve]'.",
    )
    p.add_argument("db", help="the study's SQLite store")
    p.add_argument("--port", type=int, default=8050, help="the port (default 8050; 0: a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only). Any other address "
        "lets whoever reaches it read the study, with no authentication: prefer an SSH tunnel "
        "(docs/serve.md)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=INTERVAL_S,
        help=f"seconds between reads of the store (default {INTERVAL_S:g})",
    )
    p.set_defaults(func=cmd_serve)
