"""One-shot search speed, memory and framework overhead, measured honestly and set beside NASLib.

For each space x strategy it runs bench/search_worker.py (each run a fresh
process on a CPU, so that its peak resident memory covers construction and
warm-up) and reports:

- time per search step of the real loop (`train_epochs` over `--steps` steps:
  data, both steps, bookkeeping, epoch-end work) at batch `--batch`: process
  CPU time on a CPU (one thread, as NASLib's CPU figures), the loop's
  synchronised wall clock on a GPU (x 391 steps = one NASLib search epoch);
- peak memory from process start: resident set on a CPU, allocated GPU memory
  on a GPU (both halves of the search split held on the device, `--images` each);
- at batch `--host-batch` (2), where compute vanishes: host CPU time per step,
  ATen ops dispatched per step (TorchDispatchMode: the step alone, as NASLib's
  count, and the whole loop per step), and the step's FLOPs;
- model FLOP utilisation: the step's FLOPs (scaled from the host batch; they are
  linear in the batch) over its time, against a matmul peak of the same dtype
  measured in this run.

`--precision` fp32 and/or bf16 (autocast). The ratio against NASLib is taken
at fp32 only (NASLib runs fp32), and only where the supernets match: same
parameter count within 1%, or the pairing that ../shared/anchors/naslib-cpu.json
verified (simple_cell: the same convolutions, NASLib's mixed-op batch norms
affine). Both parameter counts are printed. NASLib's CPU figures come from
naslib-cpu.json, its GPU figures from naslib.json (the row of the same card).

`--compare PATH` also measures another nasmix checkout (e.g. main before a
change) with the same runs, interleaved A, B, B, A, ..., and prints both with
their ratio; figures are medians over `--reps`. The worker speaks main's core API
(typed events, `nasmix.budget.Clock`): the other checkout must have it (main from
2dbe8bb on; the before/after figures in bench/README.md were taken against 60557be
with the worker of that time).

Usage:
    python bench/search.py [--device cpu|cuda] [--precision fp32,bf16] [--spaces simple_cell,darts]
        [--strategies darts,gdas,drnas] [--steps 5] [--warmup 2] [--reps 3] [--compare ../base]
        [--host-batch 2] [--no-host] [--json out.json]

Example (a quick CPU check):
    python bench/search.py --size tiny --steps 2 --warmup 1 --spaces simple_cell --strategies gdas --reps 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
# ../shared/anchors beside the checkout (or beside the folder of worktrees holding it)
ANCHORS = next(
    (
        p
        for p in (ROOT.parent / "shared" / "anchors", ROOT.parent.parent / "shared" / "anchors")
        if p.exists()
    ),
    ROOT.parent / "shared" / "anchors",
)
STEPS_PER_EPOCH = 391  # ceil(25,000 / 64): NASLib's search epoch
HALF_IMAGES = 25_000


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """FLOP/s of the best of five n x n matmuls (process CPU time on a CPU, synchronised wall on a GPU)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    cuda = device.type == "cuda"
    best = float("inf")
    for _ in range(6):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter() if cuda else time.process_time()
        (a @ b).sum()
        if cuda:
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() if cuda else time.process_time()) - t0)
    return 2 * n**3 / best


def naslib_anchors(device_label: str, folder: Path = ANCHORS) -> tuple[dict, dict, dict]:
    """(supernet parameter counts, CPU rows, GPU rows of this card), keyed by space / (space, strategy)."""
    supernets, cpu, gpu = {}, {}, {}
    path = folder / "naslib-cpu.json"
    if path.exists():
        doc = json.loads(path.read_text())
        supernets = doc.get("supernets", {})
        for r in doc.get("rows", []):
            cpu[(r["space"], r["strategy"])] = dict(r)
        for r in doc.get("aten_ops_per_step", {}).get("rows", []):
            cpu.setdefault((r["space"], r["strategy"]), {}).update(r)
    path = folder / "naslib.json"
    card = next((c for c in ("H200", "H100") if c in device_label), None)
    if path.exists() and card:
        for r in json.loads(path.read_text()).get("rows", []):
            if r.get("gpu") == card and r.get("item", "").startswith("search/") and r.get("ok"):
                gpu[(r["space"], r["strategy"])] = r
    return supernets, cpu, gpu


