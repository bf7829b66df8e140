"""One-shot strategies against their reference code: DARTS's second-order virtual step, DrNAS's
per-space recipes, few-shot NAS's NB-201 protocol (issue 13, item 6)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nasmix import registry
from nasmix.budget import Budget
from nasmix.data.synthetic import Synthetic
from nasmix.errors import ConfigError
from nasmix.events import PartialFallback, SearchDone, SearchEpoch
from nasmix.search_types import SearchData
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet
from nasmix.strategies.darts import darts_hypergradient
from nasmix.strategies.oneshot import OneShot


def tiny_search_data() -> SearchData:
    """32 + 32 synthetic 8x8 images: the tiny networks run in milliseconds."""
    d = Synthetic(Synthetic.Config(train_size=32, test_size=32, image_size=8, seed=0)).load()
    return SearchData(d.train, d.test, d.task, torch.device("cpu"), size="tiny")


def _prepared(name: str, space: str = "nb201", epochs: int = 1, **cfg):
    strategy = registry.create("strategy", name, **cfg)
    budget = Budget(epochs=epochs, batch_size=16)
    state = strategy.prepare(
        registry.create("space", space),
        tiny_search_data(),
        budget,
        np.random.default_rng(0),
        lambda e: None,
        total_epochs=epochs,
    )
    strategy.begin_epoch(state, 1, lambda e: None)
    return strategy, state


def _search(name: str, space: str = "nb201", epochs: int = 1, **cfg):
    events: list = []
    strategy = registry.create("strategy", name, **cfg)
    arch = strategy.search(
        registry.create("space", space),
        None,
        tiny_search_data(),
        Budget(epochs=epochs, candidates=4, batch_size=16),
        events.append,
        np.random.default_rng(3),
    )
    return strategy, arch, events


class _Chain(Supernet):
    """A stem and two mixed edges in a row (double precision in the finite-difference test)."""

    def __init__(self, c: int = 3, classes: int = 3):
        super().__init__()
        ops = ("skip_connect", "sep_conv_3x3", "avg_pool_3x3")
        self.arch_shapes, self.op_names = {"cell": (2, len(ops))}, {"cell": ops}
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.edges = nn.ModuleList(MixedEdge(c, 1, ops) for _ in range(2))
        self.head = nn.Linear(c, classes)

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        h = self.stem(x)
        for e, edge in enumerate(self.edges):
            h = ctx.edge("cell", e, edge, h)
        return self.head(h.mean((2, 3)))


# ---- DARTS: the virtual step of its architect ----------------------------------------------------------


def test_second_order_gradient_with_momentum_and_weight_decay_matches_finite_differences():
    """grad_a L_val(w - xi (mu buf + grad_w L_train + wd w), a), against exact finite differences."""
    torch.manual_seed(0)
    net = _Chain().double()
    params = list(net.parameters())
    buffers = [torch.randn_like(p) for p in params]
    mu, wd, xi = 0.9, 0.05, 0.1
    alpha = (0.5 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()
    gen = torch.Generator().manual_seed(1)

    def batch():
        return (
            torch.randn(6, 3, 5, 5, generator=gen, dtype=torch.float64),
            torch.randint(0, 3, (6,), generator=gen),
        )

    train, valid = batch(), batch()

    def loss_fn(batch, amp, a=alpha):
        logits = net(batch[0], {"cell": a.softmax(-1)})
        return nn.functional.cross_entropy(logits, batch[1]), logits

    start = [p.detach().clone() for p in params]
    hyper, _, _ = darts_hypergradient(
        loss_fn,
        [alpha],
        params,
        train,
        valid,
        xi,
        scale=1e-6,
        momentum_buffers=buffers,
        momentum=mu,
        weight_decay=wd,
    )
    assert all(torch.equal(p, s) for p, s in zip(params, start)), "the weights must end where they started"

    def unrolled(a: torch.Tensor) -> float:
        g = torch.autograd.grad(loss_fn(train, False, a)[0], params)
        with torch.no_grad():
            for p, gi, b in zip(params, g, buffers):
                p.sub_(xi * (mu * b + gi + wd * p))
            value = float(loss_fn(valid, False, a)[0])
            for p, s in zip(params, start):
                p.copy_(s)
        return value

    h, fd = 1e-5, torch.zeros_like(alpha)
    for idx in np.ndindex(*alpha.shape):
        up, down = alpha.detach().clone(), alpha.detach().clone()
        up[idx] += h
        down[idx] -= h
        fd[idx] = (unrolled(up) - unrolled(down)) / (2 * h)
    assert torch.allclose(hyper[0], fd, rtol=1e-3, atol=1e-7), (hyper[0] - fd).abs().max()
    plain, _, _ = darts_hypergradient(loss_fn, [alpha], params, train, valid, xi, scale=1e-6)
    assert not torch.allclose(plain[0], fd, rtol=1e-3, atol=1e-7), "the test must tell the steps apart"


def test_virtual_step_is_the_weight_optimizers_next_step():
    """DARTS's architect unrolls to theta - eta (mu buf + grad + wd theta): SGD's next step, unclipped."""
    strategy, state = _prepared("darts", order=2)
    batches = list(zip(state.train.batches(0), state.valid.batches(1)))
    strategy.step(state, *batches[0])  # the momentum buffers now exist
    state.lr = 0.05
    for group in state.w_opt.param_groups:
        group["lr"] = state.lr
    train, valid = batches[1]
    reference = copy.deepcopy(state.net)
    ref_params = [p for p in reference.parameters() if p.requires_grad]
    sgd = torch.optim.SGD(ref_params, lr=state.lr, momentum=0.9, weight_decay=3e-4)
    sgd.load_state_dict(copy.deepcopy(state.w_opt.state_dict()))  # load_state_dict would share the buffers
    weights = {g: a.detach().softmax(-1) for g, a in state.alphas.items()}
    nn.functional.cross_entropy(reference(train[0], weights), train[1]).backward()
    sgd.step()

    seen = []
    forward = strategy._forward
    strategy._forward = lambda st, x, d: (
        seen.append([p.detach().clone() for p in st.weight_params()]),
        forward(st, x, d),
    )[1]
    strategy.arch_step(state, train, valid)
    virtual = seen[1]  # calls: L_train at w, L_val at w', then the two finite-difference sides
    assert len(virtual) == len(ref_params)
    for got, want in zip(virtual, ref_params):
        torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-6)


# ---- DrNAS: each space's recipe ------------------------------------------------------------------------


def test_drnas_recipes_follow_each_script():
    drnas = registry.create("strategy", "drnas", progressive=True)
    darts = drnas.resolved("darts")  # DARTS-space/train_search.py
    assert (darts.stage_partial, darts.keep, darts.arch_warmup, darts.drop_none) == ((6, 4), 4, 0.4, True)
    assert (darts.lr, darts.lr_min, darts.arch_lr) == (0.1, 0.0, 6e-4)
    nb201 = drnas.resolved("nb201")  # 201-space/train_search_progressive.py
    assert (nb201.stage_partial, nb201.keep, nb201.arch_warmup, nb201.drop_none) == ((4, 2), 3, 0.2, False)
    assert (nb201.lr, nb201.lr_min, nb201.arch_lr) == (0.025, 0.001, 3e-4)
    plain = registry.create("strategy", "drnas").resolved("darts")  # 201-space/train_search.py's rates, k = 1
    assert (plain.lr, plain.lr_min, plain.arch_lr) == (0.025, 0.001, 3e-4)
    assert (plain.partial, plain.drop_none) == (1, True)
    for c in (darts, nb201, plain):  # both scripts default to reg_type "l2": Adam weight decay = reg_scale
        assert c.reg == "l2" and c.arch_weight_decay == c.reg_scale == 1e-3
    assert registry.create("strategy", "drnas", reg="kl").resolved("nb201").arch_weight_decay == 0.0
    mine = registry.create("strategy", "drnas", progressive=True, keep=2, lr=0.05, drop_none=False)
    given = mine.resolved("darts")  # the values given stay
    assert (given.keep, given.lr, given.drop_none, given.stage_partial) == (2, 0.05, False, (6, 4))
    with pytest.raises(ConfigError, match="reg"):
        registry.create("strategy", "drnas", reg="l1")


def test_drnas_searches_the_darts_space_without_none():
    """DrNAS's DARTS-space PRIMITIVES have 7 ops: the Dirichlet weights, the KL and the decode see those 7."""
    strategy, state = _prepared("drnas", space="darts", reg="kl")
    none = state.net.op_names["normal"].index("none")
    d = strategy.drive(state, for_arch=True)
    for w in d.weights.values():
        assert (w[:, none] == 0).all() and torch.allclose(w.sum(-1), torch.ones(len(w)), atol=1e-6)
    assert all((p[:, none] == 0).all() for p in strategy.probs(state).values())
    kl = strategy.regulariser(state)
    from torch.distributions import Dirichlet, kl_divergence

    conc = torch.ones(14, 7)  # ELU(0) + 1, with the alphas set to 0 below
    with torch.no_grad():
        for a in state.alphas.values():
            a.zero_()
    expected = 2 * 1e-3 * kl_divergence(Dirichlet(conc), Dirichlet(torch.ones(14, 7))).sum()
    assert torch.allclose(strategy.regulariser(state), expected) and kl is not None
    _, state201 = _prepared("drnas")  # NB-201 keeps its 5 ops, none included
    assert state201.extra["ops"] is None and state201.extra["keep"] is None


