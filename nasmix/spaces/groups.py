"""Mixed edges that read the same input, computed together (the weighted-sum mode).

A cell's mixed edges are independent given their input: every edge leaving
node j reads node j. `mixed_edges` computes all of them at once, op kind by
op kind, instead of edge by edge and op by op:

- ops without weights are computed once and shared by every edge: the
  pools (and the parameter-free batch norm that follows them in the DARTS
  search), the identity; and so is the ReLU that opens the convolutions;
- ops with weights run batched across the edges: the ReLU'd input is
  repeated once per edge, and each convolution becomes one grouped
  convolution whose weight is the edges' weights concatenated (a depthwise
  convolution stays depthwise, a full one gets one group per edge), each
  batch norm one call over all the edges' channels;
- the weighted sum takes one multiply-add per op kind for all edges.

Nothing changes in what is computed, only the order of some floating-point
sums: the parameters stay in each edge's own modules (so GDAS's unsampled
ops still get no gradient, and state dicts keep their names), and every
edge's output is the same function of its input and weights as
`MixedEdge.forward`. Batch norms in mixed ops keep no running statistics
(see `MixedEdge`), so sharing one is exact.

Only the weighted-sum mode (every edge computes every op) goes through here;
sampled ops (`active` lists) and op types it does not know run edge by edge.

Example:
    >>> import torch
    >>> from nasmix.spaces.supernet import MixedEdge
    >>> edges = [MixedEdge(4, 1, ("none", "max_pool_3x3", "sep_conv_3x3")) for _ in range(3)]
    >>> x, w = torch.randn(2, 4, 8, 8), torch.rand(3, 3)
    >>> together = mixed_edges(edges, x, w)
    >>> alone = [e(x, w[i]) for i, e in enumerate(edges)]
    >>> all(torch.allclose(a, b, atol=1e-5) for a, b in zip(together, alone))
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nasmix.spaces.ops import DilConv, FactorizedReduce, ReLUConvBN, SepConv, Zero

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class _Kind:
    """How op `index` of every edge is computed: `how` names the batched recipe."""

    index: int
    how: str  # "none", "identity", "pool", "pool_conv", "sep", "dil", "rcb", "fr", "module"
    pool: nn.Module | None = None
    bn: bool = False  # a parameter-free batch norm after the pool


class _Plan:
    """What `mixed_edges` does for one list of edges (built once, kept on the first edge)."""

    def __init__(self, edges: Sequence[nn.Module]):
        self.edges = list(edges)
        first = edges[0]
        self.kinds = [_kind(i, op, getattr(first, "_skip", set())) for i, op in enumerate(first.ops)]
        self.hows = [k.how for k in self.kinds]
        same = all(
            type(e) is type(first)
            and len(e.ops) == len(first.ops)
            and [_kind(i, op, getattr(e, "_skip", set())).how for i, op in enumerate(e.ops)] == self.hows
            and getattr(e, "partial", 1) == getattr(first, "partial", 1)
            for e in edges
        )
        self.ok = same and any(k.how not in ("none",) for k in self.kinds)
        self.partial = getattr(first, "partial", 1)
        self.bypass_pool = getattr(first, "bypass_pool", None)

    def matches(self, edges: Sequence[nn.Module]) -> bool:
        return len(edges) == len(self.edges) and all(a is b for a, b in zip(edges, self.edges))


def _kind(index: int, op: nn.Module, skip: set) -> _Kind:
    if index in skip or isinstance(op, Zero):
        return _Kind(index, "none")
    if isinstance(op, nn.Identity):
        return _Kind(index, "identity")
    if isinstance(op, _POOLS):
        return _Kind(index, "pool", pool=op)
    if isinstance(op, nn.Sequential) and len(op) == 2 and isinstance(op[0], _POOLS) and _plain_bn(op[1]):
        return _Kind(index, "pool", pool=op[0], bn=True)
    if isinstance(op, nn.Sequential) and [type(m) for m in op][1:] == [nn.Conv2d, nn.BatchNorm2d]:
        if isinstance(op[0], _POOLS):  # NASLib's widening pool: pool, 1x1 convolution, batch norm
            return _Kind(index, "pool_conv", pool=op[0])
    if isinstance(op, SepConv):
        return _Kind(index, "sep")
    if isinstance(op, DilConv):
        return _Kind(index, "dil")
    if isinstance(op, ReLUConvBN):
        return _Kind(index, "rcb")
    if isinstance(op, FactorizedReduce):
        return _Kind(index, "fr")
    return _Kind(index, "module")


def _plain_bn(m: nn.Module) -> bool:
    return isinstance(m, nn.BatchNorm2d) and not m.affine and not m.track_running_stats


def _plan(edges: Sequence[nn.Module]) -> _Plan:
    plan = getattr(edges[0], "_group_plan", None)
    if plan is None or not plan.matches(edges):
        plan = _Plan(edges)
        edges[0]._group_plan = plan  # a plain attribute: deep copies carry it, pointing at their own edges
    return plan


def batchable(edges: Sequence[nn.Module]) -> bool:
    """Whether `mixed_edges` can compute these edges together."""
    return len(edges) > 0 and _plan(edges).ok


class _Batch:
    """The batched computations of one call, sharing the ReLU'd, repeated input."""

    def __init__(self, edges: Sequence[nn.Module], x: torch.Tensor):
        self.edges, self.x, self.n = edges, x, len(edges)
        self._relu: torch.Tensor | None = None
        self._rep: torch.Tensor | None = None

    @property
    def relu(self) -> torch.Tensor:
        if self._relu is None:
            self._relu = F.relu(self.x)
        return self._relu

    @property
    def rep(self) -> torch.Tensor:
        """relu(x) once per edge along the channels: (B, E*C, H, W), edge-major."""
        if self._rep is None:
            self._rep = self.relu if self.n == 1 else torch.cat([self.relu] * self.n, dim=1)
        return self._rep

    def conv(self, x: torch.Tensor, convs: list[nn.Conv2d]) -> torch.Tensor:
        """Each edge's conv on its own slice of channels of x, as one grouped convolution."""
        c = convs[0]
        weight = convs[0].weight if self.n == 1 else torch.cat([m.weight for m in convs], dim=0)
        return F.conv2d(x, weight, None, c.stride, c.padding, c.dilation, c.groups * self.n)

    def bn(self, x: torch.Tensor, bns: list[nn.BatchNorm2d]) -> torch.Tensor:
        """Each edge's batch norm (batch statistics) over its channels, as one call."""
        b = bns[0]
        weight = bias = None
        if b.affine:
            weight = b.weight if self.n == 1 else torch.cat([m.weight for m in bns])
            bias = b.bias if self.n == 1 else torch.cat([m.bias for m in bns])
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, b.eps)

    def dil(self, x: torch.Tensor, blocks: list[nn.Sequential]) -> torch.Tensor:
        """DilConv bodies (ReLU, depthwise, pointwise, BN) on the repeated input x (ReLU'd already)."""
        y = self.conv(x, [b[1] for b in blocks])
        y = self.conv(y, [b[2] for b in blocks])
        return self.bn(y, [b[3] for b in blocks])

    def run(self, kind: _Kind) -> torch.Tensor:
        """Op `kind.index` of every edge: (B, E, C, H, W), or (B, 1, C, H, W) when shared."""
        ops = [e.ops[kind.index] for e in self.edges]
        b = self.x.shape[0]
        if kind.how == "identity":
            return self.x.unsqueeze(1)
        if kind.how == "pool":
            y = kind.pool(self.x)
            if kind.bn:
                y = F.batch_norm(y, None, None, None, None, True, 0.0, ops[0][1].eps)
            return y.unsqueeze(1)
        if kind.how == "pool_conv":
            y = kind.pool(self.x)
            y = torch.cat([y] * self.n, dim=1) if self.n > 1 else y
            y = self.bn(self.conv(y, [o[1] for o in ops]), [o[2] for o in ops])
        elif kind.how == "sep":
            y = self.dil(self.rep, [o.op[0].op for o in ops])
            y = self.dil(F.relu(y), [o.op[1].op for o in ops])
        elif kind.how == "dil":
            y = self.dil(self.rep, [o.op for o in ops])
        elif kind.how == "rcb":
            y = self.bn(self.conv(self.rep, [o.op[1] for o in ops]), [o.op[2] for o in ops])
        elif kind.how == "fr":
            rep = self.rep
            shifted = F.pad(rep[:, :, 1:, 1:], (0, 1, 0, 1))
            y1 = self.conv(rep, [o.conv1 for o in ops])
            y2 = self.conv(shifted, [o.conv2 for o in ops])
            y = torch.cat([y1.unflatten(1, (self.n, -1)), y2.unflatten(1, (self.n, -1))], dim=2).flatten(1, 2)
            y = self.bn(y, [o.bn for o in ops])
        else:
            return torch.stack([op(self.x) for op in ops], dim=1)
        return y.view(b, self.n, -1, *y.shape[2:])


