"""The GPU's code path on a CPU: fused optimizers, bf16 autocast and channels_last (nasmix.accel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasmix import registry
from nasmix.accel import Accel
from nasmix.events import SearchDone, SearchEpoch
from nasmix.strategies.base import Budget
from nasmix.testing import tiny_search_data


def _late_gradient_run(opt_factory) -> list[torch.Tensor]:
    """Three SGD steps in which parameter b first gets a gradient on step 2 and c never does."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4, 3, generator=gen)) for _ in range(3)]
    opt = opt_factory(params)
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        params[0].grad = torch.randn(4, 3, generator=gen)
        if step >= 1:
            params[1].grad = torch.randn(4, 3, generator=gen)
        opt.step()
    return [p.detach().clone() for p in params]


def test_fused_sgd_steps_a_parameter_whose_first_gradient_comes_late():
    """PyTorch's fused SGD makes momentum buffers on its first step only; Accel.sgd must not crash
    on a parameter that first gets a gradient later, and must match the per-tensor reference."""
    accel = Accel(fused=True)
    fused = _late_gradient_run(lambda ps: accel.sgd(ps, lr=0.1, momentum=0.9, weight_decay=3e-4))
    reference = _late_gradient_run(
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=3e-4, foreach=False)
    )
    for got, want in zip(fused, reference):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    start = _late_gradient_run(lambda ps: torch.optim.SGD(ps, lr=0.0))  # lr 0: the initial values
    assert torch.equal(fused[2], start[2]), "a parameter without gradients must not move"
    assert not torch.equal(fused[1], start[1])


def test_set_grads_gives_what_backward_accumulates_in_the_parameters_layout():
    """The weight step's gradients (nasmix.strategies.oneshot.set_grads): backward's values, None
    for a tensor the loss does not reach, and the strides of the parameter even where the
    gradient autograd hands over has others."""
    from nasmix.strategies.oneshot import set_grads

    gen = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    unused = torch.nn.Parameter(torch.randn(5, generator=gen))
    x = torch.randn(2, 3, 6, 6, generator=gen)
    params = [conv.weight, conv.bias, unused]

    def loss() -> torch.Tensor:  # the weight's gradient comes out of a transpose: not its layout
        w = conv.weight.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
        return torch.nn.functional.conv2d(x, w, conv.bias).square().mean()

    loss().backward()
    want = [p.grad.clone() for p in params[:2]]
    for p in params:
        p.grad = None
    set_grads(loss(), params)
    assert unused.grad is None
    for p, g in zip(params[:2], want):
        torch.testing.assert_close(p.grad, g, rtol=1e-6, atol=1e-7)
        assert p.grad.stride() == p.stride()
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_auto_settings_per_device():
    assert Accel.auto(torch.device("cuda"), amp=True) == Accel.cuda_like()
    assert Accel.auto(torch.device("cuda"), amp=False).bf16 is False
    cpu = Accel.auto(torch.device("cpu"))
    assert (cpu.bf16, cpu.channels_last, cpu.fused) == (False, True, True)


def _cuda_like_search(name: str, accel: Accel, epochs: int = 2, **cfg):
    strategy = registry.create("strategy", name, **cfg)
    strategy.accel = accel
    events: list = []
    budget = Budget(epochs=epochs, candidates=3, batch_size=16)
    space = registry.create("space", "simple_cell")
    arch = strategy.search(space, None, tiny_search_data(), budget, events.append, np.random.default_rng(1))
    epochs_seen = [e for e in events if isinstance(e, SearchEpoch)]
    assert epochs_seen and all(np.isfinite(e.train_loss) for e in epochs_seen)
    assert isinstance(events[-1], SearchDone) and events[-1].arch == arch.to_str()
    return arch


@pytest.mark.parametrize(
    "name, cfg",
    [
        ("gdas", {}),
        ("rsws", {}),
        ("fewshot", {"base": "gdas", "warmup": 0.5}),
        ("drnas", {"progressive": True}),
    ],
)
def test_searches_that_leave_ops_without_gradients_run_the_cuda_configuration(name, cfg):
    """GDAS, RS-WS, few-shot and progressive DrNAS under CUDA's settings (fused SGD and Adam,
    bf16 autocast, channels_last), run on the CPU."""
    # oneDNN's bf16 weight gradient of a dilated depthwise convolution goes wrong on this CPU (NaN at
    # times in DrNAS's narrow partial-channel ops; PyTorch's own kernel is right but slow): DrNAS runs
    # CUDA's optimizers and memory format in fp32 here, the others bf16 as well.
    accel = Accel(channels_last=True, fused=True) if name == "drnas" else Accel.cuda_like()
    arch = _cuda_like_search(name, accel, **cfg)
    assert arch.space == "simple_cell"


