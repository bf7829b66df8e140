"""Training checkpoints: written durably, read without running code, never the cause of lost work.

- What is stored is only tensors and plain Python values: the model's and
  optimizer's state dicts, the per-epoch history, the epoch, the recipe, and
  the torch RNG states as uint8 tensors. So checkpoints load with
  `torch.load(weights_only=True)`; checkpoints written before this module
  (the same dict without "rng") load the same way.
- A checkpoint is written after every epoch (when checkpointing is on) with
  `nasmix.atomicfile.write_atomic`: temporary file, fsync, atomic rename,
  fsync of the folder. The checkpoints of every K-th epoch and of the last
  epoch are kept; of the others only the newest two are (the previous one
  stays until the new one is on disk), so a crash at any moment costs at
  most the epoch in flight, and disk use stays near epochs / K files.
- Reading takes the newest good checkpoint: one that is garbage, truncated
  or not a checkpoint's dict is skipped (with a warning) for the one before.
  One that names code (a crafted pickle) is refused with CheckpointError
  and never run; one made with another recipe is a ConfigError.
- A write that fails (a full disk) raises CheckpointError, a NasmixError:
  the command or study stops with exit code 2 and resumes from the previous
  checkpoint when run again.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from nasmix.train import TrainConfig
    >>> net = torch.nn.Linear(2, 2)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> folder, cfg = Path(tempfile.mkdtemp()), TrainConfig(epochs=3, checkpoint_every=1)
    >>> save_checkpoint(folder, net, opt, [{"epoch": 1}], 1, cfg).name
    'epoch-0001.pt'
    >>> load_checkpoint(folder, cfg)["epoch"]
    1
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasmix.atomicfile import write_atomic
from nasmix.errors import CheckpointError, ConfigError
from nasmix.safeload import UnsafeContent, torch_load

_NAME = re.compile(r"epoch-(\d+)\.pt")
# Parts of a recipe that may change between attempts without changing what is trained.
VOLATILE = ("checkpoint_every", "compile", "eval_batch_size", "eval_every")


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped for an older one (its reason is the message)."""


def config_key(config: Any) -> dict:
    """The parts of a TrainConfig that must match for a checkpoint to be resumed."""
    fields = dataclasses.asdict(config)
    for volatile in VOLATILE:
        fields.pop(volatile, None)
    return fields


def checkpoint_path(folder: Path, epoch: int) -> Path:
    """The file of one epoch's checkpoint."""
    return Path(folder) / f"epoch-{epoch:04d}.pt"


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the checkpoint files in a folder, newest first (by epoch number, not by name)."""
    found = []
    for path in Path(folder).glob("epoch-*.pt"):
        m = _NAME.fullmatch(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found, reverse=True)


def rng_state() -> dict:
    """The torch RNG states, as uint8 tensors (CUDA's only where CUDA is in use)."""
    state: dict[str, torch.Tensor | list[torch.Tensor]] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict | None) -> None:
    """Set the torch RNG states saved by `rng_state` (absent or unusable ones are left alone).

    Nothing depends on them for correctness (every epoch reseeds from (seed, epoch)); they make
    the global generators after a resumed run match an uninterrupted one.
    """
    if not isinstance(state, dict):
        return
    try:
        if isinstance(state.get("torch"), torch.Tensor):
            torch.set_rng_state(state["torch"])
        cuda = state.get("cuda")
        if isinstance(cuda, list) and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    except (RuntimeError, TypeError, ValueError):  # a state of another torch build: keep the current one
        pass


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    history: list[dict],
    epoch: int,
    config: Any,
) -> Path:
    """Write `epoch-NNNN.pt` durably and atomically, then drop checkpoints no longer needed.

    Args:
        folder: the checkpoint folder (created if missing).
        model, optimizer: what to save.
        history: the per-epoch records so far (plain values).
        epoch: the epoch just finished.
        config: the TrainConfig (its key is stored; checkpoint_every and
            epochs decide which files are kept).

    Returns:
        The checkpoint's path.

    Raises:
        CheckpointError: it could not be written (a full disk...); the
            earlier checkpoints are untouched.
    """
    folder = Path(folder)
    path = checkpoint_path(folder, epoch)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": history,
        "epoch": epoch,
        "config": config_key(config),
        "rng": rng_state(),
    }
    try:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, buffer.getbuffer())
    except OSError as err:
        raise CheckpointError(_write_failure(path, err)) from err
    _prune(folder, epoch, config)
    return path


