"""Python source for a network that needs only PyTorch: generic over spaces.

The network is traced with torch.fx in eval mode, so train-time-only parts
(drop-path, the auxiliary head) fall away: what is traced is the inference
network. The traced graph has two kinds of pieces, and each becomes source:

- the leaf modules it calls (standard `torch.nn` modules: Conv2d, BatchNorm2d,
  pooling, Linear...) become constructor calls, their arguments read from the
  module's own attributes by the names of its `__init__` parameters; every
  rebuilt module is compared with the original (attributes, parameter and
  buffer shapes), and one that cannot be rebuilt is an ExportError that names it;
- everything between them (additions, concatenations, slicing, padding: the
  code of nasmix's own op classes and cells) is the forward code torch.fx
  generates, with the few globals it names bound to torch objects.

The leaf modules keep the paths they have in nasmix's network, so the
generated module's state-dict keys are nasmix's own keys (less those the
inference network never calls, listed as `dropped`).

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    >>> gen = generate(net, torch.zeros(1, 3, 8, 8))
    >>> "_put(self, '0', nn.Conv2d(3, 4, (3, 3)))" in gen.source
    True
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import math
import re
import textwrap
import types
from dataclasses import dataclass

import torch
from torch import fx, nn

from nasmix.errors import NasmixError
from nasmix.export.template import READER, TEMPLATE

# Constants (buffers, tensors made in forward) up to this many elements are written into the
# source, so that the module is right even without its weights file.
LITERAL_LIMIT = 65536


class ExportError(NasmixError):
    """A network that cannot be exported (a module or call that has no torch-only equivalent)."""


@dataclass(frozen=True)
class GeneratedModule:
    """The generated source and the weights that go with it.

    Attributes:
        source: the Python file (imports only torch and the standard library).
        state: the inference network's state dict (contiguous CPU tensors, nasmix's keys).
        dropped: keys of nasmix's state dict the inference network never uses (e.g. an auxiliary head).
        max_abs_diff: the largest logit difference between the generated module and the network,
            measured on the example input (0.0 when identical).
    """

    source: str
    state: dict
    dropped: tuple[str, ...]
    max_abs_diff: float


def generate(
    net: nn.Module, example: torch.Tensor, constants: dict | None = None, doc: str = ""
) -> GeneratedModule:
    """The torch-only source of a network's inference forward pass.

    Args:
        net: the network (left in the mode it was in); its forward, in eval mode,
            must return one tensor and must not branch on tensor values.
        example: an input batch; the generated module is checked against `net` on it.
        constants: module-level NAME = value lines of the generated file (literals).
        doc: the generated file's docstring.

    Returns:
        The source, the state dict it loads, and the keys left out.

    Raises:
        ExportError: tracing failed, a module cannot be rebuilt, or the generated
            module does not reproduce the network's logits.
    """
    was_training = net.training
    net.eval()
    try:
        return _generate(net, example, constants or {}, doc)
    finally:
        net.train(was_training)


def _generate(net: nn.Module, example: torch.Tensor, constants: dict, doc: str) -> GeneratedModule:
    try:
        gm = fx.symbolic_trace(net)
    except Exception as err:  # fx raises several types (TraceError, TypeError on proxies...)
        raise ExportError(
            f"cannot trace {type(net).__name__} with torch.fx ({type(err).__name__}: {err}); "
            "its forward must not branch on tensor values"
        ) from None
    leaves: dict[str, nn.Module] = {}
    tensors: dict[str, torch.Tensor] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            leaves[node.target] = gm.get_submodule(node.target)
        elif node.op == "get_attr":
            tensors[node.target] = _attr(gm, node.target)
    lines = []
    for path, module in _in_original_order(net, leaves):
        lines.append(f"_put(self, {path!r}, {constructor(module, path)})")
    for path, value in tensors.items():
        lines.append(_tensor_line(path, value))
    code = gm.graph.python_code(root_module="self")
    prelude = _globals_prelude(code.globals, code.src)
    forward = textwrap.indent(code.src.strip(), "    ")
    body = textwrap.indent("\n".join(lines), " " * 8) if lines else " " * 8 + "pass"
    doc = (doc.strip() or "A network exported by nasmix.").replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    constants = {**constants, "WEIGHTS": constants.get("WEIGHTS")}
    source = TEMPLATE.format(
        doc=doc,
        prelude=prelude,
        constants=_constants(constants),
        init=body,
        forward=forward,
        reader=READER.strip(),
    )
    generated = build(source)
    keys = list(generated.state_dict().keys())
    full = net.state_dict()
    state = {k: full[k].detach().cpu().contiguous().clone() for k in keys if k in full}
    for k in keys:  # tensors fx made while tracing (not in nasmix's state dict)
        if k not in state:
            state[k] = _attr(gm, k).detach().cpu().contiguous().clone()
    generated.load_state_dict(state, strict=True)
    diff = _check(net, generated.eval(), example)
    return GeneratedModule(source, state, tuple(k for k in full if k not in state), diff)


def build(source: str, name: str = "nasmix_generated") -> nn.Module:
    """A `Network()` of generated source, run in a fresh module namespace."""
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own generated source
    return module.Network()


def _check(net: nn.Module, generated: nn.Module, example: torch.Tensor) -> float:
    with torch.no_grad():
        want, got = net(example), generated(example)
    if not isinstance(want, torch.Tensor):
        raise ExportError(
            f"{type(net).__name__} returns {type(want).__name__} in eval mode; export needs logits"
        )
    if want.shape != got.shape or not torch.allclose(want, got, rtol=1e-4, atol=1e-5):
        diff = (want - got).abs().max().item() if want.shape == got.shape else math.inf
        raise ExportError(
            f"the generated module does not reproduce {type(net).__name__}'s logits "
            f"(max difference {diff:.3g}); please report this network"
        )
    return float((want - got).abs().max()) if want.numel() else 0.0


def _attr(root: object, path: str):
    value = root
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _in_original_order(net: nn.Module, leaves: dict[str, nn.Module]) -> list[tuple[str, nn.Module]]:
    """The leaf modules in nasmix's registration order (so the state dict keeps its order)."""
    order = {name: i for i, (name, _) in enumerate(net.named_modules())}
    return sorted(leaves.items(), key=lambda item: order.get(item[0], len(order)))