def mixed_edges(
    edges: Sequence[nn.Module], x: torch.Tensor, w: torch.Tensor, edge_weights: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """The outputs of mixed edges that all read x, every op of each weighted (MixedEdge semantics).

    Args:
        edges: `MixedEdge`s (or `WideMixedEdge`s) of one structure; `batchable(edges)` must hold.
        x: their common input.
        w: (edges, ops) op weights, row e for edge e.
        edge_weights: optional (edges,) scale of each edge's output (PC-DARTS).

    Returns:
        One output per edge.
    """
    plan = _plan(edges)
    n = len(edges)
    if plan.partial > 1:
        k = x.shape[1] // plan.partial
        x, rest = x[:, :k], x[:, k:]
    batch = _Batch(edges, x)
    cols = w.t().reshape(w.shape[1], 1, n, 1, 1, 1)  # cols[i]: the weights of op i, broadcast over (B, E, C, H, W)
    out = None
    for kind in plan.kinds:
        if kind.how == "none":  # adds zeros; its weight's gradient is zero anyway
            continue
        y = batch.run(kind)
        out = cols[kind.index] * y if out is None else torch.addcmul(out, cols[kind.index], y)
    if plan.partial > 1:
        rest = plan.bypass_pool(rest) if plan.bypass_pool is not None else rest
        mixed = torch.cat([out, rest.unsqueeze(1).expand(-1, n, -1, -1, -1)], dim=2)
        b, _, c, h, wd = mixed.shape
        out = mixed.view(b, n, plan.partial, c // plan.partial, h, wd).transpose(2, 3).reshape(b, n, c, h, wd)
    if edge_weights is not None:
        out = out * edge_weights.view(1, n, 1, 1, 1)
    return list(out.unbind(1))
