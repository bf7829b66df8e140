"""`nasmix report DB -o DIR`: a study's report as HTML, Markdown, figures and CSV."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nasmix.console import console
from nasmix.errors import ConfigError
from nasmix.validate import check_count, check_output_dir


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value > 1:  # "90" means 90%
        value /= 100
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"the target accuracy must be in (0, 1] (or a percentage): {text!r}")
    return value


def cmd_report(args: argparse.Namespace) -> int:
    from nasmix.report.render import write_report  # matplotlib: loaded only to draw

    if not Path(args.db).exists():
        raise ConfigError(f"store {args.db} does not exist (run `nasmix study` first)")
    if Path(args.db).is_dir():
        raise ConfigError(f"store {args.db} is a folder: give the study's .db file")
    check_count(args.workers, "--workers")
    check_output_dir(args.output, "-o/--output")
    t0 = time.perf_counter()
    files = write_report(
        args.db,
        args.output,
        target=args.target,
        shared_time_axis=args.shared_time_axis,
        basis=args.basis,
        workers=args.workers,
    )
    n = sum(1 for _ in files["figures"].glob("*.png"))
    console.print(
        f"report of {args.db}: {files['html']} ({n} figures as PNG and SVG, {files['md'].name}, "
        f"{files['summary_csv'].name}) in {time.perf_counter() - t0:.1f}s"
    )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="write a study's report: HTML, Markdown, figures (PNG, SVG) and CSV tables"
    )
    p.add_argument("db", help="the study's SQLite store")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the output folder")
    p.add_argument(
        "--shared-time-axis",
        action="store_true",
        help="one time axis for every panel of the grid figure (default: each its own)",
    )
    p.add_argument(
        "--target",
        type=_fraction,
        default=0.9,
        help="accuracy of the time-to-target metric, a fraction or a percentage (default 0.9)",
    )
    p.add_argument(
        "--basis",
        choices=("auto", "gpu", "wall"),
        default="auto",
        help="cost in GPU or wall seconds (auto: GPU when every cell recorded it)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes drawing the figures (default 1; more help only on an idle multi-core machine)",
    )
    p.set_defaults(func=cmd_report)
