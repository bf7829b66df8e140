"""The one training loop for standalone networks (evaluation phase, estimators).

SGD with momentum (Nesterov optional), cosine learning rate, weight decay,
label smoothing, gradient clipping, the DARTS drop-path schedule and
auxiliary-head loss, bf16 autocast on CUDA, channels_last on every device,
optional torch.compile. Metrics stay on the device during an epoch and are read once
at its end. Checkpoints (nasmix.checkpoint) are written durably after every
epoch and read without running code; a resumed run ends exactly where an
uninterrupted one with the same seed would, because every epoch draws its
randomness from (seed, epoch) alone.

Example:
    >>> import torch
    >>> from nasmix import registry
    >>> from nasmix.data import load_dataset
    >>> data = load_dataset("synthetic")
    >>> net = registry.create("model", "resnet20", width=4).build(data.task)
    >>> result = train(net, data.train, data.task, TrainConfig(epochs=1, batch_size=50), test=data.test)
    >>> 0.0 <= result.final["test_top1"] <= 1.0
    True
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nasmix.accel import Accel
from nasmix.budget import Clock
from nasmix.checkpoint import checkpoint_path, load_checkpoint, prepare_folder, restore_rng, save_checkpoint
from nasmix.data.base import ImageArrays, Task
from nasmix.data.loader import Augment, DeviceLoader
from nasmix.errors import CheckpointError, ConfigError
from nasmix.spaces.ops import strided_pointwise_guarded
from nasmix.timing import Timer
from nasmix.validate import SEED_RULE, field_problems, seed_problem

Callback = Callable[[dict], None]


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe. Defaults follow the DARTS evaluation protocol
    (lr 0.025, momentum 0.9, weight decay 3e-4, clip 5, batch 96), at fewer epochs.

    Every value is checked when the recipe is made (ConfigError listing each bad
    one): types, NaN or infinite floats, integers beyond int64, ranges, and the
    seed rule of nasmix.validate (integers in [0, 2**63)).

    Attributes:
        epochs: passes over the training images.
        batch_size: training batch size.
        lr, lr_min: cosine schedule from lr to lr_min, stepped every batch.
        momentum, nesterov, weight_decay: SGD settings.
        label_smoothing: cross-entropy label smoothing.
        grad_clip: maximum gradient norm (0: no clipping).
        drop_path: final drop-path probability, raised linearly from 0 over the epochs.
        aux_weight: weight of the auxiliary head's loss (0: no auxiliary head).
        crop_padding, flip, cutout: augmentation (see nasmix.data.Augment).
        amp: bf16 autocast on CUDA (ignored on CPU).
        channels_last: channels_last memory format (on a CPU too, see `train`).
        compile: torch.compile the network.
        eval_batch_size: batch size for validation and test.
        eval_every: evaluate validation and test every K epochs (and after the last).
        checkpoint_every: keep a checkpoint every K epochs (0: no checkpoints). With K >= 1 the
            latest epoch is checkpointed too, after every epoch, so a crash costs at most the
            epoch in flight (nasmix.checkpoint keeps only the newest two of those).
        seed: the seed of all randomness in the run.
    """

    epochs: int = 10
    batch_size: int = 96
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    label_smoothing: float = 0.0
    grad_clip: float = 5.0
    drop_path: float = 0.0
    aux_weight: float = 0.0
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    eval_batch_size: int = 1000
    eval_every: int = 1
    checkpoint_every: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        # Types, NaN/inf and int64 first: a NaN passes no range test but would break the run only
        # after a whole search had been paid for.
        problems = [p for p in field_problems(self) if not p.startswith("seed=")]  # seeds: their rule below
        if not problems:
            rules = {
                "epochs": (self.epochs >= 1, ">= 1"),
                "batch_size": (self.batch_size >= 1, ">= 1"),
                "eval_batch_size": (self.eval_batch_size >= 1, ">= 1"),
                "eval_every": (self.eval_every >= 1, ">= 1"),
                "lr": (self.lr > 0, "> 0"),
                "lr_min": (0 <= self.lr_min <= self.lr, "in [0, lr]"),
                "momentum": (0 <= self.momentum < 1, "in [0, 1)"),
                "weight_decay": (self.weight_decay >= 0, ">= 0"),
                "label_smoothing": (0 <= self.label_smoothing < 1, "in [0, 1)"),
                "grad_clip": (self.grad_clip >= 0, ">= 0"),
                "drop_path": (0 <= self.drop_path < 1, "in [0, 1)"),
                "aux_weight": (self.aux_weight >= 0, ">= 0"),
                "crop_padding": (self.crop_padding >= 0, ">= 0"),
                "cutout": (self.cutout >= 0, ">= 0"),
                "checkpoint_every": (self.checkpoint_every >= 0, ">= 0"),
            }
            problems = [f"{k}={getattr(self, k)!r} (must be {r})" for k, (ok, r) in rules.items() if not ok]
        if seed_problem(self.seed):
            problems.append(f"seed={self.seed!r} ({SEED_RULE})")
        if problems:
            raise ConfigError(f"impossible training values: {', '.join(problems)}")

    @property
    def augment(self) -> Augment:
        return Augment(self.crop_padding, self.flip, self.cutout)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        history: one dict per epoch (the 'epoch' events).
        final: the last epoch's dict.
        resumed_from: the epoch a resumed run started after (0: fresh).
        stopped: why a clock stopped it before its last epoch (None: it was not stopped).
    """

    history: list[dict]
    resumed_from: int = 0
    stopped: str | None = None

    @property
    def final(self) -> dict:
        return self.history[-1]


def accuracy_counts(logits: torch.Tensor, y: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Correct top-1 and top-k counts of a batch, as a device tensor [top1, topk]."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    hit = top == y[:, None]
    return torch.stack([hit[:, 0].sum(), hit.any(dim=1).sum()])


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, amp: bool = True) -> dict:
    """Loss, top-1 and top-5 of a model over a loader (one host read at the end)."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=loader.device, dtype=torch.float64)
    with autocast(loader.device, amp):
        for x, y in loader.batches():
            logits = model(x)
            loss = nn.functional.cross_entropy(logits.float(), y, reduction="sum")
            totals += torch.cat([loss.view(1).double(), accuracy_counts(logits, y).double()])
    model.train(was_training)
    loss, top1, top5 = (totals / max(loader.n, 1)).tolist()
    return {"loss": loss, "top1": top1, "top5": top5}


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when `amp`; a no-op context elsewhere (CPU runs in fp32).

    The choice is `nasmix.accel.Accel.auto`'s, the one the one-shot search loop makes, so
    both loops decide precision in one place."""
    return Accel.auto(device, amp).autocast(device)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness, a function of (seed, epoch) only."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


def cosine_lr(step: int, total: int, lr: float, lr_min: float) -> float:
    """Cosine annealing from lr to lr_min over `total` steps."""
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def train(
    model: nn.Module,
    train_images: ImageArrays,
    task: Task,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    test: ImageArrays | None = None,
    valid: ImageArrays | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
    timer: Timer | None = None,
    clock: Clock | None = None,
) -> TrainResult:
    """Train a network from scratch (or from its last checkpoint).

    Args:
        model: the network; its forward returns logits, or (logits, aux_logits)
            in training mode when it has an auxiliary head. A `drop_path_prob`
            attribute, if present, receives the drop-path schedule.
        train_images, task: the training split and its task.
        config: the recipe.
        device: where to train.
        test, valid: splits evaluated (top-1/top-5) after every epoch.
        checkpoint_dir: where checkpoints go; an existing one resumes the run.
        callback: receives {'event': 'step'} after each batch (no device sync)
            and {'event': 'epoch', ...metrics} after each epoch.
        timer: the clock (one is made for the device if None).
        clock: a budget's clock (nasmix.budget): ticked with each epoch's seconds
            (see `tick`; restored epochs included) before the epoch's callback,
            which may correct the account, and polled after it: training stops
            between epochs when it says so (`TrainResult.stopped`).

    Returns:
        TrainResult with one dict per epoch.

    Raises:
        DivergedError: the loss became NaN or infinite.
        CheckpointError: a checkpoint could not be written (a full disk) or names
            code; the run resumes from its last good checkpoint once fixed.
        ConfigError: the newest checkpoint was made with another recipe.
    """
    device = torch.device(device)
    timer = timer or Timer(device)
    accel = Accel.auto(device, config.amp)  # the step's precision, chosen once per run
    cuda = device.type == "cuda"
    channels_last = config.channels_last
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    loader = DeviceLoader(
        train_images,
        task,
        config.batch_size,
        device,
        config.augment,
        shuffle=True,
        drop_last=True,
        channels_last=channels_last,
    )
    evals = {
        name: DeviceLoader(split, task, config.eval_batch_size, device, channels_last=channels_last)
        for name, split in (("val", valid), ("test", test))
        if split is not None
    }
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    history: list[dict] = []
    start = 0
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        if config.checkpoint_every:
            prepare_folder(ckpt)  # a folder that cannot hold checkpoints fails now, not after an epoch
        state = load_checkpoint(ckpt, config)
        if state is not None:
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
            except (RuntimeError, ValueError, KeyError) as err:
                raise CheckpointError(
                    f"the checkpoint of epoch {state['epoch']} in {ckpt} does not fit this network "
                    f"({str(err)[:300]}); use another checkpoint folder"
                ) from None
            restore_rng(state.get("rng"))
            history, start = state["history"], state["epoch"]
    if clock is not None:  # epochs restored from a checkpoint count too
        for past in history:
            tick(clock, past)
    step_fn = torch.compile(model) if config.compile else model
    steps = len(loader) * config.epochs
    # On a CPU the network trains in channels_last too (1.1x to 1.9x faster steps, bench/README.md),
    # its narrow strided 1x1 convolutions guarded from oneDNN's wrong kernel while it trains.
    guarded = strided_pointwise_guarded(model) if channels_last and not cuda else contextlib.nullcontext()
    with guarded:
        for epoch in range(start + 1, config.epochs + 1):
            torch.manual_seed(epoch_seed(config.seed, epoch) + 1)  # drop-path and dropout draws
            if hasattr(model, "drop_path_prob"):
                # a plain float attribute; nn.Module's __setattr__ is typed for tensors and modules only
                model.drop_path_prob = config.drop_path * (epoch - 1) / config.epochs  # type: ignore[assignment]
            model.train()
            totals = torch.zeros(3, device=device, dtype=torch.float64)
            with timer.measure() as m_train:
                for i, (x, y) in enumerate(loader.batches(epoch_seed(config.seed, epoch))):
                    lr = cosine_lr((epoch - 1) * len(loader) + i, steps, config.lr, config.lr_min)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    with accel.autocast(device):
                        out = step_fn(x)
                        logits, aux = out if isinstance(out, tuple) else (out, None)
                        loss = criterion(logits.float(), y)
                        if aux is not None and config.aux_weight > 0:
                            loss = loss + config.aux_weight * criterion(aux.float(), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if config.grad_clip > 0:
                        nn.utils.clip_grad_norm_(params, config.grad_clip)
                    optimizer.step()
                    totals[0] += loss.detach().double() * len(y)
                    totals[1] += accuracy_counts(logits.detach(), y)[0]
                    totals[2] += len(y)
                    if callback:
                        callback({"event": "step", "epoch": epoch, "step": i + 1, "steps": len(loader)})
            loss_sum, correct, seen = totals.tolist()
            if not math.isfinite(loss_sum):
                raise DivergedError(f"training loss is {loss_sum} in epoch {epoch}")
            record = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / seen, "train_top1": correct / seen}
            due = epoch % config.eval_every == 0 or epoch == config.epochs
            with timer.measure() as m_eval:
                for name, ev in evals.items() if due else ():
                    for key, value in evaluate(model, ev, config.amp).items():
                        record[f"{name}_{key}"] = value
            record.update(
                train_s=m_train.wall_s,
                train_gpu_s=m_train.gpu_s,
                eval_s=m_eval.wall_s,
                peak_gpu_bytes=m_train.peak_gpu_bytes,
                peak_host_bytes=m_train.peak_host_bytes,
                energy_j=m_train.energy_j,
                device=m_train.device,
            )
            history.append(record)
            if ckpt is not None and config.checkpoint_every:
                # Every epoch is checkpointed, so a crash costs at most the epoch in flight; the record names
                # only the checkpoints that are kept (every K-th and the last), see nasmix.checkpoint.
                if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                    record["checkpoint"] = str(checkpoint_path(ckpt, epoch))
                save_checkpoint(ckpt, model, optimizer, history, epoch, config)
            if clock is not None:
                tick(clock, record)
            if callback:
                callback({"event": "epoch", **record})
            reason = clock.stop_reason() if clock is not None else None
            if reason is not None:
                return TrainResult(history, resumed_from=start, stopped=reason)
    return TrainResult(history, resumed_from=start)


def tick(clock: Clock, record: dict) -> None:
    """Charge one epoch record to a clock: its training and evaluation wall seconds, and
    its training GPU seconds (its training wall seconds on a device without CUDA events)."""
    gpu = record.get("train_gpu_s")
    clock.tick(wall_s=record["train_s"] + record["eval_s"], gpu_s=record["train_s"] if gpu is None else gpu)
