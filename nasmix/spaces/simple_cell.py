"""NASLib's Simple Cell space ("a simplified version of the DARTS cell search
space", automl/NASLib `SimpleCellSearchSpace`), as the seed study searched it.

Cells (NASLib's node numbers): inputs 1 and 2, intermediate nodes 3 and 4,
output node 5 = 1x1 conv + BN of concat(3, 4). Five edges each carry one op:
(1,3), (1,4), (2,3), (2,4), (3,4); node 3 sums (1,3)+(2,3), node 4 sums
(1,4)+(2,4)+(3,4). Ops (NASLib's five, reordered so that `none` comes first
as in DARTS): none, skip_connect, max_pool_3x3, sep_conv_3x3, dil_conv_3x3.

Network: stem conv3x3 3->C + BN; normal cell (C; both inputs the stem);
reduction cell (inputs stem and normal cell, C -> 2C: the edges from inputs 1
and 2 have stride 2 and double the channels, as NASLib's: skip_connect is a
FactorizedReduce, max_pool_3x3 a pool + 1x1 conv + BN, the convolutions
widen in their last pointwise conv, `none` gives zeros); normal cell (2C;
both inputs the reduction cell); global average pool; linear. The two normal
cells share their op choice (one genotype per cell type), so the supernet has
2 x 5 edges x 5 ops = 50 weights, as NASLib's.

Arch string (the darts grammar): `normal=op~1+op~2|op~1+op~2+op~3;reduce=...`,
node 3 then node 4, each edge `op~input`. The seed's architecture
(Appendix B) is `SEED`.

Sizes: tiny (C=8), search (C=16: NASLib's network), eval (C=`eval_channels`,
16 by default: NASLib evaluates the search-size network; widen it here).

Example:
    >>> from nasmix.spaces.base import get_space
    >>> arch = get_space("simple_cell").parse(SEED)
    >>> arch.to_str() == "simple_cell:" + SEED
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces import ops
from nasmix.spaces.base import Choice, SearchSpace, check_size
from nasmix.spaces.cells import check_partial, check_weights, drop_path, format_cells, node_sum, parse_cells
from nasmix.spaces.paths import encode_paths
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet, search_ops

CELLS = ("normal", "reduce")
OPS = ("none", "skip_connect", "max_pool_3x3", "sep_conv_3x3", "dil_conv_3x3")
EDGES = ((1, 3), (1, 4), (2, 3), (2, 4), (3, 4))  # NASLib's edge order (the weight rows)
NODE_EDGES = {3: (0, 2), 4: (1, 3, 4)}  # node -> its incoming edges (indices into EDGES)

SEED = (
    "normal=max_pool_3x3~1+sep_conv_3x3~2|dil_conv_3x3~1+dil_conv_3x3~2+skip_connect~3;"
    "reduce=none~1+none~2|dil_conv_3x3~1+sep_conv_3x3~2+dil_conv_3x3~3"
)
"""The architecture the seed study's DrNAS search found (its Appendix B.A)."""


def wide_op(name: str, c_in: int, c_out: int, stride: int, affine: bool) -> nn.Module | None:
    """One op of a reduction edge from a cell input (c_in -> c_out, stride 2), as NASLib builds
    it; None for `none` (the caller supplies zeros)."""
    if name == "none":
        return None
    if name == "skip_connect":
        return ops.FactorizedReduce(c_in, c_out, affine)
    if name == "max_pool_3x3":
        return nn.Sequential(
            nn.MaxPool2d(3, stride, 1),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )
    if name == "sep_conv_3x3":
        return ops.SepConv(c_in, c_out, 3, stride, 1, affine)
    return ops.DilConv(c_in, c_out, 3, stride, 2, 2, affine)