def _write_failure(path: Path, err: OSError) -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"disk full while writing checkpoint {path} ({err.strerror or err}); free space and run the "
            "same command again: it resumes from the last checkpoint"
        )
    return (
        f"cannot write checkpoint {path} ({err}); fix the folder (permissions, a read-only or failing "
        "disk) and run the same command again: it resumes from the last checkpoint"
    )


def _prune(folder: Path, epoch: int, config: Any) -> None:
    """Remove checkpoints that are neither kept (every K-th, the last epoch) nor the newest two."""
    every = max(int(getattr(config, "checkpoint_every", 1) or 1), 1)
    last = getattr(config, "epochs", None)
    older = [(e, p) for e, p in checkpoints(folder) if e < epoch]
    previous = older[0][0] if older else None  # stays as a fallback should the new file ever read badly
    for e, p in older:
        if e % every and e != last and e != previous:
            with contextlib.suppress(OSError):  # gone already, or not ours to remove: harmless
                p.unlink()


def prepare_folder(folder: Path) -> None:
    """Create the checkpoint folder, or raise CheckpointError if it cannot hold checkpoints.

    Called before training starts, so that a file in the way or a read-only
    folder costs a message rather than an epoch.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(
            f"checkpoint folder {folder} is a file; give a folder (it is created if missing)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(f"cannot create checkpoint folder {folder}: {err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"checkpoint folder {folder} is not writable")


def load_checkpoint(folder: Path, config: Any) -> dict | None:
    """The newest good checkpoint in a folder, or None.

    Args:
        folder: the checkpoint folder (it may not exist).
        config: the TrainConfig the run uses.

    Returns:
        The checkpoint's dict (model, optimizer, history, epoch, config, and
        rng where it was saved), or None when there is none to resume from.

    Raises:
        CheckpointError: the newest readable checkpoint names code (it was not run).
        ConfigError: it was made with a different training recipe.
    """
    for epoch, path in checkpoints(folder):
        try:
            state = torch_load(path)
        except UnsafeContent as err:
            raise CheckpointError(
                f"checkpoint {path} is not plain data (it names {', '.join(err.names)}); nasmix reads "
                "checkpoints with weights_only=True and runs no code from them. Remove the file to resume "
                "from the checkpoint before it, or use another checkpoint folder"
            ) from None
        except Exception as err:  # torn, truncated or foreign: an older checkpoint still holds the run
            _skip(path, f"it cannot be read ({type(err).__name__}: {str(err)[:120]})")
            continue
        recipe = state.get("config") if isinstance(state, dict) else None
        if isinstance(recipe, dict) and recipe != config_key(config):  # the user's mistake, not damage
            raise ConfigError(
                f"checkpoint {path} was made with a different training config; "
                "use another checkpoint folder or the same config"
            )
        problem = malformed(state, epoch)
        if problem:
            _skip(path, problem)
            continue
        return state
    return None


def _skip(path: Path, reason: str) -> None:
    message = f"skipping checkpoint {path}: {reason}; resuming from an earlier one"
    warnings.warn(message, CheckpointWarning, stacklevel=3)


def malformed(state: Any, epoch: int) -> str | None:
    """Why a loaded object is not the checkpoint of `epoch` (None when it is)."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a checkpoint's dict"
    missing = [k for k in ("model", "optimizer", "history", "epoch", "config") if k not in state]
    if missing:
        return f"it lacks {', '.join(missing)}"
    model, optimizer, history = state["model"], state["optimizer"], state["history"]
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        return "its model state is not a dict of tensors"
    if not isinstance(optimizer, dict) or not {"state", "param_groups"} <= optimizer.keys():
        return "its optimizer state is malformed"
    if state["epoch"] != epoch:
        return f"it claims epoch {state['epoch']!r} in the file of epoch {epoch}"
    if not isinstance(state["config"], dict):
        return "its recipe is not a dict"
    if not isinstance(history, list) or not history or not all(isinstance(h, dict) for h in history):
        return "its history is not a list of epoch records"
    if history[-1].get("epoch") != epoch:
        return "its history does not end at its epoch"
    rng = state.get("rng", {})
    if not isinstance(rng, dict) or not all(isinstance(v, (torch.Tensor, list)) for v in rng.values()):
        return "its RNG state is malformed"
    return None
