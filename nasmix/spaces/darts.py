"""The DARTS cell space (Liu, Simonyan and Yang, "DARTS: Differentiable
Architecture Search", ICLR 2019).

A network stacks cells of two kinds, normal and reduction (at 1/3 and 2/3 of
the depth, halving the resolution and doubling the channels). A cell takes
the outputs of the two previous cells (inputs 0 and 1, preprocessed by a 1x1
ReLUConvBN, or a FactorizedReduce where the previous cell reduced), computes
four intermediate nodes 2..5 and outputs their concatenation. In the
supernet every node sums mixed edges from all earlier nodes: 2+3+4+5 = 14
edges of the 8 DARTS ops. An arch keeps, per node, two edges from distinct
earlier nodes, each with one op other than `none`.

Arch string: `normal=NODE|NODE|NODE|NODE;reduce=NODE|NODE|NODE|NODE`, nodes
2..5 in order, each `op~input+op~input` (input 0 and 1: the cell's inputs
c_{k-2} and c_{k-1}; 2..5: intermediate nodes); the two edges of a node are
written in increasing input order (the canonical form; `parse` accepts either
order). A published genotype of the DARTS code, a flat list of eight
(op, input) pairs per cell, pairs 2i and 2i+1 feeding node i+2, is written
node by node; DARTS V2 (second order, the paper's CIFAR-10 cell):

    normal=[(sep_conv_3x3,0),(sep_conv_3x3,1), (sep_conv_3x3,0),(sep_conv_3x3,1),
            (sep_conv_3x3,1),(skip_connect,0), (skip_connect,0),(dil_conv_3x3,2)]
    ->  normal=sep_conv_3x3~0+sep_conv_3x3~1|sep_conv_3x3~0+sep_conv_3x3~1|
               skip_connect~0+sep_conv_3x3~1|skip_connect~0+dil_conv_3x3~2

(`DARTS_V2` below; `PC_DARTS` and `GDAS` likewise; `DartsSpace.from_pairs`
converts such lists.)

Sizes: tiny (4 cells, 8 channels, auxiliary head), search (8 cells, 16
channels: the paper's search network) and eval (20 cells, 36 channels,
auxiliary head at 2/3 depth, drop-path: the paper's CIFAR-10 evaluation).

Example:
    >>> from nasmix.spaces.base import get_space
    >>> space = get_space("darts")
    >>> arch = space.parse(DARTS_V2)
    >>> arch.to_str() == "darts:" + DARTS_V2
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.base import Choice, SearchSpace, check_size
from nasmix.spaces.cells import check_partial, check_weights, drop_path, format_cells, node_sum, parse_cells
from nasmix.spaces.ops import (
    DARTS_OPS,
    FactorizedReduce,
    ReLUConvBN,
    cat_channels,
    channels_last_grad,
    make_op,
)
from nasmix.spaces.paths import encode_paths
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet

CELLS = ("normal", "reduce")
NODES = 4
OPS = tuple(op for op in DARTS_OPS if op != "none")  # the ops an arch may keep
NONE = DARTS_OPS.index("none")
PAIRS = tuple(tuple(combinations(range(i + 2), 2)) for i in range(NODES))  # input pairs per node
EDGES = sum(i + 2 for i in range(NODES))  # 14


def edge_index(node: int, source: int) -> int:
    """The supernet edge (0..13) from node `source` into intermediate node `node` (0..3), DARTS's order."""
    return node * (node + 3) // 2 + source


DARTS_V2 = (
    "normal=sep_conv_3x3~0+sep_conv_3x3~1|sep_conv_3x3~0+sep_conv_3x3~1|"
    "skip_connect~0+sep_conv_3x3~1|skip_connect~0+dil_conv_3x3~2;"
    "reduce=max_pool_3x3~0+max_pool_3x3~1|max_pool_3x3~1+skip_connect~2|"
    "max_pool_3x3~0+skip_connect~2|max_pool_3x3~1+skip_connect~2"
)
"""DARTS V2 (second-order DARTS, Liu et al. 2019, CIFAR-10), as published in the DARTS code."""

PC_DARTS = (
    "normal=skip_connect~0+sep_conv_3x3~1|sep_conv_3x3~0+dil_conv_3x3~1|"
    "sep_conv_5x5~0+sep_conv_3x3~1|avg_pool_3x3~0+dil_conv_3x3~1;"
    "reduce=max_pool_3x3~0+sep_conv_5x5~1|sep_conv_5x5~1+sep_conv_5x5~2|"
    "sep_conv_3x3~0+sep_conv_3x3~3|sep_conv_3x3~1+sep_conv_3x3~2"
)
"""PC-DARTS (Xu et al. 2020), CIFAR-10 cell from its code (`PC_DARTS_cifar`)."""

