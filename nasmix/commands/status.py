"""`nasmix status DB`: what is done, running, failed and projected.

The cells are the store's typed records (nasmix.study.schema), with their
state; the figures are the report's (nasmix.report.metrics).
"""

from __future__ import annotations

import argparse

from rich.table import Table

from nasmix.console import console, percent
from nasmix.events import Candidate, SearchEpoch
from nasmix.report.data import load_records
from nasmix.report.metrics import study_metrics


def _hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.3f}"


def cmd_status(args: argparse.Namespace) -> int:
    records = load_records(args.db)
    metrics = study_metrics(records)
    table = Table(title=f"{args.db}: {len(records)} cells")
    for col in (
        "id",
        "cell",
        "state",
        "search steps",
        "eval epochs",
        "test top-1",
        "measured h",
        "projected h",
        "note",
    ):
        table.add_column(col)
    counts: dict[str, int] = {}
    for rec, m in zip(records, metrics):
        # The store cannot tell a live run from a killed one: both have events and no end.
        state = "running or interrupted" if rec.state == "running" else rec.state
        counts[state] = counts.get(state, 0) + 1
        steps = len(rec.events_of(SearchEpoch, Candidate))
        epochs = f"{m.epochs_done}/{m.epochs}" if m.epochs else str(m.epochs_done)
        table.add_row(
            rec.id,
            rec.label,
            state,
            str(steps),
            epochs,
            percent(m.top1),
            _hours(m.runtime_h),
            _hours(m.projected_h),
            m.reason or "",
        )
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no cells")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="show a study store: done, running, failed, projected")
    p.add_argument("db", help="the study's SQLite store")
    p.set_defaults(func=cmd_status)