def test_drnas_progressive_widens_in_the_darts_space():
    """DARTS-space recipe K 6 -> 4: 6 does not divide the tiny network's 8 channels, so stage 1 takes 8
    (above, as none below 6 exceeds 4), stage 2 keeps 4: the ops really widen. Pruning keeps 4 of the 7
    ops, never none."""
    _strategy, _arch, events = _search("drnas", space="darts", epochs=2, progressive=True)
    fallback = [e for e in events if isinstance(e, PartialFallback)]
    assert len(fallback) == 1 and (fallback[0].requested, fallback[0].used) == (6, 8)
    epochs = [e for e in events if isinstance(e, SearchEpoch)]
    assert [(e.extra["stage"], e.partial) for e in epochs] == [(1, 8), (2, 4)]
    strategy, state = _prepared("drnas", space="darts", epochs=2, progressive=True)
    strategy.begin_epoch(state, 2, lambda e: None)
    none = state.net.op_names["normal"].index("none")
    for g, mask in state.extra["keep"].items():
        assert (mask.sum(1) == 4).all() and not mask[:, none].any(), g
        assert all(len(ops) == 4 and none not in ops for ops in state.extra["active"][g])


@pytest.mark.parametrize("space, counted", [("nb201", True), ("darts", False)])
def test_drnas_clips_as_each_script(space, counted, monkeypatch):
    """201-space: alpha is a parameter of the model, so clip_grad_norm_(model.parameters()) counts its
    gradient on the weight batch (zeroed before that forward); DARTS-space: alpha is not, the weights only."""
    strategy, state = _prepared("drnas", space=space)
    train, valid = next(state.train.batches(0)), next(state.valid.batches(1))
    strategy.arch_step(state, train, valid)
    arch_grads = [a.grad.clone() for a in state.arch_params()]
    clipped = []
    real = nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        nn.utils,
        "clip_grad_norm_",
        lambda params, *a, **k: clipped.append(list(params)) or real(params, *a, **k),
    )
    strategy.weight_step(state, *train)
    ids = {id(p) for p in clipped[0]}
    assert all(id(p) in ids for p in state.weight_params())
    assert all((id(a) in ids) == counted for a in state.arch_params())
    for a, before in zip(state.arch_params(), arch_grads):
        if counted:  # the weight batch's gradient, not the architecture step's plus it
            assert a.grad is not None and not torch.allclose(a.grad, before)
        else:
            assert torch.equal(a.grad, before)


