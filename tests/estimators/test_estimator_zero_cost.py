"""The zero_cost estimator: proxy validation, batch scoring, clipping, cost."""

import math

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.errors import ConfigError, UnknownNameError
from nasmix.strategies.base import Budget
from nasmix.testing import tiny_search_data
from nasmix.timing import count_params

SPACE = registry.create("space", "nb201")


def test_unknown_proxy_names_close_matches():
    with pytest.raises(UnknownNameError, match="synflow"):
        registry.create("estimator", "zero_cost", proxy="synflw")
    with pytest.raises(ConfigError):
        registry.create("estimator", "zero_cost", batch_size=0)


def test_score_many_matches_one_at_a_time_and_reports_a_rate():
    data = tiny_search_data()
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(4)]
    est = registry.create("estimator", "zero_cost", proxy="snip", batch_size=16)
    est.prepare(SPACE, data, Budget(), np.random.default_rng(1))
    many = est.score_many(SPACE, archs, data)
    one = [est.estimate(SPACE, a, data) for a in archs]
    assert [e.score for e in many] == pytest.approx([e.score for e in one])
    assert all(
        e.cost_s > 0 and e.extra["candidates_per_s"] > 0 and e.extra["batch_candidates"] == 4 for e in many
    )
    assert many[0].cost_s == pytest.approx(many[1].cost_s)
    assert many[0].fidelity == {"proxy": "snip", "batch_size": 16, "augment": True, "size": "tiny"}
    x, _ = est.batch(data)
    assert tuple(x.shape) == (16, 3, 32, 32) and est.batch(data)[0] is x  # one batch, reused


def test_non_finite_values_are_clipped_and_flagged():
    data = tiny_search_data()
    est = registry.create("estimator", "zero_cost", proxy="params")
    arch = SPACE.sample(np.random.default_rng(0))
    for value, expected in ((float("nan"), -1e30), (-math.inf, -1e30), (math.inf, 1e30)):
        est.proxy = lambda net, x, y, task, v=value: v
        e = est.estimate(SPACE, arch, data)
        assert e.score == expected and "non_finite" in e.extra


def test_params_estimator_ranks_bigger_networks_higher():
    data = tiny_search_data()
    est = registry.create("estimator", "zero_cost", proxy="params")
    small = SPACE.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    big = SPACE.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    a, b = est.score_many(SPACE, [small, big], data)
    assert b.score > a.score


def test_default_batch_is_naslibs():
    """NASLib's zero-cost predictor scores on the first batch of its training loader: 32 images,
    randomly cropped (padding 4) and flipped; augment=false gives the plain images."""
    data = tiny_search_data(size=64)
    batches = {}
    for augment in (True, False):
        est = registry.create("estimator", "zero_cost", augment=augment)
        est.prepare(SPACE, data, Budget(), np.random.default_rng(1))
        batches[augment] = est.batch(data)
    (xa, ya), (xp, yp) = batches[True], batches[False]
    assert tuple(xa.shape) == (32, 3, 32, 32) and torch.equal(ya, yp)  # the same images...
    assert not torch.equal(xa, xp)  # ... augmented


def test_proxies_do_not_see_the_auxiliary_head():
    """DARTS's tiny network has an auxiliary head; params must count the main network only."""
    darts = registry.create("space", "darts")
    data = tiny_search_data()
    arch = darts.sample(np.random.default_rng(0))
    net = darts.build(arch, data.task, "tiny")
    assert net.aux is not None
    est = registry.create("estimator", "zero_cost", proxy="params")
    est.prepare(darts, data, Budget(), np.random.default_rng(0))
    assert est.estimate(darts, arch, data).score == count_params(net) - count_params(net.aux)