def test_cuda_settings_reach_the_step():
    """The weight step runs fused optimizers, a channels_last supernet and bf16 logits, and a
    parameter whose first gradient comes after the first step is stepped (GDAS's unsampled ops)."""
    strategy = registry.create("strategy", "gdas")
    strategy.accel = Accel.cuda_like()
    space, budget = registry.create("space", "simple_cell"), Budget(epochs=1, batch_size=16)
    rng = np.random.default_rng(0)
    state = strategy.prepare(space, tiny_search_data(), budget, rng, print, total_epochs=1)
    strategy.begin_epoch(state, 1, lambda e: None)
    assert state.w_opt.defaults["fused"] and state.a_opt.defaults["fused"]
    conv = next(m for m in state.net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batches = [b for seed in range(3) for b in state.train.batches(seed)]
    ever = set()
    late = 0
    for step, (x, y) in enumerate(batches):
        assert x.is_contiguous(memory_format=torch.channels_last)
        strategy.begin_step(state)
        before = {id(p): p.detach().clone() for p in state.weight_params()}
        _, logits = strategy.weight_step(state, x, y)
        assert logits.dtype == torch.bfloat16
        got = {id(p) for p in state.weight_params() if p.grad is not None}
        if step:
            fresh = got - ever
            late += len(fresh)
            moved = [p for p in state.weight_params() if id(p) in fresh and not torch.equal(p, before[id(p)])]
            assert len(moved) == len(fresh), "a parameter with its first gradient must be stepped"
        ever |= got
    assert late > 0, "the test must see parameters whose first gradient comes after the first step"


def test_gdas_on_nb201_adds_the_unsampled_weights_as_xautodl():
    """xautodl's forward_gdas: sum(w[i] * op_i(x) if i == sampled else w[i]): the unsampled ops'
    weights (zeros in value) get the sum of the edge output's gradient."""
    from nasmix.spaces.ops import NB201_OPS
    from nasmix.spaces.supernet import EdgeContext, MixedEdge

    torch.manual_seed(0)
    edge = MixedEdge(4, 1, NB201_OPS)
    x, g = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    probs = torch.softmax(torch.randn(5), -1)
    hard = torch.nn.functional.one_hot(torch.tensor(3), 5).float()
    results = []
    for xautodl in (False, True):
        alpha = torch.zeros(5, requires_grad=True)
        w = (hard - probs + probs * (1 + alpha))[None]  # straight-through: value ~one-hot, gradient to all
        if xautodl:
            out = sum(w[0, i] * op(x) if i == 3 else w[0, i] for i, op in enumerate(edge.ops))
        else:
            out = EdgeContext({"cell": w}, {"cell": [[3]]}, add_unsampled=True).edge("cell", 0, edge, x)
        (out * g).sum().backward()
        results.append((out.detach(), alpha.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    assert (results[1][1][[0, 1, 2, 4]] != 0).all(), "every unsampled op's weight gets a gradient"


def test_gdas_sets_the_unsampled_term_on_nb201_only():
    gdas = registry.create("strategy", "gdas")
    for space, expected in (("nb201", True), ("darts", False), ("simple_cell", False)):
        budget = Budget(epochs=1, batch_size=16)
        rng = np.random.default_rng(0)
        space_ = registry.create("space", space)
        state = gdas.prepare(space_, tiny_search_data(), budget, rng, print, total_epochs=1)
        gdas.begin_epoch(state, 1, print)
        assert gdas.drive(state, for_arch=True).add_unsampled is expected


def test_darts_runs_the_grouped_mix_under_cuda_settings():
    """DARTS's weighted sum under CUDA's settings on the CPU: grouped convolutions, the mixing
    weights as the weight of each op's last batch norm (bf16 activations, fp32 weights under
    autocast), concatenated weights reused from the architecture step, fused optimizers. The
    losses are finite and both steps move what they update."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Norms(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.native_batch_norm.default and args[1] is not None:
                self.seen.add((args[0].dtype, args[1].dtype))
            return func(*args, **(kwargs or {}))

    strategy = registry.create("strategy", "darts")
    strategy.accel = Accel.cuda_like()
    space, budget = registry.create("space", "simple_cell"), Budget(epochs=1, batch_size=8)
    rng = np.random.default_rng(0)
    state = strategy.prepare(space, tiny_search_data(16), budget, rng, print, total_epochs=1)
    strategy.begin_epoch(state, 1, lambda e: None)
    assert state.net.grouped_convs
    batches = list(state.train.batches(0))
    alphas = {g: a.detach().clone() for g, a in state.alphas.items()}
    weights = [p.detach().clone() for p in state.weight_params()]
    with Norms() as norms:
        for x, y in batches:
            (loss, _), (valid_loss, _) = strategy.step(state, (x, y), (x, y), True)
            assert torch.isfinite(loss) and torch.isfinite(valid_loss)
    assert (torch.bfloat16, torch.float32) in norms.seen, "the mix must reach the batch norms"
    assert all(not torch.equal(a, state.alphas[g]) for g, a in alphas.items())
    assert sum(not torch.equal(w, p) for w, p in zip(weights, state.weight_params())) > len(weights) // 2