def test_drnas_nb201_recipe_starts_architecture_steps_after_a_fifth_of_each_stage():
    strategy, state = _prepared("drnas", epochs=100, progressive=True)
    on = [e for e in range(1, 101) if strategy.updates_arch(state, e)]
    assert on == list(range(11, 51)) + list(range(61, 101))  # DrNAS: `if epoch >= 10` in each 50-epoch stage


# ---- few-shot NAS: the authors' NB-201 protocol --------------------------------------------------------


def test_fewshot_trains_every_sub_supernet_from_scratch_by_default(monkeypatch):
    """DARTS-V2-few-shot.py: one job per op of edge 1<-0, each a fresh supernet with the full schedule."""
    prepared, branched = [], []
    real_prepare, real_branch = OneShot.prepare, OneShot.branch

    def counted(calls, method):
        return lambda self, *a, **k: calls.append(1) or method(self, *a, **k)

    monkeypatch.setattr(OneShot, "prepare", counted(prepared, real_prepare))
    monkeypatch.setattr(OneShot, "branch", counted(branched, real_branch))
    _strategy, _arch, events = _search("fewshot", epochs=2, base="gdas")
    assert len(prepared) == 5 and not branched
    epochs = [e for e in events if isinstance(e, SearchEpoch)]
    assert [e.extra["subnet"] for e in epochs] == [k for k in range(5) for _ in range(2)]
    lrs = [e.lr for e in epochs]
    assert lrs[0::2] == [lrs[0]] * 5 and lrs[1::2] == [lrs[1]] * 5  # the whole schedule, afresh each time
    done = events[-1]
    assert (
        isinstance(done, SearchDone) and done.extra["mode"] == "scratch" and done.extra["split"] == "cell:0"
    )


