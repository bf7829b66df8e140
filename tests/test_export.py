"""`nasmix export`: generated torch-only modules reproduce nasmix's networks for every space and run with
nasmix hidden; .pt2 and ONNX files give the same logits; what the generator refuses; create_model."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import nasmix
from nasmix import registry
from nasmix.data.base import Task
from nasmix.errors import ConfigError, NasmixError
from nasmix.export import create_model, export_arch, load_model
from nasmix.export.codegen import ExportError, build, generate
from nasmix.export.template import read_safetensors

TASK = Task("t", 10, (3, 32, 32))
SPACES = registry.names("space")
# What a generated file may import: torch and the standard library, never nasmix.
ALLOWED_IMPORTS = {"json", "os", "struct", "warnings", "torch", "operator", "math"}


def _randomise_statistics(net: nn.Module, seed: int) -> None:
    """Batch-norm running statistics away from (0, 1), so that eval mode uses weights that matter."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.mark.parametrize("space_name", SPACES)
def test_generated_module_gives_the_networks_logits(space_name):
    space = registry.create("space", space_name)
    arch = space.sample(np.random.default_rng(1))
    torch.manual_seed(1)
    net = space.build(arch, TASK, "tiny")
    _randomise_statistics(net, 1)
    gen = generate(net, torch.randn(2, 3, 32, 32))
    module = build(gen.source)
    module.load_state_dict(gen.state, strict=True)
    x = torch.randn(3, 3, 32, 32)  # another batch size than the example's
    with torch.no_grad():
        assert torch.equal(module.eval()(x), net.eval()(x))
    assert set(gen.state) | set(gen.dropped) == set(net.state_dict())
    assert not set(gen.state) & set(gen.dropped)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One untrained tiny export per space (no .pt2/.onnx: they have their own test)."""
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for name in SPACES:
        arch = registry.create("space", name).sample(np.random.default_rng(0))
        out[name] = (root / name, arch)
        export_arch(arch, root / name, size="tiny", seed=3, skip=("pt2", "onnx"))
    return out


@pytest.mark.parametrize("space_name", SPACES)
def test_exported_arch_equals_nasmix_network_of_the_same_seed(exports, space_name):
    folder, arch = exports[space_name]
    torch.manual_seed(3)
    net = registry.create("space", space_name).build(arch, TASK, "tiny").eval()
    loaded = load_model(folder)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    config = json.loads((folder / "config.json").read_text())
    assert config["arch"] == arch.to_str() and config["weights"]["kind"] == "initial"
    roots = set()
    for node in ast.walk(ast.parse((folder / "model.py").read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
    assert roots <= ALLOWED_IMPORTS, roots - ALLOWED_IMPORTS


def test_generated_modules_run_with_nasmix_hidden(exports, tmp_path):
    x = torch.randn(2, 3, 32, 32)
    expected = {}
    for name, (folder, _) in exports.items():
        with torch.no_grad():
            expected[name] = load_model(folder)(x)
    torch.save(
        {"x": x, "expected": expected, "folders": {n: str(f) for n, (f, _) in exports.items()}},
        tmp_path / "case.pt",
    )
    script = textwrap.dedent("""
        import importlib.util, sys
        sys.modules["nasmix"] = None  # any import of nasmix now fails
        try:
            import nasmix
            raise SystemExit("nasmix is importable")
        except ImportError:
            pass
        import torch
        case = torch.load(sys.argv[1], weights_only=True)
        for name, folder in case["folders"].items():
            spec = importlib.util.spec_from_file_location("model_" + name, folder + "/model.py")
            model = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(model)
            with torch.no_grad():
                logits = model.load()(case["x"])
            assert torch.equal(logits, case["expected"][name]), name
            print("same logits", name)
        loaded = [m for m in sys.modules if m.split(".")[0] == "nasmix" and sys.modules[m] is not None]
        assert not loaded, loaded
    """)
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}  # no PYTHONPATH: nasmix is not on the path either
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "case.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("same logits") == len(exports)


@pytest.mark.slow  # torch.export and the ONNX exporter take seconds to start
def test_pt2_and_onnx_give_the_same_logits(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime does not install here")
    arch = registry.create("space", "nb201").sample(np.random.default_rng(2))
    info = export_arch(arch, tmp_path / "e", size="tiny")
    status = {a.name: a for a in info.artifacts}
    assert status["model.pt2"].ok and status["model.onnx"].ok, [a.note for a in info.artifacts]
    net = load_model(tmp_path / "e")
    x = torch.randn(3, 3, 32, 32)  # a batch size the example did not have: the batch is dynamic
    with torch.no_grad():
        want = net(x)
        got_pt2 = torch.export.load(str(tmp_path / "e" / "model.pt2")).module()(x)
    assert torch.allclose(got_pt2, want, atol=1e-5)
    session = ort.InferenceSession(str(tmp_path / "e" / "model.onnx"), providers=["CPUExecutionProvider"])
    got_onnx = session.run(["logits"], {"images": x.numpy()})[0]
    assert np.allclose(got_onnx, want.numpy(), atol=1e-4)
    assert "checked with onnxruntime" in status["model.onnx"].note
    assert "model.onnx" in (tmp_path / "e" / "README.md").read_text()


def test_a_failing_format_is_reported_and_the_export_goes_on(tmp_path, monkeypatch):
    pytest.importorskip("onnxscript")

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate")

    monkeypatch.setattr(torch.onnx, "export", broken)
    arch = registry.create("space", "chain").sample(np.random.default_rng(0))
    info = export_arch(arch, tmp_path / "e", size="tiny", skip=("pt2",))
    onnx_status = next(a for a in info.artifacts if a.name == "model.onnx")
    assert not onnx_status.ok and "aten::frobnicate" in onnx_status.note
    assert not (tmp_path / "e" / "model.onnx").exists() and (tmp_path / "e" / "model.safetensors").exists()
    card = (tmp_path / "e" / "README.md").read_text()
    assert "**not written**: ONNX export failed: RuntimeError: unsupported operator aten::frobnicate" in card


def test_own_reader_reads_what_safetensors_writes(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    tensors = {
        "f": torch.randn(3, 4),
        "scalar": torch.tensor(7),
        "h": torch.randn(5).half(),
        "b": torch.randn(3).bfloat16(),
        "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 2),
        "i16": torch.arange(5, dtype=torch.int16),
    }
    st.save_file(tensors, str(tmp_path / "w.safetensors"))
    read = read_safetensors(tmp_path / "w.safetensors")
    assert read.keys() == tensors.keys()
    for k, v in tensors.items():
        assert read[k].dtype == v.dtype and torch.equal(read[k], v), k


# ---- generic over modules: what the generator accepts and refuses ------------
class _Scaled(nn.Module):
    """A nasmix-style op: a parameter and a buffer used directly in forward, and a conv subclass."""

    class _Conv(nn.Conv2d):  # not a torch.nn class: traced through down to F.conv2d
        pass

    def __init__(self):
        super().__init__()
        self.conv = self._Conv(3, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.randn(1, 4, 1, 1))
        self.register_buffer("shift", torch.randn(4).view(1, 4, 1, 1))

    def forward(self, x):
        return torch.flatten(self.conv(x) * self.scale + self.shift, 1)


def test_parameters_buffers_and_traced_through_modules_are_exported():
    net = _Scaled()
    gen = generate(net, torch.randn(2, 3, 6, 6))
    module = build(gen.source)
    module.load_state_dict(gen.state)
    x = torch.randn(1, 3, 6, 6)
    assert torch.equal(module(x), net(x))
    assert set(gen.state) == {"conv.weight", "conv.bias", "scale", "shift"}
    assert "F.conv2d" not in gen.source and "conv2d" in gen.source


class _Branchy(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


def _not_torch(x):
    return x + 1


torch.fx.wrap("_not_torch")


class _CallsOut(nn.Module):
    def forward(self, x):
        return _not_torch(x)


def test_networks_the_generator_cannot_write_are_clear_errors():
    with pytest.raises(ExportError, match="cannot trace _Branchy"):
        generate(_Branchy(), torch.randn(1, 3))
    with pytest.raises(ExportError, match="not part of torch"):
        generate(_CallsOut(), torch.randn(1, 3))
    odd = nn.Sequential(nn.Identity())
    odd[0].extra = 3  # an attribute no constructor argument sets
    with pytest.raises(ExportError, match="differs from the original"):
        generate(odd, torch.randn(1, 3))


def test_create_model_builds_nasmix_networks_and_checks_the_export(exports):
    folder, arch = exports["nb201"]
    net = create_model(arch.to_str(), num_classes=7, size="tiny")
    assert net.training and net(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    with pytest.raises(ConfigError, match="must be an arch string"):
        create_model("nb201", num_classes=10)
    other = registry.create("space", "nb201").sample(np.random.default_rng(5))
    assert other != arch
    with pytest.raises(ConfigError, match="differs from the export"):
        create_model(other.to_str(), pretrained=folder)
    with pytest.raises(NasmixError, match="not an export folder"):
        load_model(folder / "model.py")
    assert nasmix.load_model is load_model and nasmix.create_model is create_model  # lazy re-exports


def test_an_arch_of_non_default_space_options_exports_and_loads(tmp_path, capsys):
    """An arch string that names its space's options (`chain{"layers":3}:...`) builds that space."""
    space = registry.create("space", "chain", layers=3)
    arch = space.sample(np.random.default_rng(0))
    assert arch.to_str().startswith('chain{"layers":3}:')
    info = export_arch(arch.to_str(), tmp_path / "e", size="tiny", seed=2, skip=("pt2", "onnx"))
    assert info.space_options == {"layers": 3} and info.arch == arch.to_str()
    torch.manual_seed(2)
    net = space.build(arch, TASK, "tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "e")(x), net(x))
        assert torch.equal(create_model(arch.to_str(), pretrained=tmp_path / "e")(x), net(x))
    assert """create_model('chain{"layers":3}:...',""" in (tmp_path / "e" / "README.md").read_text()
    with pytest.raises(ConfigError, match="layers"):  # options that contradict the string's
        create_model(arch.to_str(), options={"layers": 4})
    from nasmix.cli import main

    argv = ["export", "--space", "chain", "--arch", arch.to_str(), "--size", "tiny", "--seed", "2"]
    assert main([*argv, "--skip", "pt2", "--skip", "onnx", "-o", str(tmp_path / "cli")]) == 0
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["arch"] == arch.to_str()
    assert main(["export", "--space", "nb201", "--arch", arch.to_str(), "-o", str(tmp_path / "x")]) == 2
    assert "is of space 'chain', not of --space 'nb201'" in capsys.readouterr().err


def test_cli_exports_an_arch_string(tmp_path, capsys):
    from nasmix.cli import main
    from nasmix.spaces.darts import DARTS_V2

    argv = [
        "export",
        "--space",
        "darts",
        "--arch",
        DARTS_V2,
        "--size",
        "tiny",
        "--num-classes",
        "5",
        "--skip",
        "pt2",
        "--skip",
        "onnx",
        "-o",
        str(tmp_path / "v2"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "model.safetensors  written" in out and "skipped (--skip)" in out
    config = json.loads((tmp_path / "v2" / "config.json").read_text())
    assert config["arch"] == "darts:" + DARTS_V2 and config["num_classes"] == 5
    assert main(argv) == 0  # an earlier export's folder is replaced
