"""Speed work must not change what a search computes: each case's chosen arch, per-step losses
and final architecture parameters are pinned to the values nasmix main produced, on the same seed,
fp32 on a CPU, before the supernet's speed work (issue 12) was merged.

Which commit each pin came from (also its "commit" in `pinned_search.json`):
- 60557be (main before the speed work was written): darts/darts, gdas/darts, darts/simple_cell,
  gdas/simple_cell, pcdarts/simple_cell, darts/nb201, gdas/nb201, rsws/nb201. Main at 2dbe8bb
  reproduces these exactly (bit for bit), so they did not need regenerating.
- 2dbe8bb (main just before the merge): drnas/darts and drnas/simple_cell. Between the two
  commits DrNAS changed by design (fidoneshot, issue 13): the "l2" regulariser by default
  (reg_scale as Adam weight decay, where 60557be added the KL) and, in the DARTS space, DrNAS's
  7 ops without `none` and its DARTS-space recipe; 60557be's pins no longer describe DrNAS.
  (PC-DARTS's new lr_min does not reach its case, whose CALM options set lr_min.)

The tolerance is that of reordered floating-point sums, measured per case: the reference run was
repeated with every initial weight moved by a relative 1e-6 (a few float32 roundings, what a
reordered sum does), and each pinned figure may move by SLACK times what that moved it (with a
floor of float32 rounding). Small searches are chaotic: in the DARTS space a 3e-7 change of the
first loss grows ten-fold with every step, so one fixed tolerance would be either too loose for
the first steps or too tight for the last. Architecture parameters may also move by 3e-5 (a tenth
of one Adam step): Adam turns a gradient component near zero into a full step whose size hangs on
that component's rounding. The arch must be the reference's, or the perturbed run's where the
perturbation itself changed it (a near-tie in decoding).

Regenerate a pin only from the commit it names, never from the code under test (a checkout of
that commit on the import path; the named cases only, the others are kept):
    git worktree add /tmp/pins <commit>
    PYTHONPATH=/tmp/pins python tests/strategies/test_pinned_search.py \
        tests/strategies/pinned_search.json drnas/darts drnas/simple_cell
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
# A weight learning rate of 1e-3 (DARTS: 0.025) keeps these tiny searches out of the chaotic regime
# where a reordered sum's 1e-7 grows ten-fold with every step; the code paths are the same.
CALM = {"lr": 1e-3, "lr_min": 1e-4}
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


def run_case(strategy_name: str, space_name: str, options: dict, epochs: int, perturb: float = 0.0) -> dict:
    """One seeded tiny search: its arch, (train loss, valid loss) per step, final alphas;
    `perturb`: move every initial supernet weight by that relative amount (seeded noise)."""
    strategy = registry.create("strategy", strategy_name, **{**CALM, **options})
    if strategy_name == "gdas":  # the pins predate GDAS's NAS-Bench-201 term (tests/strategies/test_accel.py)
        strategy.unsampled_spaces = ()
    losses: list = []
    alphas: dict = {}
    step, finish, init_extra = strategy.step, strategy.finish, strategy.init_extra

    def perturbed_init(state):
        gen = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for p in state.net.parameters():
                p.mul_(1 + perturb * torch.randn(p.shape, generator=gen))
        init_extra(state)

    def recording_step(state, train, valid, arch_on=True):
        weight, arch = step(state, train, valid, arch_on)
        losses.append([float(weight[0]), None if arch is None else float(arch[0])])
        return weight, arch

    def recording_finish(state, log, rng):
        alphas.update({g: a.detach().tolist() for g, a in state.alphas.items()})
        return finish(state, log, rng)

    strategy.step, strategy.finish = recording_step, recording_finish
    if perturb:
        strategy.init_extra = perturbed_init
    budget = Budget(epochs=epochs, batch_size=16, candidates=4)
    space = registry.create("space", space_name)
    arch = strategy.search(space, None, _data(), budget, lambda e: None, np.random.default_rng(5))
    return {"arch": arch.to_str(), "losses": losses, "alphas": alphas}


SLACK = 30.0
IDS = [f"{c[0]}-{c[1]}" for c in CASES]


@pytest.mark.parametrize("strategy_name, space_name, options, epochs", CASES, ids=IDS)
def test_search_matches_the_pinned_run(strategy_name, space_name, options, epochs):
    pin = json.loads(PINS.read_text())[f"{strategy_name}/{space_name}"]
    assert pin["commit"] in {"60557be", "2dbe8bb"}, "pins come from main before the speed work (docstring)"
    want, moved = pin["reference"], pin["perturbed"]
    got = run_case(strategy_name, space_name, options, epochs)
    assert got["arch"] in {want["arch"], moved["arch"]}
    assert len(got["losses"]) == len(want["losses"])
    for step, (g, w, m) in enumerate(zip(got["losses"], want["losses"], moved["losses"])):
        for name, a, b, c in zip(("train", "valid"), g, w, m):
            assert (a is None) == (b is None), f"step {step}: {name} loss presence differs"
            if b is not None:
                tol = max(SLACK * abs(c - b), 1e-6 * abs(b))
                assert abs(a - b) <= tol, f"step {step}: {name} loss {a} != pinned {b} (within {tol:.1e})"
    for group, values in want["alphas"].items():
        ref = torch.tensor(values)
        tol = max(SLACK * (torch.tensor(moved["alphas"][group]) - ref).abs().max().item(), 3e-5)
        err = (torch.tensor(got["alphas"][group]) - ref).abs().max().item()
        assert err <= tol, f"alphas of {group} moved by {err:.1e} (tolerance {tol:.1e})"


def _commit() -> str:
    """The short commit of the nasmix checkout on the import path (the pins' source)."""
    import subprocess

    import nasmix

    where = Path(nasmix.__file__).resolve().parent
    git = ["git", "-C", str(where)]
    out = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if out.returncode or subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "."]).returncode:
        raise SystemExit(f"{where} is not a clean git checkout: pins come from a commit")
    return out.stdout.strip()


if __name__ == "__main__":
    torch.set_num_threads(1)
    target = Path(sys.argv[1])
    wanted = set(sys.argv[2:]) or {f"{c[0]}/{c[1]}" for c in CASES}
    pins = json.loads(target.read_text()) if target.exists() else {}
    commit = _commit()
    for case in CASES:
        key = f"{case[0]}/{case[1]}"
        if key not in wanted:
            continue
        reference, perturbed = run_case(*case), run_case(*case, perturb=1e-6)
        pins[key] = {"commit": commit, "reference": reference, "perturbed": perturbed}
        print(key, commit, reference["arch"] == perturbed["arch"], flush=True)
    pins = {f"{c[0]}/{c[1]}": pins[f"{c[0]}/{c[1]}"] for c in CASES if f"{c[0]}/{c[1]}" in pins}
    target.write_text(json.dumps(pins, indent=0))