def _zeros(x: torch.Tensor, c: int, stride: int) -> torch.Tensor:
    b, _, h, w = x.shape
    return x.new_zeros(b, c, (h + stride - 1) // stride, (w + stride - 1) // stride)


class WideMixedEdge(nn.Module):
    """A mixed edge whose ops change the channels (the reduction cell's input edges).

    Called like supernet.MixedEdge, `(x, w, ops)`. PC-DARTS's partial channels do
    not apply: the bypassed channels could not be widened without new weights,
    so these four edges always compute all their channels.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_out, self.stride = c_out, stride
        ops_ = nn.ModuleList(wide_op(n, c_in, c_out, stride, False) or nn.Identity() for n in OPS)
        self.ops = search_ops(ops_)  # as MixedEdge's: batch statistics only, the CPU's fast DilConv
        self._skip = {OPS.index("none")}

    def forward(self, x: torch.Tensor, w: torch.Tensor, ops: Sequence[int] | None = None) -> torch.Tensor:
        out = None
        for i in range(len(self.ops)) if ops is None else ops:
            if i not in self._skip:
                term = w[i] * self.ops[i](x)
                out = term if out is None else out + term
        return _zeros(x, self.c_out, self.stride) if out is None else out


class _Combine(nn.Module):
    """Output node 5: concat(3, 4), 1x1 conv, BN (NASLib's Concat1x1)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c)

    def forward(self, n3: torch.Tensor, n4: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(ops.cat_channels([n3, n4])))


def _cell_plan(c: int) -> list[tuple[str, int, int]]:
    """(group, c_in, c_out) of the three cells."""
    return [("normal", c, c), ("reduce", c, 2 * c), ("normal", 2 * c, 2 * c)]


class _Cell(nn.Module):
    """A cell of one arch; drop-path on edges whose op is not the identity."""

    def __init__(self, genotype: tuple, c_in: int, c_out: int):
        super().__init__()
        self.c, self.reduce = c_out, c_out != c_in
        mods = []
        for (u, _), op in zip(EDGES, genotype):
            if self.reduce and u < 3:
                mods.append(wide_op(op, c_in, c_out, 2, True) or nn.Identity())
            else:
                mods.append(ops.make_op(op, c_out, 1, True) if op != "none" else nn.Identity())
        self.edges = nn.ModuleList(mods)
        self.live = [op != "none" for op in genotype]
        self.combine = _Combine(c_out)

    def _node(self, node: int, inputs: dict[int, torch.Tensor], drop_prob: float) -> torch.Tensor:
        out = None
        for e in NODE_EDGES[node]:
            if self.live[e]:
                h = self.edges[e](inputs[EDGES[e][0]])
                if self.training and drop_prob > 0 and not isinstance(self.edges[e], nn.Identity):
                    h = drop_path(h, drop_prob)
                out = h if out is None else out + h
        return _zeros(inputs[1], self.c, 2 if self.reduce else 1) if out is None else out

    def forward(self, s1: torch.Tensor, s2: torch.Tensor, drop_prob: float) -> torch.Tensor:
        inputs = {1: s1, 2: s2}
        inputs[3] = self._node(3, inputs, drop_prob)
        return self.combine(inputs[3], self._node(4, inputs, drop_prob))


def _stem(task: Task, c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(task.shape[0], c, 3, padding=1, bias=False), nn.BatchNorm2d(c))


def _head(s: torch.Tensor, classifier: nn.Module) -> torch.Tensor:
    return classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(ops.channels_last_grad(s), 1), 1))


