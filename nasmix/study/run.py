"""Run one cell: search phase -> chosen arch -> evaluation phase -> end event.

`run_cell` never writes the store itself: it sends (key, typed event)
pairs through `emit` (nasmix.events), and the driver (the one writer)
appends them. It resumes from what the store already holds (`Resume`): a
chosen arch skips the search, and the evaluation restarts from its last
checkpoint. A cap (nasmix.budget: the strategy's and nasmix.train's loops
poll the phase's clock) stops a phase early; its full runtime is then
projected from the measured pace and the cell ends as `projected`. A
GPU-seconds cap counts CUDA-event seconds; on a device without them (a CPU)
it counts the device's wall seconds. Out-of-memory and NaN losses end the cell as `failed` with the
reason; the study goes on. User errors (a bad dataset, a full disk, a device
this machine lacks) stop the study instead and leave the cell resumable.
"""

from __future__ import annotations

import dataclasses
import errno
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Clock
from nasmix.config import pick_device
from nasmix.data import DatasetArrays, load_dataset, search_split, with_subsets
from nasmix.errors import NasmixError
from nasmix.events import ArchChosen, Attempt, Candidate, Capped, End, EvalEpoch, Event, SearchEpoch
from nasmix.search_types import SearchData
from nasmix.spaces.base import SearchSpace
from nasmix.study.schema import CellSpec, EventRecord
from nasmix.timing import Timer, count_flops, count_params
from nasmix.train import DivergedError, load_checkpoint, tick, train

Emit = Callable[[str, Event], None]  # key, event
Progress = Callable[[str, int, int], None]  # phase, done, total


@dataclass(frozen=True)
class Resume:
    """What the store already holds for a cell."""

    arch: str | None = None  # the chosen arch, when the search finished
    chosen: ArchChosen | None = None
    attempts: int = 0
    eval_history: tuple[EvalEpoch, ...] = ()  # the evaluation epochs stored so far
    search_capped: Capped | None = None  # the search's cap, when killed before arch_chosen

    @staticmethod
    def from_events(events: Iterable[EventRecord]) -> Resume:
        """What a cell's stored events say about where to resume."""
        typed = [e.event for e in events]
        chosen = next((e for e in typed if isinstance(e, ArchChosen)), None)
        attempts = sum(1 for e in typed if isinstance(e, Attempt))
        history = tuple(e for e in typed if isinstance(e, EvalEpoch))
        capped = next((e for e in typed if isinstance(e, Capped) and e.phase == "search"), None)
        return Resume(chosen.arch if chosen else None, chosen, attempts, history, capped)


def prepare_data(cell: CellSpec, data_path: str | None) -> DatasetArrays:
    """The cell's dataset with its subsets applied."""
    return with_subsets(load_dataset(cell.dataset, data_path), cell.data.train_subset, cell.data.test_subset)


