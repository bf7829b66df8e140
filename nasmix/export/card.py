"""The model card (README.md) and the machine-readable config.json of an export.

Pure functions of an `ExportInfo`: what was exported, from where, with which
weights, and how each file was checked.

Example:
    >>> text = render_card(info)            # doctest: +SKIP
    >>> text.splitlines()[0]                # doctest: +SKIP
    '# darts network: darts on cifar10, seed 0'
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import nasmix
from nasmix.arch import options_text, split
from nasmix.data.base import Task
from nasmix.export.artifacts import Artifact
from nasmix.export.source import CellSource
from nasmix.study.schema import ONESHOT_ESTIMATOR

FORMAT = "nasmix-export"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportInfo:
    """Everything the card and config.json say.

    Attributes:
        arch: the canonical arch string.
        space, space_options, size: how nasmix builds the network.
        task: classes and image shape.
        mean, std: the input normalisation the network was trained with (None: unknown).
        classes: class names (None: unknown).
        weights: "trained", "initial" (an untrained network, seeded) or "absent".
        weights_note: where the weights come from, or why there are none.
        epoch: the epoch of the trained weights (None otherwise).
        seed: the seed of the network's initial weights.
        params, flops: of the inference network (FLOPs per image, multiply-add = 2).
        dropped: state-dict keys of nasmix's network that the export leaves out.
        train_only: the train-time-only parts left out, in words.
        artifacts: every file, written or not.
        record: the store's cell (None for an arch exported on its own).
        description: the space's text rendering of the arch.
    """

    arch: str
    space: str
    space_options: dict
    size: str
    task: Task
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    classes: tuple[str, ...] | None
    weights: str
    weights_note: str
    epoch: int | None
    seed: int
    params: int
    flops: int
    dropped: tuple[str, ...]
    train_only: tuple[str, ...]
    artifacts: tuple[Artifact, ...]
    record: CellSource | None
    description: str


def accuracy(info: ExportInfo) -> tuple[float | None, float | None, int | None]:
    """Test top-1, top-5 and the epoch they belong to: the weights' epoch where it was evaluated,
    else the cell's final figures."""
    rec = info.record
    if rec is None:
        return None, None, None
    tested = {h.epoch: h for h in rec.epochs if h.test_top1 is not None}
    if info.epoch in tested:
        h = tested[info.epoch]
        return h.test_top1, h.test_top5, info.epoch
    if rec.end is None:
        return None, None, None
    return rec.end.test_top1, rec.end.test_top5, rec.end.epochs_done


def config_json(info: ExportInfo) -> dict:
    """The export's config.json: what `nasmix.load_model` and `create_model` read."""
    top1, top5, at = accuracy(info)
    rec = info.record
    cell = None
    if rec is not None:
        c, end, chosen = rec.cell, rec.end, rec.chosen
        cell = {
            "id": c.id,
            "label": c.label,
            "study": c.study,
            "store": str(rec.store),
            "state": c.state,
            "strategy": c.strategy,
            "estimator": c.estimator,
            "dataset": c.dataset,
            "seed": c.seed,
            "test_top1": top1,
            "test_top5": top5,
            "accuracy_epoch": at,
            "epochs_done": end.epochs_done if end else None,
            "epochs": end.epochs if end else None,
            "search_s": chosen.search_s if chosen else None,
            "search_gpu_s": chosen.search_gpu_s if chosen else None,
            "search_device": chosen.device if chosen else None,
            "train_s": end.eval_train_s if end else None,
            "train_gpu_s": end.eval_train_gpu_s if end else None,
            "train_device": _train_device(rec),
        }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nasmix": nasmix.__version__,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "arch": info.arch,
        "space": info.space,
        "space_options": info.space_options,
        "size": info.size,
        "num_classes": info.task.num_classes,
        "input_shape": list(info.task.shape),
        "mean": list(info.mean) if info.mean else None,
        "std": list(info.std) if info.std else None,
        "classes": list(info.classes) if info.classes else None,
        "weights": {
            "kind": info.weights,
            "file": "model.safetensors" if info.weights != "absent" else None,
            "note": info.weights_note,
            "epoch": info.epoch,
            "seed": info.seed,
        },
        "params": info.params,
        "flops": info.flops,
        "dropped": list(info.dropped),
        "train_only": list(info.train_only),
        "files": {
            a.name: {"ok": a.ok, "note": a.note, "max_abs_diff": a.max_abs_diff} for a in info.artifacts
        },
        "cell": cell,
    }


def _train_device(rec: CellSource) -> str | None:
    devices = sorted({h.device for h in rec.epochs if h.device})
    return ", ".join(devices) if devices else None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _hours(gpu_s: float | None, wall_s: float | None, device: str | None) -> str:
    """'0.0123 GPU-hours (44.3 s) on cuda:0; 0.015 h wall', or the wall time without a GPU clock."""
    where = device or "unknown device"
    if gpu_s:
        wall = f"; {wall_s / 3600:.3g} h wall" if wall_s is not None else ""
        return f"{gpu_s / 3600:.3g} GPU-hours ({gpu_s:,.1f} s) on {where}{wall}"
    if wall_s is None:
        return "-"
    return f"no GPU clock (ran on {where}); {wall_s / 3600:.3g} h ({wall_s:,.1f} s) wall"


def _epoch_note(at: int | None, weights_epoch: int | None) -> str:
    """Which epoch the accuracy belongs to, and a warning when it is not the weights' epoch."""
    if at is None:
        return ""
    if weights_epoch is None or at == weights_epoch:
        return f" (epoch {at})"
    return f" (epoch {at}; the exported weights are of epoch {weights_epoch}, which was not evaluated)"


