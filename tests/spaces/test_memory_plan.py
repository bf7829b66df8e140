"""The memory plan: measured activation estimates, and checkpointed cells chosen when a step would not fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.accel import Accel
from nasmix.events import MemoryPlanned
from nasmix.spaces.memory import plan_memory, saved_bytes
from nasmix.strategies.base import Budget
from nasmix.testing import TINY_TASK, tiny_search_data

SMALL = (3, 8, 8)  # small images keep these tests fast; the supernets take any size


@pytest.mark.parametrize("space", ["simple_cell", "darts", "nb201"])
def test_estimate_extrapolates_the_saved_activations(space):
    net = registry.create("space", space).supernet(TINY_TASK, "tiny")
    plan = plan_memory(net, SMALL, batch=6, budget=None)
    measured, _ = saved_bytes(net, SMALL, 6)
    assert plan.activation_bytes == pytest.approx(1.25 * measured, rel=0.05)
    assert not plan.checkpoint and plan.fits and not net.checkpoint_cells


def test_checkpointing_is_chosen_when_the_step_would_not_fit_and_keeps_less():
    net = registry.create("space", "simple_cell").supernet(TINY_TASK, "tiny")
    full, _ = saved_bytes(net, SMALL, 4)
    plan = plan_memory(net, SMALL, batch=4, budget=full // 2)
    assert plan.checkpoint and net.checkpoint_cells
    assert plan.checkpointed_bytes < plan.activation_bytes
    kept, _ = saved_bytes(net, SMALL, 4)
    assert kept < full / 2, "checkpointed cells keep only their inputs"
    event = plan.as_event("simple_cell")
    assert isinstance(event, MemoryPlanned) and event.kind == "memory_plan" and event.checkpoint
    assert event.total_bytes == plan.total_bytes == plan.fixed_bytes + plan.checkpointed_bytes


def test_checkpointed_darts_cells_give_the_same_loss_and_gradients():
    torch.manual_seed(0)
    net = registry.create("space", "darts").supernet(TINY_TASK, "tiny")
    weights = {g: torch.softmax(torch.randn(s), -1).requires_grad_() for g, s in net.arch_shapes.items()}
    x, y = torch.randn(4, *SMALL), torch.randint(0, 10, (4,))
    results = []
    for checkpoint in (False, True):
        net.checkpoint_cells = checkpoint
        loss = torch.nn.functional.cross_entropy(net(x, weights), y)
        grads = torch.autograd.grad(loss, list(weights.values()) + list(net.parameters()))
        results.append((loss.detach(), grads))
    torch.testing.assert_close(results[1][0], results[0][0])
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b)


def test_checkpointed_cells_compute_the_same_search(space="simple_cell"):
    """A search too big for its budget runs with checkpointed cells, logs why, computes the same losses."""
    runs = []
    for budget in (None, 1):
        strategy = registry.create("strategy", "darts")
        strategy.accel = Accel(channels_last=True, memory_budget=budget)
        events: list = []
        losses: list[float] = []
        step = strategy.step

        def recording(state, train, valid, arch_on=True, *, step=step, losses=losses):
            weight, arch = step(state, train, valid, arch_on)
            losses.extend([float(weight[0]), float(arch[0])])
            return weight, arch

        strategy.step = recording
        budget_ = Budget(epochs=1, batch_size=16)
        space_ = registry.create("space", space)
        rng = np.random.default_rng(0)
        arch = strategy.search(space_, None, tiny_search_data(), budget_, events.append, rng)
        plans = [e for e in events if isinstance(e, MemoryPlanned)]
        runs.append((arch, losses, plans))
    (arch0, losses0, plans0), (arch1, losses1, plans1) = runs
    assert plans0 == [] and len(plans1) == 1 and plans1[0].checkpoint and not plans1[0].fits
    assert arch1 == arch0
    np.testing.assert_allclose(losses1, losses0, rtol=1e-5)