def matched(space: str, params: int, supernets: dict) -> tuple[bool, int | None]:
    """Whether nasmix's supernet of `space` is the one NASLib's figures were taken on, and NASLib's count."""
    entry = supernets.get(space)
    if not entry or not entry.get("naslib_params"):
        return False, None
    theirs = int(entry["naslib_params"])
    return abs(params - theirs) <= 0.01 * theirs or params == entry.get("nasmix_params"), theirs


def run_spec(spec: dict, checkout: Path, isolate: bool, timeout: float) -> dict:
    """One measurement, in a fresh process on `checkout`'s nasmix (or in this process)."""
    if not isolate:
        import search_worker

        return search_worker.measure(search_worker.Spec(**spec))
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS=str(spec["threads"]))
    cmd = [sys.executable, str(HERE / "search_worker.py"), json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:200]}
    return json.loads(line[len("RESULT ") :])


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _fmt(x, spec: str = ".3f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp32,bf16")
    parser.add_argument("--size", default="search", choices=("tiny", "search", "eval"))
    parser.add_argument("--spaces", default="simple_cell,darts,hierarchical")
    parser.add_argument("--strategies", default="darts,gdas,drnas")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="steps of the timed epoch")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before it")
    parser.add_argument("--host-batch", type=int, default=2, help="batch of the overhead runs")
    parser.add_argument("--host-steps", type=int, default=10)
    parser.add_argument("--no-host", action="store_true", help="skip the batch-2 runs (ops, host s, FLOPs)")
    parser.add_argument("--only-host", action="store_true", help="only the batch-2 runs")
    parser.add_argument(
        "--settings",
        default="auto",
        choices=("auto", "cuda"),
        help="the device's own settings, or CUDA's on any device (nasmix.accel)",
    )
    parser.add_argument("--reps", type=int, default=1, help="repetitions; figures are medians")
    parser.add_argument("--images", type=int, default=None, help=f"images per half held (GPU: {HALF_IMAGES})")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkout", default=str(ROOT), help="the nasmix checkout measured (default: this)")
    parser.add_argument("--compare", default=None, help="another nasmix checkout, measured alongside")
    parser.add_argument(
        "--isolate", default="auto", choices=("auto", "yes", "no"), help="a process per run (auto: CPU)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--anchors", default=str(ANCHORS), help="folder of naslib-cpu.json and naslib.json")
    parser.add_argument("--replay", default=None, help="print the rows of an earlier --json file again")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(Path(args.replay), Path(args.anchors))

    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    cuda = device.type == "cuda"
    torch.set_num_threads(args.threads)
    from nasmix.timing import device_name

    label = device_name(device)
    isolate = args.isolate == "yes" or (args.isolate == "auto" and (not cuda or args.compare is not None))
    images = args.images if args.images is not None else (HALF_IMAGES if cuda else 1024)
    versions = [("after", Path(args.checkout).resolve())]
    if args.compare:
        versions.append(("before", Path(args.compare).resolve()))
    precisions = [p for p in args.precision.split(",") if p]
    supernets, cpu_anchor, gpu_anchor = naslib_anchors(label, Path(args.anchors))
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {p: matmul_peak(device, dtypes[p], 8192 if cuda else 2048) for p in precisions}
    clock = "synchronised wall" if cuda else "process CPU"
    print(
        f"# {label}; {args.threads} thread(s); size {args.size}; batch {args.batch}, {args.steps} timed "
        f"steps of the loop after {args.warmup}; {clock} time; medians of {args.reps}; "
        f"images per half {images}; settings {args.settings}"
    )
    print("# matmul peak: " + ", ".join(f"{p} {v / 1e9:.1f} GFLOP/s" for p, v in peaks.items()))
    rows = []
    for space in [s for s in args.spaces.split(",") if s]:
        for strat in [s for s in args.strategies.split(",") if s]:
            for precision in precisions:
                base = dict(
                    space=space,
                    strategy=strat,
                    device=name,
                    size=args.size,
                    warmup=args.warmup,
                    precision=precision,
                    images=images,
                    threads=args.threads,
                    settings=args.settings,
                )
                runs: dict[str, dict[str, list]] = {v: {"time": [], "host": []} for v, _ in versions}
                for rep in range(args.reps):
                    order = versions if rep % 2 == 0 else versions[::-1]
                    for kind in ("time", "host"):
                        if (kind == "host" and args.no_host) or (kind == "time" and args.only_host):
                            continue
                        spec = dict(base, batch=args.batch, steps=args.steps, count=False)
                        if kind == "host":
                            spec.update(batch=args.host_batch, steps=args.host_steps, count=rep == 0)
                        for version, checkout in order:
                            runs[version][kind].append(run_spec(spec, checkout, isolate, args.timeout))
                row = summarise(space, strat, precision, runs, supernets, cpu_anchor, gpu_anchor, peaks, args)
                rows.append(row)
                print_row(row, cuda, bool(args.compare))
                sys.stdout.flush()
                if args.json:  # after every row: a run cut short by a timeout keeps what it measured
                    Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def replay(path: Path, anchors: Path) -> list[dict]:
    """Print saved rows again, with NASLib's figures from `anchors` (matching re-checked)."""
    rows = json.loads(path.read_text())
    for row in rows:
        device = row.get("device_name") or ""
        supernets, cpu_anchor, gpu_anchor = naslib_anchors(device, anchors)
        params = row["params"] or 0
        row.update(_naslib(row["space"], row["strategy"], params, supernets, cpu_anchor, gpu_anchor))
        print_row(row, device.startswith("cuda"), "before" in row["versions"])
    return rows


