"""`nasmix status DB`: what is done, running, failed and projected."""

from __future__ import annotations

import argparse

from nasmix.console import console, percent


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.3f}"


def cell_summary(store, row) -> dict:
    """One status row of a cell, derived from its events."""
    events = store.events(row.id)
    state = store.state(row.id)
    chosen = next((e.data for e in events if e.key == "arch_chosen"), {})
    end = next((e.data for e in events if e.key == "end"), {})
    epochs = [e.data for e in events if e.kind == "eval_epoch"]
    search_epochs = [e for e in events if e.kind in ("search_epoch", "candidate")]
    if state == "running":
        state = "running or interrupted"  # the store cannot tell a live run from a killed one
    measured = (chosen.get("search_s") or 0) + sum(h["train_s"] for h in epochs)
    projected = None
    if state == "projected" or end.get("eval_projected_s") or end.get("search_projected_s"):
        projected = (end.get("search_projected_s") or chosen.get("search_s") or 0) + (
            end.get("eval_projected_s") or end.get("eval_train_s") or 0)  # fmt: skip
    tested = [h for h in epochs if "test_top1" in h]
    return {"id": row.id, "label": row.label, "state": state, "search_steps": len(search_epochs),
            "eval_epochs": epochs[-1]["epoch"] if epochs else 0, "top1": end.get("test_top1") or
            (tested[-1]["test_top1"] if tested else None), "measured_s": measured, "projected_s": projected,
            "reason": end.get("reason"), "arch": chosen.get("arch")}  # fmt: skip


def cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from nasmix.study.store import Store

    store = Store(args.db, readonly=True)
    try:
        rows = [cell_summary(store, r) for r in store.cells()]
    finally:
        store.close()
    table = Table(title=f"{args.db}: {len(rows)} cells")
    for col in ("id", "cell", "state", "search", "eval epochs", "test top-1", "measured h", "projected h", "note"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["label"], r["state"], str(r["search_steps"]), str(r["eval_epochs"]),
                      percent(r["top1"]), _hours(r["measured_s"]), _hours(r["projected_s"]), r["reason"] or "")  # fmt: skip
    console.print(table)
    counts = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no cells")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="show a study store: done, running, failed, projected")
    p.add_argument("db", help="the study's SQLite store")
    p.set_defaults(func=cmd_status)
