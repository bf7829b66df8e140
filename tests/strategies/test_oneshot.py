"""One-shot strategies: the properties each paper's method rests on, on tiny CPU networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.events import Capped, PartialFallback, SearchDone, SearchEpoch, Subnet
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet
from nasmix.strategies.base import Budget
from nasmix.strategies.darts import darts_hypergradient
from nasmix.strategies.drnas import dirichlet_sample
from nasmix.testing import TINY_TASK, tiny_search_data


def _search(
    name: str, space: str = "nb201", epochs: int = 1, seed: int = 3, budget: Budget | None = None, **cfg
):
    events: list = []
    strategy = registry.create("strategy", name, **cfg)
    arch = strategy.search(
        registry.create("space", space),
        None,
        tiny_search_data(),
        budget or Budget(epochs=epochs, candidates=4, batch_size=16),
        events.append,
        np.random.default_rng(seed),
    )
    return arch, events


def _prepared(name: str, **cfg):
    strategy = registry.create("strategy", name, **cfg)
    state = strategy.prepare(
        registry.create("space", "nb201"),
        tiny_search_data(),
        Budget(epochs=1, batch_size=16),
        np.random.default_rng(0),
        lambda e: None,
        total_epochs=1,
    )
    strategy.begin_epoch(state, 1, lambda e: None)
    return strategy, state


def test_gdas_computes_and_updates_only_sampled_ops():
    strategy, state = _prepared("gdas")
    edges = [m for m in state.net.modules() if isinstance(m, MixedEdge)]
    calls: list[tuple[int, int]] = []
    for k, edge in enumerate(edges):
        for i, op in enumerate(edge.ops):
            op.register_forward_hook(lambda mod, inp, out, k=k, i=i: calls.append((k, i)))
    strategy.begin_step(state)
    picks = state.extra["picks"]["cell"][1]  # the weight step's sample, one op per edge
    before = {n: p.detach().clone() for n, p in state.net.named_parameters()}
    x, y = next(state.train.batches(0))
    strategy.weight_step(state, x, y)
    sampled = {(k, picks[k % len(picks)]) for k in range(len(edges))}
    assert set(calls) <= sampled, "an unsampled op ran forward"
    stepped = 0
    for k, edge in enumerate(edges):
        for i, op in enumerate(edge.ops):
            for name, p in op.named_parameters():
                if i != picks[k % len(picks)]:
                    assert p.grad is None or not p.grad.any(), f"edge {k} op {i} {name} has a gradient"
                    full = next(n for n, q in state.net.named_parameters() if q is p)
                    assert torch.equal(p.detach(), before[full]), f"edge {k} op {i} {name} moved"
                elif p.grad is not None and p.grad.abs().sum() > 0:
                    stepped += 1
    assert stepped > 0, "the sampled ops must be trained"


def test_gdas_architecture_gradient_reaches_every_op():
    strategy, state = _prepared("gdas")
    strategy.begin_step(state)
    batch = next(state.valid.batches(0))
    strategy.arch_step(state, batch, batch)
    grad = state.alphas["cell"].grad
    assert grad is not None and torch.isfinite(grad).all()
    assert all(p.grad is None for p in state.net.parameters()), (
        "the architecture step must not compute weight gradients"
    )


class _TinySupernet(Supernet):
    """Stem, a three-edge DAG of mixed edges, pooling and a classifier."""

    def __init__(self, c: int = 4, classes: int = 3):
        super().__init__()
        ops = ("none", "skip_connect", "sep_conv_3x3", "avg_pool_3x3")
        self.arch_shapes, self.op_names = {"cell": (3, len(ops))}, {"cell": ops}
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.edges = nn.ModuleList(MixedEdge(c, 1, ops) for _ in range(3))
        self.head = nn.Linear(c, classes)

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        s0 = self.stem(x)
        s1 = ctx.edge("cell", 0, self.edges[0], s0)
        s2 = ctx.edge("cell", 1, self.edges[1], s0) + ctx.edge("cell", 2, self.edges[2], s1)
        return self.head(s2.mean((2, 3)))


def test_darts_second_order_matches_finite_differences():
    torch.manual_seed(0)
    net = _TinySupernet().double()
    params = list(net.parameters())
    alpha = (0.5 * torch.randn(3, 4, dtype=torch.float64)).requires_grad_()
    gen = torch.Generator().manual_seed(1)
    train = (
        torch.randn(8, 3, 6, 6, generator=gen, dtype=torch.float64),
        torch.randint(0, 3, (8,), generator=gen),
    )
    valid = (
        torch.randn(8, 3, 6, 6, generator=gen, dtype=torch.float64),
        torch.randint(0, 3, (8,), generator=gen),
    )
    xi = 0.1

    def loss_fn(batch, amp, a=alpha):
        logits = net(batch[0], {"cell": a.softmax(-1)})
        return nn.functional.cross_entropy(logits, batch[1]), logits

    start = [p.detach().clone() for p in params]
    # A small finite-difference step: DARTS's eps = 0.01 / ||v|| moves the weights far enough
    # to cross ReLU kinks of this tiny network (its estimate is then off by a few percent).
    hyper, _, _ = darts_hypergradient(loss_fn, [alpha], params, train, valid, xi, scale=1e-6)
    assert all(torch.equal(p, s) for p, s in zip(params, start)), "the weights must end where they started"

    def unrolled(a: torch.Tensor) -> float:  # L_val(w - xi grad_w L_train(w, a), a), exactly
        g = torch.autograd.grad(loss_fn(train, False, a)[0], params, allow_unused=True)
        with torch.no_grad():
            for p, gi in zip(params, g):
                if gi is not None:
                    p.sub_(xi * gi)
            value = float(loss_fn(valid, False, a)[0])
            for p, s in zip(params, start):
                p.copy_(s)
        return value

    h, fd = 1e-5, torch.zeros_like(alpha)
    base = alpha.detach()
    for idx in np.ndindex(*alpha.shape):
        up, down = base.clone(), base.clone()
        up[idx] += h
        down[idx] -= h
        fd[idx] = (unrolled(up) - unrolled(down)) / (2 * h)
    first_order = torch.autograd.grad(loss_fn(valid, False)[0], alpha)[0]
    assert torch.allclose(hyper[0], fd, rtol=1e-3, atol=1e-7), (hyper[0] - fd).abs().max()
    assert not torch.allclose(first_order, fd, rtol=1e-3, atol=1e-7), "the test must tell the orders apart"


def test_darts_second_order_search_runs():
    arch, events = _search("darts", order=2)
    assert events[-1].arch == arch.to_str()


def test_drnas_samples_lie_on_the_simplex():
    alpha = torch.randn(6, 5) * 3
    w = dirichlet_sample(alpha)
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(6), atol=1e-6)
    keep = torch.rand(6, 5) < 0.6
    keep[:, 0] = True
    w = dirichlet_sample(alpha, keep)
    assert (w[~keep] == 0).all() and torch.allclose(w.sum(-1), torch.ones(6), atol=1e-6)
    strategy, state = _prepared("drnas")
    d = strategy.drive(state, for_arch=True)
    w = d.weights["cell"]
    assert w.requires_grad and (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(6), atol=1e-6)
    w.sum().backward()  # a reparameterised sample: the gradient reaches alpha
    assert state.alphas["cell"].grad is not None


def test_drnas_progressive_prunes_and_widens():
    _, events = _search("drnas", epochs=2, progressive=True)
    epochs = [e for e in events if isinstance(e, SearchEpoch)]
    assert [e.extra["stage"] for e in epochs] == [1, 2]
    assert [e.partial for e in epochs] == [4, 2]  # DrNAS's NAS-Bench-201 recipe: K 4 -> 2, the ops widen
    # K=4 divides the tiny network's 4 channels: no fallback (the DARTS-space recipe's K=6 needed one)
    assert not any(isinstance(e, PartialFallback) for e in events)


@pytest.mark.parametrize("name", ["darts", "gdas", "drnas", "pcdarts", "rsws"])
def test_same_seed_same_search(name):
    runs = [_search(name, epochs=2) for _ in range(2)]
    assert runs[0][0] == runs[1][0]
    losses = [[e.train_loss for e in events if isinstance(e, SearchEpoch)] for _, events in runs]
    assert losses[0] == losses[1]


def test_search_epoch_events_carry_the_vocabulary():
    _, events = _search("gdas", epochs=2)
    epochs = [e for e in events if isinstance(e, SearchEpoch)]
    assert [e.epoch for e in epochs] == [1, 2] and [e.extra["tau"] for e in epochs] == [10.0, 0.1]
    for key in (
        "train_loss",
        "train_top1",
        "valid_loss",
        "valid_top1",
        "arch",
        "entropy",
        "epoch_s",
        "gpu_s",
        "peak_gpu_bytes",
        "peak_host_bytes",
        "device",
    ):
        assert key in epochs[0].to_json(), key
    assert 0 <= epochs[0].entropy <= np.log(5) + 1e-6


def test_time_cap_stops_and_logs_capped():
    arch, events = _search("darts", budget=Budget(epochs=3, batch_size=16, max_seconds=1e-6))
    capped = [e for e in events if isinstance(e, Capped)]
    assert len(capped) == 1 and (capped[0].done, capped[0].total, capped[0].reason) == (1, 3, "max_seconds")
    assert isinstance(events[-1], SearchDone) and events[-1].arch == arch.to_str()


def test_pcdarts_falls_back_to_a_dividing_k():
    _, events = _search("pcdarts", partial=3)
    fallback = [e for e in events if isinstance(e, PartialFallback)]
    assert fallback and fallback[0].requested == 3 and fallback[0].used == 2
    assert all(e.partial == 2 for e in events if isinstance(e, SearchEpoch))


def test_pcdarts_edge_weights_normalise_per_node():
    strategy, state = _prepared("pcdarts")
    state.net.edge_nodes = {"cell": (1, 2, 2, 3, 3, 3)}  # what a space exposing node grouping would say
    strategy.init_extra(state)
    w = strategy.edge_weights(state, False)["cell"]
    assert torch.allclose(torch.stack([w[:1].sum(), w[1:3].sum(), w[3:].sum()]), torch.ones(3))


def test_branch_copies_architecture_parameters_and_keeps_them_live():
    strategy, state = _prepared("pcdarts")
    sub = strategy.branch(state, {"cell": {0: 2}}, seed=5)
    assert all(torch.equal(a, b) and a is not b for a, b in zip(state.arch_params(), sub.arch_params()))
    with torch.no_grad():
        sub.extra_params[0][1] += (
            1.0  # what the sub-supernet's optimizer would do (edge 1 vs edge 2 of node 2)
        )
    assert not torch.allclose(
        strategy.edge_weights(sub, False)["cell"], strategy.edge_weights(state, False)["cell"]
    )
    d = strategy.forward_args(sub, for_arch=False)
    assert d.active["cell"][0] == [2] and torch.equal(d.weights["cell"][0], torch.eye(5)[2])
    assert sub.w_opt.param_groups[0]["params"][0] is not state.w_opt.param_groups[0]["params"][0]


def test_rsws_ranks_its_candidates():
    arch, events = _search("rsws", candidates=6, finalists=2)
    done = events[-1]
    assert done.extra["ranked"] == 6 and len(done.extra["finalists"]) == 2 and done.arch == arch.to_str()
    assert all(e.valid_loss is None for e in events if isinstance(e, SearchEpoch))  # no architecture steps


@pytest.mark.parametrize("mode", ["scratch", "inherit"])
def test_fewshot_splits_one_edge_into_sub_supernets(mode):
    arch, events = _search("fewshot", epochs=2, base="gdas", mode=mode)
    subnets = [e for e in events if isinstance(e, Subnet)]
    ops = registry.create("space", "nb201").choices()[0].options
    assert [s.op for s in subnets] == list(ops)
    for s in subnets:  # each sub-supernet keeps the split edge fixed to its op
        assert Arch.from_str(s.arch).genotype[0] == s.op
    numbers = [e.epoch for e in events if isinstance(e, SearchEpoch)]
    if mode == "scratch":  # every sub-supernet trains the full 2 epochs
        assert numbers == list(range(1, 1 + 2 * len(ops)))
    else:  # a warm-up epoch, then one per sub-supernet
        assert numbers == list(range(1, 1 + 1 + len(ops)))
    best = max(subnets, key=lambda s: (s.valid_top1, -s.valid_loss))
    assert arch.to_str() == best.arch
    assert events[-1].extra["mode"] == mode


@pytest.mark.parametrize("mode", ["scratch", "inherit"])
def test_fewshot_cap_stops_between_epochs_of_its_one_clock(mode):
    budget = Budget(epochs=2, batch_size=16, max_seconds=1e-6)
    arch, events = _search("fewshot", base="gdas", mode=mode, warmup=0.5, budget=budget)
    ops = len(registry.create("space", "nb201").choices()[0].options)
    capped = [e for e in events if isinstance(e, Capped)]
    total = 2 * ops if mode == "scratch" else 1 + ops  # every sub-supernet's epochs, in one account
    assert len(capped) == 1 and (capped[0].done, capped[0].total, capped[0].reason) == (
        1,
        total,
        "max_seconds",
    )
    assert len([e for e in events if isinstance(e, SearchEpoch)]) == 1
    subnets = [e for e in events if isinstance(e, Subnet)]
    assert len(subnets) == (1 if mode == "scratch" else 0)  # inherit: the cap stopped the warm-up
    assert isinstance(events[-1], SearchDone) and events[-1].arch == arch.to_str()


def test_fewshot_refuses_a_discrete_base():
    from nasmix.errors import ConfigError

    with pytest.raises(ConfigError, match="not a one-shot"):
        _search("fewshot", base="random")


def test_tiny_supernet_double_check():  # the test network itself is a valid supernet
    net = _TinySupernet()
    out = net(torch.randn(2, *TINY_TASK.shape), net.uniform_weights())
    assert out.shape == (2, 3)


# ---- fidelity to the reference implementations -----------------------------------------------------------


# GDAS's search_func: w_optimizer.step(), then a_optimizer.step()
def test_gdas_steps_weights_before_architecture():
    orders = {}
    for name in ("gdas", "darts"):
        strategy, order = registry.create("strategy", name), []
        arch_step, weight_step = strategy.arch_step, strategy.weight_step
        strategy.arch_step = lambda *a, f=arch_step, o=order: (o.append("arch"), f(*a))[1]
        strategy.weight_step = lambda *a, f=weight_step, o=order: (o.append("weight"), f(*a))[1]
        strategy.search(
            registry.create("space", "nb201"),
            None,
            tiny_search_data(),
            Budget(epochs=1, batch_size=16),
            lambda e: None,
            np.random.default_rng(0),
        )
        orders[name] = order[:4]
    assert orders["gdas"] == ["weight", "arch", "weight", "arch"]
    assert orders["darts"] == ["arch", "weight", "arch", "weight"]  # DARTS's train(): architect.step first


def test_gdas_hard_weights_match_the_computed_ops(monkeypatch):
    """Two Gumbel logits one float apart tie after the softmax; the one-hot must still be the computed op."""
    import nasmix.strategies.gdas as gdas_module

    strategy, state = _prepared("gdas")
    alpha = state.alphas["cell"]
    with torch.no_grad():
        alpha.zero_()
    logp = alpha.detach().float().log_softmax(-1)[0, 0]
    row = torch.full((alpha.shape[1],), -10.0)
    row[0] = -logp  # logit exactly 0
    row[1] = torch.nextafter(-logp, torch.tensor(float("inf")))  # one float above: the argmax
    monkeypatch.setattr(gdas_module, "gumbel", lambda shape, device: row.expand(shape).clone())
    state.extra["tau"] = 10.0
    strategy.begin_step(state)
    d = strategy.drive(state, for_arch=True)
    for e, ops in enumerate(d.active["cell"]):
        assert ops == [1]
        assert d.weights["cell"][e, 1].item() == 1.0, "the computed op must carry the forward weight 1"


def test_drnas_kl_option_has_no_adam_weight_decay():
    """DrNAS's architect: Adam weight decay = reg_scale for its "l2" option and 0 for "kl" (the KL
    replaces it)."""
    strategy, state = _prepared("drnas", reg="kl")
    assert strategy.config.reg_scale > 0 and strategy.regulariser(state) is not None
    assert all(group["weight_decay"] == 0 for group in state.a_opt.param_groups)
    strategy, state = _prepared("drnas")  # "l2", the default of both of DrNAS's scripts
    assert strategy.regulariser(state) is None
    assert all(
        group["weight_decay"] == strategy.config.reg_scale == 1e-3 for group in state.a_opt.param_groups
    )


def test_drnas_pruning_zeroes_pruned_alphas_and_keeps_momentum():
    """DrNAS's prune() sets the pruned alphas to 0; configure_optimizer() carries the momentum buffers
    over."""
    strategy = registry.create("strategy", "drnas", progressive=True, keep=3)
    budget = Budget(epochs=2, batch_size=16)
    state = strategy.prepare(
        registry.create("space", "nb201"),
        tiny_search_data(),
        budget,
        np.random.default_rng(0),
        lambda e: None,
        total_epochs=2,
    )
    strategy.train_epochs(state, 1, 1, budget.clock(timer=None, total=2), lambda e: None)
    momentum = {
        n: state.w_opt.state[p]["momentum_buffer"].clone()
        for n, p in state.net.named_parameters()
        if "momentum_buffer" in state.w_opt.state.get(p, {})
    }
    assert momentum
    strategy.begin_epoch(state, 2, lambda e: None)  # stage 2: prune and widen
    keep = state.extra["keep"]["cell"]
    assert (state.alphas["cell"].detach()[~keep] == 0).all()
    carried = 0
    for n, p in state.net.named_parameters():
        if n in momentum:
            buf = state.w_opt.state[p]["momentum_buffer"]
            region = tuple(slice(0, min(a, b)) for a, b in zip(buf.shape, momentum[n].shape))
            assert torch.equal(buf[region], momentum[n][region]), n
            carried += 1
    assert carried == len(momentum)


def test_rsws_ranks_on_ten_batches_then_the_top_ten():
    """randomNAS_release: each of the random archs is scored on 10 validation minibatches of a cycling
    stream, then the best 10 on the whole validation split."""
    strategy = registry.create("strategy", "rsws", candidates=3)
    assert strategy.config.finalists == 10 and strategy.config.first_batches == 10
    state = strategy.prepare(
        registry.create("space", "nb201"),
        tiny_search_data(),
        Budget(epochs=1, batch_size=16),
        np.random.default_rng(0),
        lambda e: None,
        total_epochs=1,
    )
    calls = []
    state.net.register_forward_hook(lambda mod, inp, out: calls.append(len(inp[0])))
    strategy.finish(state, lambda e: None, np.random.default_rng(1))
    valid_batches = -(-len(tiny_search_data().valid) // 16)
    assert len(calls) == 3 * 10 + 3 * valid_batches


def test_darts_finite_difference_runs_in_ieee_fp32():
    """No TF32 in the Hessian-vector product: its eps perturbation is below TF32's rounding."""
    torch.manual_seed(0)
    net = _TinySupernet()
    alpha = (0.5 * torch.randn(3, 4)).requires_grad_()
    seen = []

    def loss_fn(batch, amp):
        seen.append(
            (amp, torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
        )
        logits = net(batch[0], {"cell": alpha.softmax(-1)})
        return nn.functional.cross_entropy(logits, batch[1]), logits

    batch = (torch.randn(4, 3, 6, 6), torch.randint(0, 3, (4,)))
    before = (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    darts_hypergradient(loss_fn, [alpha], list(net.parameters()), batch, batch, 0.1, amp=True)
    fd = [s for s in seen if not s[0]]
    assert len(fd) == 2 and all(s[1:] == ("ieee", "ieee") for s in fd)
    assert (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before


def test_branch_does_not_share_optimizer_state():
    """Each few-shot sub-supernet starts from the parent's optimizer state, not from the previous
    sibling's."""
    strategy, state = _prepared("darts")
    train, valid = next(state.train.batches(0)), next(state.valid.batches(0))
    strategy.step(state, train, valid)  # momentum buffers and Adam moments now exist

    def snapshot(opt):
        return [{k: v.clone() for k, v in s.items() if torch.is_tensor(v)} for s in opt.state.values()]

    before = snapshot(state.w_opt), snapshot(state.a_opt)
    sub = strategy.branch(state, {"cell": {0: 1}}, seed=1)
    strategy.step(sub, train, valid)
    for old, new in zip(before, (snapshot(state.w_opt), snapshot(state.a_opt))):
        assert len(old) == len(new) and all(torch.equal(a[k], b[k]) for a, b in zip(old, new) for k in a), (
            "training a sub-supernet changed its parent's optimizer state"
        )
