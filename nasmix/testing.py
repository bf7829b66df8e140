"""Contract suites that every registered module must pass.

`tests/test_contracts.py` runs each suite over every registered name of its
kind (nasmix's own and the plugins'), so registering a module puts it under
test. A check raises AssertionError on a breach, and calls `pytest.skip(reason)`
when it cannot run (a dataset that needs a file), so that a test never passes
having tested nothing. The space contract is split into separate checks
(SPACE_CHECKS), so that one breach does not hide the others.

Example:
    >>> check_model("resnet20")  # doctest: +SKIP
    >>> for check in SPACE_CHECKS:  # doctest: +SKIP
    ...     check("nb201")
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import unittest
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Budget
from nasmix.data.base import DatasetArrays, Task
from nasmix.data.synthetic import Synthetic
from nasmix.errors import ConfigError, NasmixError
from nasmix.events import Candidate, Event, SearchDone, SearchEpoch
from nasmix.options import build_config
from nasmix.search_types import Estimate, SearchData
from nasmix.spaces.base import SearchSpace
from nasmix.timing import count_flops, count_params

TINY_TASK = Task("synthetic", 10, (3, 32, 32))


def skip(reason: str) -> NoReturn:
    """Skip the running test: pytest's skip under pytest, unittest's SkipTest elsewhere."""
    try:
        import pytest  # a test tool, not a dependency of nasmix
    except ImportError:
        raise unittest.SkipTest(reason) from None
    pytest.skip(reason)


def _logits(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _check_output(out, batch: int, task: Task, what: str) -> None:
    logits = _logits(out)
    assert tuple(logits.shape) == (batch, task.num_classes), f"{what}: logits shape {tuple(logits.shape)}"
    assert torch.isfinite(logits).all(), f"{what}: non-finite logits"


# ---- spaces ---------------------------------------------------------------------


def _space(name: str, **options: Any) -> SearchSpace:
    return registry.create("space", name, **options)


def _samples(space: SearchSpace, n: int = 3, seed: int = 0) -> list[Arch]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def check_space_choices(name: str) -> None:
    """A space has categorical choices, at least one of them a real decision."""
    choices = _space(name).choices()
    assert choices and all(len(c.options) >= 1 for c in choices), "a space needs choices with options"
    assert any(len(c.options) > 1 for c in choices), "a space needs at least one real decision"


def check_space_sampling(name: str) -> None:
    """Seeded sampling is deterministic and gives hashable archs of the space."""
    space = _space(name)
    a, b = (space.sample(np.random.default_rng(7)) for _ in range(2))
    assert a == b, "seeded sampling must be deterministic"
    for arch in _samples(space):
        assert isinstance(arch, Arch) and arch.space == name, f"sample gave {arch!r}"
        hash(arch)
        assert space.from_choices(space.to_choices(arch)) == arch, "choices round trip failed"
        assert space.canonical(space.canonical(arch)) == space.canonical(arch), "canonical must be idempotent"


def _round_trip(space: SearchSpace, arch: Arch, where: str) -> None:
    """The arch's string parses back to it, by itself and with the space; the string is stable."""
    text = arch.to_str()
    try:
        parsed = Arch.from_str(text)
        with_space = Arch.from_str(text, space)
        payload = space.parse(arch.payload)
    except NasmixError as err:
        raise AssertionError(f"{where}: {text!r} does not parse back: {err}") from None
    same = parsed == arch and with_space == arch and payload == arch
    assert same, f"{where}: string round trip failed for {text}"
    assert parsed.to_str() == text, f"{where}: the canonical string must be stable ({text})"
    assert arch.options == space.arch_key, f"{where}: {text} must carry the arch options {space.arch_key}"


def check_space_strings(name: str) -> None:
    """Arch strings round-trip, describe prints them, and bad strings are ConfigErrors."""
    space = _space(name)
    for arch in _samples(space):
        _round_trip(space, arch, name)
        assert arch.to_str() in space.describe(arch), "describe must print the arch string"
    for bad in ("", "not-an-arch", "|||"):
        try:
            space.parse(bad)
        except ConfigError:
            continue
        raise AssertionError(f"parse({bad!r}) must raise ConfigError")


def check_space_moves(name: str) -> None:
    """Mutation changes the arch; neighbours differ from it and stay in the space."""
    space = _space(name)
    rng = np.random.default_rng(1)
    for arch in _samples(space):
        child = space.mutate(arch, rng)
        assert child != arch, "mutate must change the arch"
        assert space.from_choices(space.to_choices(child)) == child, "a mutated arch must round-trip"
        nbrs = space.neighbors(arch)
        assert nbrs and all(n != arch and n.space == name for n in nbrs), "neighbors must differ from it"


