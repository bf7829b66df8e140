"""The hierarchical search space of Liu et al. 2018, "Hierarchical
Representations for Efficient Architecture Search" (ICLR 2018), in three
variants:

- "naslib" (default): NASLib's `HierarchicalSearchSpace` (automl/NASLib,
  naslib/search_spaces/hierarchical/graph.py), the network the seed study
  ran: 6 motifs, cell edges among the motifs only, the motif's output node
  concatenating its inputs, DARTS's separable convolutions. Its search
  supernet has 7,891,546 weights and 312 architecture parameters, as NASLib's.
- "paper": the paper's representation: depthwise concatenation at every
  node, `none` at both levels, 6 motifs; standalone networks only.
- "light": nasmix's cheaper design (summing nodes, single separable
  convolutions, `none` at the cell level, 4 motifs).

An arch is M level-2 motifs (each a 4-node DAG whose 6 edges pick a
primitive or `none`) and one level-3 cell (a 5-node DAG whose 10 edges pick a
motif, or `none` where the variant allows it). The networks are in
`nasmix.spaces.motifs` (naslib, light), `nasmix.spaces.motifs_paper` (paper)
and `nasmix.spaces.motif_supernet`; departures are listed in
docs/spaces/hierarchical.md.

The arch string lists the motifs, then the cell, separated by `;`. Within a
DAG, `+` separates the nodes 1, 2, ... and `.` the inputs of one node from
node 0 upwards. Primitive codes: x (none), c1 (conv_1x1), dw3 (dw_conv_3x3),
sep3 (the variant's 3x3 separable convolution), max3, avg3 (pooling), id
(identity); a cell edge is x or m<index>.

Example:
    >>> space = Hierarchical()
    >>> arch = space.parse(LIU_2018)
    >>> space.format(arch.genotype) == LIU_2018
    True
    >>> len(space.choices())
    46
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch, Options
from nasmix.data.base import Task
from nasmix.errors import ConfigError
from nasmix.spaces.base import Choice, SearchSpace, check_size
from nasmix.spaces.motif_supernet import HierarchicalSupernet, cell_options
from nasmix.spaces.motifs import (
    CELL_NODES,
    DESIGNS,
    MOTIF_NODES,
    HierarchicalNet,
    Macro,
    dag_edges,
    live_edges,
)
from nasmix.spaces.motifs_paper import PaperNet, built_edges, motif_exists
from nasmix.spaces.supernet import Supernet

CODES = {
    "none": "x",
    "conv_1x1": "c1",
    "dw_conv_3x3": "dw3",
    "sep_conv_3x3_h": "sep3",
    "sep_conv_3x3": "sep3",
    "max_pool_3x3": "max3",
    "avg_pool_3x3": "avg3",
    "identity": "id",
}
VARIANTS = tuple(DESIGNS)

LIU_2018 = (
    "m0=max3+c1.dw3+sep3.c1.max3;m1=max3+dw3.dw3+c1.sep3.sep3;m2=sep3+dw3.sep3+sep3.id.avg3;"
    "m3=avg3+sep3.sep3+id.max3.avg3;m4=id+sep3.id+sep3.id.sep3;m5=dw3+max3.max3+sep3.id.avg3;"
    "cell=m4+m2.m2+m2.m0.m2+m3.m4.m4.m4"
)
"""The paper's evolved CIFAR-10 architecture (its appendix), as NASLib's `LiuFinalArch` transcribes it."""

EXAMPLE_LIGHT = (
    "m0=sep3+c1.id+x.dw3.max3;m1=dw3+sep3.x+avg3.id.c1;m2=max3+sep3.sep3+id.x.avg3;"
    "m3=c1+dw3.x+sep3.max3.id;cell=m0+m1.m2+x.m3.m0+m1.x.m2.m3"
)
"""An arch of the light variant (4 motifs, `none` on cell edges)."""


def _format_dag(nodes: int, codes: Sequence[str]) -> str:
    groups, k = [], 0
    for i in range(1, nodes):
        groups.append(".".join(codes[k : k + i]))
        k += i
    return "+".join(groups)


def _parse_dag(text: str, nodes: int, where: str) -> list[str]:
    groups = text.split("+")
    if len(groups) != nodes - 1:
        raise ConfigError(
            f"{where}: expected {nodes - 1} nodes separated by '+', got {len(groups)} in {text!r}"
        )
    codes = []
    for i, group in enumerate(groups, start=1):
        inputs = group.split(".")
        if len(inputs) != i:
            raise ConfigError(f"{where}: node {i} takes {i} inputs separated by '.', got {group!r}")
        codes += inputs
    return codes


@registry.register("space", "hierarchical")
class Hierarchical(SearchSpace):
    """Hierarchical representation (Liu et al. 2018), by default NASLib's: 6 4-node motifs -> a 5-node cell.

    Choices: the 6 edges of every motif (7 options: six primitives and
    `none`), then the 10 edges of the cell (the M motifs, and `none` in the
    paper and light variants). Every assignment is valid: a node whose
    inputs are all `none` is zero (naslib, light) or absent (paper).

    Networks (appendix A of the paper, as NASLib reads it): stem, three
    stages of cells separated by stride-2 separable convolutions that double
    the channels, a last separable convolution, global pooling, linear head.
    Sizes: tiny (8 channels, a stride-2 stem and a single cell: for tests),
    search (16 channels, one cell per stage: the paper's small search network
    and NASLib's), eval (64 channels, two cells per stage: the paper's large
    CIFAR network with N = 2, and NASLib's evaluation network).

    Example:
        >>> space = Hierarchical(Hierarchical.Config(variant="light"))
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.decode(space.arch_weights(arch)) == arch
        True
    """

    # The variant (its primitives, and for "paper" its network) and the motif count decide which
    # arch strings are valid and what they build.
    arch_options = ("variant", "motifs")
    # Options the contract tests arch strings under (nasmix.testing.check_space_options).
    option_examples = ({"variant": "light"}, {"variant": "paper", "motifs": 3}, {"motifs": 4})

    @functools.cached_property
    def arch_key(self) -> Options:
        """The variant where it is not NASLib's, and M where it is not the variant's own
        (the Config's `motifs = None` stands for the variant's count, so the base rule,
        which compares with the field's default, would always name it)."""
        cfg = self.config
        key: dict[str, str | int | None] = (
            {"variant": cfg.variant} if cfg.variant != self.Config.variant else {}
        )
        if cfg.motifs != DESIGNS[cfg.variant].motifs:
            key["motifs"] = cfg.motifs
        return tuple(sorted(key.items()))

    @dataclass(frozen=True)
    class Config:
        """Options of the hierarchical space.

        Attributes:
            variant: "naslib" (NASLib's network, the seed study's), "paper"
                (concatenation at every node; no supernet) or "light" (summing
                nodes, a lighter supernet).
            motifs: M, the number of level-2 motifs (None: the variant's, 6 for
                naslib and paper, 4 for light).
            tiny_channels: stem channels of the tiny network.
            search_channels: stem channels of the search network (paper, NASLib: 16).
            eval_channels: stem channels of the evaluation network (paper, NASLib: 64).
            eval_cells: N, cells per stage of the evaluation network (paper, NASLib: 2).
            checkpoint: recompute the supernet's weighted motifs in the backward
                pass: None (automatic: only where the memory estimate needs it,
                see nasmix.spaces.motif_memory), true (always) or false (never).
            memory_gib: the memory the automatic plan may fill, in GiB (None: 70%
                of the device's free memory).
        """

        variant: str = "naslib"
        motifs: int | None = None
        tiny_channels: int = 8
        search_channels: int = 16
        eval_channels: int = 64
        eval_cells: int = 2
        checkpoint: bool | None = None
        memory_gib: float | None = None

        def __post_init__(self) -> None:
            if self.variant not in DESIGNS:
                valid = ", ".join(DESIGNS)
                raise ConfigError(f"unknown hierarchical variant {self.variant!r}; valid: {valid}")
            motifs = DESIGNS[self.variant].motifs if self.motifs is None else self.motifs
            object.__setattr__(self, "motifs", motifs)
            if motifs < 1:
                raise ConfigError(f"motifs must be >= 1, got {motifs}")
            for name in ("tiny_channels", "search_channels", "eval_channels", "eval_cells"):
                if getattr(self, name) < 1:
                    raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
            if self.memory_gib is not None and self.memory_gib <= 0:
                raise ConfigError(f"memory_gib must be > 0, got {self.memory_gib}")

    def __init__(self, config: Config = Config()):
        self.config = config
        self.design = DESIGNS[config.variant]
        self.ops = self.design.ops
        # M as an int (Config.__post_init__ has replaced a None by the variant's count)
        self.n_motifs = self.design.motifs if config.motifs is None else config.motifs
        self.cell_options = cell_options(self.design, self.n_motifs)
        self.codes = {op: CODES[op] for op in self.ops}
        self.ops_of_code = {code: op for op, code in self.codes.items()}

    # ---- the arch value -------------------------------------------------
    @functools.cached_property
    def _choices(self) -> tuple[Choice, ...]:
        m_count = self.n_motifs
        edges = dag_edges(MOTIF_NODES)
        out = [Choice(f"motif{m} {j}->{i}", self.ops) for m in range(m_count) for j, i in edges]
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
                raise ConfigError(
                    f"hierarchical: choice {c.name!r} has {len(c.options)} options, got index {v}"
                )
            names.append(c.options[int(v)])
        e = len(dag_edges(MOTIF_NODES))
        motifs = tuple(tuple(names[m * e : (m + 1) * e]) for m in range(self.n_motifs))
        return self.arch((motifs, tuple(names[self.n_motifs * e :])))

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        motifs, cell = self.check(arch).genotype
        values = [self.ops.index(o) for ops in motifs for o in ops]
        return tuple(values + [self.cell_options.index(o) for o in cell])

    def check(self, arch: Arch) -> Arch:
        super().check(arch)
        try:
            motifs, cell = arch.genotype
            ok = len(motifs) == self.n_motifs and len(cell) == len(dag_edges(CELL_NODES))
            e = len(dag_edges(MOTIF_NODES))
            ok = ok and all(len(ops) == e and set(ops) <= set(self.ops) for ops in motifs)
            ok = ok and set(cell) <= set(self.cell_options)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"malformed {self.config.variant} hierarchical genotype {arch.genotype!r}")
        return arch

    def format(self, genotype: tuple) -> str:
        try:
            motifs, cell = genotype
            parts = [f"m{m}=" + self._format_motif(ops) for m, ops in enumerate(motifs)]
            cell_codes = ["x" if o == "none" else "m" + o[len("motif") :] for o in cell]
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"malformed hierarchical genotype {genotype!r}") from None
        return ";".join(parts + ["cell=" + _format_dag(CELL_NODES, cell_codes)])

    def _format_motif(self, ops: Sequence[str]) -> str:
        # every variant's op names have a code, so that `Arch.to_str` (the default space) formats any variant
        return _format_dag(MOTIF_NODES, [CODES[o] for o in ops])

    def parse(self, text: str) -> Arch:
        text = text.strip()
        parts = text.split(";")
        m_count = self.n_motifs
        names = [f"m{m}" for m in range(m_count)] + ["cell"]
        if len(parts) != len(names):
            example = LIU_2018 if m_count == 6 else EXAMPLE_LIGHT if m_count == 4 else ""
            raise ConfigError(
                f"hierarchical arch {text!r}: expected {len(names)} parts separated by ';' "
                f"({', '.join(names)})" + (f", e.g. {example!r}" if example else "")
            )
        motifs = []
        for name, part in zip(names, parts):
            head, sep, body = part.partition("=")
            if not sep or head != name:
                raise ConfigError(f"hierarchical arch: part {part!r} must start with '{name}='")
            codes = _parse_dag(body, CELL_NODES if name == "cell" else MOTIF_NODES, f"hierarchical {name}")
            if name != "cell":
                bad = [c for c in codes if c not in self.ops_of_code]
                if bad:
                    valid = ", ".join(self.ops_of_code)
                    raise ConfigError(f"hierarchical {name}: unknown primitive {bad[0]!r}; valid: {valid}")
                motifs.append(tuple(self.ops_of_code[c] for c in codes))
                continue
            refs = {"x": "none"} if self.design.cell_none else {}
            refs |= {f"m{m}": f"motif{m}" for m in range(m_count)}
            bad = [c for c in codes if c not in refs]
            if bad:
                variant, valid = self.config.variant, ", ".join(refs)
                raise ConfigError(f"hierarchical cell ({variant}): unknown edge {bad[0]!r}; valid: {valid}")
            cell = tuple(refs[c] for c in codes)
        return self.arch((tuple(motifs), cell))

    def _alive(self, nodes: int, used: Sequence[bool]) -> list[bool]:
        """The edges whose op reaches the output (built_edges in the paper's concatenating DAGs)."""
        return built_edges(nodes, used) if self.config.variant == "paper" else live_edges(nodes, used)

    def canonical(self, arch: Arch) -> Arch:
        """The same network with dead edges set to `none`, unused motifs blanked
        and the used ones renumbered in order of first use in the cell."""
        motifs, cell = self.check(arch).genotype
        paper = self.config.variant == "paper"
        used = [o != "none" and (not paper or motif_exists(motifs[int(o[len("motif") :])])) for o in cell]
        live = self._alive(CELL_NODES, used)
        cell = [o if live[k] else "none" for k, o in enumerate(cell)]
        order = list(dict.fromkeys(int(o[len("motif") :]) for o in cell if o != "none"))
        blank = ("none",) * len(dag_edges(MOTIF_NODES))
        new_motifs = []
        for m in order:
            ops = motifs[m]
            alive = self._alive(MOTIF_NODES, [o != "none" for o in ops])
            new_motifs.append(tuple(o if alive[k] else "none" for k, o in enumerate(ops)))
        new_motifs += [blank] * (self.n_motifs - len(order))
        cell = tuple("none" if o == "none" else f"motif{order.index(int(o[len('motif') :]))}" for o in cell)
        return self.arch((tuple(new_motifs), cell))

    # ---- discrete moves ---------------------------------------------------
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """The paper's mutation (section 3.1): pick a level (2 or 3), a motif of
        it, a successor node i, a predecessor j < i, and give edge j -> i
        another op (the paper may redraw the same op; here it always changes).
        One edge changes: one op of a motif, or one motif of the cell."""
        values = list(self.to_choices(self.check(arch)))
        e = len(dag_edges(MOTIF_NODES))
        if rng.integers(2) == 0:
            offset, nodes, size = int(rng.integers(self.n_motifs)) * e, MOTIF_NODES, len(self.ops)
        else:
            offset, nodes, size = self.n_motifs * e, CELL_NODES, len(self.cell_options)
        i = 1 + int(rng.integers(nodes - 1))
        k = offset + i * (i - 1) // 2 + int(rng.integers(i))
        values[k] = (values[k] + 1 + int(rng.integers(size - 1))) % size
        return self.from_choices(values)

    # ---- networks ---------------------------------------------------------
    def macro(self, size: str) -> Macro:
        """The macro layout of a size: tiny is one cell after a stride-2 stem (tests
        on the CPU), search and eval are the paper's (and NASLib's) small and large networks."""
        cfg = self.config
        if check_size(size) == "tiny":
            return Macro(cfg.tiny_channels, stages=1, stem_stride=2)
        if size == "search":
            return Macro(cfg.search_channels)
        return Macro(cfg.eval_channels, cells=cfg.eval_cells)

    def build(self, arch: Arch, task: Task, size: str = "search") -> nn.Module:
        motifs, cell = self.check(arch).genotype
        if self.config.variant == "paper":
            return PaperNet(task, self.macro(size), motifs, cell)
        return HierarchicalNet(task, self.macro(size), self.design, motifs, cell)

    def supernet(self, task: Task, size: str = "search", partial: int = 1) -> Supernet:
        """The weight-sharing supernet (naslib and light variants).

        Raises:
            ConfigError: for the paper variant (its edges' candidates differ in
                width, so they cannot be mixed), or a `partial` that does not
                divide the channels.
        """
        if self.config.variant == "paper":
            raise ConfigError(
                "the paper variant of the hierarchical space concatenates at every node, so the candidates "
                "of an edge differ in width and cannot be mixed: it has no supernet (the paper searched by "
                "evolution and random search). Use variant 'naslib' or 'light' with one-shot strategies."
            )
        macro, cfg = self.macro(size), self.config
        if partial < 1 or macro.channels % partial:
            raise ConfigError(
                f"partial channels K={partial} must divide the {macro.channels} channels of size {size!r}"
            )
        design, motifs = self.design, self.n_motifs
        return HierarchicalSupernet(task, macro, design, motifs, partial, cfg.checkpoint, cfg.memory_gib)

    def _groups(self) -> dict[str, tuple[str, ...]]:
        groups = {f"motif{m}": self.ops for m in range(self.n_motifs)}
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
                raise ConfigError(
                    f"hierarchical decode: group {group!r} needs shape {(edges, len(options))}, got {got}"
                )
            picks[group] = tuple(options[int(i)] for i in w.detach().float().argmax(dim=1))
        motifs = tuple(picks[f"motif{m}"] for m in range(self.n_motifs))
        return self.arch((motifs, picks["cell"]))

    # ---- text -------------------------------------------------------------
    def describe(self, arch: Arch) -> str:
        """The three levels: primitive codes, each motif's edges, the cell's edges."""
        motifs, cell = self.check(arch).genotype
        codes = ", ".join(f"{c}={o}" for o, c in self.codes.items())
        lines = [
            f"hierarchical architecture ({self.config.variant} variant)",
            f"  {arch.to_str()}",
            f"  level 1 (primitives): {codes}",
            f"  level 2 ({len(motifs)} motifs of {MOTIF_NODES} nodes; node <- input:op):",
        ]
        for m, ops in enumerate(motifs):
            lines.append(f"    m{m}: {_describe_dag(MOTIF_NODES, [self.codes[o] for o in ops])}")
        lines.append(f"  level 3 (cell of {CELL_NODES} nodes; node <- input:motif):")
        cell_codes = ["x" if o == "none" else "m" + o[len("motif") :] for o in cell]
        lines.append(f"    cell: {_describe_dag(CELL_NODES, cell_codes)}")
        return "\n".join(lines)


def _describe_dag(nodes: int, codes: Sequence[str]) -> str:
    nodes_text = []
    for i in range(1, nodes):
        inputs = [
            f"{j}:{codes[k]}" for k, (j, t) in enumerate(dag_edges(nodes)) if t == i and codes[k] != "x"
        ]
        nodes_text.append(f"{i} <- " + (", ".join(inputs) if inputs else "zero"))
    return " | ".join(nodes_text)