# ---- leaf modules -----------------------------------------------------------
def constructor(module: nn.Module, path: str = "?") -> str:
    """Source that constructs an equal `torch.nn` module, e.g. `nn.Conv2d(3, 8, kernel_size=(3, 3), ...)`.

    Arguments are read from the attributes named like the `__init__` parameters;
    those at their default are left out. The result is checked by building it.

    Raises:
        ExportError: the module is not a torch.nn module, or cannot be rebuilt from its attributes.
    """
    cls = type(module)
    where = f"module {path!r} ({cls.__module__}.{cls.__qualname__})"
    if getattr(nn, cls.__name__, None) is not cls:
        raise ExportError(
            f"{where} is not a torch.nn module: the exporter rebuilds only torch.nn modules; "
            "write it with torch.nn modules and tensor operations in forward"
        )
    positional: list[str] = []
    keywords: list[str] = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("device", "dtype"):
            continue
        if not hasattr(module, p.name):
            if p.default is p.empty:
                raise ExportError(f"{where}: its argument {p.name!r} is not stored as an attribute")
            continue  # left at its default; the rebuilt module is compared below
        value = getattr(module, p.name)
        if isinstance(value, torch.Tensor) or (value is None and isinstance(p.default, bool)):
            value = value is not None  # bias=True/False is stored as a parameter or None
        if p.default is not p.empty and _same(value, p.default):
            continue
        text = _literal(value, f"{where}: argument {p.name!r}")
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and not keywords:
            positional.append(text)
        else:
            keywords.append(f"{p.name}={text}")
    source = f"nn.{cls.__name__}({', '.join(positional + keywords)})"
    try:
        rebuilt = eval(source, {"nn": nn, "torch": torch, "inf": math.inf, "nan": math.nan})  # our own text
    except Exception as err:
        raise ExportError(f"{where}: cannot rebuild it as {source}: {err}") from None
    if _fingerprint(rebuilt) != _fingerprint(module):
        raise ExportError(f"{where}: rebuilt as {source} it differs from the original")
    return source


