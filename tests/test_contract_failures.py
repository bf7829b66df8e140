"""Each contract suite catches a deliberately broken module: a test registers one for
a while (registry.unregister removes it) and checks that the suite fails on it, with
the breach named. The split space checks fail one at a time."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from nasmix import registry, testing
from nasmix.arch import Arch
from nasmix.data.base import DatasetArrays, ImageArrays
from nasmix.data.synthetic import Synthetic
from nasmix.estimators.base import Estimate, Estimator
from nasmix.estimators.proxies.base import loss_backward, proxy
from nasmix.events import SearchDone
from nasmix.models.resnet20 import ResNet20
from nasmix.spaces.chain import Chain
from nasmix.spaces.nb201 import NB201
from nasmix.strategies.random import Random


@contextlib.contextmanager
def registered(kind: str, name: str, obj):
    """Register obj under (kind, name) for the duration of the block."""
    registry.register(kind, name)(obj)
    try:
        yield obj
    finally:
        registry.unregister(kind, name)


# ---- proxies ------------------------------------------------------------------------


def _plain(fn, higher=True):
    """A proxy registered as a bare function, without the decorator that restores the network."""

    def bare(net, x, y, task):
        return fn(net, x, y, task)

    bare.__doc__, bare.higher_is_better = fn.__doc__, higher
    return bare


def _leaks_grads(net, x, y, task):
    """Leaves its gradients behind (higher is better)."""
    return float(loss_backward(net, x, y))


def _moves_bn_stats(net, x, y, task):
    """A forward pass in training mode: batch-norm statistics move (higher is better)."""
    with torch.no_grad():
        return float(net(x).abs().mean())


def _switches_to_eval(net, x, y, task):
    """Leaves the network in eval mode (higher is better)."""
    net.eval()
    return 1.0


def _leaves_a_hook(net, x, y, task):
    """Leaves a forward hook registered (higher is better)."""
    net.register_forward_hook(lambda *args: None)
    return 1.0


def _patches_forward(net, x, y, task):
    """Patches a module's forward (higher is better)."""
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    bn.forward = lambda inp: inp
    return 1.0


def _changes_weights(net, x, y, task):
    """Makes every weight positive in place (higher is better)."""
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    return 1.0


def _changes_the_batch(net, x, y, task):
    """Scales the batch in place (higher is better)."""
    x.mul_(2)
    return 1.0


def _raises(net, x, y, task):
    """Always fails (higher is better)."""
    raise RuntimeError("broken proxy")


def _nan(net, x, y, task):
    """Not a number (higher is better)."""
    return float("nan")


def _tensor(net, x, y, task):
    """A tensor, not a float (higher is better)."""
    return torch.tensor(1.0)


def _unseeded(net, x, y, task):
    """Draws from Python's unseeded generator (higher is better)."""
    return random.random()


def _undocumented(net, x, y, task):
    """Says nothing of its direction."""
    return 1.0


def _contradicts(net, x, y, task):
    """Says higher is better, but is registered as lower is better."""
    return 1.0


@pytest.mark.parametrize(
    "fn, expected, breach",
    [
        (_plain(_leaks_grads), AssertionError, "gradients left"),
        (_plain(_moves_bn_stats), AssertionError, "buffer .*running_mean changed"),
        (_plain(_switches_to_eval), AssertionError, "train/eval mode"),
        (_plain(_leaves_a_hook), AssertionError, "hooks left"),
        (_plain(_patches_forward), AssertionError, "attributes .* changed"),
        (_plain(_changes_weights), AssertionError, "parameter .* changed"),
        (_plain(_changes_the_batch), AssertionError, "changed the batch"),
        (_plain(_raises), RuntimeError, "broken proxy"),
        (_plain(_nan), AssertionError, "gave nan"),
        (_plain(_tensor), AssertionError, "must return a float"),
        (_plain(_unseeded), AssertionError, "same seed must give the same score"),
        (_undocumented, AssertionError, "must say whether higher is better"),
        (_plain(_undocumented), AssertionError, "docstring must say 'higher is better'"),
        (_plain(_contradicts, higher=False), AssertionError, "docstring must say 'lower is better'"),
    ],
)
def test_the_proxy_contract_catches(fn, expected, breach):
    with registered("proxy", "broken", fn), pytest.raises(expected, match=breach):
        testing.check_proxy("broken")


def test_the_proxy_decorator_gives_the_network_back_as_it_was():
    """The same leaking functions pass once registered with @proxy (the decorator restores the network)."""
    for fn in (_leaks_grads, _moves_bn_stats, _switches_to_eval, _patches_forward, _changes_weights):
        try:
            proxy("kept")(fn)
            testing.check_proxy("kept")
        finally:
            registry.unregister("proxy", "kept")


def test_a_lower_is_better_proxy_is_negated_by_the_zero_cost_estimator():
    def depth(net, x, y, task):
        """Demo: the number of convolutions (lower is better)."""
        return float(sum(isinstance(m, nn.Conv2d) for m in net.modules()))

    space, data = registry.create("space", "nb201"), testing.tiny_search_data()
    arch = space.sample(np.random.default_rng(0))
    try:
        proxy("depth_demo", higher_is_better=False)(depth)
        testing.check_proxy("depth_demo")
        estimate = registry.create("estimator", "zero_cost", proxy="depth_demo").estimate(space, arch, data)
    finally:
        registry.unregister("proxy", "depth_demo")
    net = space.build(arch, data.task, data.size)
    assert estimate.score == -depth(net, None, None, None) < 0