def check_space_encoding(name: str) -> None:
    """Encodings have a fixed length; decode inverts arch_weights."""
    space = _space(name)
    archs = _samples(space)
    for arch in archs:
        for kind in ("onehot", "path"):
            enc = space.encode(arch, kind)
            assert enc.ndim == 1 and enc.dtype.kind == "f", f"{kind} encoding must be a float vector"
            assert len(enc) == len(space.encode(archs[0], kind)), f"{kind} encodings must share one length"
        assert space.decode(space.arch_weights(arch)) == arch, f"decode(arch_weights(a)) != a for {arch}"


def check_space_network(name: str, task: Task = TINY_TASK) -> None:
    """The standalone network gives finite logits of the right shape, trains and counts."""
    space = _space(name)
    x = torch.randn(2, *task.shape)
    for arch in _samples(space, 2):
        net = space.build(arch, task, "tiny")
        net.train()
        out = net(x)
        _check_output(out, 2, task, f"build({arch})")
        _logits(out).sum().backward()
        net.eval()
        with torch.no_grad():
            _check_output(net(x), 2, task, f"build({arch}) in eval mode")
        assert count_params(net) > 0 and count_flops(net, task.shape) > 0


def check_space_supernet(name: str, task: Task = TINY_TASK) -> None:
    """The supernet takes the weights arch_weights gives, passes gradients to them, and runs sampled ops."""
    space = _space(name)
    arch = _samples(space, 1)[0]
    x = torch.randn(2, *task.shape)
    sn = space.supernet(task, "tiny")
    weights = space.arch_weights(arch)
    assert set(sn.arch_shapes) == set(weights), "supernet groups must match arch_weights"
    for g, shape in sn.arch_shapes.items():
        assert tuple(weights[g].shape) == tuple(shape), f"group {g} weight shape"
        assert len(sn.edge_nodes[g]) == shape[0], f"group {g}: edge_nodes must name the node of every edge"
    w = {g: v.requires_grad_() for g, v in sn.uniform_weights().items()}
    out = sn(x, w)
    _check_output(out, 2, task, "supernet (weighted sum)")
    _logits(out).sum().backward()
    assert all(v.grad is not None for v in w.values()), "arch weights must receive gradients"
    one = {g: v.requires_grad_() for g, v in weights.items()}
    _check_output(sn(x, one, active=space.active(arch)), 2, task, "supernet (sampled ops)")


def option_variants(name: str) -> list[dict[str, Any]]:
    """Non-default options of a space to test its arch strings under: each field of its
    Config changed alone (int + 1, float x 2, bool negated, a tuple without its last
    item; values the Config refuses are left out), all those changes at once, and the
    space's own `option_examples` (for values no rule can guess, as a variant's name)."""
    cls = registry.get("space", name).obj
    config = getattr(cls, "Config", None)
    if config is None:
        return []
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = f.default
        if isinstance(value, bool):
            changes[f.name] = not value
        elif isinstance(value, int):
            changes[f.name] = value + 1
        elif isinstance(value, float):
            changes[f.name] = value * 2 if value else 1.0
        elif isinstance(value, tuple) and len(value) > 1:
            changes[f.name] = value[:-1]
    candidates = [{k: v} for k, v in changes.items()] + [changes] + list(getattr(cls, "option_examples", ()))
    out = []
    for options in candidates:
        try:
            build_config(config, options, f"space {name!r}")
        except ConfigError:
            continue
        if options not in out:
            out.append(options)
    return out


def check_space_options(name: str, samples: int = 3) -> None:
    """Under non-default options (`option_variants`), arch strings round-trip, sampled and
    mutated, and carry the options that decide which archs exist."""
    variants = option_variants(name)
    if not variants:
        skip(f"space {name!r} has no options to vary")
    space_cls = registry.get("space", name).obj
    keyed = False
    for options in variants:
        space = _space(name, **options)
        keyed = keyed or bool(space.arch_key)
        rng = np.random.default_rng(2)
        for arch in _samples(space, samples):
            where = f"{name} with {options}"
            assert arch.options == space.arch_key, f"{where}: sample made {arch.to_str()} without the options"
            _round_trip(space, arch, where)
            _round_trip(space, space.mutate(arch, rng), where + " (mutated)")
    assert keyed or not space_cls.arch_options, (
        f"space {name!r} has arch_options {space_cls.arch_options} but no variant changed them: "
        "give the class option_examples"
    )


