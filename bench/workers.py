"""How much faster N `nasmix study` processes on one store finish a grid than one.

Each run starts N drivers (`nasmix study FILE --quiet`, one thread each) on a fresh store
of CELLS small synthetic cells and waits for all of them; the drivers claim cells with
leases (nasmix.study.lease). Runs are interleaved (1, 2, ..., 1, 2, ...) and the medians
of --repeats are printed: the wall seconds until the grid is done (the figure that
scaling out is for), the speed-up over one driver, the CPU seconds of all drivers, and
how the cells were shared. Each run also checks that every cell ran exactly once.

    python bench/workers.py --drivers 1 2 --cells 16 --epochs 6

Give the machine at least as many idle cores as drivers; the figure is a ratio of two
runs on the same machine. On a machine without idle cores, `--hold S` adds S seconds of
sleep to every evaluation epoch, standing in for time spent on a GPU (which does not use
this machine's CPUs): it measures how the drivers share a grid when the cells, not the
store, are the bottleneck.

    python bench/workers.py --drivers 1 2 4 --cells 16 --epochs 3 --hold 1
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nasmix.study.store import Store

# `nasmix study` with a sleep after each evaluation epoch (--hold): argv is HOLD then the CLI's.
HOLD = """
import sys, time
import nasmix.study.run as run
from nasmix.cli import main
hold, real = float(sys.argv[1]), run.train
def train(*args, callback, **kwargs):
    def on_event(event):
        if event["event"] == "epoch":
            time.sleep(hold)
        callback(event)
    return real(*args, callback=on_event, **kwargs)
run.train = train
sys.exit(main(sys.argv[2:]))
"""

STUDY = """
[study]
name = "bench"
store = "{store}"
spaces = ["chain"]
strategies = ["random"]
estimators = ["zero_cost"]
datasets = ["synthetic"]
seeds = {seeds}
device = "cpu"

[search]
candidates = 4
size = "tiny"
batch_size = 32

[eval]
preset = "fast"
size = "{size}"
epochs = {epochs}
batch_size = 64
checkpoint_every = 1
eval_every = 1
"""


def run(drivers: int, cells: int, epochs: int, size: str, folder: Path, hold: float = 0.0) -> dict:
    """One grid finished by `drivers` processes: wall and CPU seconds, cells per driver."""
    store = folder / f"bench-{drivers}-{time.monotonic_ns()}.db"
    study = folder / f"{store.stem}.toml"
    study.write_text(STUDY.format(store=store, seeds=list(range(cells)), epochs=epochs, size=size))
    cmd = [sys.executable, "-m", "nasmix.cli", "study", str(study), "--quiet"]
    if hold > 0:
        cmd[1:3] = ["-c", HOLD, str(hold)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(drivers)
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a driver failed: {err.decode()[-2000:]}")
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    with Store.open_readonly(store) as s:
        records = s.cells()
    per_cell = collections.Counter()
    per_driver = collections.Counter()
    for r in records:
        for e in r.events:
            if e.kind == "attempt":
                per_cell[r.id] += 1
                per_driver[e.data.get("worker")] += 1
    ok = (
        len(records) == cells
        and all(r.state == "finished" for r in records)
        and set(per_cell.values()) == {1}
    )
    if not ok:
        raise SystemExit(f"not every cell ran exactly once: {dict(per_cell)}")
    return {"wall": wall, "cpu": cpu, "shares": sorted(per_driver.values(), reverse=True)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drivers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6, help="evaluation epochs per cell (its length)")
    parser.add_argument(
        "--size", default="tiny", choices=["tiny", "search"], help="the evaluated network's size"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="seconds of sleep per evaluation epoch (standing in for GPU time)",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nasmix-bench-workers-"))
    results: dict[int, list[dict]] = {n: [] for n in args.drivers}
    for _ in range(args.repeats):
        for n in args.drivers:  # interleaved
            results[n].append(run(n, args.cells, args.epochs, args.size, folder, args.hold))
            print(
                f"  {n} drivers: {results[n][-1]['wall']:.1f}s wall, shares {results[n][-1]['shares']}",
                flush=True,
            )
    base = statistics.median(r["wall"] for r in results[args.drivers[0]])
    what = f"{args.cells} cells ({args.epochs} epochs, {args.size}, {args.hold:g} s hold per epoch)"
    print(f"{what}, {os.cpu_count()} CPUs; medians of {args.repeats}")
    print("drivers  wall s  speed-up  CPU s  cells per driver (last run)")
    for n, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        print(f"{n:>7}  {wall:6.1f}  {base / wall:7.2f}x  {cpu:5.1f}  {runs[-1]['shares']}")


if __name__ == "__main__":
    main()