def _naslib(space: str, strat: str, params: int, supernets: dict, cpu_anchor: dict, gpu_anchor: dict) -> dict:
    ok, naslib_params = matched(space, params, supernets)
    cpu = cpu_anchor.get((space, strat), {})
    gpu = gpu_anchor.get((space, strat), {})
    naslib = {
        "cpu_s_per_step": cpu.get("naslib_cpu_s_per_step"),
        "peak_rss_mib": cpu.get("naslib_peak_rss_mib"),
        "step_ops": cpu.get("naslib_ops_per_step"),
        "host_s_per_step": cpu.get("naslib_host_cpu_s_per_step_batch2"),
        "epoch_s": gpu.get("epoch_s"),
        "peak_gpu_mib": gpu.get("peak_gpu_mib"),
    }
    return {"naslib_params": naslib_params, "matched": ok, "naslib": naslib}


def summarise(space, strat, precision, runs, supernets, cpu_anchor, gpu_anchor, peaks, args) -> dict:
    """Medians per version, NASLib's figures where the supernets match, ratios."""
    row: dict = {"space": space, "strategy": strat, "precision": precision, "versions": {}}
    for version, kinds in runs.items():
        ok_time = [r for r in kinds["time"] if "error" not in r]
        ok_host = [r for r in kinds["host"] if "error" not in r]
        errors = [r["error"] for r in kinds["time"] + kinds["host"] if "error" in r]
        counted = next((r for r in ok_host if r.get("step_ops") is not None), {})
        on_gpu = bool(ok_time) and ok_time[0]["device"].startswith("cuda")
        v = {
            "s_per_step": _median(ok_time, "wall_s_per_step" if on_gpu else "cpu_s_per_step"),
            "cpu_s_per_step": _median(ok_time, "cpu_s_per_step"),
            "wall_s_per_step": _median(ok_time, "wall_s_per_step"),
            "gpu_s_per_step": _median(ok_time, "gpu_s_per_step"),
            "peak_rss_mib": _median(ok_time, "peak_rss_mib"),
            "peak_gpu_mib": _median(ok_time, "peak_gpu_mib"),
            "host_s_per_step": _median(ok_host, "cpu_s_per_step"),
            "params": (ok_time or ok_host or [{}])[0].get("params"),
            "reps": len(ok_time),
            "errors": errors,
            **{k: counted.get(k) for k in ("step_ops", "step_views", "data_ops", "loop_ops", "top_ops")},
        }
        flops = counted.get("flops_per_step")
        if flops and v["s_per_step"]:
            v["flops_per_step"] = flops * args.batch / args.host_batch
            v["mfu"] = v["flops_per_step"] / v["s_per_step"] / peaks[precision]
        row["versions"][version] = v
    row["params"] = row["versions"]["after"]["params"]
    names = [r["device_name"] for kind in runs["after"].values() for r in kind if "device_name" in r]
    row["device_name"] = names[0] if names else ""
    row.update(_naslib(space, strat, row["params"] or 0, supernets, cpu_anchor, gpu_anchor))
    return row