GDAS = (
    "normal=skip_connect~0+skip_connect~1|skip_connect~0+sep_conv_5x5~2|"
    "skip_connect~0+sep_conv_3x3~3|sep_conv_3x3~3+sep_conv_5x5~4;"
    "reduce=sep_conv_5x5~0+sep_conv_3x3~1|sep_conv_5x5~1+sep_conv_5x5~2|"
    "sep_conv_3x3~1+dil_conv_5x5~2|sep_conv_5x5~0+sep_conv_5x5~1"
)
"""GDAS (Dong and Yang 2019), `GDAS_V1` of the authors' AutoDL-Projects code."""


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary CIFAR head on an 8x8 map: ReLU, 5x5/3 average pool, 1x1 conv to 128,
    2x2 conv to 768, linear."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # On an 8x8 map the features are 1x1 already; pooling keeps other sizes working.
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def _preprocess(
    c_pp: int, c_p: int, c: int, reduction_prev: bool, affine: bool
) -> tuple[nn.Module, nn.Module]:
    pre0 = FactorizedReduce(c_pp, c, affine) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine)
    return pre0, ReLUConvBN(c_p, c, 1, 1, 0, affine)


def _layout(cells: int, c: int) -> list[tuple[int, int, int, bool, bool]]:
    """(c_prev_prev, c_prev, c, reduction, reduction_prev) per cell, as DARTS stacks them."""
    out, c_pp, c_p, reduction_prev = [], 3 * c, 3 * c, False
    for i in range(cells):
        reduction = i in (cells // 3, 2 * cells // 3)
        c = c * 2 if reduction else c
        out.append((c_pp, c_p, c, reduction, reduction_prev))
        c_pp, c_p, reduction_prev = c_p, NODES * c, reduction
    return out


class _Cell(nn.Module):
    """A cell of one arch; drop-path on every edge whose op is not the identity (as DARTS)."""

    def __init__(self, nodes: tuple, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, True)
        self.inputs = [i for node in nodes for _, i in node]
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and i < 2 else 1) for node in nodes for op, i in node
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for n in range(NODES):
            total = 0
            for k in (2 * n, 2 * n + 1):
                h = self.ops[k](states[self.inputs[k]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[k], nn.Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return cat_channels(states[2:])


class DartsNetwork(nn.Module):
    """The standalone DARTS network (NetworkCIFAR of the DARTS code).

    Attributes:
        drop_path_prob: drop-path probability of the cells' non-identity edges
            in training mode (the training loop raises it over the epochs).

    Returns (forward): logits, or (logits, aux_logits) in training mode when
    it has an auxiliary head.
    """

    def __init__(self, genotype: tuple, task: Task, cells: int, c: int, auxiliary: bool):
        super().__init__()
        self.drop_path_prob = 0.0
        self.stem = nn.Sequential(
            nn.Conv2d(task.shape[0], 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c)
        )
        layout = _layout(cells, c)
        self.cells = nn.ModuleList(_Cell(genotype[1 if lay[3] else 0], *lay) for lay in layout)
        self.aux_at = 2 * cells // 3
        side = (min(task.shape[1:]) + 1) // 2
        side = (side + 1) // 2  # the map size after the two reductions
        # DARTS's head needs an 8x8 map at 2/3 depth (32x32 images); smaller images go without.
        self.aux = None
        if auxiliary and side >= 8:
            self.aux = AuxiliaryHead(NODES * layout[self.aux_at][2], task.num_classes)
        self.classifier = nn.Linear(NODES * layout[-1][2], task.num_classes)

    def forward(self, x: torch.Tensor):
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.aux is not None and self.training:
                aux = self.aux(s1)
        logits = self.classifier(
            torch.flatten(nn.functional.adaptive_avg_pool2d(channels_last_grad(s1), 1), 1)
        )
        return (logits, aux) if aux is not None else logits


class _SearchCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, partial: int):
        super().__init__()
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, False)
        self.group = "reduce" if reduction else "normal"
        self.edges = nn.ModuleList(
            MixedEdge(c, 2 if reduction and j < 2 else 1, DARTS_OPS, partial)
            for i in range(NODES)
            for j in range(i + 2)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        if ctx.together(self.group):  # every edge leaving a node at once, as soon as the node is known
            into: list[list[torch.Tensor]] = [
                [] for _ in range(NODES)
            ]  # per node, its edges' outputs by source
            for j in range(NODES + 1):
                if j >= 2:
                    states.append(_total(into[j - 2]))
                targets = range(max(j - 1, 0), NODES)
                indices = [edge_index(n, j) for n in targets]
                outs = ctx.edges(self.group, indices, [self.edges[i] for i in indices], states[j])
                for n, y in zip(targets, outs):
                    into[n].append(y)
            states.append(_total(into[NODES - 1]))
            return cat_channels(states[2:])
        for n in range(NODES):
            terms = [(edge_index(n, j), self.edges[edge_index(n, j)], h) for j, h in enumerate(states)]
            states.append(node_sum(ctx, self.group, terms))
        return cat_channels(states[2:])


def _total(terms: list[torch.Tensor]) -> torch.Tensor:
    """The sum of a node's incoming edges, added in the order node_sum adds them."""
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


class DartsSupernet(Supernet):
    """The DARTS search network (Network of model_search.py).

    Weight groups normal and reduce, each (14, 8)."""

    def __init__(self, task: Task, cells: int, c: int, partial: int):
        super().__init__()
        self.arch_shapes = {g: (EDGES, len(DARTS_OPS)) for g in CELLS}
        self.op_names = {g: DARTS_OPS for g in CELLS}
        nodes = tuple(n for n in range(NODES) for _ in range(n + 2))  # edge_index order: node by node
        self.edge_nodes = {g: nodes for g in CELLS}
        self.stem = nn.Sequential(
            nn.Conv2d(task.shape[0], 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c)
        )
        self.cells = nn.ModuleList(_SearchCell(*lay, partial) for lay in _layout(cells, c))
        self.classifier = nn.Linear(NODES * _layout(cells, c)[-1][2], task.num_classes)

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, self.call_cell(cell, s0, s1, ctx)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(channels_last_grad(s1), 1), 1))


