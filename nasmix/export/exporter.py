"""Export a found network: a finished cell of a study, or an arch given alone.

An export folder holds:

- `model.py`: generated source that needs only PyTorch (`Network`, `load()`),
- `model.safetensors`: its weights (nasmix's state-dict keys),
- `model.pt2` (torch.export) and `model.onnx`, where the ops allow,
- `README.md` (the model card) and `config.json`.

A cell's weights are the last checkpoint of its evaluation phase. A cell that
kept none (`checkpoint_every = 0`) is exported as an architecture without
weights, and the card says so. An arch given alone is exported with the
seeded initial weights nasmix would train from.

Example:
    >>> export_arch("darts:" + DARTS_V2, "out/darts-v2", num_classes=10)  # doctest: +SKIP
    >>> export_cell("runs/demo.db", "3f2a", "out/best")                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError, NasmixError
from nasmix.export.artifacts import Artifact, write_onnx, write_pt2, write_weights
from nasmix.export.card import FORMAT, ExportInfo, config_json, render_card
from nasmix.export.codegen import build, generate
from nasmix.export.hub import parse_arch
from nasmix.export.source import CellSource, read_cell, read_checkpoint
from nasmix.spaces.base import SearchSpace
from nasmix.study.run import prepare_data
from nasmix.timing import count_flops, count_params

FORMATS = ("pt2", "onnx")
FILES = ("model.py", "model.safetensors", "model.pt2", "model.onnx", "config.json", "README.md")
# Image shapes of datasets whose files are not at hand (the normalisation is then unknown).
KNOWN_SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}


def export_cell(
    db: str | os.PathLike,
    cell: str,
    out: str | os.PathLike,
    data_path: str | None = None,
    skip: Sequence[str] = (),
) -> ExportInfo:
    """Export a finished (or projected) cell: its chosen arch with its trained weights.

    Args:
        db: the study's store.
        cell: a cell id or an unambiguous prefix of one.
        out: the export folder (made if missing; it must be empty or an earlier export).
        data_path: the dataset, to record the input normalisation it was trained with
            (default $NASMIX_DATA; datasets that need no files are read anyway).
        skip: formats not to write ("pt2", "onnx").

    Returns:
        What was exported (the card's facts).

    Raises:
        NasmixError: unknown cell, a cell that has not ended well, a bad output folder.

    Example:
        >>> info = export_cell("runs/thesis-mini.db", "3f2a", "exports/best")  # doctest: +SKIP
        >>> info.weights_note                                                   # doctest: +SKIP
        'trained, epoch 3 of 3 (epoch-0003.pt)'
    """
    folder = _output_folder(out)
    _check_skip(skip)
    record = read_cell(db, cell)
    _check_state(record)
    spec = record.cell.spec
    options = dict(spec.options.space)
    space = registry.create("space", spec.space, **options)
    chosen = record.chosen
    assert chosen is not None  # _check_state refuses a cell without one
    arch = Arch.from_str((record.end and record.end.arch) or chosen.arch, space)
    task, mean, std, classes = _cell_task(record, data_path)
    size = spec.eval.size
    torch.manual_seed(spec.seed)  # the initial weights of the cell's evaluation
    net = space.build(arch, task, size)
    checkpoint = read_checkpoint(record.checkpoints)
    if checkpoint is None:
        every = spec.eval.train.checkpoint_every
        weights, note = "absent", f"the cell kept no checkpoint (checkpoint_every = {every})"
    else:
        try:
            net.load_state_dict(checkpoint.state, strict=True)
        except RuntimeError as err:
            raise NasmixError(
                f"checkpoint {checkpoint.path} does not fit the network of {arch.to_str()}: "
                f"{str(err).splitlines()[0]}"
            ) from None
        planned = record.end.epochs if record.end else None
        of = f" of {planned}" if planned else ""
        weights, note = "trained", f"trained, epoch {checkpoint.epoch}{of} ({checkpoint.path.name})"
    job = _Job(
        net,
        space,
        arch,
        options,
        size,
        task,
        mean,
        std,
        classes,
        weights,
        note,
        checkpoint.epoch if checkpoint else None,
        spec.seed,
        record,
    )
    return _export(folder, job, skip)


def export_arch(
    arch: str | Arch,
    out: str | os.PathLike,
    options: dict | None = None,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    size: str = "eval",
    seed: int = 0,
    skip: Sequence[str] = (),
) -> ExportInfo:
    """Export the untrained network of an arch, with the initial weights of `seed`.

    Args:
        arch: the arch string (`space:payload`, or `space{options}:payload`) or value.
        out: the export folder.
        options: the space's options (e.g. {"eval_cells": 14}), besides those the arch names.
        num_classes, input_shape: the task the network is built for.
        size: tiny, search or eval.
        seed: the seed of the initial weights.
        skip: formats not to write ("pt2", "onnx").

    Raises:
        ConfigError: a bad arch string, option or size.

    Example:
        >>> from nasmix.spaces.darts import DARTS_V2
        >>> info = export_arch("darts:" + DARTS_V2, "exports/darts-v2", size="tiny")  # doctest: +SKIP
    """
    folder = _output_folder(out)
    _check_skip(skip)
    text = arch.to_str() if isinstance(arch, Arch) else str(arch)
    space, value, options = parse_arch(text, options)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    shape = cast(tuple[int, int, int], tuple(int(v) for v in input_shape))  # (C, H, W), as given
    task = Task("custom", num_classes, shape)
    torch.manual_seed(seed)
    net = space.build(value, task, size)
    note = f"untrained: initial weights of seed {seed}"
    job = _Job(net, space, value, options, size, task, None, None, None, "initial", note, None, seed, None)
    return _export(folder, job, skip)


def _check_skip(skip: Sequence[str]) -> None:
    bad = [s for s in skip if s not in FORMATS]
    if bad:
        raise ConfigError(f"unknown format(s) to skip: {', '.join(bad)}; valid: {', '.join(FORMATS)}")


def _check_state(record: CellSource) -> None:
    """Only a cell that ended with a network can be exported."""
    state = record.cell.state
    if state in ("finished", "projected") and record.chosen is not None:
        return
    what = f"cell {record.cell.id} ({record.cell.label})"
    if state == "pending":
        raise NasmixError(f"{what} has not started: nothing to export yet")
    if state == "running":
        raise NasmixError(
            f"{what} has not ended (it is running, or was interrupted: `nasmix study` resumes it); "
            "export it once it has finished"
        )
    if state == "failed":
        reason = (record.end and record.end.reason) or "no reason recorded"
        raise NasmixError(f"{what} failed ({reason}): it has no trained network to export")
    raise NasmixError(f"{what} is {state} without a chosen arch: nothing to export")


def _output_folder(out: str | os.PathLike) -> Path:
    """The export folder, checked (it is made only when there is something to export): new, empty,
    or an earlier export (whose files are replaced)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise NasmixError(f"output {folder} is a file; give a folder for the export")
    if folder.is_dir() and any(folder.iterdir()) and not _is_export(folder):
        raise NasmixError(
            f"output folder {folder} holds other files; give a new or empty folder "
            "(an earlier export's folder is replaced)"
        )
    return folder


def _is_export(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _cell_task(record: CellSource, data_path: str | None):
    """The task the cell's network was built for, with the normalisation and class names where the
    data can be read; else the shape of a known dataset, normalisation unknown."""
    dataset = record.cell.dataset
    config = getattr(registry.get("dataset", dataset).obj, "Config", None)
    needs_files = config is not None and "path" in {f.name for f in dataclasses.fields(config)}
    if data_path or os.environ.get("NASMIX_DATA") or not needs_files:
        data = prepare_data(record.cell.spec, data_path)
        return data.task, data.task.mean, data.task.std, tuple(data.classes)
    num_classes = record.chosen.num_classes if record.chosen else None
    shape = KNOWN_SHAPES.get(dataset)
    if shape is None or num_classes is None:
        raise ConfigError(f"give --data: the image shape of dataset {dataset!r} is read from its files")
    return Task(dataset, int(num_classes), shape), None, None, None


def _train_only(net: nn.Module, dropped: Sequence[str]) -> tuple[str, ...]:
    """The train-time-only parts the inference network leaves out, in words."""
    groups: dict[str, int] = {}
    for key in dropped:
        prefix = key.rsplit(".", 1)[0].split(".")[0]
        groups[prefix] = groups.get(prefix, 0) + 1
    out = [
        f"`{p}` ({n} tensors): not called in eval mode (e.g. an auxiliary head)" for p, n in groups.items()
    ]
    if hasattr(net, "drop_path_prob"):
        out.append("drop-path (no weights; applied only in training)")
    return tuple(out)


@dataclass(frozen=True)
class _Job:
    """What to export: nasmix's network (with its weights loaded) and the facts about it."""

    net: nn.Module
    space: SearchSpace
    arch: Arch
    options: dict
    size: str
    task: Task
    mean: tuple | None
    std: tuple | None
    classes: tuple | None
    weights: str  # trained, initial or absent
    note: str
    epoch: int | None
    seed: int
    record: CellSource | None


def _export(folder: Path, job: _Job, skip: Sequence[str]) -> ExportInfo:
    """Generate and check the source first, then write the folder."""
    task, arch = job.task, job.arch
    example = torch.randn((2, *task.shape), generator=torch.Generator().manual_seed(0))
    constants = {
        "ARCH": arch.to_str(),
        "NUM_CLASSES": task.num_classes,
        "INPUT_SHAPE": tuple(task.shape),
        "MEAN": tuple(job.mean) if job.mean else None,
        "STD": tuple(job.std) if job.std else None,
        "CLASSES": tuple(job.classes) if job.classes else None,
        "WEIGHTS": "model.safetensors" if job.weights != "absent" else None,
    }
    generated = generate(job.net, example, constants, _docstring(job))
    module = build(generated.source)
    module.load_state_dict(generated.state, strict=True)
    module.eval()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in FILES:  # an earlier export's files: none may outlive this one
            (folder / name).unlink(missing_ok=True)
        (folder / "model.py").write_text(generated.source)
    except OSError as err:
        raise NasmixError(f"cannot write the output folder {folder}: {err.strerror or err}") from None
    note = "torch-only source; its logits equal nasmix's network's"
    artifacts = [Artifact("model.py", True, note, generated.max_abs_diff)]
    if job.weights == "absent":
        why = "no weights to hold (the cell kept no checkpoint)"
        artifacts += [Artifact(f"model.{f}", False, why) for f in ("safetensors",) + FORMATS]
    else:
        meta = {"format": "pt", "arch": arch.to_str(), "weights": job.note}
        artifacts.append(write_weights(generated.state, folder / "model.safetensors", meta))
        shutil.copymode(folder / "model.py", folder / "model.safetensors")  # safetensors writes it private
        program = None
        if "pt2" in skip:
            artifacts.append(Artifact("model.pt2", False, "skipped (--skip)"))
        else:
            written, program = write_pt2(module, example, folder / "model.pt2")
            artifacts.append(written)
        if "onnx" in skip:
            artifacts.append(Artifact("model.onnx", False, "skipped (--skip)"))
        else:
            artifacts.append(write_onnx(module, example, folder / "model.onnx", program))
    info = ExportInfo(
        arch=arch.to_str(),
        space=job.space.registry_name,
        space_options=dict(job.options),
        size=job.size,
        task=task,
        mean=tuple(job.mean) if job.mean else None,
        std=tuple(job.std) if job.std else None,
        classes=tuple(job.classes) if job.classes else None,
        weights=job.weights,
        weights_note=job.note,
        epoch=job.epoch,
        seed=job.seed,
        params=count_params(module),
        flops=count_flops(module, task.shape),
        dropped=generated.dropped,
        train_only=_train_only(job.net, generated.dropped),
        artifacts=tuple(artifacts),
        record=job.record,
        description=job.space.describe(arch),
    )
    (folder / "config.json").write_text(json.dumps(config_json(info), indent=1) + "\n")
    (folder / "README.md").write_text(render_card(info))
    return info


def _docstring(job: _Job) -> str:
    record, task, arch = job.record, job.task, job.arch
    where = "an arch string"
    if record is not None:
        where = f"cell {record.cell.id} ({record.cell.label}) of study {record.cell.study}"
    c, h, w = task.shape
    use = "net = model.load()  # eval mode, weights from WEIGHTS beside this file"
    if job.weights == "absent":
        use = "net = model.load()  # eval mode; this export has no weights"
    return (
        f"{arch.space} network exported by nasmix from {where}.\n\nWeights: {job.note}.\n"
        f"Input: float tensor (N, {c}, {h}, {w}), normalised with MEAN and STD where they are known.\n"
        f"Output: logits over {task.num_classes} classes.\n\n    {use}\n    logits = net(images)\n\n"
        f"Arch: {arch.to_str()}"
    )
