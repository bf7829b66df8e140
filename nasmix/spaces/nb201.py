"""The NAS-Bench-201 search space (Dong and Yang, ICLR 2020).

A cell is a DAG of 4 nodes; each of its 6 edges j -> i (j < i) carries one of
5 operations (`ops.NB201_OPS`), so the space holds 5^6 = 15,625 archs. The
network stacks 3 stages of N cells (C, 2C, 4C channels) with a ResNet basic
block of stride 2 between stages; all cells share one arch.

Arch strings are the benchmark's own notation, edge order included, so that
tabular lookups work on them unchanged:
`|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`.

Example:
    >>> import numpy as np
    >>> space = NB201()
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.parse(space.format(arch.genotype)) == arch
    True
    >>> len(space.all_archs())
    15625
"""

from __future__ import annotations

import functools
import itertools
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
from nasmix.spaces.supernet import EdgeContext, MixedEdge, Supernet

OPS = ops.NB201_OPS
# (to, from) of each edge, in the order the benchmark's string lists them.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
# The input -> output paths, as edge indices from the input side (BANANAS's blueprints).
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
# A 'none' edge cuts a path, so path features are labelled by the other 4 ops.
PATH_OPS = OPS[1:]
PATH_FEATURES = sum(len(PATH_OPS) ** k for k in (1, 2, 3))  # 4 + 16 + 64 = 84
TINY = (4, 1)  # (channels, cells per stage) of the "tiny" size


def expression(genotype: Sequence[str]) -> tuple:
    """The function a cell computes, as a canonical nested tuple.

    A node's value is the sorted multiset of its terms; the input is the term
    "x". An edge j -> i adds to node i: nothing for `none` or when node j is
    zero (an op applied to zeros gives zeros, up to a batch-norm shift); node
    j's own terms for `skip_connect` (the identity distributes over the sum);
    otherwise the term (op, value of j). Equal expressions mean the cells
    compute the same function up to weights; the empty tuple is the zero cell.

    Args:
        genotype: the 6 op names in edge order.

    Returns:
        The output node's value.
    """
    values: dict[int, tuple] = {0: ("x",)}
    for node in (1, 2, 3):
        terms: list = []
        for (to, src), op in zip(EDGES, genotype):
            if to != node or op == "none" or not values[src]:
                continue
            if op == "skip_connect":
                terms.extend(values[src])
            else:
                terms.append((op, values[src]))
        values[node] = tuple(sorted(terms, key=repr))
    return values[3]


