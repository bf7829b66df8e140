"""`nasmix study FILE` runs a grid of cells into a store; a re-run resumes it."""

from __future__ import annotations

import argparse
import dataclasses
import time

from nasmix.config import check_store_path, load_study
from nasmix.console import console
from nasmix.data.base import check_path_use
from nasmix.study.driver import run_study
from nasmix.study.grid import expand
from nasmix.validate import check_count, check_real, check_store_folder


def _backend_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", default=None, help="dataset location (default: the study's data.path, then $NASMIX_DATA)"
    )
    p.add_argument("--backend", default="inprocess", choices=["inprocess", "local", "ray"])
    p.add_argument(
        "--workers", type=int, default=None, help="local backend: worker processes (default: one per GPU)"
    )
    p.add_argument(
        "--ray-address",
        "--address",
        dest="address",
        default=None,
        help="ray backend: join this cluster (auto, HOST:PORT, ray://HOST:PORT); default: a local "
        "instance on 127.0.0.1",
    )
    p.add_argument(
        "--lease-timeout",
        type=float,
        default=None,
        metavar="S",
        help="several drivers on one store: take over a cell whose driver sent no heartbeat "
        "for S seconds (default 60)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run(cfg, args) -> int:
    check_count(args.workers, "--workers")
    check_real(args.lease_timeout, "--lease-timeout")
    check_path_use(cfg.datasets, args.data, "--data")
    cells, dropped = expand(cfg)
    if getattr(args, "dry_run", False):
        for cell in cells:
            console.print(f"{cell.id}  {cell.label}")
        for line in dropped:
            console.print(f"[dim]skipped combination: {line}[/dim]")
        console.print(f"{len(cells)} cells; store {cfg.store}")
        return 0
    check_store_folder(cfg.store, "[study] store")
    t0 = time.perf_counter()
    summary = run_study(
        cfg, args.data, args.backend, args.workers, args.address, args.quiet, lease_timeout=args.lease_timeout
    )
    states = list(summary.states.values())
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "nothing to run"
    if summary.others:
        counts += f"; {summary.others} ended by other drivers of this store"
    console.print(
        f"study {cfg.name}: {summary.total} cells ({summary.skipped} already ended; this run: {counts}) "
        f"in {time.perf_counter() - t0:.1f}s wall; store {cfg.store}"
    )
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    cfg = load_study(args.file)
    if args.store:
        cfg = dataclasses.replace(cfg, store=check_store_path(args.store))
    return _run(cfg, args)


def add_parser(sub) -> None:
    p = sub.add_parser("study", help="run a study file (a grid of cells); a re-run resumes it")
    p.add_argument("file", help="the TOML study file (see examples/)")
    p.add_argument("--store", default=None, help="override the study's store path")
    p.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    _backend_flags(p)
    p.set_defaults(func=cmd_study)