def test_fewshot_paper_protocol_uses_second_order_darts():
    fewshot = registry.create("strategy", "fewshot")
    assert (fewshot.config.base, fewshot.config.mode) == ("darts", "scratch")
    assert fewshot.base().config.order == 2
    assert registry.create("strategy", "fewshot", base_options="").base().config.order == 1
    assert registry.create("strategy", "fewshot", base="gdas").base().config.tau_max == 10.0
    options = "reg=kl, progressive=true"
    tuned = registry.create("strategy", "fewshot", base="drnas", base_options=options).base()
    assert tuned.config.reg == "kl" and tuned.config.progressive is True
    with pytest.raises(ConfigError, match="key=value"):
        registry.create("strategy", "fewshot", base_options="order")
    with pytest.raises(ConfigError, match="mode"):
        registry.create("strategy", "fewshot", mode="warm")


def test_fewshot_split_edge_gets_no_architecture_gradient():
    """The split edge holds its op alone, weight 1: its alpha row is never driven nor decoded."""
    strategy = registry.create("strategy", "darts")
    state = strategy.prepare(
        registry.create("space", "nb201"),
        tiny_search_data(),
        Budget(epochs=1, batch_size=16),
        np.random.default_rng(0),
        lambda e: None,
        total_epochs=1,
    )
    state.restrict = {"cell": {0: 3}}
    train, valid = next(state.train.batches(0)), next(state.valid.batches(1))
    strategy.arch_step(state, train, valid)
    grad = state.alphas["cell"].grad
    assert (grad[0] == 0).all() and (grad[1:] != 0).any()
    assert strategy.decode(state).genotype[0] == "nor_conv_3x3"


def test_rsws_draws_an_epochs_paths_up_front():
    """RS-WS's steps copy no path to the device: begin_epoch drew the epoch's paths into one tensor
    per group (one copy), the same paths, in the same order, as drawing one per step from the
    epoch's generator; a step beyond them draws on from that generator."""
    from nasmix.train import epoch_seed

    strategy, state = _prepared("rsws")
    steps = len(state.train)
    assert steps > 1
    rng = np.random.default_rng(epoch_seed(state.seed, 1) + 3)
    expected = [state.space.sample(rng) for _ in range(steps + 1)]
    drives = [strategy.drive(state, for_arch=False) for _ in range(steps + 1)]
    assert [d.active for d in drives] == [state.space.active(a) for a in expected]
    for d, arch in zip(drives, expected):
        for g, w in state.space.arch_weights(arch).items():
            assert torch.equal(d.weights[g], w)
    storages = {d.weights["cell"].untyped_storage().data_ptr() for d in drives[:steps]}
    assert len(storages) == 1  # views of the epoch's one tensor: no tensor made per step
    assert drives[-1].weights["cell"].untyped_storage().data_ptr() not in storages
