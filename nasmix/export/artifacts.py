"""The files of an export besides the source: weights, torch.export program, ONNX.

Each writer returns an `Artifact`: the file it wrote and how it was checked,
or why it could not be written. A format the network's ops do not allow is
reported, never fatal: the export goes on without it. The .pt2 and .onnx
files are reloaded and run on the example batch, and their largest logit
difference from the generated module is recorded.

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    >>> folder = Path(tempfile.mkdtemp())
    >>> pt2, program = write_pt2(net, torch.zeros(2, 3, 2, 2), folder / "m.pt2")   # doctest: +SKIP
    >>> onnx = write_onnx(net, torch.zeros(2, 3, 2, 2), folder / "m.onnx", program)  # doctest: +SKIP
    >>> pt2.ok, onnx.ok                                                             # doctest: +SKIP
    (True, True)
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nasmix.errors import NasmixError

ONNX_OPSET = 18


@dataclass(frozen=True)
class Artifact:
    """One exported file.

    Attributes:
        name: the file name (in the export folder).
        ok: whether it was written.
        note: how it was checked, or why it was not written.
        max_abs_diff: the largest logit difference from the generated module on the
            example batch (None when not measured).
    """

    name: str
    ok: bool
    note: str
    max_abs_diff: float | None = None


def write_weights(state: dict, path: Path, metadata: dict[str, str]) -> Artifact:
    """The state dict as safetensors (the safetensors package writes it).

    Raises:
        NasmixError: the safetensors package is missing.
    """
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise NasmixError(
            "writing weights needs the safetensors package: pip install 'nasmix[export]'"
        ) from None
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=metadata)
    return Artifact(
        path.name, True, f"{len(state)} tensors, {sum(v.numel() for v in state.values()):,} values"
    )


def _reason(err: BaseException) -> str:
    """The first line of an exporter's error, short enough for a table."""
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first[:300]}"


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference; an error when the file's logits are not the network's (a wrong file is
    worse than none)."""
    if a.shape != b.shape:
        raise NasmixError(f"its output shape {tuple(b.shape)} differs from the network's {tuple(a.shape)}")
    a, b = a.detach().float(), b.detach().float()
    diff = float((a - b).abs().max())
    if not torch.allclose(a, b, rtol=1e-3, atol=1e-4):
        raise NasmixError(f"its logits differ from the network's by up to {diff:.3g}")
    return diff


def write_pt2(module: nn.Module, example: torch.Tensor, path: Path):
    """A `torch.export` program (.pt2) with a dynamic batch size (a fixed one where the ops need it).

    Returns:
        The Artifact, and the exported program (None on failure) for `write_onnx` to reuse.
    """
    with torch.no_grad():
        want = module(example)
    note = "dynamic batch size"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                batch = torch.export.Dim("batch", min=1)
                program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
            except Exception:  # some ops specialise the batch size: export it fixed
                program = torch.export.export(module, (example,))
                note = f"fixed batch size {example.shape[0]} (a dynamic one did not export)"
            torch.export.save(program, str(path))
            got = torch.export.load(str(path)).module()(example)
            diff = _diff(want, got)
        return Artifact(path.name, True, f"{note}; reloaded and run", diff), program
    except Exception as err:
        path.unlink(missing_ok=True)
        return Artifact(path.name, False, f"torch.export failed: {_reason(err)}"), None


def write_onnx(module: nn.Module, example: torch.Tensor, path: Path, program=None) -> Artifact:
    """An ONNX model (input `images`, output `logits`), checked with onnxruntime where it is installed.

    Args:
        module: the network.
        example: the example batch.
        path: the .onnx file (weights inside it).
        program: the network's torch.export program, when there is one (saves tracing it again).
    """
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError as err:
        return Artifact(
            path.name, False, f"not written: {err.name} is not installed (pip install 'nasmix[export]')"
        )
    with torch.no_grad():
        want = module(example)
    try:
        chatter = io.StringIO()  # the exporter prints its progress
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
        ):
            warnings.simplefilter("ignore")
            with tempfile.TemporaryDirectory() as tmp:  # written whole, then moved: no half file on failure
                tmp_path = Path(tmp) / path.name
                dynamic = None if program is not None else ({0: torch.export.Dim("batch", min=1)},)
                torch.onnx.export(
                    program if program is not None else module,
                    (example,),
                    str(tmp_path),
                    dynamo=True,
                    external_data=False,
                    input_names=["images"],
                    output_names=["logits"],
                    opset_version=ONNX_OPSET,
                    dynamic_shapes=dynamic,
                )
                batch = _name_batch(onnx, tmp_path)
                tmp_path.replace(path)
    except Exception as err:
        return Artifact(path.name, False, f"ONNX export failed: {_reason(err)}")
    shape = f"opset {ONNX_OPSET}, {'dynamic batch' if batch is None else f'fixed batch size {batch}'}"
    try:
        import onnxruntime
    except ImportError:
        return Artifact(path.name, True, f"{shape}; not checked (onnxruntime is not installed)")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(["logits"], {"images": example.cpu().numpy()})[0])
        diff = _diff(want, got)
    except Exception as err:
        path.unlink(missing_ok=True)
        return Artifact(path.name, False, f"written, then removed: onnxruntime check failed: {_reason(err)}")
    return Artifact(path.name, True, f"{shape}; checked with onnxruntime {onnxruntime.__version__}", diff)


def _name_batch(onnx, path: Path) -> int | None:
    """Name the symbolic first dimension of inputs and outputs `batch`; the fixed batch size if none is."""
    model = onnx.load(str(path))
    fixed = None
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].dim_param = "batch"
        elif dims:
            fixed = dims[0].dim_value
    onnx.save(model, str(path))
    return fixed
