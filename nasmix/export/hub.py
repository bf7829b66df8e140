"""One call to a model: `load_model(DIR)` and `create_model("space:arch", ...)`.

`load_model` rebuilds an export from its generated source and weights, with no
store; `create_model` builds nasmix's own network of an arch (the trainable
one, with drop-path and any auxiliary head), optionally with an export's
weights, as timm's `create_model(name, pretrained=...)` does.

`load_model` runs the folder's `model.py`: load only folders you trust, as
with any Python file (Hugging Face's `trust_remote_code` is the same idea).
`create_model` runs no code from the folder: it reads config.json and the
safetensors weights.

Example:
    >>> net = load_model("exports/best")                                   # doctest: +SKIP
    >>> net = create_model("darts:" + DARTS_V2, num_classes=10)           # doctest: +SKIP
    >>> net = create_model("darts:" + DARTS_V2, pretrained="exports/best")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from torch import nn

from nasmix import registry
from nasmix.arch import Arch, options_text, split
from nasmix.data.base import Task
from nasmix.errors import ConfigError, NasmixError
from nasmix.export.card import FORMAT
from nasmix.export.template import read_safetensors
from nasmix.spaces.base import SearchSpace


def parse_arch(text: str, options: dict | None = None) -> tuple[SearchSpace, Arch, dict]:
    """The space, arch and space options of an arch string.

    Args:
        text: `space:payload`, or `space{options}:payload` as a space with non-default
            options writes its archs (nasmix.arch).
        options: further space options (e.g. {"eval_cells": 14}); those the string names
            must agree with them.

    Returns:
        (the space built with the string's and the given options, the arch, those options as JSON
        values).

    Raises:
        ConfigError: no space in the string, an unknown space or option, a bad payload, or
            options that contradict the string's.

    Example:
        >>> space, arch, options = parse_arch('chain{"layers":3}:skip-32/dil3x3-16/conv5x5-16')
        >>> options
        {'layers': 3}
    """
    text = str(text).strip()
    name, named, _ = split(text)
    if name is None:
        raise ConfigError(f"arch {text!r} must be an arch string 'space:payload', e.g. 'darts:normal=...'")
    # The string's options as JSON values (lists, not tuples), as config.json keeps them.
    merged = {**(json.loads(options_text(named)) if named else {}), **dict(options or {})}
    space = registry.create("space", name, **merged)
    return space, Arch.from_str(text, space), merged


def read_config(directory: str | os.PathLike) -> dict:
    """An export folder's config.json.

    Raises:
        NasmixError: not a folder, or not a nasmix export.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise NasmixError(f"{folder} is not an export folder (`nasmix export` makes one)")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise NasmixError(f"{folder} is not a nasmix export: cannot read its config.json ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise NasmixError(f"{folder}/config.json is not a nasmix export's")
    return config


def load_model(directory: str | os.PathLike, device: str = "cpu") -> nn.Module:
    """The exported network, rebuilt from its generated `model.py` and its weights, in eval mode.

    Args:
        directory: a folder `nasmix export` wrote.
        device: where to put the network.

    Returns:
        The generated `Network` with its weights (an export without weights warns and
        returns the untrained network).

    Example:
        >>> net = load_model("exports/best")   # doctest: +SKIP
        >>> logits = net(images)               # doctest: +SKIP
    """
    folder = Path(directory)
    config = read_config(folder)
    source = folder / "model.py"
    if not source.is_file():
        raise NasmixError(f"{folder} has no model.py")
    weights = (config.get("weights") or {}).get("file")
    if weights and not (folder / weights).is_file():
        raise NasmixError(f"{folder} lacks its weights file {weights}")
    # A name per file, so that two exports loaded side by side stay apart.
    name = "nasmix_export_" + hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:  # a .py path always has a spec and a loader
        raise NasmixError(f"{source} cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load(device=device)


def create_model(
    name: str,
    num_classes: int | None = None,
    pretrained: str | os.PathLike | None = None,
    size: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    options: dict | None = None,
) -> nn.Module:
    """nasmix's own network of an arch, untrained or with an export's weights.

    Args:
        name: the arch string, `space:payload` (e.g. "darts:normal=...;reduce=..."), or
            `space{options}:payload` for a space with non-default options.
        num_classes: classes of the classifier (default: the export's, else 10).
        pretrained: an export folder whose weights to load (its arch must be `name`).
        size: tiny, search or eval (default: the export's, else eval).
        input_shape: (C, H, W) (default: the export's, else (3, 32, 32)).
        options: the space's options (default: the export's, else the space's defaults).

    Returns:
        The network (train mode when untrained, as constructed; eval mode with weights).
        Parts the export left out (an auxiliary head) keep their initial values.

    Raises:
        ConfigError: a bad arch string, or one that does not match the export.

    Example:
        >>> net = create_model("darts:" + DARTS_V2, num_classes=10)   # doctest: +SKIP
    """
    config = read_config(pretrained) if pretrained is not None else {}
    given = options if options is not None else config.get("space_options", {})
    space, arch, options = parse_arch(name, given)
    size = size or config.get("size", "eval")
    num_classes = num_classes if num_classes is not None else config.get("num_classes", 10)
    shape = tuple(input_shape or config.get("input_shape") or (3, 32, 32))
    if pretrained is not None:
        wanted = {
            "arch": arch.to_str(),
            "size": size,
            "num_classes": num_classes,
            "input_shape": list(shape),
            "space_options": options,
        }
        for key, value in wanted.items():
            if config.get(key) != value:
                raise ConfigError(
                    f"{key} {value!r} differs from the export's ({config.get(key)!r}) in {pretrained}"
                )
    net = space.build(arch, Task("custom", int(num_classes), shape), size)
    if pretrained is not None:
        _load_weights(net, Path(pretrained), config)
    return net


def _load_weights(net: nn.Module, folder: Path, config: dict) -> None:
    file = (config.get("weights") or {}).get("file")
    if not file or not (folder / file).is_file():
        raise NasmixError(
            f"{folder} has no weights ({(config.get('weights') or {}).get('note', 'none written')})"
        )
    state = read_safetensors(folder / file)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes that differ
        raise NasmixError(
            f"the weights in {folder / file} do not fit the network: {str(err).strip()[:300]}"
        ) from None
    extra = sorted(set(missing) - set(config.get("dropped", ())))
    if unexpected or extra:
        raise NasmixError(
            f"the weights in {folder / file} do not fit the network: "
            f"unexpected {unexpected[:5]}, missing {extra[:5]}"
        )
    net.eval()
