"""The training-based estimators: train, lower_fidelity, early_stopping, inheritance."""

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.estimators.inheritance import inherit
from nasmix.estimators.lower_fidelity import downsample
from nasmix.estimators.recipe import build_seeded
from nasmix.strategies.base import Budget
from nasmix.testing import tiny_search_data

SPACE = registry.create("space", "nb201")
GOOD = SPACE.parse(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
DEAD = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")


@pytest.fixture(scope="module")
def data():
    return tiny_search_data()


def _prepared(name, data, seed=0, **cfg):
    est = registry.create("estimator", name, batch_size=16, **cfg)
    est.prepare(SPACE, data, Budget(batch_size=16), np.random.default_rng(seed))
    return est


def test_train_scores_validation_top1_and_charges_measured_seconds(data):
    est = _prepared("train", data, epochs=2)
    e = est.estimate(SPACE, GOOD, data)
    assert 0.0 <= e.score <= 1.0 and e.cost_s > 0 and not e.simulated
    assert e.fidelity == {"epochs": 2, "data_fraction": 1.0, "size": "tiny", "resolution": [32, 32]}
    assert e.extra["device"].startswith("cpu")


def test_train_is_deterministic_per_seed_and_arch(data):
    a = _prepared("train", data, epochs=1).estimate(SPACE, GOOD, data).score
    b = _prepared("train", data, epochs=1).estimate(SPACE, GOOD, data).score
    assert a == b


def test_recipe_values_are_checked():
    with pytest.raises(ConfigError):
        registry.create("estimator", "train", epochs=0)
    with pytest.raises(ConfigError):
        registry.create("estimator", "train", lr=-1)


def test_build_seeded_restores_the_global_generator():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a = build_seeded(SPACE, GOOD, tiny_search_data().task, "tiny", 3)
    assert torch.rand(1) == expected
    b = build_seeded(SPACE, GOOD, tiny_search_data().task, "tiny", 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_downsample_averages_blocks():
    x = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    y = downsample(x, 2)
    assert y.shape == (2, 2, 3, 3) and y.dtype == np.uint8
    assert y[1, 1, 2, 0] == np.rint(x[1, 2:4, 4:6, 0].mean())
    assert downsample(x, 1) is x


def test_lower_fidelity_reduces_everything_and_says_so(data):
    est = _prepared("lower_fidelity", data, epochs=1, data_fraction=0.5, downsample=2, size="tiny")
    train, valid, task = est.reduced(data)
    assert task.shape == (3, 16, 16) and train.x.shape[1:3] == (16, 16) and valid.x.shape[1:3] == (16, 16)
    assert len(train) == 10 and sorted(np.unique(train.y)) == list(range(10))  # 16 images -> 1 per class
    e = est.estimate(SPACE, GOOD, data)
    assert e.fidelity["resolution"] == [16, 16] and e.fidelity["downsample"] == 2
    assert e.fidelity["train_images"] == 10 and e.fidelity["epochs"] == 1 and e.fidelity["size"] == "tiny"
    assert 0.0 <= e.score <= 1.0 and e.cost_s > 0
    assert est.reduced(data)[0] is train  # made once per data


def test_lower_fidelity_options_are_checked():
    for bad in ({"data_fraction": 0.0}, {"size": "huge"}, {"downsample": 0}):
        with pytest.raises(ConfigError):
            registry.create("estimator", "lower_fidelity", **bad)


def test_early_stopping_stops_a_candidate_below_the_kth_best(data):
    est = _prepared("early_stopping", data, epochs=4, k=2)
    est.best = {e: [1.0, 1.0] for e in range(1, 5)}  # two earlier candidates were perfect at every epoch
    e = est.estimate(SPACE, DEAD, data)
    assert e.fidelity["stopped"] and e.fidelity["epochs_trained"] == 1
    assert e.score == e.extra["curve"][-1] < 1.0 and len(e.extra["curve"]) == 1 and e.cost_s > 0


def test_early_stopping_needs_k_curves_before_stopping(data):
    est = _prepared("early_stopping", data, epochs=2, k=2)
    est.best = {1: [1.0], 2: [1.0]}  # only one earlier curve: no k-th best yet
    e = est.estimate(SPACE, DEAD, data)
    assert not e.fidelity["stopped"] and e.fidelity["epochs_trained"] == 2
    assert len(est.best[1]) == 2 and est.threshold(1) == min(est.best[1])


def test_early_stopping_lets_a_strong_candidate_finish(data):
    est = _prepared("early_stopping", data, epochs=3, k=1, min_epochs=1)
    est.best = {e: [0.0] for e in range(1, 4)}
    e = est.estimate(SPACE, GOOD, data)
    assert not e.fidelity["stopped"] and e.fidelity["epochs_trained"] == 3


def test_inherit_copies_tensors_whose_name_and_shape_match():
    task = tiny_search_data().task
    parent = build_seeded(SPACE, GOOD, task, "tiny", 1)
    child_arch = SPACE.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )
    child = build_seeded(SPACE, child_arch, task, "tiny", 2)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    state = parent.state_dict()
    copied, total = inherit(child, state)
    after = child.state_dict()
    assert 0 < copied < total == len(after)
    same = [k for k in after if k in state and state[k].shape == after[k].shape]
    assert len(same) == copied
    for k in after:
        if k in same:
            assert torch.equal(after[k], state[k]), k
        else:
            assert torch.equal(after[k], before[k]), k


def test_inheritance_trains_children_from_cached_parents(data):
    est = _prepared("inheritance", data, epochs=1, scratch_epochs=2, cache_size=2)
    first = est.estimate(SPACE, GOOD, data)
    assert first.fidelity["epochs"] == 2 and first.fidelity["parent"] is None
    child = SPACE.mutate(GOOD, np.random.default_rng(0))
    second = est.estimate(SPACE, child, data, parent=GOOD)
    assert second.fidelity["epochs"] == 1 and second.fidelity["parent"] == GOOD.to_str()
    assert second.fidelity["inherited"] > 0
    orphan = est.estimate(
        SPACE, DEAD, data, parent=SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    )
    assert orphan.fidelity["epochs"] == 2 and orphan.fidelity["inherited"] == 0  # parent never trained
    assert len(est.cache) == 2 and (GOOD, "tiny") not in est.cache  # bounded: the oldest went