# ---- spaces -------------------------------------------------------------------------


class ForgetsItsOptions(Chain):
    """A chain space whose archs forget the options that decide which archs exist."""

    def arch(self, genotype: tuple) -> Arch:
        return Arch(self.registry_name, genotype)


class AcceptsGarbage(NB201):
    """An nb201 space that parses any text."""

    def parse(self, text: str) -> Arch:
        return super().parse(text) if text.count("|") > 3 else self.sample(np.random.default_rng(0))


class MutatesNothing(NB201):
    """An nb201 space whose mutation returns the arch itself."""

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        return arch


class DecodesWrong(NB201):
    """An nb201 space whose decode ignores the weights."""

    def decode(self, weights) -> Arch:
        return self.sample(np.random.default_rng(123))


class WrongClasses(NB201):
    """An nb201 space whose network has one class too many."""

    def build(self, arch, task, size="search"):
        net = super().build(arch, task, size)
        return nn.Sequential(net, nn.Linear(task.num_classes, task.num_classes + 1))


@pytest.mark.parametrize(
    "cls, failing, breach",
    [
        (ForgetsItsOptions, "check_space_options", "does not parse back|without the options"),
        (AcceptsGarbage, "check_space_strings", "must raise ConfigError"),
        (MutatesNothing, "check_space_moves", "mutate must change the arch"),
        (DecodesWrong, "check_space_encoding", "decode"),
        (WrongClasses, "check_space_network", "logits shape"),
    ],
)
def test_each_space_check_catches_its_own_breach_and_only_it(cls, failing, breach):
    with registered("space", "broken", cls):
        for check in testing.SPACE_CHECKS:
            if check.__name__ == failing:
                with pytest.raises(AssertionError, match=breach):
                    check("broken")
            elif check.__name__ not in ("check_space_network", "check_space_supernet"):
                check("broken")  # (the two left out build networks: the whole suite below runs them)
        with pytest.raises(AssertionError, match=breach):
            testing.check_space("broken")  # the whole suite too


# ---- models, datasets, estimators, strategies -----------------------------------------


class OneClassTooMany(ResNet20):
    """A reference network with a wrong number of outputs."""

    def build(self, task):
        return nn.Sequential(super().build(task), nn.Linear(task.num_classes, task.num_classes + 1))


def test_the_model_contract_catches_a_wrong_output():
    with registered("model", "broken", OneClassTooMany), pytest.raises(AssertionError, match="logits shape"):
        testing.check_model("broken")


class NarrowLabels(Synthetic):
    """Synthetic images with int32 labels (the loader's own checks let them through)."""

    def read(self) -> DatasetArrays:
        data = super().read()
        narrow = lambda s: ImageArrays(s.x, s.y.astype(np.int32))  # noqa: E731
        return DatasetArrays(data.name, narrow(data.train), narrow(data.test), data.classes)


class NeedsAFile(Synthetic):
    """A dataset that reads a file."""

    @dataclass(frozen=True)
    class Config:
        path: str | None = None


def test_the_dataset_contract_catches_narrow_labels_and_skips_what_needs_a_file():
    with (
        registered("dataset", "broken", NarrowLabels),
        pytest.raises(AssertionError, match="labels must be int64"),
    ):
        testing.check_dataset("broken")
    with (
        registered("dataset", "filed", NeedsAFile),
        pytest.raises(pytest.skip.Exception, match="needs a file"),
    ):
        testing.check_dataset("filed")


class NaNEstimator(Estimator):
    """Scores every arch NaN."""

    kind = "test"

    def estimate(self, space, arch, data, parent=None) -> Estimate:
        return Estimate(float("nan"), 0.0)


class FileEstimator(NaNEstimator):
    """Needs a benchmark file."""

    @dataclass(frozen=True)
    class Config:
        path: str | None = None


def test_the_estimator_contract_catches_a_nan_score_and_skips_what_needs_a_file():
    with registered("estimator", "broken", NaNEstimator), pytest.raises(AssertionError, match="score nan"):
        testing.check_estimator("broken")
    with (
        registered("estimator", "filed", FileEstimator),
        pytest.raises(pytest.skip.Exception, match="needs a file"),
    ):
        testing.check_estimator("filed")


class Unseeded(Random):
    """Random search that ignores the seed it is given."""

    def search(self, space, estimator, data, budget, log, rng):
        return super().search(space, estimator, data, budget, log, np.random.default_rng())


class Silent(Random):
    """Random search that does not log its end."""

    def search(self, space, estimator, data, budget, log, rng):
        return super().search(
            space, estimator, data, budget, lambda e: None if isinstance(e, SearchDone) else log(e), rng
        )


@pytest.mark.parametrize("cls, breach", [(Unseeded, "same seed"), (Silent, "must log SearchDone")])
def test_the_strategy_contract_catches(cls, breach):
    with registered("strategy", "broken", cls), pytest.raises(AssertionError, match=breach):
        testing.check_strategy("broken", "nb201", candidates=6)
