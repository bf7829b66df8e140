"""The weight-sharing estimator: a supernet trained on uniform paths scores archs."""

import numpy as np
import torch

from nasmix import registry
from nasmix.estimators.weight_sharing import PathNet
from nasmix.strategies.base import Budget
from nasmix.testing import tiny_search_data

SPACE = registry.create("space", "nb201")


def _prepared(data, seed=0):
    est = registry.create("estimator", "weight_sharing", epochs=1)
    est.prepare(SPACE, data, Budget(batch_size=16), np.random.default_rng(seed))
    return est


def test_supernet_seconds_are_charged_once():
    data = tiny_search_data()
    est = _prepared(data)
    rng = np.random.default_rng(1)
    a, b = (est.estimate(SPACE, SPACE.sample(rng), data) for _ in range(2))
    assert a.extra["charged_supernet_s"] == est.supernet_s > 0 and a.cost_s >= est.supernet_s
    assert b.extra["charged_supernet_s"] == 0.0 and b.cost_s > 0
    assert 0.0 <= a.score <= 1.0 and a.fidelity["supernet_epochs"] == 1


def test_same_seed_same_scores():
    data = tiny_search_data()
    arch = SPACE.sample(np.random.default_rng(2))
    scores = [_prepared(data, seed=4).estimate(SPACE, arch, data).score for _ in range(2)]
    assert scores[0] == scores[1]


def test_pathnet_samples_a_path_per_training_step_and_runs_the_arch_otherwise(monkeypatch):
    space = registry.create("space", "nb201")
    task = tiny_search_data().task
    net = PathNet(space.supernet(task, "tiny"), space, np.random.default_rng(0))
    x = torch.randn(2, *task.shape)
    seen = []
    original = space.sample
    monkeypatch.setattr(space, "sample", lambda rng: seen.append(original(rng)) or seen[-1])
    net.train()
    net(x), net(x)
    assert len(seen) == 2
    net.eval()
    net.arch = seen[0]
    net(x)
    assert len(seen) == 2
    assert net.supernet.training  # batch statistics, even in eval mode