SPACE_CHECKS: tuple[Callable[[str], None], ...] = (
    check_space_choices,
    check_space_sampling,
    check_space_strings,
    check_space_moves,
    check_space_encoding,
    check_space_network,
    check_space_supernet,
    check_space_options,
)


def check_space(name: str) -> None:
    """The whole search-space contract: every check of SPACE_CHECKS in turn."""
    for check in SPACE_CHECKS:
        check(name)


# ---- proxies --------------------------------------------------------------------

PROXY_ARCH = (
    "nb201:|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
)


def proxy_network(seed: int = 0, task: Task = TINY_TASK) -> nn.Module:
    """The network the proxy contract scores: a tiny NAS-Bench-201 network (convolutions,
    batch norm, ReLU, pooling, a linear head), seeded, in training mode."""
    arch = Arch.from_str(PROXY_ARCH)
    torch.manual_seed(seed)
    net = registry.create("space", arch.space).build(arch, task, "tiny")
    return net.train()


def _state(net: nn.Module) -> dict[str, Any]:
    """Everything a proxy could leave changed in a network."""
    modules = dict(net.named_modules())
    return {
        "params": {k: (p, p.detach().clone(), p.requires_grad) for k, p in net.named_parameters()},
        "grads": {k: p.grad for k, p in net.named_parameters()},
        "buffers": {k: b.detach().clone() for k, b in net.named_buffers()},
        "modes": {k: m.training for k, m in modules.items()},
        "modules": {k: id(m) for k, m in modules.items()},
        "attributes": {k: {a: id(v) for a, v in vars(m).items()} for k, m in modules.items()},
        "hooks": {
            k: tuple(
                len(getattr(m, h))
                for h in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
            )
            for k, m in modules.items()
        },
    }


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.device == b.device and torch.equal(a, b)


def _compare(name: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    where = f"proxy {name!r} leaked into the network"
    assert after["modules"] == before["modules"], f"{where}: its modules changed"
    for k, (p, value, requires_grad) in before["params"].items():
        now, now_value, now_requires = after["params"][k]
        assert now is p, f"{where}: parameter {k} was replaced"
        assert _same_tensor(now_value, value), f"{where}: parameter {k} changed (values or dtype)"
        assert now_requires == requires_grad, f"{where}: requires_grad of {k} changed"
    grads = [k for k, g in after["grads"].items() if g is not None]
    assert not grads, f"{where}: gradients left in {grads[:3]}"
    for k, value in before["buffers"].items():
        kept = k in after["buffers"] and _same_tensor(after["buffers"][k], value)
        assert kept, f"{where}: buffer {k} changed"
    modes = [k or "the network" for k, m in before["modes"].items() if after["modes"][k] != m]
    assert not modes, f"{where}: train/eval mode of {modes[:3]} changed"
    assert after["hooks"] == before["hooks"], f"{where}: hooks left registered"
    patched = [k or "the network" for k, a in before["attributes"].items() if after["attributes"][k] != a]
    assert not patched, f"{where}: attributes of {patched[:3]} changed (a patched forward?)"


def check_proxy(name: str, task: Task = TINY_TASK, batch: int = 8, seed: int = 0) -> None:
    """The zero-cost proxy contract: says whether higher is better (attribute and
    docstring agree), gives a finite float, the same one again under the same seed and
    on an identical network, and leaves the network as it found it (parameters,
    gradients, buffers such as batch-norm statistics, modes, hooks, attributes) and
    the batch untouched."""
    fn = registry.get("proxy", name).obj
    higher = getattr(fn, "higher_is_better", None)
    assert isinstance(higher, bool), (
        f"proxy {name!r} must say whether higher is better: a bool higher_is_better (the "
        "nasmix.estimators.proxies.base.proxy decorator sets it)"
    )
    said = re.findall(r"(higher|lower) is better", fn.__doc__ or "")
    assert said and all(s == ("higher" if higher else "lower") for s in said), (
        f"proxy {name!r}: its docstring must say '{'higher' if higher else 'lower'} is better' "
        f"(higher_is_better={higher}), and nothing else"
    )
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *task.shape, generator=gen)
    y = torch.randint(0, task.num_classes, (batch,), generator=gen)
    x0, y0 = x.clone(), y.clone()
    scores: list[float] = []
    for net in (proxy_network(seed, task), proxy_network(seed, task)):
        for _ in range(2 if not scores else 1):
            before = _state(net)
            torch.manual_seed(seed)
            value = fn(net, x, y, task)
            assert isinstance(value, (float, int)) and not isinstance(value, bool), (
                f"proxy {name!r} must return a float, got {type(value).__name__}"
            )
            assert math.isfinite(value), f"proxy {name!r} gave {value} on a plain network"
            _compare(name, before, _state(net))
            batch_kept = _same_tensor(x, x0) and _same_tensor(y, y0) and x.grad is None
            assert batch_kept, f"proxy {name!r} changed the batch"
            scores.append(float(value))
    assert scores[0] == scores[1], f"proxy {name!r}: the same seed must give the same score ({scores[:2]})"
    assert scores[0] == scores[2], (
        f"proxy {name!r}: an identical network must score the same ({scores[0]}, {scores[2]})"
    )


