"""Run one cell: search phase -> chosen arch -> evaluation phase -> end event.

`run_cell` never writes the store itself: it sends (key, kind, phase, data)
events through `emit`, and the driver (the one writer) appends them. It
resumes from what the store already holds (`Resume`): a chosen arch skips
the search, and the evaluation restarts from its last checkpoint. A cap
stops a phase early; its full runtime is then projected from the measured
pace and the cell ends as `projected`. A GPU-seconds cap counts CUDA-event
seconds; on a device without them (a CPU) it counts the device's wall
seconds. Out-of-memory and NaN losses end the cell as `failed` with the
reason; the study goes on. User errors (a bad dataset, a full disk, a device
this machine lacks) stop the study instead and leave the cell resumable.
"""

from __future__ import annotations

import errno
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.config import pick_device
from nasmix.data import DatasetArrays, load_dataset, search_split, with_subsets
from nasmix.errors import NasmixError
from nasmix.study.grid import ONESHOT_ESTIMATOR, Cell
from nasmix.timing import Timer, count_flops, count_params
from nasmix.train import DivergedError, TrainConfig, load_checkpoint, train

Emit = Callable[[str, str, str, dict], None]  # key, kind, phase, data


@dataclass(frozen=True)
class Resume:
    """What the store already holds for a cell."""

    arch: str | None = None  # the chosen arch, when the search finished
    chosen: dict | None = None  # the arch_chosen event's data
    attempts: int = 0
    eval_history: tuple = ()  # the eval_epoch events' data stored so far
    search_capped: dict | None = None  # the search's capped event, when killed before arch_chosen

    @staticmethod
    def from_events(events: list) -> "Resume":
        """What a cell's stored events say about where to resume."""
        chosen = next((e.data for e in events if e.key == "arch_chosen"), None)
        attempts = sum(1 for e in events if e.kind == "attempt")
        history = tuple(e.data for e in events if e.kind == "eval_epoch")
        capped = next((e.data for e in events if e.key == "search/capped"), None)
        return Resume(chosen["arch"] if chosen else None, chosen, attempts, history, capped)


class _Capped(Exception):
    """A phase reached its cap (raised from a progress callback)."""


def _has_gpu_clock(timer: Timer) -> bool:
    """Whether the timer's device has CUDA events (else GPU-seconds caps count wall seconds)."""
    return timer.device.type == "cuda"


def prepare_data(cell: Cell, data_path: str | None) -> DatasetArrays:
    """The cell's dataset with its subsets applied."""
    d = cell.settings["data"]
    return with_subsets(load_dataset(cell.dataset, data_path), d["train_subset"], d["test_subset"])