@registry.register("space", "darts")
class DartsSpace(SearchSpace):
    """DARTS cells (Liu et al. 2019): normal + reduction cell, 4 nodes, 14 edges, 8 ops.

    Choices: per cell and intermediate node, its input pair (one of C(i+2, 2))
    and the op on each of the two edges (7 ops, `none` excluded), so every
    assignment is a valid arch. Decoding follows DARTS: per node, the two
    incoming edges with the largest non-`none` weight, each with its
    strongest non-`none` op.

    Example:
        >>> from nasmix.spaces.base import get_space
        >>> space = get_space("darts")
        >>> net = space.build(space.parse(DARTS_V2), Task("c10", 10, (3, 32, 32)), "eval")
    """

    @dataclass(frozen=True)
    class Config:
        """Network sizes. Attributes: channels and cells of the search size and
        of the eval size; auxiliary: the eval network's auxiliary head."""

        channels: int = 16
        cells: int = 8
        eval_channels: int = 36
        eval_cells: int = 20
        auxiliary: bool = True

        def __post_init__(self) -> None:
            for name in ("channels", "cells", "eval_channels", "eval_cells"):
                low = 3 if "cells" in name else 2
                if getattr(self, name) < low:
                    raise ConfigError(f"{name} must be >= {low}, got {getattr(self, name)}")

    def __init__(self, config: Config = Config()):
        self.config = config

    # ---- the arch value -------------------------------------------------
    def choices(self) -> tuple[Choice, ...]:
        out = []
        for cell in CELLS:
            for n in range(NODES):
                out.append(Choice(f"{cell} node {n + 2} inputs", tuple(f"{a},{b}" for a, b in PAIRS[n])))
                out.append(Choice(f"{cell} node {n + 2} first op", OPS))
                out.append(Choice(f"{cell} node {n + 2} second op", OPS))
        return tuple(out)

    def from_choices(self, values: Sequence[int]) -> Arch:
        values = [int(v) for v in values]
        sizes = [len(c.options) for c in self.choices()]
        if len(values) != len(sizes) or not all(0 <= v < n for v, n in zip(values, sizes)):
            raise ConfigError(f"darts needs {len(sizes)} choice values within {sizes}, got {values}")
        cells = []
        for c in range(len(CELLS)):
            nodes = []
            for n in range(NODES):
                pair, op_a, op_b = values[(c * NODES + n) * 3 : (c * NODES + n) * 3 + 3]
                (a, b) = PAIRS[n][pair]
                nodes.append(((OPS[op_a], a), (OPS[op_b], b)))
            cells.append(tuple(nodes))
        return Arch(self.registry_name, tuple(cells))

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        out = []
        for nodes in self.check(arch).genotype:
            for n, ((op_a, a), (op_b, b)) in enumerate(nodes):
                out += [PAIRS[n].index((a, b)), OPS.index(op_a), OPS.index(op_b)]
        return tuple(out)

    def format(self, genotype: tuple) -> str:
        return format_cells(list(zip(CELLS, genotype)))

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """One-hot choices, or BANANAS's path encoding of the two cells (nasmix.spaces.paths).

        "path": every path from c_{k-2} or c_{k-1} to an intermediate node (all
        feed the output), labelled by its 1 to 4 ops among the 7 non-`none` ops,
        in NASLib's layout: 2 cells x 2 inputs x (7 + 49 + 343 + 2,401) = 11,200
        floats. "trunc_path": the paths of at most 3 ops, 4 x 399 = 1,596 floats
        (paths of 4 ops need the chain 2 -> 3 -> 4 -> 5: 2.3% of the paths of random
        archs).

        Args:
            arch: a darts arch.
            kind: "onehot" (per cell and node, its input pair and its two ops: 152 floats),
                "path" or "trunc_path".

        Returns:
            A float32 vector.
        """
        if kind not in ("path", "trunc_path"):
            return super().encode(arch, kind)
        genotype = self.check(arch).genotype
        cells = [[(i, n + 2, op) for n, node in enumerate(nodes) for op, i in node] for nodes in genotype]
        return encode_paths(cells, inputs=2, ops=OPS, max_length=NODES if kind == "path" else NODES - 1)

    # ---- discrete moves (NASLib's and naszilla's DARTS-space moves) ------------------
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one op or one input of one edge, as NASLib's DARTS-space mutation.

        Pick a cell and one of its eight edges uniformly; then, with probability
        1/2, give the edge another op (7 non-`none` ops), else another input
        among the node's earlier nodes that neither of its two edges uses. Node
        2 has no free input (its edges use inputs 0 and 1), so its edges change
        their op. Unlike NASLib, which may redraw the same op or input (then
        nothing changes), the mutation always changes the arch.

        Example:
            >>> from nasmix.spaces.base import get_space
            >>> space = get_space("darts")
            >>> child = space.mutate(space.parse(DARTS_V2), np.random.default_rng(0))
            >>> child in space.neighbors(space.parse(DARTS_V2))
            True
        """
        cells = [[list(node) for node in cell] for cell in self.check(arch).genotype]
        c, n, e = int(rng.integers(len(CELLS))), int(rng.integers(NODES)), int(rng.integers(2))
        node = cells[c][n]
        op, source = node[e]
        free = [i for i in range(n + 2) if i not in (node[0][1], node[1][1])]
        if free and rng.integers(2) == 1:
            node[e] = (op, free[int(rng.integers(len(free)))])
        else:
            others = [o for o in OPS if o != op]
            node[e] = (others[int(rng.integers(len(others)))], source)
        return self._make(cells)

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Every arch that differs in one op or one input of one edge (NASLib's `get_nbhd`):
        6 other ops for each of the 16 edges, and each free input (0 for node 2, 1, 2, 3
        for nodes 3, 4, 5) for each edge: 120 archs."""
        genotype = self.check(arch).genotype
        out = []
        for c, cell in enumerate(genotype):
            for n, node in enumerate(cell):
                for e, (op, source) in enumerate(node):
                    free = [i for i in range(n + 2) if i not in (node[0][1], node[1][1])]
                    moves = [(o, source) for o in OPS if o != op] + [(op, i) for i in free]
                    for move in moves:
                        cells = [[list(nd) for nd in cl] for cl in genotype]
                        cells[c][n][e] = move
                        out.append(self._make(cells))
        return out

    def parse(self, text: str) -> Arch:
        cells = parse_cells(text, CELLS, DARTS_OPS)
        return self._make([cells[name] for name in CELLS])

    def from_pairs(self, normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]]) -> Arch:
        """An arch from a genotype as the DARTS code publishes it.

        Args:
            normal, reduce: eight (op, input) pairs each; pairs 2i and 2i+1 feed node i+2.

        Returns:
            The arch; ConfigError when the genotype is not in this space.

        Example:
            >>> normal = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
            >>> reduce = [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4
            >>> get_space("darts").from_pairs(normal, reduce)  # doctest: +SKIP
        """
        cells = []
        for name, pairs in (("normal", normal), ("reduce", reduce)):
            pairs = [(str(op), int(i)) for op, i in pairs]
            if len(pairs) != 2 * NODES:
                raise ConfigError(f"cell {name!r} needs {2 * NODES} (op, input) pairs, got {len(pairs)}")
            cells.append([pairs[2 * n : 2 * n + 2] for n in range(NODES)])
        return self._make(cells)

    def _make(self, cells: Sequence[Sequence[Sequence[tuple[str, int]]]]) -> Arch:
        """The canonical arch of two cells of nodes, checking the topology."""
        genotype = []
        for name, nodes in zip(CELLS, cells):
            if len(nodes) != NODES:
                raise ConfigError(f"cell {name!r} needs {NODES} nodes separated by '|', got {len(nodes)}")
            out = []
            for n, node in enumerate(nodes):
                where = f"cell {name!r} node {n + 2}"
                if len(node) != 2:
                    raise ConfigError(f"{where} needs two edges op~input+op~input, got {len(node)}")
                (op_a, a), (op_b, b) = sorted(node, key=lambda t: t[1])
                if a == b or not (0 <= a < n + 2 and 0 <= b < n + 2):
                    raise ConfigError(f"{where} needs two distinct inputs among 0..{n + 1}, got {a} and {b}")
                if "none" in (op_a, op_b):
                    raise ConfigError(f"{where}: an arch keeps no 'none' edge; valid ops: {', '.join(OPS)}")
                out.append(((op_a, a), (op_b, b)))
            genotype.append(tuple(out))
        return Arch(self.registry_name, tuple(genotype))

    # ---- networks ---------------------------------------------------------
    def _size(self, size: str) -> tuple[int, int]:
        check_size(size)
        cfg = self.config
        return {
            "tiny": (4, 8),
            "search": (cfg.cells, cfg.channels),
            "eval": (cfg.eval_cells, cfg.eval_channels),
        }[size]

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        """The standalone network; the auxiliary head exists at tiny and eval size.

        Returns:
            A DartsNetwork; set its `drop_path_prob` to use drop-path.
        """
        cells, c = self._size(size)
        auxiliary = size == "tiny" or (size == "eval" and self.config.auxiliary)
        return DartsNetwork(self.check(arch).genotype, task, cells, c, auxiliary)

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        cells, c = self._size(size)
        check_partial(partial, [lay[2] for lay in _layout(cells, c)], self.registry_name)
        return DartsSupernet(task, cells, c, partial)

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        out = {}
        for name, nodes in zip(CELLS, self.check(arch).genotype):
            w = torch.zeros(EDGES, len(DARTS_OPS))
            for n, node in enumerate(nodes):
                for op, i in node:
                    w[edge_index(n, i), DARTS_OPS.index(op)] = 1.0
            out[name] = w
        return out

    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """DARTS's rule on the op weights as the supernet gets them (e.g. softmax of the
        alphas): per node, the two incoming edges whose largest non-`none` weight is
        largest (ties: the lower input), each with its strongest non-`none` op."""
        weights = check_weights(weights, {g: (EDGES, len(DARTS_OPS)) for g in CELLS}, self.registry_name)
        cells = []
        for name in CELLS:
            w = weights[name].clone()
            w[:, NONE] = float("-inf")
            nodes = []
            for n in range(NODES):
                rows = [edge_index(n, j) for j in range(n + 2)]
                strength = [float(w[r].max()) for r in rows]
                keep = sorted(range(n + 2), key=lambda j: -strength[j])[
                    :2
                ]  # stable: ties keep the lower input
                nodes.append([(DARTS_OPS[int(torch.argmax(w[rows[j]]))], j) for j in keep])
            cells.append(nodes)
        return self._make(cells)

    # ---- text -------------------------------------------------------------
    def describe(self, arch: Arch) -> str:
        """The cells edge by edge (as NASLib prints a final architecture), with the arch string."""
        lines = ["darts architecture (DARTS cells, Liu et al. 2019)", f"  {self.check(arch).to_str()}"]
        for name, nodes in zip(CELLS, arch.genotype):
            title = (
                "normal cell"
                if name == "normal"
                else "reduction cell (stride 2 on edges from inputs 0 and 1)"
            )
            lines.append(f"Graph {title}: inputs 0 = c[k-2], 1 = c[k-1]; output = concat(2, 3, 4, 5)")
            for n, node in enumerate(nodes):
                for op, i in node:
                    lines.append(f"  ({name}-edge({i},{n + 2})): {op}")
        return "\n".join(lines)
