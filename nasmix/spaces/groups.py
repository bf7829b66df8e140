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
- the weighted sum: an op that ends in a batch norm without affine parameters
  is weighted by that batch norm (the edges' mixing weights of the op, each
  repeated over its edge's channels, as the batch norm's weight: w * BN(y)
  is BN(y) with weight w), and the op kinds are added; the others (the
  shared pools and identity, an op of no known form) are stacked and
  weighted by one multiply-sum per family.

Nothing changes in what is computed, only the rounding of some floating-point
sums and products: the parameters stay in each edge's own modules (so GDAS's unsampled
ops still get no gradient, and state dicts keep their names), and every
edge's output is the same function of its input and weights as
`MixedEdge.forward`. Batch norms in mixed ops keep no running statistics
(see `MixedEdge`), so sharing one is exact.

The grouped form serves the weighted-sum mode (every edge computes every op);
with `active` lists (GDAS's sampled op, DrNAS's kept ops) the edges still
share their input's ReLU and pools, each computing its own ops.

Example:
    >>> import torch
    >>> from nasmix.spaces.supernet import MixedEdge
    >>> edges = [MixedEdge(4, 1, ("none", "max_pool_3x3", "sep_conv_3x3")) for _ in range(3)]
    >>> x, w = torch.randn(2, 4, 8, 8), torch.rand(3, 3)
    >>> together = mixed_edges(edges, x, w)
    >>> alone = [e(x, w[i]) for i, e in enumerate(edges)]
    >>> all(torch.allclose(a, b, atol=1e-5) for a, b in zip(together, alone))
    True
    >>> grouped = mixed_edges(edges, x, w, grouped=True)
    >>> all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grouped, alone))
    True
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from nasmix.spaces.ops import (
    DilConv,
    FactorizedReduce,
    ReLUConvBN,
    SepConv,
    Zero,
    cat_channels,
    depthwise,
    depthwise_conv,
    pointwise,
)

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class _Kind:
    """How op `index` of every edge is computed: `how` names the batched recipe."""

    index: int
    how: str  # "none", "identity", "pool", "pool_conv", "sep", "dil", "rcb", "fr", "module"
    bn: bool = False  # a parameter-free batch norm after the pool


class _Plan:
    """What `mixed_edges` does for one list of edges (built once, kept on the first edge)."""

    def __init__(self, edges: Sequence[nn.Module]):
        self.edges = list(edges)
        # Edges and ops are read by structure (ops, conv1, op[1], ...), which nn.Module's typing
        # (every attribute `Tensor | Module`) cannot express: Any for what `_kind` has matched.
        first: Any = edges[0]
        self.kinds = [_kind(i, op, getattr(first, "_skip", set())) for i, op in enumerate(first.ops)]
        self.hows = [k.how for k in self.kinds]
        same = all(
            type(e) is type(first)
            and len(_ops(e)) == len(self.kinds)
            and [_kind(i, op, getattr(e, "_skip", set())).how for i, op in enumerate(_ops(e))] == self.hows
            and getattr(e, "partial", 1) == getattr(first, "partial", 1)
            for e in edges
        )
        self.ok = same and any(k.how not in ("none",) for k in self.kinds)
        # The grouped mix: an op ending in a batch norm without affine parameters is weighted by
        # that batch norm (its weight the op's mixing weight); the rest are stacked and weighted in
        # one multiply-sum per family (the edges' own ops, then the shared ones).
        ends = {k.index: _last_bn(k, first.ops[k.index]) for k in self.kinds}
        widths = {bn.num_features for bn in ends.values() if bn is not None}
        self.fold_channels = widths.pop() if len(widths) == 1 else 0  # the ops' output channels
        self.folded = [i for i, bn in ends.items() if bn is not None] if self.fold_channels else []
        own = [
            k.index
            for k in self.kinds
            if k.how not in ("none", "identity", "pool") and k.index not in self.folded
        ]
        common = [k.index for k in self.kinds if k.how in ("identity", "pool")]
        self.families = [f for f in (own, common) if f]
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
        return _Kind(index, "pool")
    if isinstance(op, nn.Sequential) and len(op) == 2 and isinstance(op[0], _POOLS) and _plain_bn(op[1]):
        return _Kind(index, "pool", bn=True)
    # NASLib's widening pool: pool, 1x1 convolution, batch norm
    if (
        isinstance(op, nn.Sequential)
        and [type(m) for m in op][1:] == [nn.Conv2d, nn.BatchNorm2d]
        and isinstance(op[0], _POOLS)
    ):
        return _Kind(index, "pool_conv")
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


