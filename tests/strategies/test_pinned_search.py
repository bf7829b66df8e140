"""Speed work must not change what a search computes: each case's chosen arch, per-step losses
and final architecture parameters are pinned to the values nasmix main @60557be (before the
supernet's speed work) produced on the same seed, fp32 on a CPU.

The tolerance is that of reordered floating-point sums (grouped convolutions, fused optimizer
kernels): losses to a relative 1e-4, architecture parameters (about 3e-3 in size) to 2e-6.

Regenerate `pinned_search.json` only from that reference commit:
    PYTHONPATH=<checkout of 60557be> python tests/strategies/test_pinned_search.py tests/strategies/pinned_search.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.data.synthetic import Synthetic
from nasmix.strategies.base import Budget, SearchData

PINS = Path(__file__).with_name("pinned_search.json")
# (strategy, space, options, epochs): every space's supernet and every drive mode
# (weighted sum, one sampled op, Dirichlet weights, partial channels with edge weights, discrete paths).
CASES = [
    ("darts", "darts", {}, 1),
    ("gdas", "darts", {}, 2),
    ("drnas", "darts", {}, 1),
    ("darts", "simple_cell", {}, 2),
    ("gdas", "simple_cell", {}, 2),
    ("drnas", "simple_cell", {}, 2),
    ("pcdarts", "simple_cell", {"warmup": 0.0}, 2),
    ("darts", "nb201", {}, 2),
    ("gdas", "nb201", {}, 2),
    ("rsws", "nb201", {}, 2),
]


def _data() -> SearchData:
    d = Synthetic(Synthetic.Config(train_size=32, test_size=32, image_size=16, seed=0)).load()
    return SearchData(d.train, d.test, d.task, torch.device("cpu"), size="tiny")


def run_case(strategy_name: str, space_name: str, options: dict, epochs: int) -> dict:
    """One seeded tiny search: its arch, (train loss, valid loss) per step, final alphas."""
    strategy = registry.create("strategy", strategy_name, **options)
    losses: list = []
    alphas: dict = {}
    step, finish = strategy.step, strategy.finish

    def recording_step(state, train, valid, arch_on=True):
        weight, arch = step(state, train, valid, arch_on)
        losses.append([float(weight[0]), None if arch is None else float(arch[0])])
        return weight, arch

    def recording_finish(state, log, rng):
        alphas.update({g: a.detach().tolist() for g, a in state.alphas.items()})
        return finish(state, log, rng)

    strategy.step, strategy.finish = recording_step, recording_finish
    budget = Budget(epochs=epochs, batch_size=16, candidates=4)
    space = registry.create("space", space_name)
    arch = strategy.search(space, None, _data(), budget, lambda e: None, np.random.default_rng(5))
    return {"arch": arch.to_str(), "losses": losses, "alphas": alphas}


@pytest.mark.parametrize("strategy_name, space_name, options, epochs", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_search_matches_the_pinned_run(strategy_name, space_name, options, epochs):
    want = json.loads(PINS.read_text())[f"{strategy_name}/{space_name}"]
    got = run_case(strategy_name, space_name, options, epochs)
    assert got["arch"] == want["arch"]
    assert len(got["losses"]) == len(want["losses"])
    for step, (g, w) in enumerate(zip(got["losses"], want["losses"])):
        for name, a, b in zip(("train", "valid"), g, w):
            assert (a is None) == (b is None), f"step {step}: {name} loss presence differs"
            if b is not None:
                assert a == pytest.approx(b, rel=1e-4), f"step {step}: {name} loss {a} != pinned {b}"
    for group, values in want["alphas"].items():
        torch.testing.assert_close(torch.tensor(got["alphas"][group]), torch.tensor(values), rtol=0, atol=2e-6)


if __name__ == "__main__":
    torch.set_num_threads(1)
    pins = {f"{c[0]}/{c[1]}": run_case(*c) for c in CASES}
    Path(sys.argv[1]).write_text(json.dumps(pins, indent=0))