def _title(info: ExportInfo) -> str:
    if info.record is None:
        return f"# {info.space} network ({info.weights_note})"
    c = info.record.cell
    est = "" if c.estimator == ONESHOT_ESTIMATOR else f" with {c.estimator}"
    return f"# {info.space} network: {c.strategy}{est} on {c.dataset}, seed {c.seed}"


def render_card(info: ExportInfo) -> str:
    """The model card, in Markdown."""
    version = nasmix.__version__
    rec = info.record
    lines = [_title(info), ""]
    if rec is not None:
        lines += [
            f"Exported by nasmix {version} from cell `{rec.cell.id}` ({rec.cell.label}) of study "
            f"`{rec.cell.study}` (store `{rec.store.name}`).",
            "",
        ]
    else:
        lines += [
            f"Exported by nasmix {version} from an arch string, without a study: the network is untrained.",
            "",
        ]
    if info.weights == "absent":
        lines += [f"**No weights: {info.weights_note}.** The files hold the architecture only.", ""]
    options = ", ".join(f"{k}={v}" for k, v in sorted(info.space_options.items())) or "defaults"
    channels, h, w = info.task.shape
    rows = [("space", f"{info.space} ({options}), {info.size} size")]
    if rec is not None:
        c, chosen, end = rec.cell, rec.chosen, rec.end
        top1, top5, at = accuracy(info)
        data = c.spec.data
        subsets = ", ".join(
            f"{k} {getattr(data, k)}" for k in ("train_subset", "test_subset") if getattr(data, k)
        )
        search = _hours(chosen.search_gpu_s, chosen.search_s, chosen.device) if chosen else "-"
        training = _hours(end.eval_train_gpu_s, end.eval_train_s, _train_device(rec)) if end else "-"
        rows += [
            ("strategy", c.strategy),
            ("estimator", c.estimator + (" (one-shot)" if c.estimator == ONESHOT_ESTIMATOR else "")),
            ("dataset", f"{c.dataset}" + (f" ({subsets})" if subsets else "")),
            ("seed", str(c.seed)),
            (
                "cell state",
                c.state + (" (a cap stopped it; the rest was projected)" if c.state == "projected" else ""),
            ),
            ("test top-1 / top-5", f"{_percent(top1)} / {_percent(top5)}" + _epoch_note(at, info.epoch)),
            ("search", search),
            ("training", training),
        ]
    rows += [
        ("weights", info.weights_note),
        ("classes", str(info.task.num_classes)),
        ("input", f"float tensor (N, {channels}, {h}, {w})"),
        ("parameters", f"{info.params:,} (inference network)"),
        ("FLOPs", f"{info.flops / 1e6:,.2f} M per image (multiply-add = 2)"),
    ]
    lines += ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    lines += ["## Architecture", "", "```text", info.arch, "```", "", "```text", info.description, "```", ""]
    lines += _use(info) + _files(info)
    if info.train_only:
        lines += ["## Left out (training only)", ""] + [f"- {t}" for t in info.train_only] + [""]
    return "\n".join(lines)


def _use(info: ExportInfo) -> list[str]:
    c = info.task.shape[0]
    if info.mean and info.std:
        mean = ", ".join(f"{m:.4f}" for m in info.mean)
        std = ", ".join(f"{s:.4f}" for s in info.std)
        norm = (
            f"Inputs are images scaled to [0, 1], then normalised per channel as `(x - MEAN) / STD` with "
            f"MEAN = ({mean}) and STD = ({std}) (the training images' statistics; `model.MEAN`, `model.STD`)."
        )
    elif info.record is not None:
        norm = (
            "Inputs are images scaled to [0, 1], then normalised per channel with the mean and standard "
            "deviation of the training images; they were not recorded here (export with `--data` to "
            "record them)."
        )
    else:
        norm = f"Inputs are float tensors with {c} channels; normalise them as you will train."
    return [
        "## Use",
        "",
        norm,
        "",
        "Without nasmix (only PyTorch):",
        "",
        "```python",
        "import importlib.util",
        "",
        'spec = importlib.util.spec_from_file_location("model", "DIR/model.py")',
        "model = importlib.util.module_from_spec(spec)",
        "spec.loader.exec_module(model)",
        "net = model.load()                 # eval mode, weights from model.safetensors",
        "logits = net(images)",
        "```",
        "",
        "With nasmix:",
        "",
        "```python",
        "import nasmix",
        "",
        'net = nasmix.load_model("DIR")                                   # the same module',
        f"net = nasmix.create_model({_prefix(info.arch) + ':...'!r}, num_classes={info.task.num_classes}, "
        'pretrained="DIR")  # nasmix\'s own network, to train further',
        "```",
        "",
    ]


def _prefix(arch: str) -> str:
    """The space (and its options) of an arch string: the part before the payload."""
    name, options, _ = split(arch)
    return f"{name}{options_text(options or ())}"


def _files(info: ExportInfo) -> list[str]:
    lines = ["## Files", "", "| file | status | logits vs model.py |", "| --- | --- | --- |"]
    for a in info.artifacts:
        status = ("written: " if a.ok else "**not written**: ") + a.note
        diff = "-" if a.max_abs_diff is None else f"max \\|diff\\| {a.max_abs_diff:.2g}"
        lines.append(f"| `{a.name}` | {status.replace('|', '/')} | {diff} |")
    return lines + ["", "`config.json` holds the same facts for programs.", ""]
