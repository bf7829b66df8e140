"""One-shot search finds what the data rewards (issue 13, item 8).

The task and the space are in orientation_probe.py: the labels are the
orientation of stripes, and of the five NAS-Bench-201 ops on the probe's one
searched edge only `nor_conv_3x3` can see it; nothing else in the network can
(the first test checks that premise exactly). Each strategy, with its default
options, must put its architecture weight on that op and choose it. The
default lane runs three seeds per strategy; the slow lane eight, and few-shot
NAS with its paper protocol.

Epochs per strategy: the architecture weights move by at most Adam's step
(3e-4, PC-DARTS 6e-4) per step, so the defaults need a few hundred steps to
separate the ops; PC-DARTS computes the ops on a quarter of the channels and
skips architecture steps in its first 30% of epochs, so it gets 60 epochs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from orientation_probe import OPS, REWARDED, orientation_data, probe_space

from nasmix import registry
from nasmix.budget import Budget

EPOCHS = {"darts": 40, "gdas": 40, "drnas": 30, "pcdarts": 60, "rsws": 20}
FAST_SEEDS = (0, 1, 2)
SLOW_SEEDS = (3, 4, 5, 6, 7)


@pytest.fixture(scope="module")
def space():
    with probe_space() as probe:
        yield probe


def test_only_the_3x3_convolution_can_tell_the_classes_apart(space):
    """The premise: with any other op, the network is blind to a 90-degree turn of its input, and a class-1
    image is a class-0 image turned by 90 degrees; the 3x3 convolution is not blind to it."""
    torch.manual_seed(0)
    data = orientation_data(n=16)
    x = torch.from_numpy(data.train.x).permute(0, 3, 1, 2).float() / 255.0
    turned = torch.rot90(x, 1, dims=(2, 3))
    for op in OPS:
        net = space.build(space.parse(op), data.task)
        with torch.no_grad():
            torch.nn.init.normal_(net.classifier.weight)
            same = torch.allclose(net(x), net(turned), atol=1e-5)
        assert same == (op != REWARDED), op
    weights = {"edge": torch.tensor([[0.1, 0.3, 0.4, 0.0, 0.2]])}  # any mixture without the 3x3 convolution
    supernet = space.supernet(data.task)
    with torch.no_grad():
        assert torch.allclose(supernet(x, weights), supernet(turned, weights), atol=1e-5)


def _search(space, name: str, seed: int) -> tuple[str, list[float] | None, list]:
    strategy = registry.create("strategy", name)
    probs: list = []
    finish = strategy.finish

    def recording_finish(state, log, rng):
        if state.alphas and name != "rsws":
            probs.extend(strategy.decode_weights(state)["edge"][0].tolist())
        return finish(state, log, rng)

    strategy.finish = recording_finish
    events: list = []
    budget = Budget(epochs=EPOCHS[name], batch_size=32, candidates=20)
    rng = np.random.default_rng(seed)
    arch = strategy.search(space, None, orientation_data(seed=seed), budget, events.append, rng)
    return arch.genotype[0], probs or None, events


def _check(space, name: str, seed: int) -> None:
    chosen, probs, events = _search(space, name, seed)
    assert chosen == REWARDED, f"{name} seed {seed} chose {chosen} (weights {probs})"
    if probs is not None:  # its architecture weight is on the rewarded op, above the uniform share
        best = probs[OPS.index(REWARDED)]
        rest = [p for op, p in zip(OPS, probs) if op != REWARDED]
        assert best > max(rest) and best > 1 / len(OPS), f"{name} seed {seed}: weights {probs}"
    else:  # random search with weight sharing ranks the rewarded op's path first
        done = events[-1]
        scores = {f["arch"].split(":")[1]: f["valid_top1"] for f in done.extra["finalists"]}
        assert scores[REWARDED] == max(scores.values()) and scores[REWARDED] > 0.75, scores


# PC-DARTS separates the ops narrowly on the probe (the rewarded op's weight 0.21-0.22 against
# 0.19-0.20 after 60 epochs, still so after 100): which seeds end on another op depends on the
# order of floating-point sums, so on the CPU. With AVX-512 all eight seeds chose the 3x3
# convolution; on an AVX2 CPU seeds 0 and 4 did not. So PC-DARTS is held to most seeds (a random
# choice passes 2 of 3 with probability 0.10, 4 of 5 with 0.007); the others to every seed.
PER_SEED = [name for name in EPOCHS if name != "pcdarts"]


@pytest.mark.parametrize("seed", FAST_SEEDS)
@pytest.mark.parametrize("name", PER_SEED)
def test_search_puts_its_weight_on_the_rewarded_op(space, name, seed):
    _check(space, name, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
@pytest.mark.parametrize("name", PER_SEED)
def test_search_puts_its_weight_on_the_rewarded_op_more_seeds(space, name, seed):
    _check(space, name, seed)


def _misses(space, name: str, seeds: tuple[int, ...]) -> list[str]:
    misses = []
    for seed in seeds:
        try:
            _check(space, name, seed)
        except AssertionError as err:
            misses.append(str(err).splitlines()[0])
    return misses


def test_pcdarts_puts_its_weight_on_the_rewarded_op_for_most_seeds(space):
    misses = _misses(space, "pcdarts", FAST_SEEDS)
    assert len(misses) <= 1, misses


@pytest.mark.slow
def test_pcdarts_puts_its_weight_on_the_rewarded_op_for_most_seeds_more_seeds(space):
    misses = _misses(space, "pcdarts", SLOW_SEEDS)
    assert len(misses) <= 1, misses


@pytest.mark.slow
@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_fewshot_paper_protocol_picks_the_rewarded_sub_supernet(space, seed):
    """Few-shot NAS on the probe splits its one edge: each sub-supernet fixes one op, and the
    sub-supernet of the 3x3 convolution must score best (second-order DARTS, from scratch)."""
    strategy = registry.create("strategy", "fewshot")
    events: list = []
    budget = Budget(epochs=10, batch_size=32)
    arch = strategy.search(
        space, None, orientation_data(seed=seed), budget, events.append, np.random.default_rng(seed)
    )
    assert arch.genotype[0] == REWARDED
    scores = {s["op"]: s["valid_top1"] for s in events[-1].extra["subnets"]}
    assert scores[REWARDED] > 0.75 and all(v < scores[REWARDED] for op, v in scores.items() if op != REWARDED)