def _same(value, default) -> bool:
    """Whether a stored value is the parameter's default (1 is stored as (1, 1) by Conv2d)."""
    if isinstance(value, tuple) and isinstance(default, int) and not isinstance(default, bool):
        return all(type(v) is int and v == default for v in value)
    return type(value) is type(default) and value == default


def _fingerprint(module: nn.Module) -> tuple:
    """What makes two torch.nn modules compute the same function with the same weights."""
    attrs = {
        k: repr(v)
        for k, v in vars(module).items()
        if not k.startswith("_") and k != "training" and not isinstance(v, torch.Tensor)
    }
    tensors = {
        k: (tuple(v.shape), v.dtype, isinstance(v, nn.Parameter))
        for k, v in module.state_dict(keep_vars=True).items()
    }
    return type(module), attrs, tensors, sorted(module._non_persistent_buffers_set)


def _literal(value, where: str) -> str:
    """Python source for a constructor argument; ExportError for anything but plain values."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (tuple, list, torch.Size)):
        items = [_literal(v, where) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise ExportError(f"{where} is a {type(value).__name__}, which the exporter cannot write as source")


def _tensor_line(path: str, value: torch.Tensor) -> str:
    """A parameter or buffer the forward code reads directly (get_attr)."""
    shape = tuple(value.shape)
    if isinstance(value, nn.Parameter):  # trained values come from the weights file
        return f"_put(self, {path!r}, nn.Parameter(torch.zeros({shape!r}, dtype={value.dtype})))"
    if value.numel() > LITERAL_LIMIT:
        init = f"torch.zeros({shape!r}, dtype={value.dtype})"
    else:
        data = value.detach().cpu().flatten().tolist()
        init = f"torch.tensor({_literal(data, path)}, dtype={value.dtype}).reshape({shape!r})"
    return f"_put(self, {path!r}, {init})"


# ---- the forward code's globals ---------------------------------------------
def _globals_prelude(names: dict, src: str) -> str:
    """Lines binding the globals torch.fx's forward code names (torch objects only)."""
    lines, imports = [], []
    for name, obj in sorted(names.items()):
        if (
            not re.search(rf"\b{re.escape(name)}\b", src)
            or obj is torch
            or getattr(builtins, name, None) is obj
        ):
            continue
        if isinstance(obj, str):  # a type annotation fx keeps as text, e.g. 'torch.Tensor'
            resolved = obj.startswith("torch.") and _resolves("torch", obj[len("torch.") :])
            lines.append(f"{name} = {obj}" if resolved else f"{name} = {obj!r}")
        elif isinstance(obj, float):
            lines.append(f"{name} = float({str(obj)!r})")
        elif obj is type(None):
            lines.append(f"{name} = type(None)")
        elif isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] in (
            "torch",
            "operator",
            "math",
        ):
            imports.append(f"import {obj.__name__} as {name}")
        else:
            module = {"_operator": "operator"}.get(
                getattr(obj, "__module__", None) or "", obj.__module__ or ""
            )
            qual = getattr(obj, "__qualname__", "")
            if not (
                module.split(".")[0] in ("torch", "operator", "math")
                and qual
                and "<" not in qual
                and _resolves(module, qual, obj)
            ):
                raise ExportError(
                    f"the traced forward calls {obj!r} (from {module or '?'}), which is not part "
                    "of torch; write it with torch operations"
                )
            if module != "torch":
                imports.append(f"import {module}")
            lines.append(f"{name} = {module}.{qual}")
    return "\n".join(sorted(set(imports)) + lines)


def _resolves(module: str, qual: str, obj=None) -> bool:
    try:
        found = _attr(importlib.import_module(module), qual)
    except (ImportError, AttributeError):
        return False
    return obj is None or found is obj


def _constants(constants: dict) -> str:
    return "\n".join(f"{name} = {_literal(value, name)}" for name, value in constants.items())
