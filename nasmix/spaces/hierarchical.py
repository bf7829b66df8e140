"""The hierarchical search space of Liu et al. 2018, "Hierarchical
Representations for Efficient Architecture Search" (ICLR 2018).

An arch is M level-2 motifs (each a 4-node DAG whose 6 edges pick a primitive
or `none`) and one level-3 cell (a 5-node DAG whose 10 edges pick a motif or
`none`). The networks are in `nasmix.spaces.motifs`; departures from the paper
are listed in docs/spaces/hierarchical.md.

The arch string lists the motifs, then the cell, separated by `;`. Within a
DAG, `+` separates the nodes 1, 2, ... and `.` the inputs of one node from
node 0 upwards. Primitive codes: x (none), c1 (conv_1x1), dw3 (dw_conv_3x3),
sep3 (sep_conv_3x3_h), max3, avg3 (pooling), id (identity); a cell edge is x
or m<index>.

Example:
    >>> import numpy as np
    >>> space = Hierarchical()
    >>> arch = space.parse(EXAMPLE)
    >>> space.format(arch.genotype) == EXAMPLE
    True
    >>> len(space.choices())
    34
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.base import Choice, SearchSpace, check_size
from nasmix.spaces.motifs import (
    CELL_NODES,
    MOTIF_NODES,
    HierarchicalNet,
    HierarchicalSupernet,
    Macro,
    dag_edges,
    live_edges,
)
from nasmix.spaces.ops import HIERARCHICAL_OPS
from nasmix.spaces.supernet import Supernet

CODES = {"none": "x", "conv_1x1": "c1", "dw_conv_3x3": "dw3", "sep_conv_3x3_h": "sep3",
         "max_pool_3x3": "max3", "avg_pool_3x3": "avg3", "identity": "id"}  # fmt: skip
OPS_OF_CODE = {code: op for op, code in CODES.items()}
EXAMPLE = ("m0=sep3+c1.id+x.dw3.max3;m1=dw3+sep3.x+avg3.id.c1;m2=max3+sep3.sep3+id.x.avg3;"
           "m3=c1+dw3.x+sep3.max3.id;cell=m0+m1.m2+x.m3.m0+m1.x.m2.m3")  # fmt: skip


def _format_dag(nodes: int, codes: Sequence[str]) -> str:
    groups, k = [], 0
    for i in range(1, nodes):
        groups.append(".".join(codes[k : k + i]))
        k += i
    return "+".join(groups)


def _parse_dag(text: str, nodes: int, where: str) -> list[str]:
    groups = text.split("+")
    if len(groups) != nodes - 1:
        raise ConfigError(f"{where}: expected {nodes - 1} nodes separated by '+', got {len(groups)} in {text!r}")
    codes = []
    for i, group in enumerate(groups, start=1):
        inputs = group.split(".")
        if len(inputs) != i:
            raise ConfigError(f"{where}: node {i} takes {i} inputs separated by '.', got {group!r}")
        codes += inputs
    return codes


@registry.register("space", "hierarchical")
class Hierarchical(SearchSpace):
    """Hierarchical representation (Liu et al. 2018): primitives -> 4 motifs of 4 nodes -> a 5-node cell.

    Choices: the 6 edges of every motif (7 options: the six primitives and
    `none`), then the 10 edges of the cell (M + 1 options: `none` and the M
    motifs). Every assignment is valid: a node whose inputs are all `none` is zero.

    Networks (appendix A of the paper): stem, three stages of cells separated by
    stride-2 separable convolutions that double the channels, a last separable
    convolution, global pooling, linear head. Sizes: tiny (8 channels, a
    stride-2 stem and a single cell: for tests), search (16 channels, one cell
    per stage: the paper's small search network), eval (64 channels, two cells
    per stage: the paper's large CIFAR network with N = 2).

    Example:
        >>> space = Hierarchical(Hierarchical.Config(motifs=4))
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.decode(space.arch_weights(arch)) == arch
        True
    """

    arch_options = ("motifs",)  # it decides which arch strings are valid

    @dataclass(frozen=True)
    class Config:
        """Options of the hierarchical space.

        Attributes:
            motifs: M, the number of level-2 motifs (the paper searches with 6;
                4 by default keeps the supernet a third lighter).
            tiny_channels: stem channels of the tiny network.
            search_channels: stem channels of the search network (paper: 16).
            eval_channels: stem channels of the evaluation network (paper: 64).
            eval_cells: N, cells per stage of the evaluation network (paper: 2).
            checkpoint: in the supernet's weighted-sum mode, recompute each motif
                in the backward pass instead of storing its inside (about 30
                times less memory at search size; up to 1.8 times the step
                time on the CPU).
        """

        motifs: int = 4
        tiny_channels: int = 8
        search_channels: int = 16
        eval_channels: int = 64
        eval_cells: int = 2
        checkpoint: bool = True

        def __post_init__(self) -> None:
            if self.motifs < 1:
                raise ConfigError(f"motifs must be >= 1, got {self.motifs}")
            for name in ("tiny_channels", "search_channels", "eval_channels", "eval_cells"):
                if getattr(self, name) < 1:
                    raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def __init__(self, config: Config = Config()):
        self.config = config
        self.cell_options = ("none",) + tuple(f"motif{m}" for m in range(config.motifs))

    # ---- the arch value -------------------------------------------------
    @functools.cached_property
    def _choices(self) -> tuple[Choice, ...]:
        out = [Choice(f"motif{m} {j}->{i}", HIERARCHICAL_OPS)
               for m in range(self.config.motifs) for j, i in dag_edges(MOTIF_NODES)]  # fmt: skip
        out += [Choice(f"cell {j}->{i}", self.cell_options) for j, i in dag_edges(CELL_NODES)]
        return tuple(out)

    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def from_choices(self, values: Sequence[int]) -> Arch:
        choices = self.choices()
        if len(values) != len(choices):
            raise ConfigError(f"hierarchical: expected {len(choices)} choice values, got {len(values)}")
        names = []
        for v, c in zip(values, choices):
            if not 0 <= int(v) < len(c.options):
                raise ConfigError(f"hierarchical: choice {c.name!r} has {len(c.options)} options, got index {v}")
            names.append(c.options[int(v)])
        e = len(dag_edges(MOTIF_NODES))
        motifs = tuple(tuple(names[m * e : (m + 1) * e]) for m in range(self.config.motifs))
        return self.arch((motifs, tuple(names[self.config.motifs * e :])))

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        motifs, cell = self.check(arch).genotype
        return tuple(HIERARCHICAL_OPS.index(o) for ops in motifs for o in ops) + tuple(
            self.cell_options.index(o) for o in cell
        )

    def check(self, arch: Arch) -> Arch:
        super().check(arch)
        try:
            motifs, cell = arch.genotype
            ok = (len(motifs) == self.config.motifs and len(cell) == len(dag_edges(CELL_NODES))
                  and all(len(ops) == len(dag_edges(MOTIF_NODES)) and set(ops) <= set(HIERARCHICAL_OPS)
                          for ops in motifs)
                  and set(cell) <= set(self.cell_options))  # fmt: skip
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"malformed hierarchical genotype {arch.genotype!r}")
        return arch

    def format(self, genotype: tuple) -> str:
        try:
            motifs, cell = genotype
            parts = [f"m{m}=" + _format_dag(MOTIF_NODES, [CODES[o] for o in ops]) for m, ops in enumerate(motifs)]
            cell_codes = ["x" if o == "none" else "m" + o[len("motif") :] for o in cell]
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"malformed hierarchical genotype {genotype!r}") from None
        return ";".join(parts + ["cell=" + _format_dag(CELL_NODES, cell_codes)])

    def parse(self, text: str) -> Arch:
        text = text.strip()
        parts = text.split(";")
        m_count = self.config.motifs
        names = [f"m{m}" for m in range(m_count)] + ["cell"]
        if len(parts) != len(names):
            raise ConfigError(f"hierarchical arch {text!r}: expected {len(names)} parts separated by ';' "
                              f"({', '.join(names)}), e.g. {EXAMPLE!r}")  # fmt: skip
        motifs = []
        for name, part in zip(names, parts):
            head, sep, body = part.partition("=")
            if not sep or head != name:
                raise ConfigError(f"hierarchical arch: part {part!r} must start with '{name}='")
            codes = _parse_dag(body, CELL_NODES if name == "cell" else MOTIF_NODES, f"hierarchical {name}")
            if name != "cell":
                bad = [c for c in codes if c not in OPS_OF_CODE]
                if bad:
                    raise ConfigError(f"hierarchical {name}: unknown primitive code {bad[0]!r}; "
                                      f"valid: {', '.join(OPS_OF_CODE)}")  # fmt: skip
                motifs.append(tuple(OPS_OF_CODE[c] for c in codes))
                continue
            refs = {"x": "none"} | {f"m{m}": f"motif{m}" for m in range(m_count)}
            bad = [c for c in codes if c not in refs]
            if bad:
                raise ConfigError(f"hierarchical cell: unknown edge {bad[0]!r}; valid: {', '.join(refs)}")
            cell = tuple(refs[c] for c in codes)
        return self.arch((tuple(motifs), cell))

    def canonical(self, arch: Arch) -> Arch:
        """The same network with dead edges set to `none`, unused motifs blanked
        and the used ones renumbered in order of first use in the cell."""
        motifs, cell = self.check(arch).genotype
        live = live_edges(CELL_NODES, [o != "none" for o in cell])
        cell = [o if live[k] else "none" for k, o in enumerate(cell)]
        order = list(dict.fromkeys(int(o[len("motif") :]) for o in cell if o != "none"))
        blank = ("none",) * len(dag_edges(MOTIF_NODES))
        new_motifs = []
        for m in order:
            ops = motifs[m]
            alive = live_edges(MOTIF_NODES, [o != "none" for o in ops])
            new_motifs.append(tuple(o if alive[k] else "none" for k, o in enumerate(ops)))
        new_motifs += [blank] * (self.config.motifs - len(order))
        cell = tuple("none" if o == "none" else f"motif{order.index(int(o[len('motif') :]))}" for o in cell)
        return self.arch((tuple(new_motifs), cell))

    # ---- discrete moves ---------------------------------------------------
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """The paper's mutation (section 3.1): pick a level (2 or 3), a motif of
        it, a successor node i, a predecessor j < i, and give edge j -> i
        another op (the paper may redraw the same op; here it always changes)."""
        values = list(self.to_choices(self.check(arch)))
        e = len(dag_edges(MOTIF_NODES))
        if rng.integers(2) == 0:
            offset, nodes, size = int(rng.integers(self.config.motifs)) * e, MOTIF_NODES, len(HIERARCHICAL_OPS)
        else:
            offset, nodes, size = self.config.motifs * e, CELL_NODES, len(self.cell_options)
        i = 1 + int(rng.integers(nodes - 1))
        k = offset + i * (i - 1) // 2 + int(rng.integers(i))
        values[k] = (values[k] + 1 + int(rng.integers(size - 1))) % size
        return self.from_choices(values)

    # ---- networks ---------------------------------------------------------
    def macro(self, size: str) -> Macro:
        """The macro layout of a size: tiny is one cell after a stride-2 stem (tests
        on the CPU), search and eval are the paper's small and large networks."""
        cfg = self.config
        return {"tiny": Macro(cfg.tiny_channels, stages=1, stem_stride=2), "search": Macro(cfg.search_channels),
                "eval": Macro(cfg.eval_channels, cells=cfg.eval_cells)}[check_size(size)]  # fmt: skip

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        motifs, cell = self.check(arch).genotype
        return HierarchicalNet(task, self.macro(size), motifs, cell)

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        macro = self.macro(size)
        if partial < 1 or macro.channels % partial:
            raise ConfigError(f"partial channels K={partial} must divide the {macro.channels} channels of size {size!r}")
        return HierarchicalSupernet(task, macro, self.config.motifs, partial, self.config.checkpoint)

    def _groups(self) -> dict[str, tuple[str, ...]]:
        groups = {f"motif{m}": HIERARCHICAL_OPS for m in range(self.config.motifs)}
        return groups | {"cell": self.cell_options}

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        motifs, cell = self.check(arch).genotype
        picks = {f"motif{m}": ops for m, ops in enumerate(motifs)} | {"cell": cell}
        out = {}
        for group, options in self._groups().items():
            w = torch.zeros(len(picks[group]), len(options))
            w[torch.arange(len(picks[group])), torch.tensor([options.index(o) for o in picks[group]])] = 1.0
            out[group] = w
        return out

    def decode(self, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The argmax op of every edge, `none` included (it is a real option of
        the representation, and decode must invert arch_weights); ties go to
        the lower index."""
        picks = {}
        for group, options in self._groups().items():
            w = weights.get(group)
            edges = len(dag_edges(CELL_NODES if group == "cell" else MOTIF_NODES))
            if w is None or tuple(w.shape) != (edges, len(options)):
                got = None if w is None else tuple(w.shape)
                raise ConfigError(f"hierarchical decode: group {group!r} needs shape {(edges, len(options))}, got {got}")
            picks[group] = tuple(options[int(i)] for i in w.detach().float().argmax(dim=1))
        motifs = tuple(picks[f"motif{m}"] for m in range(self.config.motifs))
        return self.arch((motifs, picks["cell"]))

    # ---- text -------------------------------------------------------------
    def describe(self, arch: Arch) -> str:
        """The three levels: primitive codes, each motif's edges, the cell's edges."""
        motifs, cell = self.check(arch).genotype
        lines = ["hierarchical architecture", f"  {arch.to_str()}",
                 "  level 1 (primitives): " + ", ".join(f"{c}={o}" for o, c in CODES.items()),
                 f"  level 2 ({len(motifs)} motifs of {MOTIF_NODES} nodes; node <- input:op):"]  # fmt: skip
        lines += [f"    m{m}: {_describe_dag(MOTIF_NODES, [CODES[o] for o in ops])}" for m, ops in enumerate(motifs)]
        lines.append(f"  level 3 (cell of {CELL_NODES} nodes; node <- input:motif):")
        codes = ["x" if o == "none" else "m" + o[len("motif") :] for o in cell]
        lines.append(f"    cell: {_describe_dag(CELL_NODES, codes)}")
        return "\n".join(lines)


def _describe_dag(nodes: int, codes: Sequence[str]) -> str:
    nodes_text = []
    for i in range(1, nodes):
        inputs = [f"{j}:{codes[k]}" for k, (j, t) in enumerate(dag_edges(nodes)) if t == i and codes[k] != "x"]
        nodes_text.append(f"{i} <- " + (", ".join(inputs) if inputs else "zero"))
    return " | ".join(nodes_text)
