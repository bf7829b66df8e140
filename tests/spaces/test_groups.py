"""Mixed edges computed together (nasmix.spaces.groups) give what MixedEdge gives edge by edge."""

from __future__ import annotations

import copy

import pytest
import torch

from nasmix import registry
from nasmix.spaces.ops import DilConv, depthwise
from nasmix.testing import TINY_TASK


def _step(net, x, y, weights, edge_weights, active):
    net.zero_grad()
    for w in weights.values():
        w.grad = None
    loss = torch.nn.functional.cross_entropy(net(x, weights, active, edge_weights), y)
    grads = torch.autograd.grad(loss, list(weights.values()) + [p for p in net.parameters()], allow_unused=True)
    return loss.detach(), grads


@pytest.mark.parametrize("grouped", [False, True], ids=["cpu-edges", "grouped-convs"])
@pytest.mark.parametrize("space, partial", [("darts", 2), ("simple_cell", 2), ("nb201", 1)])
def test_edges_together_match_edges_one_by_one(space, partial, grouped):
    """The weighted-sum forward through `EdgeContext.edges` (either form) against the edge-by-edge
    path (the same supernet given `active` lists naming every op): same loss, same gradients for
    the arch weights, the edge weights and every parameter, to float32 rounding of reordered sums."""
    torch.manual_seed(0)
    net = registry.create("space", space).supernet(TINY_TASK, "tiny", partial=partial)
    net = net.to(memory_format=torch.channels_last)
    net.grouped_convs = grouped
    weights = {g: torch.softmax(torch.randn(s), -1).requires_grad_() for g, s in net.arch_shapes.items()}
    edge_weights = {g: torch.softmax(torch.randn(s[0]), -1).requires_grad_() for g, s in net.arch_shapes.items()}
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
        hard = {g: torch.nn.functional.one_hot(picks[g], p.shape[1]).float() - p.detach() + p for g, p in probs.items()}
        loss = torch.nn.functional.cross_entropy(net(x, hard, active, None, add_unsampled=space == "nb201"), y)
        results.append((loss.detach(), torch.autograd.grad(loss, list(probs.values()) + list(net.parameters()),
                                                            allow_unused=True)))
    torch.testing.assert_close(results[0][0], results[1][0])
    for got, want in zip(results[0][1], results[1][1]):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
