"""Mixed edges computed together (nasmix.spaces.groups) give what MixedEdge gives edge by edge."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from nasmix import registry
from nasmix.spaces.groups import channel_shuffle
from nasmix.spaces.ops import (
    DilConv,
    FactorizedReduce,
    cat_channels,
    channels_last_grad,
    depthwise,
    depthwise_conv,
    guard_strided_pointwise,
)
from nasmix.testing import TINY_TASK


def _step(net, x, y, weights, edge_weights, active):
    net.zero_grad()
    for w in weights.values():
        w.grad = None
    loss = torch.nn.functional.cross_entropy(net(x, weights, active, edge_weights), y)
    leaves = list(weights.values()) + list(net.parameters())
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return loss.detach(), grads


CASES = [
    ("darts", 2, True),
    ("simple_cell", 2, False),
    ("simple_cell", 2, True),
    ("nb201", 1, False),
    ("nb201", 1, True),
]
IDS = [f"{s}-{k}-{'grouped' if g else 'cpu'}" for s, k, g in CASES]


# The DARTS space's CPU form is covered by tests/strategies/test_pinned_search.py (against main's searches).
@pytest.mark.parametrize("space, partial, grouped", CASES, ids=IDS)
def test_edges_together_match_edges_one_by_one(space, partial, grouped):
    """The weighted-sum forward through `EdgeContext.edges` (either form) against the edge-by-edge
    path (the same supernet given `active` lists naming every op): same loss, same gradients for
    the arch weights, the edge weights and every parameter, to float32 rounding of reordered sums."""
    torch.manual_seed(0)
    net = registry.create("space", space).supernet(TINY_TASK, "tiny", partial=partial)
    net = net.to(memory_format=torch.channels_last)
    net.grouped_convs = grouped
    weights = {g: torch.softmax(torch.randn(s), -1).requires_grad_() for g, s in net.arch_shapes.items()}
    shapes = net.arch_shapes
    edge_weights = {g: torch.softmax(torch.randn(s[0]), -1).requires_grad_() for g, s in shapes.items()}
    x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4,))
    every = {g: [list(range(s[1]))] * s[0] for g, s in net.arch_shapes.items()}
    loss, grads = _step(net, x, y, weights, edge_weights, None)
    ref_loss, ref_grads = _step(copy.deepcopy(net), x, y, weights, edge_weights, every)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, ref_grads):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * max(1.0, want.abs().max().item()))


def test_dilated_depthwise_gradients_match_the_convolution():
    torch.manual_seed(0)
    for kernel, padding in ((3, 2), (5, 4)):
        op = DilConv(6, 6, kernel, 1, padding, 2, affine=False)
        x = torch.randn(2, 6, 9, 9, requires_grad=True)
        g = torch.randn(2, 6, 9, 9)
        got = torch.autograd.grad(depthwise(op.op[1], x), [x, op.op[1].weight], g)
        want = torch.autograd.grad(op.op[1](x), [x, op.op[1].weight], g)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_channel_shuffle_keeps_channels_last():
    """PC-DARTS's shuffle of a channels_last tensor: the same permutation of channels as of its NCHW
    copy, still channels_last, and so is the gradient it hands back."""
    x = torch.arange(2 * 8 * 3 * 3, dtype=torch.float32).view(2, 8, 3, 3)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    y = channel_shuffle(xc, 4)
    assert torch.equal(y, channel_shuffle(x, 4)) and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channel_shuffle(x, 4)[:, :4, 0, 0], x[:, [0, 2, 4, 6], 0, 0])
    g = torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last)
    (grad,) = torch.autograd.grad(y, xc, g)
    assert grad.is_contiguous(memory_format=torch.channels_last) and torch.equal(channel_shuffle(grad, 4), g)


def test_cat_channels_hands_each_part_a_channels_last_gradient():
    """The cell output's concatenation and the head's pool (ops.cat_channels, channels_last_grad): on a
    CPU, the gradient reaching each channels_last part is channels_last (a batch norm's backward is
    several times slower on a channel slice), with the same values as torch.cat's; NCHW parts and
    tensors without a gradient are left as they are."""
    torch.manual_seed(0)
    cl = torch.channels_last
    parts = [torch.randn(2, c, 4, 4).contiguous(memory_format=cl).requires_grad_() for c in (3, 5)]
    g = torch.randn(2, 8, 4, 4).contiguous(memory_format=cl)
    got = torch.autograd.grad(cat_channels(parts), parts, g)
    want = torch.autograd.grad(torch.cat(parts, dim=1), parts, g)
    assert not any(w.is_contiguous(memory_format=cl) for w in want)  # torch.cat's: channel slices
    for a, b in zip(got, want):
        assert a.is_contiguous(memory_format=cl) and torch.equal(a, b)
    pooled = torch.nn.functional.adaptive_avg_pool2d(channels_last_grad(parts[0]), 1).sum()
    assert torch.autograd.grad(pooled, parts[0])[0].is_contiguous(memory_format=cl)
    plain = torch.randn(2, 3, 4, 4, requires_grad=True)
    frozen = parts[0].detach()
    assert channels_last_grad(plain) is plain and channels_last_grad(frozen) is frozen


@pytest.mark.parametrize("kernel", [3, 5])
def test_dilated_depthwise_bf16_weight_gradient_is_right_in_channels_last(kernel):
    """Under bf16 autocast (CUDA's settings emulated on a CPU), a dilated depthwise convolution of
    two edges' concatenated weights on a 32 x 32 channels_last input, as the grouped mix runs it:
    both gradients agree with float64 to bf16's precision. oneDNN's own bf16 weight gradient here
    was garbage (up to 1e36, or NaN) on an Intel Xeon with avx512_bf16 (ops.depthwise_conv)."""
    torch.manual_seed(0)
    pad = 2 * (kernel - 1) // 2
    x = torch.randn(8, 16, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(16, 1, kernel, kernel).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(8, 16, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = depthwise_conv(torch.relu(x), w, (1, 1), (pad, pad), (2, 2))
    assert y.dtype == torch.bfloat16
    got = torch.autograd.grad(y, [x, w], g.to(y.dtype))
    xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    want = torch.autograd.grad(F.conv2d(torch.relu(xd), wd, None, 1, pad, 2, 16), [xd, wd], g.double())
    for a, b in zip(got, want):
        assert a.dtype == torch.float32
        assert ((a.double() - b).abs().max() / b.abs().max()).item() < 0.02


@pytest.mark.parametrize("channels", [2, 4, 16])
def test_factorized_reduce_gradients_are_right_in_channels_last(channels):
    """A narrow FactorizedReduce (partial-channel supernets make 2 to 4 channels) in a supernet as a CPU
    search has it (channels_last, its strided 1x1 convolutions guarded): its weight gradients match a
    float64 NCHW reference. oneDNN's own weight gradient of a narrow 1x1 stride-2 convolution is wrong
    on AVX2 CPUs (ops.pointwise)."""
    torch.manual_seed(0)
    op = FactorizedReduce(channels, channels, affine=False)
    ref = copy.deepcopy(op).double()
    assert guard_strided_pointwise(op.to(memory_format=torch.channels_last)) == 2
    x = torch.randn(16, channels, 8, 8)
    g = torch.randn(16, channels, 4, 4)
    got = torch.autograd.grad(
        op(x.contiguous(memory_format=torch.channels_last)), [op.conv1.weight, op.conv2.weight], g
    )
    want = torch.autograd.grad(ref(x.double()), [ref.conv1.weight, ref.conv2.weight], g.double())
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_sampled_edges_together_match_edges_one_by_one(space, monkeypatch):
    """GDAS's mode (one sampled op per edge, hard weights, the unsampled weights added on NB-201)
    through `EdgeContext.edges` against the edge-by-edge path."""
    from nasmix.spaces.supernet import EdgeContext

    torch.manual_seed(1)
    net = registry.create("space", space).supernet(TINY_TASK, "tiny").to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(2)
    picks = {g: torch.randint(0, s[1], (s[0],), generator=gen) for g, s in net.arch_shapes.items()}
    probs = {g: torch.softmax(torch.randn(s), -1).requires_grad_() for g, s in net.arch_shapes.items()}
    active = {g: [[int(i)] for i in p] for g, p in picks.items()}
    x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4,))
    results = []
    for together in (True, False):
        if not together:
            monkeypatch.setattr(EdgeContext, "together", lambda self, group: False)
        one_hot = {g: torch.nn.functional.one_hot(picks[g], p.shape[1]).float() for g, p in probs.items()}
        hard = {g: one_hot[g] - p.detach() + p for g, p in probs.items()}
        logits = net(x, hard, active, None, add_unsampled=space == "nb201")
        loss = torch.nn.functional.cross_entropy(logits, y)
        leaves = list(probs.values()) + list(net.parameters())
        results.append((loss.detach(), torch.autograd.grad(loss, leaves, allow_unused=True)))
    torch.testing.assert_close(results[0][0], results[1][0])
    for got, want in zip(results[0][1], results[1][1]):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_weights_held_reuses_concatenated_weights_until_they_change():
    """Inside `weights_held` (the one-shot step, architecture step first), the weight step's forward
    reuses the grouped convolutions' concatenated weights of the architecture step's forward: fewer
    concatenations, the same gradients as without it; a weight changed in place is concatenated
    afresh."""
    import contextlib

    from torch.utils._python_dispatch import TorchDispatchMode

    from nasmix.spaces.groups import weights_held

    class Cats(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += func is torch.ops.aten.cat.default
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    net = registry.create("space", "darts").supernet(TINY_TASK, "tiny").to(memory_format=torch.channels_last)
    net.grouped_convs = True
    alphas = {g: torch.randn(s).requires_grad_() for g, s in net.arch_shapes.items()}
    x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4,))

    def step(model, held):
        """An architecture step's gradients, then a weight step's, then a forward after a weight moved."""
        loss = lambda w: torch.nn.functional.cross_entropy(model(x, w), y)  # noqa: E731
        with weights_held() if held else contextlib.nullcontext():
            with Cats() as arch:
                soft = {g: a.softmax(-1) for g, a in alphas.items()}
                arch_grads = torch.autograd.grad(loss(soft), alphas.values())
            fixed = {g: a.softmax(-1).detach() for g, a in alphas.items()}
            with Cats() as weight:
                params = list(model.parameters())
                weight_grads = torch.autograd.grad(loss(fixed), params, allow_unused=True)
            with torch.no_grad():
                model.cells[0].edges[0].ops[-1].op[1].weight.add_(0.5)
            moved = loss(fixed).detach()
        return arch_grads, weight_grads, moved, arch.n, weight.n

    ref = copy.deepcopy(net)
    got, want = step(net, True), step(ref, False)
    assert got[4] < got[3] == want[3] == want[4], "the weight step's forward reuses the concatenations"
    for a, b in zip(got[0] + got[1], want[0] + want[1]):
        assert (a is None) == (b is None)
        if b is not None:
            assert torch.equal(a, b)
    assert torch.equal(got[2], want[2]), "a weight changed in place must be concatenated afresh"