def _oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def run_cell(
    cell: CellSpec,
    files: Path,
    emit: Emit,
    resume: Resume = Resume(),
    data_path: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Run (or resume) one cell; returns its end state.

    Args:
        cell: the combination and its settings.
        files: the store's file folder (checkpoints under files/<cell id>/).
        emit: receives every (key, event) (the driver stores it).
        resume: what the store already holds for this cell.
        data_path: the dataset location (None: $NASMIX_DATA).
        progress: optional (phase, done, total) callback for progress bars.
    """
    device = pick_device(cell.device)
    timer = Timer(device)
    folder = files / cell.id
    emit(f"attempt/{resume.attempts + 1}", Attempt(timer.name, resume.arch))
    peak = {"gpu": 0}
    try:
        data = prepare_data(cell, data_path)
        space = registry.create("space", cell.space, **cell.options.space)
        if resume.arch is None or resume.chosen is None:
            arch, chosen = _search(
                cell, space, data, device, timer, emit, progress, peak, resume.search_capped
            )
        else:
            arch, chosen = Arch.from_str(resume.arch, space), resume.chosen
        prior = resume.eval_history
        return _evaluate(cell, space, arch, chosen, data, timer, folder, emit, progress, peak, prior)
    except (KeyboardInterrupt, SystemExit, NasmixError):
        raise  # interrupted, the user's input is wrong, or a checkpoint could not be written: resumable
    except Exception as err:  # a failure stays local to its cell, unless the disk is full
        if _disk_full(err):
            raise NasmixError(
                f"disk full while running cell {cell.id} ({err}); free space and run the same "
                "command again: the study resumes where it stopped"
            ) from None
        return _fail(emit, device, peak, err)


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


def _fail(emit: Emit, device: torch.device, peak: dict, err: BaseException) -> str:
    """End a cell as failed, with the reason (and the peak memory it reached on out-of-memory)."""
    if _oom(err):
        reached = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        peak_gpu = max(reached or 0, peak["gpu"])
        end = End(state="failed", reason="out of GPU memory", error=str(err)[:500], peak_gpu_bytes=peak_gpu)
    elif isinstance(err, DivergedError):
        end = End(state="failed", reason=f"NaN loss: {err}")
    else:
        reason, trace = f"{type(err).__name__}: {err}", traceback.format_exc()[-3000:]
        end = End(state="failed", reason=reason, traceback=trace)
    emit(end.key(), end)
    return "failed"


def _search(
    cell: CellSpec,
    space: SearchSpace,
    data: DatasetArrays,
    device: torch.device,
    timer: Timer,
    emit: Emit,
    progress: Progress | None,
    peak: dict,
    stored: Capped | None,
) -> tuple[Arch, ArchChosen]:
    """The search phase: the strategy's events stored as they come, its cap with the
    projected runtime, and the chosen arch."""
    seed = cell.seed
    torch.manual_seed(seed)
    train_half, valid_half = search_split(data.train, len(data.classes), cell.data.search_portion)
    sdata = SearchData(train_half, valid_half, data.task, device, timer, size=cell.search.size)
    strategy = registry.create("strategy", cell.strategy, **cell.options.strategy)
    estimator = None
    if not cell.oneshot:
        estimator = registry.create("estimator", cell.estimator, **(cell.options.estimator or {}))
    # A search capped before (then killed before arch_chosen) stops where it stopped then.
    budget = cell.budget(replay=stored.done if stored is not None else None)
    counts: dict[str, int] = {}
    total = budget.epochs if strategy.kind == "oneshot" else budget.candidates
    logged_gpu_s = 0.0
    capped: list[Capped] = []

    def log(event: Event) -> None:
        nonlocal total, logged_gpu_s
        if isinstance(event, Capped):  # stored once the search returns, with its projected runtime
            capped.append(event)
            return
        done = None
        if isinstance(event, SearchEpoch):
            done = event.epoch
            total = max(total, event.epochs)  # few-shot numbers all its sub-supernets' epochs
            peak["gpu"] = max(peak["gpu"], event.peak_gpu_bytes or 0)
            logged_gpu_s += event.gpu_s or 0.0
        elif isinstance(event, Candidate):
            done = event.index
            logged_gpu_s += event.gpu_s or 0.0  # candidates carry their estimate's GPU seconds
        counts[event.kind] = counts.get(event.kind, 0) + 1  # numbers the kinds a search may log many times
        emit(event.key(counts[event.kind]), event)
        if progress and done is not None:
            progress("search", done, total)

    with timer.measure() as m:
        arch = strategy.search(space, estimator, sdata, budget, log, np.random.default_rng(seed))
    search_s, projected = m.wall_s, None
    if capped:
        cap = capped[-1]
        projected = m.wall_s * cap.total / max(cap.done, 1)
        if stored is not None:  # the figures of the attempt that was capped
            search_s, projected = stored.elapsed_s, stored.projected_s
        cap = dataclasses.replace(cap, elapsed_s=search_s, projected_s=projected, phase="search")
        emit(cap.key(), cap)
    net = space.build(arch, data.task, cell.eval.size)
    chosen = ArchChosen(
        arch.to_str(),
        search_s,
        search_gpu_s=m.gpu_s or logged_gpu_s or None,
        search_projected_s=projected,
        peak_gpu_bytes=m.peak_gpu_bytes,
        peak_host_bytes=m.peak_host_bytes,
        energy_j=m.energy_j,
        device=m.device,
        params=count_params(net),
        flops=count_flops(net, data.task.shape),
        strategy_kind=strategy.kind,
        num_classes=data.task.num_classes,
    )
    emit(chosen.key(), chosen)
    return arch, chosen


def _evaluate(
    cell: CellSpec,
    space: SearchSpace,
    arch: Arch,
    chosen: ArchChosen,
    data: DatasetArrays,
    timer: Timer,
    folder: Path,
    emit: Emit,
    progress: Progress | None,
    peak: dict,
    prior: tuple[EvalEpoch, ...],
) -> str:
    """The evaluation phase: the chosen arch trained from scratch (or from its last
    checkpoint), its epochs stored, its cap, and the cell's end."""
    config = cell.train_config
    torch.manual_seed(cell.seed)  # the same initial weights on every attempt
    net = space.build(arch, data.task, cell.eval.size)
    history = {h.epoch: h for h in prior}  # every epoch trained so far, in any attempt
    checkpoints = folder / "eval"
    saved = load_checkpoint(checkpoints, config)
    # Epochs a checkpoint holds but the store lacks (killed between the checkpoint and its
    # event, or the driver died with events in flight): train() will not redo them.
    for h in saved["history"] if saved else ():
        if h["epoch"] not in history:
            epoch = EvalEpoch.from_json(h)
            emit(epoch.key(), epoch)
            history[epoch.epoch] = epoch
    clock = cell.eval.budget().clock(timer=None, total=config.epochs)

    def as_stored(epoch: int) -> Clock:
        """The clock charged with the epochs up to this one as first stored (an epoch
        trained again after a resume keeps its first figures, so the cap falls alike)."""
        clock.set(0, 0.0, 0.0)
        for k in sorted(history):
            if k <= epoch:
                tick(clock, history[k].to_json())
        clock.set(epoch, clock.wall_ticked, clock.gpu_ticked)
        return clock

    def on_event(event: dict) -> None:
        if event["event"] == "step":
            if progress:
                progress(
                    "eval",
                    (event["epoch"] - 1) * event["steps"] + event["step"],
                    config.epochs * event["steps"],
                )
            return
        epoch = EvalEpoch.from_json({k: v for k, v in event.items() if k != "event"})
        emit(epoch.key(), epoch)
        peak["gpu"] = max(peak["gpu"], epoch.peak_gpu_bytes or 0)
        history.setdefault(epoch.epoch, epoch)
        as_stored(epoch.epoch)  # train() polls the clock after this callback

    # Killed before `end` with every epoch up to the last or to a cap stored: nothing to train again.
    stop = next(
        (
            k
            for k in sorted(history)
            if set(range(1, k + 1)) <= history.keys()
            and (k == config.epochs or as_stored(k).stop_reason() is not None)
        ),
        None,
    )
    if stop is not None:
        reason = as_stored(stop).stop_reason()
    else:
        result = train(
            net,
            data.train,
            data.task,
            config,
            timer.device,
            test=data.test,
            checkpoint_dir=checkpoints,
            callback=on_event,
            timer=timer,
            clock=clock,
        )
        stop, reason = max(history), result.stopped
    epochs = [history[k] for k in sorted(history) if k <= stop]
    done = epochs[-1].epoch
    tested = [h for h in epochs if h.test_top1 is not None]
    final = tested[-1] if tested else None
    train_s = sum(h.train_s for h in epochs)
    eval_projected = None
    if reason is not None:
        eval_projected = train_s / max(done, 1) * config.epochs
        cap = Capped(done, config.epochs, train_s, projected_s=eval_projected, reason=reason, phase="eval")
        emit(cap.key(), cap)
    end = End(
        state="projected" if (reason is not None or chosen.search_projected_s is not None) else "finished",
        arch=arch.to_str(),
        epochs_done=done,
        epochs=config.epochs,
        test_top1=final.test_top1 if final else None,
        test_top5=final.test_top5 if final else None,
        eval_train_s=train_s,
        eval_train_gpu_s=sum(h.train_gpu_s or 0.0 for h in epochs) or None,
        search_s=chosen.search_s,
        search_gpu_s=chosen.search_gpu_s,
        params=chosen.params,
        flops=chosen.flops,
        eval_projected_s=eval_projected,
        search_projected_s=chosen.search_projected_s,
    )
    emit(end.key(), end)
    return end.state
