"""Value rules shared by every entry point (TrainConfig, study files, CLI flags).

One rule per kind of value, so that `nasmix train --seed`, `nasmix search
--seed` and a study's `seeds` accept and refuse exactly the same numbers:

- seeds are integers in [0, 2**63) (numpy's generators refuse negative
  seeds, and 2**63 is where torch's and the store's int64 end);
- integers fit in int64 (SQLite's and torch's integers);
- floats are finite (NaN and infinity pass every `>=` test but break training
  only after the search has run).

Example:
    >>> check_seed(7)
    7
    >>> value_problems({"lr": float("nan"), "epochs": 2**70}, {"lr": "float", "epochs": "int"})
    ['lr=nan (must be a finite number)', 'epochs=1180591620717411303424 (must fit in int64)']
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from nasmix import registry
from nasmix.atomicfile import write_atomic
from nasmix.data.base import Task, check_path_use
from nasmix.errors import ConfigError, NasmixError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SEED_LIMIT = 2**63  # seeds are in [0, SEED_LIMIT)
SEED_RULE = "seeds are integers in [0, 2**63)"


def is_integer(value: Any) -> bool:
    """An integer that is not a bool (True is an int to Python, never a count or a seed)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def seed_problem(value: Any) -> str | None:
    """Why `value` is not a seed (None when it is one)."""
    if not is_integer(value):
        return f"{value!r} is not an integer ({SEED_RULE})"
    if not 0 <= value < SEED_LIMIT:
        return f"{value} is out of range ({SEED_RULE})"
    return None


def check_seed(value: Any, where: str = "seed") -> int:
    """Return the seed as an int, or raise ConfigError naming `where`.

    Args:
        value: the candidate seed.
        where: what to call it in the message (a flag or a study key).

    Returns:
        int(value).
    """
    problem = seed_problem(value)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return int(value)


def value_problem(value: Any, kind: str) -> str | None:
    """Why a value does not fit a simple annotation ("int", "float", "bool", "int | None"...).

    Annotations other than int, float and bool are not checked (None is returned).
    """
    kind = kind.replace(" ", "")
    if value is None and ("|None" in kind or "None|" in kind):
        return None
    kind = kind.replace("|None", "").replace("None|", "")
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        if not is_integer(value):
            return "must be an integer"
        return None if INT64_MIN <= value <= INT64_MAX else "must fit in int64"
    if kind == "float":
        if not is_real(value):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    return None


def value_problems(values: Mapping[str, Any], kinds: Mapping[str, str]) -> list[str]:
    """'key=value (reason)' for every value that breaks its kind's rule."""
    out = []
    for key, kind in kinds.items():
        if key in values:
            problem = value_problem(values[key], kind)
            if problem:
                out.append(f"{key}={values[key]!r} ({problem})")
    return out


def field_problems(obj: Any) -> list[str]:
    """value_problems over the fields of a dataclass instance (types, finiteness, int64 range)."""
    fields = dataclasses.fields(obj)
    kinds = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "") for f in fields}
    return value_problems({f.name: getattr(obj, f.name) for f in fields}, kinds)


# ---- values nested anywhere (study files, --opt values) ----------------------------------------