class SimpleCellNetwork(nn.Module):
    """The standalone Simple Cell network. Attribute `drop_path_prob`: drop-path
    probability on non-identity edges in training mode."""

    def __init__(self, genotype: tuple, task: Task, c: int):
        super().__init__()
        self.drop_path_prob = 0.0
        self.stem = _stem(task, c)
        self.cells = nn.ModuleList(_Cell(genotype[CELLS.index(g)], ci, co) for g, ci, co in _cell_plan(c))
        self.classifier = nn.Linear(2 * c, task.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        n1 = self.cells[0](stem, stem, self.drop_path_prob)
        r = self.cells[1](stem, n1, self.drop_path_prob)
        return _head(self.cells[2](r, r, self.drop_path_prob), self.classifier)


class _SearchCell(nn.Module):
    def __init__(self, group: str, c_in: int, c_out: int, partial: int):
        super().__init__()
        self.group = group
        mods: list[nn.Module] = []
        for u, _ in EDGES:
            if c_in != c_out and u < 3:
                mods.append(WideMixedEdge(c_in, c_out, 2))
            else:  # NASLib's simple cell has no batch norm after its pooling
                mods.append(MixedEdge(c_out, 1, OPS, partial, pool_bn=False))
        self.edges = nn.ModuleList(mods)
        self.combine = _Combine(c_out)

    def forward(self, s1: torch.Tensor, s2: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        inputs = {1: s1, 2: s2}
        if ctx.together(self.group):  # the edges leaving each input together (four when both inputs are one)
            into: dict[int, list] = {3: [], 4: []}
            sources = [(1, 2)] if s1 is s2 and type(self.edges[0]) is type(self.edges[2]) else [(1,), (2,)]
            for src in (*sources, (3,)):
                if src == (3,):
                    inputs[3] = _total(into[3])
                es = [e for e, (u, _) in enumerate(EDGES) if u in src]
                for e, y in zip(es, ctx.edges(self.group, es, [self.edges[e] for e in es], inputs[src[0]])):
                    into[EDGES[e][1]].append((EDGES[e][0], y))
            return self.combine(inputs[3], _total(into[4]))
        for node in (3, 4):
            terms = [(e, self.edges[e], inputs[EDGES[e][0]]) for e in NODE_EDGES[node]]
            inputs[node] = node_sum(ctx, self.group, terms)
        return self.combine(inputs[3], inputs[4])


def _total(terms: list) -> torch.Tensor:
    """The sum of a node's (source, output) terms in source order, as node_sum adds them."""
    ordered = [y for _, y in sorted(terms, key=lambda t: t[0])]
    out = ordered[0]
    for y in ordered[1:]:
        out = out + y
    return out


class SimpleCellSupernet(Supernet):
    """The Simple Cell search network: weight groups normal and reduce, each (5, 5);
    the two normal cells share the normal weights."""

    def __init__(self, task: Task, c: int, partial: int):
        super().__init__()
        self.arch_shapes = {g: (len(EDGES), len(OPS)) for g in CELLS}
        self.op_names = {g: OPS for g in CELLS}
        self.edge_nodes = {g: tuple(dst for _, dst in EDGES) for g in CELLS}
        self.stem = _stem(task, c)
        self.cells = nn.ModuleList(_SearchCell(g, ci, co, partial) for g, ci, co in _cell_plan(c))
        self.classifier = nn.Linear(2 * c, task.num_classes)

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        stem = self.stem(x)
        n1 = self.call_cell(self.cells[0], stem, stem, ctx)
        r = self.call_cell(self.cells[1], stem, n1, ctx)
        return _head(self.call_cell(self.cells[2], r, r, ctx), self.classifier)


@registry.register("space", "simple_cell")
class SimpleCellSpace(SearchSpace):
    """NASLib's Simple Cell: 2 inputs, 2 nodes, 5 edges x 5 ops, normal-reduce-normal (16/32 ch).

    Every edge's op is one choice (10 choices, `none` allowed); decoding takes
    the strongest op of each edge (argmax, `none` included), as NASLib does for
    this space.

    Example:
        >>> from nasmix.spaces.base import get_space
        >>> space = get_space("simple_cell")
        >>> net = space.build(space.parse(SEED), Task("c10", 10, (3, 32, 32)))
    """

    @dataclass(frozen=True)
    class Config:
        """Attributes: channels (C of the search size; the network is C then 2C)
        and eval_channels (C of the eval size)."""

        channels: int = 16
        eval_channels: int = 16

        def __post_init__(self) -> None:
            for name in ("channels", "eval_channels"):
                if getattr(self, name) < 2:
                    raise ConfigError(f"{name} must be >= 2, got {getattr(self, name)}")

    def __init__(self, config: Config = Config()):
        self.config = config

    # ---- the arch value -------------------------------------------------
    def choices(self) -> tuple[Choice, ...]:
        return tuple(Choice(f"{cell} edge ({u},{v})", OPS) for cell in CELLS for u, v in EDGES)

    def from_choices(self, values: Sequence[int]) -> Arch:
        values = [int(v) for v in values]
        n = len(EDGES)
        if len(values) != len(CELLS) * n or not all(0 <= v < len(OPS) for v in values):
            raise ConfigError(
                f"simple_cell needs {len(CELLS) * n} op indices in 0..{len(OPS) - 1}, got {values}"
            )
        genotype = tuple(tuple(OPS[v] for v in values[i * n : (i + 1) * n]) for i in range(len(CELLS)))
        return Arch(self.registry_name, genotype)

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        return tuple(OPS.index(op) for cell in self.check(arch).genotype for op in cell)

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """One-hot choices, or BANANAS's path encoding of the two cell types (nasmix.spaces.paths).

        "path" (and "trunc_path", the same: no path is longer than 2 ops): every
        path from input 1 or 2 to node 3 or 4 (both feed the output), labelled by
        its 1 or 2 ops among the 4 non-`none` ops: 2 cells x 2 inputs x (4 + 16) = 80 floats.

        Args:
            arch: a simple_cell arch.
            kind: "onehot" (10 edges x 5 ops = 50 floats), "path" or "trunc_path".

        Returns:
            A float32 vector.
        """
        if kind not in ("path", "trunc_path"):
            return super().encode(arch, kind)
        # NASLib's nodes 1, 2 (inputs), 3, 4 are 0, 1, 2, 3 here
        genotype = self.check(arch).genotype
        cells = [[(u - 1, v - 1, op) for (u, v), op in zip(EDGES, ops_)] for ops_ in genotype]
        return encode_paths(cells, inputs=2, ops=OPS[1:], max_length=2)

    def format(self, genotype: tuple) -> str:
        cells = [
            (name, [[(ops_[e], EDGES[e][0]) for e in NODE_EDGES[node]] for node in (3, 4)])
            for name, ops_ in zip(CELLS, genotype)
        ]
        return format_cells(cells)

    def parse(self, text: str) -> Arch:
        cells = parse_cells(text, CELLS, OPS)
        genotype = []
        for name in CELLS:
            nodes = cells[name]
            if len(nodes) != 2:
                raise ConfigError(f"cell {name!r} needs 2 nodes (3 and 4) separated by '|', got {len(nodes)}")
            chosen: list[str | None] = [None] * len(EDGES)
            for node, terms in zip((3, 4), nodes):
                sources = {EDGES[e][0]: e for e in NODE_EDGES[node]}
                if sorted(i for _, i in terms) != sorted(sources):
                    raise ConfigError(
                        f"cell {name!r} node {node} needs one edge from each of inputs "
                        f"{sorted(sources)}, got {[i for _, i in terms]}"
                    )
                for op, i in terms:
                    chosen[sources[i]] = op
            genotype.append(tuple(chosen))
        return Arch(self.registry_name, tuple(genotype))

    # ---- networks ---------------------------------------------------------
    def _channels(self, size: str) -> int:
        check_size(size)
        return {"tiny": 8, "search": self.config.channels, "eval": self.config.eval_channels}[size]

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        """The standalone network (affine batch norms, as NASLib's); set `drop_path_prob` to use drop-path."""
        return SimpleCellNetwork(self.check(arch).genotype, task, self._channels(size))

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        c = self._channels(size)
        check_partial(partial, [c, 2 * c], self.registry_name)
        return SimpleCellSupernet(task, c, partial)

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        out = {}
        for name, cell in zip(CELLS, self.check(arch).genotype):
            w = torch.zeros(len(EDGES), len(OPS))
            for e, op in enumerate(cell):
                w[e, OPS.index(op)] = 1.0
            out[name] = w
        return out

    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The strongest op of every edge (`none` included; ties: the earlier op)."""
        weights = check_weights(weights, {g: (len(EDGES), len(OPS)) for g in CELLS}, self.registry_name)
        return self.from_choices([int(torch.argmax(row)) for g in CELLS for row in weights[g]])

    # ---- text -------------------------------------------------------------
    def describe(self, arch: Arch) -> str:
        """The cells edge by edge (as NASLib prints a final architecture), with the arch string."""
        c = self.config.channels
        lines = [
            "simple_cell architecture (NASLib Simple Cell)",
            f"  {self.check(arch).to_str()}",
            f"Graph makrograph: stem conv3x3 3->{c} + BN | normal cell ({c}) | reduction cell ({c}->{2 * c}) "
            f"| normal cell ({2 * c}) | global average pool | linear",
        ]
        for name, cell in zip(CELLS, arch.genotype):
            graph = "normal_cell" if name == "normal" else "reduction_cell"
            note = "" if name == "normal" else " (stride 2 on edges from 1 and 2)"
            lines.append(
                f"Graph {graph}{note}: inputs 1, 2; node 3 = (1,3) + (2,3); node 4 = (1,4) + (2,4) + (3,4); "
                f"node 5 = conv1x1 + BN of concat(3, 4)"
            )
            lines += [f"  ({graph}-edge({u},{v})): {op}" for (u, v), op in zip(EDGES, cell)]
        return "\n".join(lines)