@registry.register("space", "nb201")
class NB201(SearchSpace):
    """NAS-Bench-201 cell space (Dong and Yang 2020): 6 edges x 5 ops, 15,625 archs, benchmark notation.

    Networks follow the benchmark: a 3x3 conv + BN stem to C channels, 3
    stages of N cells (C, 2C, 4C) joined by ResNet basic blocks of stride 2,
    then BN-ReLU, global average pooling and a linear classifier. "search" and
    "eval" are the same network (C=16, N=5): NAS-Bench-201 trains exactly the
    network it searches. "tiny" is C=4, N=1.

    The supernet has one group "cell" of shape (6, 5): all cells share it, as
    in the benchmark's DARTS/GDAS search code. Its edges are `MixedEdge`s with
    non-affine batch norm; pooling gets no extra batch norm by default, since
    NB201's own search cells have none (`pool_bn=True` gives DARTS's variant).
    `decode` takes the argmax over all 5 ops of each edge, `none` included,
    as DARTS-for-NB201 does. Departure: the supernet's convolutions have no
    bias where xautodl's search cells have one (`bias=not affine`); the batch
    norm right after each one subtracts the batch mean, which cancels it (same
    outputs and gradients, fewer parameters).

    Example:
        >>> space = NB201()
        >>> s = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
        >>> space.format(space.parse(s).genotype) == s
        True
    """

    @dataclass(frozen=True)
    class Config:
        """Options of the NAS-Bench-201 space.

        Attributes:
            channels: C, the channels of the first stage ("search"/"eval").
            cells: N, the cells per stage ("search"/"eval").
            pool_bn: follow pooling in the supernet by a non-affine batch norm (DARTS) or not (NB201).
        """

        channels: int = 16
        cells: int = 5
        pool_bn: bool = False

        def __post_init__(self) -> None:
            if self.channels < 1 or self.cells < 1:
                raise ConfigError(f"channels and cells must be >= 1, got {self.channels} and {self.cells}")

    def __init__(self, config: Config = Config()):
        self.config = config

    # ---- the arch value -------------------------------------------------
    def choices(self) -> tuple[Choice, ...]:
        return tuple(Choice(f"edge {src}->{to}", OPS) for to, src in EDGES)

    def from_choices(self, values: Sequence[int]) -> Arch:
        if len(values) != len(EDGES) or any(not 0 <= int(v) < len(OPS) for v in values):
            raise ConfigError(
                f"nb201 needs {len(EDGES)} op indices in 0..{len(OPS) - 1}, got {tuple(values)}"
            )
        return Arch(self.registry_name, tuple(OPS[int(v)] for v in values))

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        return tuple(OPS.index(op) for op in self.check(arch).genotype)

    def format(self, genotype: tuple) -> str:
        nodes, k = [], 0
        for node in (1, 2, 3):
            nodes.append("|" + "|".join(f"{genotype[k + j]}~{j}" for j in range(node)) + "|")
            k += node
        return "+".join(nodes)

    def parse(self, text: str) -> Arch:
        """An arch from the benchmark's string (its exact form: edges in order, from 0 up).

        Raises:
            ConfigError: the text is not that form, or names an unknown op.
        """
        text = text.strip()
        parts = text.split("+")
        ops_found: list[str] = []
        if len(parts) == 3:
            for node, part in enumerate(parts, start=1):
                tokens = part.split("|")
                if len(tokens) != node + 2 or tokens[0] or tokens[-1]:
                    break
                for j, token in enumerate(tokens[1:-1]):
                    op, _, src = token.partition("~")
                    if op not in OPS or src != str(j):
                        raise ConfigError(
                            f"nb201 arch {text!r}: edge {token!r} of node {node} must be 'op~{j}' "
                            f"with op one of {', '.join(OPS)}"
                        )
                    ops_found.append(op)
        if len(ops_found) != len(EDGES):
            raise ConfigError(f"nb201 arch {text!r} must look like '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
        return Arch(self.registry_name, tuple(ops_found))

    def all_archs(self) -> list[Arch]:
        """All 15,625 archs, in choice order (the last edge varies fastest)."""
        return [self.from_choices(v) for v in itertools.product(range(len(OPS)), repeat=len(EDGES))]

    @functools.cached_property
    def _representatives(self) -> dict[tuple, tuple]:
        # expression -> the arch with fewest non-none edges, then smallest choices: computed once (~0.2 s).
        best: dict[tuple, tuple] = {}
        for values in itertools.product(range(len(OPS)), repeat=len(EDGES)):
            key = expression([OPS[v] for v in values])
            rank = (sum(v != 0 for v in values), values)
            if key not in best or rank < best[key]:
                best[key] = rank
        return {key: tuple(OPS[v] for v in rank[1]) for key, rank in best.items()}

    def canonical(self, arch: Arch) -> Arch:
        """The representative of all archs whose cells compute the same function.

        Two archs are identified when their `expression`s agree: this removes
        `none` edges and dead branches (edges off every input -> output path),
        treats `skip_connect` as the identity, and ignores the order of the
        terms summed at a node, which covers swapping the two intermediate
        nodes. The representative is the member with the fewest non-`none`
        edges (so no dead edges), then the smallest choice indices. The rule
        yields 4,930 classes; NB201's own `to_unique_str(consider_zero=True)`
        yields 6,466, each of its classes lying inside one of these (it keeps
        zero terms such as `#+#` and does not flatten sums under a skip).

        Example:
            >>> space = NB201()
            >>> text = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|"
            >>> a = space.parse(text)
            >>> space.format(space.canonical(a).genotype)
            '|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|'
        """
        genotype = self._representatives[expression(self.check(arch).genotype)]
        return Arch(self.registry_name, genotype)

    # ---- encodings --------------------------------------------------------
    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """One-hot choices, or the BANANAS path encoding (White et al. 2021).

        The path encoding has one bit per input -> output path labelled by its
        ops: 4 labellings of length 1, 16 of length 2, 64 of length 3 (84 bits),
        with ops in `PATH_OPS` order and the op nearest the input most
        significant. A path through a `none` edge does not exist, so `none`
        labels none (NASLib/naszilla keep it and use 5 + 25 + 125 = 155 bits).
        The cell's 4 paths are 0->3, 0->1->3, 0->2->3 and 0->1->2->3.

        Args:
            arch: an nb201 arch.
            kind: "onehot" (30 floats), "path" or "trunc_path" (the same 84 floats).

        Returns:
            A float32 vector.
        """
        if kind not in ("path", "trunc_path"):  # no path is longer than 3 ops: nothing to truncate
            return super().encode(arch, kind)
        genotype = self.check(arch).genotype
        out = np.zeros(PATH_FEATURES, dtype=np.float32)
        n = len(PATH_OPS)
        for path in PATHS:
            labels = [genotype[e] for e in path]
            if "none" in labels:
                continue
            index = sum(n**k for k in range(1, len(path)))  # the features of shorter paths come first
            for k, op in enumerate(labels):  # a base-n number, the op nearest the input most significant
                index += PATH_OPS.index(op) * n ** (len(labels) - 1 - k)
            out[index] = 1.0
        return out

    # ---- networks ---------------------------------------------------------
    def _dims(self, size: str) -> tuple[int, int]:
        return TINY if check_size(size) == "tiny" else (self.config.channels, self.config.cells)

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        """The NAS-Bench-201 network of an arch.

        Args:
            arch: an nb201 arch.
            task: classes and image shape.
            size: "tiny" (C=4, N=1), "search" or "eval" (both C=16, N=5 by default).

        Returns:
            A module mapping (B, C, H, W) images to (B, classes) logits.
        """
        c, n = self._dims(size)
        genotype = self.check(arch).genotype
        return _Network(task, c, n, lambda width: _Cell(genotype, width))

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        """The weight-sharing network; every cell reads group "cell" (6 edges x 5 ops).

        Args:
            task: classes and image shape.
            size: "tiny", "search" or "eval".
            partial: PC-DARTS's K; it must divide C (4 for "tiny").

        Returns:
            An `NB201Supernet`.
        """
        c, n = self._dims(size)
        return NB201Supernet(task, c, n, partial, self.config.pool_bn)

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        w = torch.zeros(len(EDGES), len(OPS))
        for e, v in enumerate(self.to_choices(arch)):
            w[e, v] = 1.0
        return {"cell": w}

    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The strongest op of each edge, `none` included (DARTS-for-NB201).

        Args:
            weights: {"cell": (6, 5) tensor} of arch weights or logits.

        Returns:
            The arch.
        """
        w = weights["cell"]
        if tuple(w.shape) != (len(EDGES), len(OPS)):
            raise ConfigError(f"nb201 weights 'cell' must have shape (6, 5), got {tuple(w.shape)}")
        return self.from_choices(w.detach().argmax(dim=1).tolist())


class _ResBlock(nn.Module):
    """NB201's reduction block: a ResNet basic block of stride 2 (ReLU-Conv-BN twice),
    the shortcut a 2x2 average pool then a 1x1 convolution."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ops.ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ops.ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class _Cell(nn.Module):
    """One standalone cell; `none` edges are not built (they add zeros)."""

    def __init__(self, genotype: Sequence[str], c: int):
        super().__init__()
        self.live = [e for e, op in enumerate(genotype) if op != "none"]
        self.ops = nn.ModuleList(ops.make_op(genotype[e], c, 1, affine=True) for e in self.live)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            terms = [op(nodes[EDGES[e][1]]) for e, op in zip(self.live, self.ops) if EDGES[e][0] == node]
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class _Network(nn.Module):
    """Stem, 3 stages of cells with reduction blocks between, BN-ReLU, pooling, classifier."""

    def __init__(self, task: Task, c: int, n: int, make_cell):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(task.shape[0], c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        layers, c_prev = [], c
        for stage in range(3):
            width = c * 2**stage
            if stage:
                layers.append(_ResBlock(c_prev, width))
            layers += [make_cell(width) for _ in range(n)]
            c_prev = width
        self.layers = nn.ModuleList(layers)
        self.last = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU())
        self.classifier = nn.Linear(c_prev, task.num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.last(x), 1)
        return self.classifier(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class _SearchCell(nn.Module):
    """One supernet cell: a mixed edge per edge, all reading the shared "cell" weights."""

    def __init__(self, c: int, partial: int, pool_bn: bool):
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(c, 1, OPS, partial, pool_bn) for _ in EDGES)

    def forward(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        nodes = [x]
        if ctx.together("cell"):  # the edges leaving each node together
            into: dict[int, list] = {1: [], 2: [], 3: []}
            for src in (0, 1, 2):
                if src:
                    nodes.append(sum(into[src][1:], into[src][0]))
                es = [e for e, (_, s) in enumerate(EDGES) if s == src]
                for e, y in zip(es, ctx.edges("cell", es, [self.edges[e] for e in es], nodes[src])):
                    into[EDGES[e][0]].append(y)
            return sum(into[3][1:], into[3][0])
        for node in (1, 2, 3):
            terms = [
                ctx.edge("cell", e, self.edges[e], nodes[src])
                for e, (to, src) in enumerate(EDGES)
                if to == node
            ]
            nodes.append(sum(terms[1:], terms[0]))
        return nodes[3]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 network with mixed edges; `forward(x, {"cell": (6, 5)})`.

    Args:
        task: classes and image shape.
        c: channels of the first stage.
        n: cells per stage.
        partial: PC-DARTS's K (1: all channels).
        pool_bn: batch norm after pooling ops (DARTS) or not (NB201).
    """

    def __init__(self, task: Task, c: int, n: int, partial: int = 1, pool_bn: bool = False):
        super().__init__()
        self.arch_shapes = {"cell": (len(EDGES), len(OPS))}
        self.op_names = {"cell": OPS}
        self.edge_nodes = {"cell": tuple(dst for dst, _ in EDGES)}  # the node each edge enters
        self.net = _Network(task, c, n, lambda width: _SearchCell(width, partial, pool_bn))

    def run(self, x: torch.Tensor, ctx: EdgeContext) -> torch.Tensor:
        x = self.net.stem(x)
        for layer in self.net.layers:
            x = self.call_cell(layer, x, ctx) if isinstance(layer, _SearchCell) else layer(x)
        return self.net.head(x)