def _ratio(theirs, ours) -> float | None:
    return None if not theirs or not ours else theirs / ours


def print_row(row: dict, cuda: bool, compare: bool) -> None:
    """The row's figures, each version, NASLib's where comparable (fp32, matched supernets)."""
    a = row["versions"]["after"]
    b = row["versions"].get("before")
    n = row["naslib"]
    fair = row["matched"] and row["precision"] == "fp32"
    head = f"{row['space']} x {row['strategy']} ({row['precision']})"
    print(f"\n== {head}: params nasmix {row['params']:,}" if row["params"] else f"\n== {head}", end="")
    print(f" / NASLib {row['naslib_params']:,}" if row["naslib_params"] else " / NASLib -", end="")
    if not row["matched"]:
        why = (
            "supernets differ: no comparison" if row["naslib_params"] else "no NASLib figures for this space"
        )
        print(f"  ({why})")
    if row["matched"]:
        print()
    for version, v in row["versions"].items():
        if v["errors"]:
            print(f"   {version}: errors: {'; '.join(sorted(set(v['errors'])))[:300]}")
    cols = [("after", a)] + ([("before", b)] if compare else [])
    unit = "s/epoch" if cuda else "CPU s/step"
    lines = []
    if cuda:
        epochs = [None if v["s_per_step"] is None else v["s_per_step"] * STEPS_PER_EPOCH for _, v in cols]
        lines.append(("s/epoch", epochs, n["epoch_s"], ".1f"))
        lines.append(("peak GPU MiB", [v["peak_gpu_mib"] for _, v in cols], n["peak_gpu_mib"], ",.0f"))
    else:
        lines.append((unit, [v["s_per_step"] for _, v in cols], n["cpu_s_per_step"], ".3f"))
        lines.append(("peak RSS MiB", [v["peak_rss_mib"] for _, v in cols], n["peak_rss_mib"], ",.0f"))
    lines.append(("ATen ops/step", [v["step_ops"] for _, v in cols], n["step_ops"], ",.0f"))
    lines.append(("loop ops/step", [v["loop_ops"] for _, v in cols], None, ",.0f"))
    lines.append(("host s/step b2", [v["host_s_per_step"] for _, v in cols], n["host_s_per_step"], ".4f"))
    lines.append(("MFU %", [None if v.get("mfu") is None else 100 * v["mfu"] for _, v in cols], None, ".2f"))
    names = "".join(f"{c:>12}" for c, _ in cols)
    print(f"   {'':<15}{names}{'before/after' if compare else '':>13}{'NASLib':>10}{'NASLib/nasmix':>15}")
    for label, values, theirs, spec in lines:
        text = "".join(f"{_fmt(x, spec):>12}" for x in values)
        gain = _fmt(_ratio(values[1], values[0]), ".2f") + "x" if compare and len(values) > 1 else ""
        lower_better = "MiB" not in label
        vs = _ratio(theirs, values[0]) if lower_better else _ratio(values[0], theirs)
        vs_text = "" if not fair or theirs is None else (_fmt(vs, ".2f") + ("x" if lower_better else " mem"))
        print(f"   {label:<15}{text}{gain:>13}{_fmt(theirs, spec, '') if fair else '':>10}{vs_text:>15}")
    if a.get("top_ops"):
        print("   top ops/step (after): " + ", ".join(f"{k} {v:.0f}" for k, v in a["top_ops"][:8]))


if __name__ == "__main__":
    main()
