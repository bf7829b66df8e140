"""Contract suites that every registered module must pass.

`tests/test_contracts.py` runs each suite over every registered name of its
kind, so registering a module puts it under test.

Example:
    >>> check_model("resnet20")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Budget
from nasmix.data.base import DatasetArrays, Task
from nasmix.data.synthetic import Synthetic
from nasmix.errors import ConfigError
from nasmix.events import Candidate, Event, SearchDone, SearchEpoch
from nasmix.search_types import Estimate, SearchData
from nasmix.timing import count_flops, count_params

TINY_TASK = Task("synthetic", 10, (3, 32, 32))


def _logits(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _check_output(out, batch: int, task: Task, what: str) -> None:
    logits = _logits(out)
    assert tuple(logits.shape) == (batch, task.num_classes), f"{what}: logits shape {tuple(logits.shape)}"
    assert torch.isfinite(logits).all(), f"{what}: non-finite logits"


def check_space(name: str, task: Task = TINY_TASK, samples: int = 3) -> None:
    """The search-space contract (raises AssertionError on a breach)."""
    space = registry.create("space", name)
    choices = space.choices()
    assert choices and all(len(c.options) >= 1 for c in choices), "a space needs choices with options"
    assert any(len(c.options) > 1 for c in choices), "a space needs at least one real decision"

    a1 = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a1[0] == a1[1], "seeded sampling must be deterministic"
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(samples)]
    for arch in archs:
        assert isinstance(arch, Arch) and arch.space == name
        hash(arch)
        text = arch.to_str()
        assert Arch.from_str(text) == arch, f"string round trip failed for {text}"
        assert Arch.from_str(text).to_str() == text, "the canonical string must be stable"
        assert space.from_choices(space.to_choices(arch)) == arch, "choices round trip failed"
        child = space.mutate(arch, rng)
        assert child != arch and space.from_choices(space.to_choices(child)) == child, "mutate must change the arch"
        nbrs = space.neighbors(arch)
        assert nbrs and all(n != arch and n.space == name for n in nbrs), "neighbors must differ from the arch"
        enc = space.encode(arch)
        assert enc.ndim == 1 and enc.dtype.kind == "f" and len(enc) == len(space.encode(archs[0]))
        path = space.encode(arch, "path")
        assert path.ndim == 1 and len(path) == len(space.encode(archs[0], "path"))
        weights = space.arch_weights(arch)
        assert space.decode(weights) == arch, f"decode(arch_weights(a)) != a for {text}"
        assert text in space.describe(arch), "describe must print the arch string"
        assert space.canonical(space.canonical(arch)) == space.canonical(arch), "canonical must be idempotent"

    for bad in ("", "not-an-arch", "|||"):
        try:
            space.parse(bad)
        except ConfigError:
            pass
        else:
            raise AssertionError(f"parse({bad!r}) must raise ConfigError")

    x = torch.randn(2, *task.shape)
    for arch in archs[:2]:
        net = space.build(arch, task, "tiny")
        net.train()
        out = net(x)
        _check_output(out, 2, task, f"build({arch})")
        _logits(out).sum().backward()
        net.eval()
        with torch.no_grad():
            _check_output(net(x), 2, task, f"build({arch}) in eval mode")
        assert count_params(net) > 0 and count_flops(net, task.shape) > 0

    sn = space.supernet(task, "tiny")
    assert set(sn.arch_shapes) == set(space.arch_weights(archs[0])), "supernet groups must match arch_weights"
    for g, shape in sn.arch_shapes.items():
        assert tuple(space.arch_weights(archs[0])[g].shape) == tuple(shape), f"group {g} weight shape"
        assert len(sn.edge_nodes[g]) == shape[0], f"group {g}: edge_nodes must name the node of every edge"
    w = {g: v.requires_grad_() for g, v in sn.uniform_weights().items()}
    out = sn(x, w)
    _check_output(out, 2, task, "supernet (weighted sum)")
    _logits(out).sum().backward()
    assert all(v.grad is not None for v in w.values()), "arch weights must receive gradients"
    one = {g: v.requires_grad_() for g, v in space.arch_weights(archs[0]).items()}
    _check_output(sn(x, one, active=space.active(archs[0])), 2, task, "supernet (sampled ops)")


def check_model(name: str, task: Task = TINY_TASK) -> None:
    """The reference-model contract."""
    net = registry.create("model", name).build(task)
    x = torch.randn(2, *task.shape)
    _check_output(net(x), 2, task, name)
    assert count_params(net) > 0 and count_flops(net, task.shape) > 0


def check_dataset(name: str) -> DatasetArrays | None:
    """The dataset contract for datasets that load without a location (synthetic);
    the others are tested with fixtures in tests/test_data.py."""
    if "path" in {f for f in getattr(registry.get("dataset", name).obj.Config, "__dataclass_fields__", {})}:
        return None
    data = registry.create("dataset", name).load()
    for split in (data.train, data.test):
        assert split.x.dtype == np.uint8 and split.x.ndim == 4 and split.y.dtype == np.int64
        assert split.y.min() >= 0 and split.y.max() < len(data.classes)
    assert data.task.num_classes == len(data.classes)
    return data


def tiny_search_data(size: int = 32, seed: int = 0):
    """A search split of tiny synthetic data, on the CPU, at network size "tiny"."""
    data = Synthetic(Synthetic.Config(train_size=size, test_size=size, seed=seed)).load()
    return SearchData(data.train, data.test, data.task, torch.device("cpu"), size="tiny")


class HashEstimator:
    """A free, deterministic stand-in estimator for contract tests: the score is a
    hash of the arch string (not registered; it measures nothing)."""

    kind = "test"
    registry_name = "hash"

    def prepare(self, space, data, budget, rng) -> None:
        self.prepared = True

    def estimate(self, space, arch, data, parent=None):
        digest = hashlib.sha256(arch.to_str().encode()).digest()
        return Estimate(score=int.from_bytes(digest[:4], "little") / 2**32, cost_s=0.0)


def check_strategy(name: str, space_name: str, epochs: int = 1, candidates: int = 4) -> None:
    """The strategy contract: a short seeded search on tiny data returns a valid arch
    of the space, logs its typed events, and the same seed gives the same arch."""
    space = registry.create("space", space_name)
    budget = Budget(epochs=epochs, candidates=candidates, batch_size=16)
    chosen = []
    for _ in range(2):
        # A strategy may name cheaper options for this contract (contract_options),
        # e.g. few-shot NAS wrapping GDAS instead of training 8 DARTS sub-supernets.
        strategy = registry.create("strategy", name, **getattr(registry.get("strategy", name).obj, "contract_options", {}))
        events: list[Event] = []
        torch.manual_seed(0)
        arch = strategy.search(space, HashEstimator(), tiny_search_data(), budget, events.append,
                               np.random.default_rng(3))  # fmt: skip
        assert isinstance(arch, Arch) and arch.space == space_name, f"{name} returned {arch!r}"
        assert space.from_choices(space.to_choices(arch)) == arch
        assert all(isinstance(e, Event) for e in events), f"{name} must log typed events (nasmix.events)"
        done = [e for e in events if isinstance(e, SearchDone)]
        assert done, f"{name} must log SearchDone"
        progress = [e for e in events if isinstance(e, (SearchEpoch, Candidate))]
        assert progress, f"{name} must log progress events"
        assert done[-1].arch == arch.to_str()
        chosen.append(arch)
    assert chosen[0] == chosen[1], f"{name} on {space_name}: the same seed must give the same arch"


def check_estimator(name: str, space_name: str = "nb201") -> None:
    """The estimator contract: a finite score and a non-negative cost for a sampled arch.
    Estimators that need a file (tabular benchmarks) are tested with fixtures instead."""
    entry = registry.get("estimator", name)
    config = getattr(entry.obj, "Config", None)
    if config and any(f.name == "path" and f.default is None for f in dataclasses.fields(config)):
        return
    space = registry.create("space", space_name)
    est = registry.create("estimator", name)
    data = tiny_search_data()
    rng = np.random.default_rng(0)
    est.prepare(space, data, Budget(epochs=1, candidates=2, batch_size=16), rng)
    arch = space.sample(rng)
    e = est.estimate(space, arch, data)
    assert np.isfinite(e.score) and e.cost_s >= 0, f"{name}: score {e.score}, cost {e.cost_s}"
    child = space.mutate(arch, rng)
    e2 = est.estimate(space, child, data, parent=arch)
    assert np.isfinite(e2.score)