def _last_bn(kind: _Kind, op: Any) -> nn.BatchNorm2d | None:
    """The batch norm that ends op `kind` when it has no affine parameters (the grouped mix puts
    the op's weight there), else None."""
    bn = {
        "pool_conv": lambda: op[2],
        "sep": lambda: op.op[1].op[3],
        "dil": lambda: op.op[3],
        "rcb": lambda: op.op[2],
        "fr": lambda: op.bn,
    }.get(kind.how)
    last = None if bn is None else bn()
    return last if isinstance(last, nn.BatchNorm2d) and not last.affine else None


def _ops(edge: nn.Module) -> Any:
    """A mixed edge's candidate ops (an nn.ModuleList; Any: read by structure, see _Plan)."""
    return edge.ops


def _plan(edges: Sequence[nn.Module]) -> _Plan:
    first: Any = edges[0]
    plan = getattr(first, "_group_plan", None)
    if plan is None or not plan.matches(edges):
        plan = _Plan(edges)
        first._group_plan = plan  # a plain attribute: deep copies carry it, pointing at their own edges
    return plan


@functools.cache
def others(n: int, ops: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The op indices of 0..n-1 not in `ops`, as a tensor kept on `device` (indexing with a
    Python list would copy one to the device on every call)."""
    return torch.tensor([i for i in range(n) if i not in ops], device=device, dtype=torch.long)


@functools.cache
def _mix_index(rows: tuple[int, ...], m: int, family: tuple[int, ...], channels: int, device: torch.device):
    ops = torch.tensor(family).view(-1, 1)
    flat = torch.tensor(rows).view(1, -1) * m + ops  # (ops, edges): offsets into w.flatten()
    n = len(rows)
    shape = (len(family), n * channels) if channels else (len(family), 1, n, 1, 1, 1)
    return (flat.repeat_interleave(channels, dim=1) if channels else flat).reshape(shape).to(device)


def mix_weights(
    w: torch.Tensor, rows: Sequence[int], family: Sequence[int], channels: int = 0
) -> torch.Tensor:
    """The weights of ops `family` on edges `rows` of a weight group w (edges, ops), gathered in
    one indexing: (ops, 1, edges, 1, 1, 1), to multiply a stack of the ops' outputs (B, edges,
    C, H, W); or with `channels`, (ops, edges x channels), each edge's weight repeated over its
    channels (the weight of a batch norm over the edges' channels)."""
    index = _mix_index(tuple(rows), w.shape[1], tuple(family), channels, w.device)
    return w.reshape(-1)[index]


def batchable(edges: Sequence[nn.Module]) -> bool:
    """Whether `mixed_edges` can compute these edges together."""
    return len(edges) > 0 and _plan(edges).ok


class _Shared:
    """What the edges of one call share: the input, its ReLU, the parameter-free ops' outputs."""

    def __init__(self, edges: Sequence[nn.Module], x: torch.Tensor):
        self.edges: Sequence[Any] = edges  # read by structure (see _Plan)
        self.x, self.n = x, len(edges)
        self._relu: torch.Tensor | None = None
        self._rep: torch.Tensor | None = None
        self._shifted: torch.Tensor | None = None
        self._pooled: dict[int, torch.Tensor] = {}

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

    def shifted(self, z: torch.Tensor) -> torch.Tensor:
        """FactorizedReduce's second path input: z shifted by one pixel (z is relu or rep)."""
        return F.pad(z[:, :, 1:, 1:], (0, 1, 0, 1))

    def pooled(self, kind: _Kind, op: Any = None) -> torch.Tensor:
        """A pool of x, with its parameter-free batch norm where it has one (computed once, by the
        module of the first edge that asks: `op`, that edge's pool op, or the first edge's)."""
        if kind.index not in self._pooled:
            op = self.edges[0].ops[kind.index] if op is None else op
            y = op[0](self.x) if isinstance(op, nn.Sequential) else op(self.x)
            if kind.bn:
                y = batch_stats_norm(y, None, op[1].eps)
            self._pooled[kind.index] = y
        return self._pooled[kind.index]


def batch_stats_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """Batch norm by the batch's statistics, without running statistics or a bias: the kernel
    `F.batch_norm` reaches for it on a CPU, and on CUDA too (cuDNN's needs a weight and a
    bias), called directly (not through batch_norm's composite, which allocates an unused
    reserve tensor on every call)."""
    return torch.native_batch_norm(x, weight, None, None, None, True, 0.0, eps)[0]


def _dil(z: torch.Tensor, body: Any) -> torch.Tensor:
    """A DilConv's body after its ReLU (depthwise, pointwise, BN) on z = relu(input)."""
    return body[3](body[2](depthwise(body[1], z)))


def _one(shared: _Shared, kind: _Kind, op: Any) -> torch.Tensor:
    """Op `kind` of one edge on the shared input (bitwise what op(x) gives); `op` is read by
    structure (see _Plan)."""
    if kind.how == "identity":
        return shared.x
    if kind.how == "pool":
        return shared.pooled(kind, op)
    if kind.how == "pool_conv":
        return op[2](op[1](shared.pooled(kind, op)))
    if kind.how == "sep":
        return _dil(F.relu(_dil(shared.relu, op.op[0].op)), op.op[1].op)
    if kind.how == "dil":
        return _dil(shared.relu, op.op)
    if kind.how == "rcb":
        return op.op[2](op.op[1](shared.relu))
    if kind.how == "fr":
        if shared._shifted is None:
            shared._shifted = shared.shifted(shared.relu)
        return op.bn(torch.cat([op.conv1(shared.relu), op.conv2(shared._shifted)], dim=1))
    return op(shared.x)


class _CatParams(torch.autograd.Function):
    """torch.cat of parameters along dim 0 whose backward is one split (cat's is a slice per input)."""

    @staticmethod
    def forward(ctx, *params: torch.Tensor) -> torch.Tensor:
        ctx.sizes = [p.shape[0] for p in params]
        return torch.cat(params, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.split(ctx.sizes, dim=0)


_HELD: contextvars.ContextVar[dict | None] = contextvars.ContextVar("nasmix_weights_held", default=None)


@contextlib.contextmanager
def weights_held() -> Iterator[None]:
    """A block in which the supernet's weights change only by in-place operations that count
    (not by a fused optimizer's step, which leaves a tensor's version as it was): the grouped
    convolutions' concatenated weights are kept and reused within it (`_Grouped.cat`).

    The one-shot step holds the weights from its architecture step to its weight step's
    optimizer step: both forwards read the same weights.
    """
    token = _HELD.set({})
    try:
        yield
    finally:
        _HELD.reset(token)


class _Grouped:
    """Each op kind of all edges as one grouped convolution chain (few kernel launches)."""

    def __init__(self, shared: _Shared, kept: dict | None = None):
        self.s, self.n = shared, shared.n
        self.kept = kept

    def cat(self, params: list[torch.Tensor]) -> torch.Tensor:
        """The edges' parameters concatenated along dim 0, with a gradient for each.

        With `kept` (inside `weights_held`), a concatenation is reused while its parameters
        are the same tensors, storage and version, in the same grad mode: DARTS's architecture
        step and the weight step after it read the same weights, so the weight step's forward
        reuses the architecture step's concatenations (whose backward, reaching only the
        architecture parameters, leaves them untouched); second-order DARTS's in-place weight
        moves change the versions, so its forwards concatenate afresh.
        """
        if len(params) == 1:
            return params[0]
        if self.kept is None:
            return _CatParams.apply(*params)
        key = tuple(map(id, params))
        modes = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        stamp = (modes, [(p._version, p.data_ptr()) for p in params])
        hit = self.kept.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        out = _CatParams.apply(*params)
        self.kept[key] = (stamp, out)
        return out

    def conv(self, x: torch.Tensor, convs: Sequence[Any], common: bool = False) -> torch.Tensor:
        """Each edge's conv on its own slice of channels of x, as one grouped convolution; with
        `common`, every edge's full (ungrouped) conv on the same x, as one convolution whose
        output channels are the edges' (the grouped form over x repeated once per edge, without
        the repeat)."""
        c = convs[0]
        weight = self.cat([m.weight for m in convs])
        if common and c.groups != 1:
            raise ValueError("a convolution of the edges' common input must be a full one")
        groups = c.groups if common else c.groups * self.n
        return F.conv2d(x, weight, None, c.stride, c.padding, c.dilation, groups)

    def bn(self, x: torch.Tensor, bns: Sequence[Any], scale: torch.Tensor | None = None) -> torch.Tensor:
        """Each edge's batch norm (batch statistics) over its channels, as one call; `scale`: the
        weight of batch norms without affine parameters (the edges' mixing weights)."""
        b = bns[0]
        weight, bias = scale, None
        if b.affine:
            weight, bias = self.cat([m.weight for m in bns]), self.cat([m.bias for m in bns])
        if bias is None:
            return batch_stats_norm(x, weight, b.eps)
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, b.eps)

    def dil(self, z: torch.Tensor, bodies: Sequence[Any], scale: torch.Tensor | None = None) -> torch.Tensor:
        c, w = bodies[0][1], self.cat([b[1].weight for b in bodies])  # depthwise, then pointwise
        if z.device.type == "cpu" and torch.is_autocast_enabled("cpu"):  # CUDA's bf16 emulated on a CPU
            y = depthwise_conv(z, w, c.stride, c.padding, c.dilation)  # (oneDNN's bf16 weight gradient)
        else:
            y = F.conv2d(z, w, None, c.stride, c.padding, c.dilation, w.shape[0])
        y = self.conv(y, [b[2] for b in bodies])
        return self.bn(y, [b[3] for b in bodies], scale)

    def run(self, kind: _Kind, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Op `kind.index` of every edge: (1, B, E, C, H, W), or (1, B, 1, C, H, W) when shared
        (the leading 1: the mix concatenates the op kinds along it). With `scale`, the op's
        last batch norm (without affine parameters) takes it as its weight: the op's output
        already weighted, (B, E x C, H, W)."""
        s = self.s
        ops = [e.ops[kind.index] for e in s.edges]
        if kind.how in ("identity", "pool"):
            y = s.x if kind.how == "identity" else s.pooled(kind)
            return y.view(1, y.shape[0], 1, *y.shape[1:])
        if kind.how == "pool_conv":
            y = self.conv(s.pooled(kind), [o[1] for o in ops], common=True)
            y = self.bn(y, [o[2] for o in ops], scale)
        elif kind.how == "sep":
            y = F.relu(self.dil(s.rep, [o.op[0].op for o in ops]))
            y = self.dil(y, [o.op[1].op for o in ops], scale)
        elif kind.how == "dil":
            y = self.dil(s.rep, [o.op for o in ops], scale)
        elif kind.how == "rcb" and ops[0].op[1].groups == 1:
            y = self.bn(self.conv(s.relu, [o.op[1] for o in ops], common=True), [o.op[2] for o in ops], scale)
        elif kind.how == "rcb":
            y = self.bn(self.conv(s.rep, [o.op[1] for o in ops]), [o.op[2] for o in ops], scale)
        elif kind.how == "fr":  # both 1x1 convolutions full ones, on the common relu(x)
            if s._shifted is None:
                s._shifted = s.shifted(s.relu)
            y1 = pointwise(s.relu, self.cat([o.conv1.weight for o in ops]), 2)
            y2 = pointwise(s._shifted, self.cat([o.conv2.weight for o in ops]), 2)
            y = torch.cat([y1.unflatten(1, (self.n, -1)), y2.unflatten(1, (self.n, -1))], dim=2).flatten(1, 2)
            y = self.bn(y, [o.bn for o in ops], scale)
        else:
            return torch.stack([op(s.x) for op in ops], dim=1).unsqueeze(0)
        return y if scale is not None else y.view(1, y.shape[0], self.n, -1, *y.shape[2:])


def mixed_edges(
    edges: Sequence[nn.Module],
    x: torch.Tensor,
    w: torch.Tensor,
    edge_weights: torch.Tensor | None = None,
    grouped: bool = False,
    ops: Sequence[Sequence[int] | None] | None = None,
    unit: bool = False,
    add_unsampled: bool = False,
    rows: Sequence[int] | None = None,
    memo: dict | None = None,
) -> list[torch.Tensor]:
    """The outputs of mixed edges that all read x (MixedEdge semantics, with EdgeContext's options).

    Args:
        edges: `MixedEdge`s (or `WideMixedEdge`s) of one structure; `batchable(edges)` must hold.
        x: their common input.
        w: (edges, ops) op weights, row e for edge e.
        edge_weights: optional (edges,) scale of each edge's output (PC-DARTS).
        grouped: the weighted ops of all edges as grouped convolutions and the mix vectorised
            (few kernel launches: a GPU's choice); else edge by edge on the shared parts
            (bitwise MixedEdge's result; a CPU's choice: its grouped convolutions run 3-4x
            slower than the same work as separate ones). Only without `ops`.
        ops: per edge, the op indices it computes (None: all); no list may be empty.
        unit: an edge computing one op has weight exactly 1 there and passes it no gradient
            (GDAS's weight step): the op's output is used as it is.
        add_unsampled: add the weights of the ops an edge does not compute (see EdgeContext).
        rows: the rows of w the edges take, in order (default: one row per edge, 0, 1, ...);
            the grouped mix reads them in place.
        memo: a dict of mixing weights gathered earlier in the same forward, keyed by
            (rows, ops, channels), which the grouped mix reads and fills (cells of one weight
            group and width gather them once), and leave to reuse concatenated weights within
            `weights_held`; None: neither (cells recomputed in backward).

    Returns:
        One output per edge.
    """
    plan = _plan(edges)
    n = len(edges)
    full = x
    where = tuple(range(n)) if rows is None else tuple(rows)
    if rows is not None and (ops is not None or not grouped):
        w = w[rows_of(where, w.device)]
    if plan.partial > 1:
        k = x.shape[1] // plan.partial
        x, rest = x[:, :k], x[:, k:]
        rest = plan.bypass_pool(rest) if plan.bypass_pool is not None else rest
    shared = _Shared(edges, x)
    if ops is not None or not grouped:
        outs = []
        for e, edge in enumerate(edges):
            row = w[e]
            picked = None if ops is None else ops[e]
            chosen: Sequence[int] = range(len(plan.kinds)) if picked is None else picked
            live = [i for i in chosen if plan.kinds[i].how != "none"]  # `none` adds zeros (its gradient is 0)
            if not live:  # only `none`: the edge's own zeros
                out = edge(full, row, list(chosen))
            else:
                terms = []
                for i in live:
                    y = _one(shared, plan.kinds[i], _ops(edge)[i])
                    terms.append(y if unit and len(chosen) == 1 else row[i] * y)
                out = terms[0]
                for term in terms[1:]:  # summed in order, as the edge itself does
                    out = out + term
                if plan.partial > 1:
                    out = channel_shuffle(cat_channels([out, rest]), plan.partial)
            if add_unsampled and len(chosen) < len(plan.kinds) and row.requires_grad:
                out = out + row.index_select(0, others(len(plan.kinds), tuple(chosen), row.device)).sum()
            outs.append(out if edge_weights is None else out * edge_weights[e])
        return outs
    batch = _Grouped(shared, None if memo is None else _HELD.get())
    # The mix: the ops that end in a batch norm without affine parameters weighted there and
    # added; the others one stack per family: the edges' own ops (B, E, C, H, W), the shared
    # ones (B, 1, C, H, W).

    def gathered(family: list[int], channels: int = 0) -> Any:
        """mix_weights of `family`; with `channels`, one batch norm weight per op (unbound)."""
        key = (where, tuple(family), channels)
        got = None if memo is None else memo.get(key)
        if got is None:
            got = mix_weights(w, where, family, channels)
            got = got.unbind(0) if channels else got
            if memo is not None:
                memo[key] = got
        return got

    mixes = []
    if plan.folded:
        c = plan.fold_channels
        scales = gathered(plan.folded, c)
        folded = batch.run(plan.kinds[plan.folded[0]], scales[0])
        for i, scale in zip(plan.folded[1:], scales[1:]):
            folded = folded + batch.run(plan.kinds[i], scale)
        mixes.append(folded.view(folded.shape[0], n, c, *folded.shape[2:]))
    for family in plan.families:
        ys = torch.cat([batch.run(plan.kinds[i]) for i in family], dim=0)
        mixes.append((gathered(family) * ys).sum(0))
    out = mixes[0]
    for mixed in mixes[1:]:
        out = out + mixed
    if plan.partial > 1:
        mixed = torch.cat([out, rest.unsqueeze(1).expand(-1, n, -1, -1, -1)], dim=2)
        b, _, c, h, wd = mixed.shape
        out = mixed.view(b, n, plan.partial, c // plan.partial, h, wd).transpose(2, 3).reshape(b, n, c, h, wd)
    if edge_weights is not None:
        out = out * edge_weights.view(1, n, 1, 1, 1)
    return list(out.unbind(1))


@functools.cache
def rows_of(indices: tuple[int, ...], device: torch.device) -> torch.Tensor | slice:
    """Rows `indices` of a weight group: a slice when they run consecutively, else an index tensor."""
    if indices == tuple(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0], indices[0] + len(indices))
    return torch.tensor(indices, device=device)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave channel groups (ShuffleNet), as PC-DARTS does after a partial edge; a
    channels_last x gives a channels_last result (the shuffle over NCHW's dimensions made it NCHW,
    and every op after it, forward and backward, then mixed the two layouts)."""
    b, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = x.permute(0, 2, 3, 1).reshape(b, h, w, groups, c // groups).transpose(3, 4)
        return y.reshape(b, h, w, c).permute(0, 3, 1, 2)
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)