def _oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def run_cell(cell: Cell, files: Path, emit: Emit, resume: Resume = Resume(), data_path: str | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> str:  # fmt: skip
    """Run (or resume) one cell; returns its end state.

    Args:
        cell: the combination and its settings.
        files: the store's file folder (checkpoints under files/<cell id>/).
        emit: receives every event (the driver stores it).
        resume: what the store already holds for this cell.
        data_path: the dataset location (None: $NASMIX_DATA).
        progress: optional (phase, done, total) callback for progress bars.
    """
    device = pick_device(cell.settings["device"])
    timer = Timer(device)
    folder = files / cell.id
    emit(f"attempt/{resume.attempts + 1}", "attempt", "setup", {"device": timer.name, "resumed_arch": resume.arch})
    peak = {"gpu": 0}
    try:
        data = prepare_data(cell, data_path)
        space = registry.create("space", cell.space, **cell.settings["options"]["space"])
        if resume.arch is None:
            arch, chosen = _search(cell, space, data, device, timer, emit, progress, peak, resume.search_capped)
        else:
            arch, chosen = Arch.from_str(resume.arch, space), resume.chosen
        return _evaluate(cell, space, arch, chosen, data, device, timer, folder, emit, progress, peak,
                         resume.eval_history)  # fmt: skip
    except (KeyboardInterrupt, SystemExit, NasmixError):
        raise  # interrupted, the user's input is wrong, or a checkpoint could not be written: resumable
    except Exception as err:  # a failure stays local to its cell, unless the disk is full
        if _disk_full(err):
            raise NasmixError(f"disk full while running cell {cell.id} ({err}); free space and run the same "
                              "command again: the study resumes where it stopped") from None  # fmt: skip
        return _fail(cell, emit, device, peak, err)


def _disk_full(err: BaseException | None) -> bool:
    """A full disk anywhere in an error's chain: libraries wrap the OSError (torch raises RuntimeError)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _fail(cell: Cell, emit: Emit, device: torch.device, peak: dict, err: BaseException) -> str:
    """End a cell as failed, with the reason (and the peak memory it reached on out-of-memory)."""
    if _oom(err):
        reached = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        data = {"reason": "out of GPU memory", "error": str(err)[:500], "peak_gpu_bytes": max(reached or 0, peak["gpu"])}
    elif isinstance(err, DivergedError):
        data = {"reason": f"NaN loss: {err}"}
    else:
        data = {"reason": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
    emit("end", "failed", "end", data)
    return "failed"


def _search(cell, space, data, device, timer, emit, progress, peak, stored_cap=None):
    from nasmix.strategies.base import Budget, SearchData

    s = cell.settings["search"]
    seed = cell.seed
    torch.manual_seed(seed)
    train_half, valid_half = search_split(data.train, len(data.classes), cell.settings["data"]["search_portion"])
    sdata = SearchData(train_half, valid_half, data.task, device, timer, size=s["size"])
    strategy = registry.create("strategy", cell.strategy, **cell.settings["options"]["strategy"])
    estimator = None
    if cell.estimator != ONESHOT_ESTIMATOR:
        estimator = registry.create("estimator", cell.estimator, **cell.settings["options"]["estimator"])
    budget = Budget(epochs=s["epochs"], candidates=s["candidates"], batch_size=s["batch_size"])
    state = {"last": None, "gpu_s": 0.0, "done": 0, "capped": False,
             "total": budget.epochs if strategy.kind == "oneshot" else budget.candidates}  # fmt: skip
    gpu_clock = _has_gpu_clock(timer)
    t0 = timer.now()

    def log(event: dict) -> None:
        kind = event["event"]
        body = {k: v for k, v in event.items() if k != "event"}
        elapsed = timer.now() - t0
        if kind in ("search_epoch", "candidate"):
            body["elapsed_s"] = elapsed  # wall seconds since the search started
            state["gpu_s"] += event.get("gpu_s") or 0.0  # candidates carry their estimate's GPU seconds
        if kind == "search_epoch":
            key, state["done"] = f"search/epoch/{event['epoch']}", event["epoch"]
            # few-shot numbers its epochs over all sub-supernets: more than budget.epochs
            state["total"] = max(state["total"], event.get("epochs") or 0)
            peak["gpu"] = max(peak["gpu"], event.get("peak_gpu_bytes") or 0)
            state["last"] = event.get("arch")
        elif kind == "candidate":
            key, state["done"] = f"search/candidate/{event['index']}", event["index"]
            state["last"] = event.get("best_arch")
        else:  # numbered, so that a kind logged several times keeps every event
            state[kind] = state.get(kind, 0) + 1
            key = f"search/{kind}/{state[kind]}"
        emit(key, kind, "search", body)
        if progress and kind in ("search_epoch", "candidate"):
            progress("search", state["done"], state["total"])
        over_wall = s["max_seconds"] is not None and elapsed >= s["max_seconds"]
        gpu_s = state["gpu_s"] if gpu_clock else elapsed
        over_gpu = s["max_gpu_seconds"] is not None and gpu_s >= s["max_gpu_seconds"]
        # A search capped before (then killed before arch_chosen) stops where it stopped then.
        over = over_wall or over_gpu if stored_cap is None else state["done"] >= stored_cap["done"]
        if over and state["done"] < state["total"] and state["last"] is not None:
            state["capped"] = True
            raise _Capped

    projected = None
    with timer.measure() as m:
        try:
            arch = strategy.search(space, estimator, sdata, budget, log, np.random.default_rng(seed))
        except _Capped:
            arch = Arch.from_str(state["last"], space)
    search_s = m.wall_s
    if state["capped"]:
        total = state["total"]
        projected = m.wall_s * total / max(state["done"], 1)
        if stored_cap is not None:  # the figures of the attempt that was capped
            search_s, projected = stored_cap["elapsed_s"], stored_cap["projected_s"]
        emit("search/capped", "capped", "search", {"done": state["done"], "total": total, "elapsed_s": search_s,
                                                   "projected_s": projected})  # fmt: skip
    net = space.build(arch, data.task, cell.settings["eval"]["size"])
    chosen = {"arch": arch.to_str(), "search_s": search_s, "search_gpu_s": m.gpu_s or state["gpu_s"] or None,
              "search_projected_s": projected, "peak_gpu_bytes": m.peak_gpu_bytes, "peak_host_bytes": m.peak_host_bytes,
              "energy_j": m.energy_j, "device": m.device, "params": count_params(net),
              "flops": count_flops(net, data.task.shape), "kind": strategy.kind,
              "num_classes": data.task.num_classes}  # fmt: skip
    emit("arch_chosen", "arch_chosen", "search", chosen)
    return arch, chosen


def _evaluate(cell, space, arch, chosen, data, device, timer, folder, emit, progress, peak, prior) -> str:
    e = cell.settings["eval"]
    config = TrainConfig(**{**e["train"], "seed": cell.seed})
    torch.manual_seed(cell.seed)  # the same initial weights on every attempt
    net = space.build(arch, data.task, e["size"])
    history = {h["epoch"]: h for h in prior}  # every epoch trained so far, in any attempt
    capped = False
    gpu_clock = _has_gpu_clock(timer)
    checkpoints = folder / "eval"
    saved = load_checkpoint(checkpoints, config)
    # Epochs a checkpoint holds but the store lacks (killed between the checkpoint and its
    # event, or the driver died with events in flight): train() will not redo them.
    for h in saved["history"] if saved else ():
        if h["epoch"] not in history:
            emit(f"eval/epoch/{h['epoch']}", "eval_epoch", "eval", h)
            history[h["epoch"]] = h

    def over_cap(epoch: int) -> bool:
        """Whether the epochs up to this one, as first stored, reach a cap."""
        done = [history[k] for k in sorted(history) if k <= epoch]
        wall = sum(h["train_s"] + h["eval_s"] for h in done)
        gpu = sum((h.get("train_gpu_s") or 0.0) if gpu_clock else h["train_s"] for h in done)
        return epoch < config.epochs and (
            (e["max_seconds"] is not None and wall >= e["max_seconds"])
            or (e["max_gpu_seconds"] is not None and gpu >= e["max_gpu_seconds"]))  # fmt: skip

    def on_event(event: dict) -> None:
        nonlocal capped
        if event["event"] == "step":
            if progress:
                progress("eval", (event["epoch"] - 1) * event["steps"] + event["step"], config.epochs * event["steps"])
            return
        body = {k: v for k, v in event.items() if k != "event"}
        emit(f"eval/epoch/{event['epoch']}", "eval_epoch", "eval", body)
        peak["gpu"] = max(peak["gpu"], event.get("peak_gpu_bytes") or 0)
        history.setdefault(event["epoch"], body)
        if over_cap(event["epoch"]):
            capped = True
            raise _Capped

    # Killed before `end` with every epoch up to the last or to a cap stored: nothing to train again.
    stop = next((k for k in sorted(history) if set(range(1, k + 1)) <= history.keys()
                 and (k == config.epochs or over_cap(k))), None)  # fmt: skip
    if stop is not None:
        capped = over_cap(stop)
    else:
        try:
            train(net, data.train, data.task, config, device, test=data.test,
                  checkpoint_dir=checkpoints, callback=on_event, timer=timer)  # fmt: skip
        except _Capped:
            pass
        stop = max(history)
    epochs = [history[k] for k in sorted(history) if k <= stop]
    done = epochs[-1]["epoch"]
    tested = [h for h in epochs if "test_top1" in h]
    final = tested[-1] if tested else {}
    train_s = sum(h["train_s"] for h in epochs)
    end = {"arch": arch.to_str(), "epochs_done": done, "epochs": config.epochs,
           "test_top1": final.get("test_top1"), "test_top5": final.get("test_top5"),
           "eval_train_s": train_s, "eval_train_gpu_s": sum(h.get("train_gpu_s") or 0.0 for h in epochs) or None,
           "search_s": chosen.get("search_s"), "search_gpu_s": chosen.get("search_gpu_s"),
           "params": chosen.get("params"), "flops": chosen.get("flops")}  # fmt: skip
    if capped:
        end["eval_projected_s"] = train_s / max(done, 1) * config.epochs
        emit("eval/capped", "capped", "eval", {"done": done, "total": config.epochs, "elapsed_s": train_s,
                                               "projected_s": end["eval_projected_s"]})  # fmt: skip
    if chosen.get("search_projected_s") is not None:
        end["search_projected_s"] = chosen["search_projected_s"]
    kind = "projected" if (capped or chosen.get("search_projected_s") is not None) else "finished"
    emit("end", kind, "end", end)
    return kind