def number_problems(value: Any, where: str) -> list[str]:
    """'where.key=value (reason)' for every integer beyond int64 and every NaN or infinite float
    nested anywhere in `value` (tables, lists). Walked without recursion: a study file may nest
    deeper than Python's stack.

    Example:
        >>> number_problems({"a": [1, float("inf")], "b": {"c": 2**64}}, "")
        ['a[1]=inf (must be a finite number)', 'b.c=18446744073709551616 (must fit in int64)']
    """
    out, stack = [], [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif is_integer(item) and not INT64_MIN <= item <= INT64_MAX:
            out.append(f"{path}={item} (must fit in int64)")
        elif isinstance(item, float) and not math.isfinite(item):
            out.append(f"{path}={item} (must be a finite number)")
    return out


def check_numbers(value: Any, where: str, prefix: str = "") -> None:
    """Raise ConfigError listing number_problems, each after `prefix` (e.g. "--opt ")."""
    problems = number_problems(value, where)
    if problems:
        raise ConfigError("impossible values: " + "; ".join(prefix + p for p in problems))


def depth(value: Any) -> int:
    """How deep tables and lists nest in `value` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, Mapping):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
    return deepest


def check_count(value: Any, flag: str, minimum: int = 1) -> Any:
    """An integer flag that must be >= minimum (None passes: not given).

    Raises:
        ConfigError: anything else, naming the flag.
    """
    if value is None:
        return None
    if not is_integer(value) or not minimum <= value <= INT64_MAX:
        raise ConfigError(f"{flag} must be an integer >= {minimum}, got {value!r}")
    return value


def check_real(value: Any, flag: str, low: float = 0.0, strict: bool = True) -> Any:
    """A finite number flag above `low` (strictly when `strict`; None passes: not given)."""
    if value is None:
        return None
    if not is_real(value) or not math.isfinite(value) or value < low or (strict and value == low):
        rule = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigError(f"{flag} must be a finite number {rule}, got {value!r}")
    return value


# ---- output paths, checked before any work -----------------------------------------------------


def _writable_dir(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


def _nearest_existing(path: str) -> str:
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def check_output_file(path: Any, flag: str) -> Any:
    """A file the command writes at its end (--json): not a folder, in an existing writable folder.

    Checked before the work starts, so that a typo cannot cost a finished training.

    Raises:
        ConfigError: naming the flag and the problem.
    """
    if path is None:
        return None
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ConfigError(f"{flag} must be a file path, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise ConfigError(f"{flag} {path!r} is a folder: give a file name")
    if not os.path.isdir(folder):
        raise ConfigError(f"{flag} {path!r}: its folder {folder!r} does not exist")
    if not _writable_dir(folder) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path!r} cannot be written (no write permission)")
    return path


def check_output_dir(path: Any, flag: str) -> Any:
    """A folder the command creates or fills (report -o, export -o, --checkpoint-dir): not a
    file, and either a writable folder or creatable inside the nearest existing, writable one.

    Raises:
        ConfigError: naming the flag and the problem.
    """
    if path is None:
        return None
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ConfigError(f"{flag} must be a folder path, got {path!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path!r} is a file, not a folder")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise ConfigError(f"{flag} {path!r} cannot be created: {existing!r} is a file")
    if not _writable_dir(existing):
        raise ConfigError(f"{flag} {path!r} cannot be written: {existing!r} is not writable")
    return path


# ---- network size, estimated before anything is built ----------------------------------------

MAX_NETWORK_BYTES = 200 * 10**9  # beyond any card's memory (an H200 holds 141 GB)
# A network with more modules is refused before it is built through. The largest default network
# (hierarchical at eval size) has about 1,500 modules and DARTS's 20-cell eval net about 1,200, so 50,000
# leaves room for 30x deeper or wider grids while a refusal costs a few seconds, not a long build.
MAX_MODULES = 50_000


class _TooManyModules(Exception):
    pass


def network_estimate(space: Any, arch: Any, task: Any, size: str, batch: int) -> tuple[int, int, int]:
    """Parameters, activation values per image and training bytes of a space's network.

    The network is built on PyTorch's "meta" device (shapes only, no memory) and run once
    on one meta image, summing the outputs of its leaf modules. Bytes: 4 per float for the
    weights, gradients and momentum (3 x parameters) and the activations kept for the
    backward pass and their gradients (2 x activations x batch). A rough lower bound: one-shot
    supernets hold every candidate op, and the input may be larger than the task says.

    Returns:
        (parameters, activations per image, bytes); (0, 0, 0) when the network cannot be built
        on the meta device (the estimate is then left to the real build).

    Raises:
        ConfigError: the network has more than MAX_MODULES modules.
    """
    import torch

    count = [0]

    def guard(module, name, submodule):  # every submodule registered while building
        count[0] += 1
        if count[0] > MAX_MODULES:
            raise _TooManyModules

    handle = torch.nn.modules.module.register_module_module_registration_hook(guard)
    try:
        with torch.device("meta"):
            net = space.build(arch, task, size)
    except _TooManyModules:
        raise ConfigError(
            f"the {size} network has more than {MAX_MODULES:,} modules: too large to build"
        ) from None
    except Exception:  # a build meta tensors cannot do: the real build decides
        return 0, 0, 0
    finally:
        handle.remove()
    params = sum(p.numel() for p in net.parameters())
    acts = [0]

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            acts[0] += output.numel()

    hooks = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net.eval()(torch.empty(1, *task.shape, device="meta"))
    except Exception:  # the parameters alone still bound the size
        acts[0] = 0
    finally:
        for h in hooks:
            h.remove()
    return params, acts[0], 4 * (3 * params + 2 * acts[0] * batch)


def check_network_size(
    space_name: str,
    options: Mapping[str, Any],
    runs: Any,
    where: str,
    classes: int = 10,
    image_size: int = 32,
) -> None:
    """Refuse a space whose options make a network no card holds (> MAX_NETWORK_BYTES), with the
    estimate in the message, before anything is built or written.

    Args:
        space_name: a registered space.
        options: its options.
        runs: (size, batch) pairs the study or command builds (e.g. search and eval).
        where: what to name in the message (--opt space.*, [space.darts]).
        classes, image_size: the task (a study: CIFAR's 10 classes of 32x32 images, its smallest).

    Raises:
        ConfigError: too large.
    """
    space = registry.create("space", space_name, **dict(options))
    arch = space.sample(np.random.default_rng(0))
    task = Task("estimate", classes, (3, image_size, image_size))
    for size, batch in runs:
        params, acts, total = network_estimate(space, arch, task, size, batch)
        if total > MAX_NETWORK_BYTES:
            raise ConfigError(
                f"{where}: the {size} network of space {space_name!r} would need about {total / 1e9:,.0f} GB "
                f"to train ({params:,} parameters, {acts:,} activation values per "
                f"{image_size}x{image_size} image, "
                f"batch {batch}); "
                f"no card holds more than {MAX_NETWORK_BYTES / 1e9:.0f} GB: lower its widths"
            )


def check_data_flags(args: Any) -> None:
    """The data flags every command shares (--train-subset, --test-subset, --data for its --dataset).

    Raises:
        ConfigError: a subset below 1 or beyond int64; --data for a dataset that reads no files.
    """
    check_count(getattr(args, "train_subset", None), "--train-subset")
    check_count(getattr(args, "test_subset", None), "--test-subset")
    if getattr(args, "dataset", None) is not None:
        check_path_use([args.dataset], getattr(args, "data", None), "--data")


def check_store_folder(store: str, where: str) -> None:
    """The folder a store is created in: not a file, creatable and writable (checked before any cell runs)."""
    check_output_dir(os.path.dirname(os.path.abspath(store)), f"{where} {store!r}: its folder")


def write_result_file(path: str, data: Any, flag: str) -> None:
    """Write a finished command's JSON (--json) atomically; a full disk is a clear error, not a traceback.

    The file is whole or absent (nasmix.atomicfile); the result was printed before, so nothing is lost.

    Raises:
        NasmixError: the write failed (OSError), naming the file and the errno's text.
    """
    try:
        write_atomic(path, json.dumps(data, indent=1).encode())
    except OSError as err:
        raise NasmixError(
            f"{flag} {path!r} could not be written ({err.strerror or err}); the result above is complete"
        ) from None