# ---- models, datasets, strategies, estimators ----------------------------------


def check_model(name: str, task: Task = TINY_TASK) -> None:
    """The reference-model contract."""
    net = registry.create("model", name).build(task)
    x = torch.randn(2, *task.shape)
    _check_output(net(x), 2, task, name)
    assert count_params(net) > 0 and count_flops(net, task.shape) > 0


def _needs_path(obj: Any) -> bool:
    """Whether a module's Config has a `path` it cannot do without (no default)."""
    config = getattr(obj, "Config", None)
    fields = {f.name: f for f in dataclasses.fields(config)} if config is not None else {}
    return "path" in fields and fields["path"].default in (None, dataclasses.MISSING)


def check_dataset(name: str) -> DatasetArrays:
    """The dataset contract: uint8 (N, H, W, C) images of the task's shape, int64 labels within the classes.
    A dataset that needs a file is skipped (tests/test_data.py tests those with fixtures)."""
    entry = registry.get("dataset", name)
    if _needs_path(entry.obj):
        skip(f"dataset {name!r} needs a file (tested with fixtures in tests/test_data.py)")
    data = registry.create("dataset", name).load()
    for split in (data.train, data.test):
        assert split.x.dtype == np.uint8 and split.x.ndim == 4, f"{name}: images must be uint8 (N, H, W, C)"
        assert split.y.dtype == np.int64, f"{name}: labels must be int64"
        assert len(split.x) == len(split.y) > 0, f"{name}: a split needs as many labels as images"
        assert split.y.min() >= 0 and split.y.max() < len(data.classes), f"{name}: labels outside the classes"
    assert data.task.num_classes == len(data.classes), f"{name}: task classes != classes"
    c, h, w = data.task.shape
    assert tuple(data.train.x.shape[1:]) == (h, w, c), f"{name}: images must have the task's shape"
    return data


def tiny_search_data(size: int = 32, seed: int = 0) -> SearchData:
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
    """The strategy contract: a short seeded search on tiny data (16 images, batches of
    8: two steps an epoch) returns a valid arch of the space, logs its typed events, and
    the same seed gives the same arch."""
    space = registry.create("space", space_name)
    budget = Budget(epochs=epochs, candidates=candidates, batch_size=8)
    chosen = []
    for _ in range(2):
        # A strategy may name cheaper options for this contract (contract_options),
        # e.g. few-shot NAS wrapping GDAS instead of training 8 DARTS sub-supernets.
        cheaper = getattr(registry.get("strategy", name).obj, "contract_options", {})
        strategy = registry.create("strategy", name, **cheaper)
        events: list[Event] = []
        torch.manual_seed(0)
        arch = strategy.search(
            space, HashEstimator(), tiny_search_data(16), budget, events.append, np.random.default_rng(3)
        )
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
    """The estimator contract: a finite score and a non-negative cost for a sampled arch
    and for a mutated child. An estimator that needs a file (a tabular benchmark) is
    skipped (tests/estimators/test_estimator_tabular.py tests those with fixtures)."""
    entry = registry.get("estimator", name)
    if _needs_path(entry.obj):
        skip(f"estimator {name!r} needs a file (tested with fixtures)")
    space = registry.create("space", space_name)
    est = registry.create("estimator", name)
    data = tiny_search_data()
    rng = np.random.default_rng(0)
    est.prepare(space, data, Budget(epochs=1, candidates=2, batch_size=16), rng)
    arch = space.sample(rng)
    e = est.estimate(space, arch, data)
    assert isinstance(e, Estimate), f"{name}: estimate must return an Estimate, got {type(e).__name__}"
    assert np.isfinite(e.score) and e.cost_s >= 0, f"{name}: score {e.score}, cost {e.cost_s}"
    child = space.mutate(arch, rng)
    e2 = est.estimate(space, child, data, parent=arch)
    assert np.isfinite(e2.score) and e2.cost_s >= 0, f"{name}: child score {e2.score}, cost {e2.cost_s}"
