"""The hierarchical paper's own network (Liu et al. 2018, sections 2.1-2.3, 4.1 and appendix A):
depthwise concatenation at every node.

Every node concatenates its inputs along the channels, so a node's width is
the sum of its inputs' widths and depends on the arch. The primitives
(section 2.3): a 1x1 convolution of C channels, a 3x3 depthwise convolution
(its input's channels), a 3x3 separable convolution of C channels, 3x3 max
and average pooling and the identity (their input's channels); every
convolution is followed by batch norm and ReLU. Each level-2 motif is
followed by a 1x1 conv-BN-ReLU to C channels (section 4.1); the cell's nodes
concatenate the C-channel outputs of the motifs on their edges, and the
separable convolutions of the macro network (as in `motifs.macro_layers`)
map whatever a cell gives to the stage's width.

Rules the paper leaves open: a node exists when one of its edges is not
`none` and comes from a node that exists (node 0 always does); an edge from
a node that does not exist, or into one that cannot reach the output, is not
built. A motif whose output node does not exist is treated as `none` on the
cell edges that choose it. A cell whose output node does not exist outputs
zeros of its input's shape.

There is no supernet: the candidates of an edge give different widths, so
they cannot be summed (the paper searched by evolution and random search).

Example:
    >>> import torch
    >>> motif = PaperMotif(8, 4, ("conv_1x1", "dw_conv_3x3", "identity", "none", "none", "max_pool_3x3"))
    >>> motif.widths, tuple(motif(torch.zeros(2, 8, 6, 6)).shape)
    ([8, 4, 12, 12], (2, 4, 6, 6))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.spaces.motifs import CELL_NODES, MOTIF_NODES, PAPER, Macro, dag_edges, live_edges, macro_layers


def _conv_bn_relu(*convs: nn.Conv2d) -> nn.Module:
    c_out = convs[-1].out_channels
    return nn.Sequential(*convs, nn.BatchNorm2d(c_out), nn.ReLU(inplace=False))


def paper_op(name: str, c_in: int, c: int) -> tuple[nn.Module, int]:
    """A primitive of the paper taking c_in channels, and its output channels.

    Args:
        name: one of nasmix.spaces.ops.HIERARCHICAL_OPS, `none` excepted.
        c_in: the input's channels.
        c: C, the channels of the convolutions that set their own width.

    Returns:
        (module, output channels).
    """
    if name == "conv_1x1":
        return _conv_bn_relu(nn.Conv2d(c_in, c, 1, bias=False)), c
    if name == "dw_conv_3x3":
        return _conv_bn_relu(nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False)), c_in
    if name == "sep_conv_3x3_h":
        depthwise = nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False)
        return _conv_bn_relu(depthwise, nn.Conv2d(c_in, c, 1, bias=False)), c
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, 1, 1), c_in
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False), c_in
    if name == "identity":
        return nn.Identity(), c_in
    raise ValueError(f"no paper primitive {name!r}")


def built_edges(nodes: int, used: Sequence[bool]) -> list[bool]:
    """The edges that are built: used, from a node that exists, into a node that reaches the output.

    Example:
        >>> built_edges(3, [False, True, True])  # node 1 has no input, so its edge to node 2 is not built
        [False, True, False]
    """
    edges = dag_edges(nodes)
    exists = [True] + [False] * (nodes - 1)
    for k, (j, i) in enumerate(edges):  # ordered by target: a source is settled before its out-edges
        exists[i] = exists[i] or (used[k] and exists[j])
    return live_edges(nodes, [used[k] and exists[j] for k, (j, _) in enumerate(edges)])


def motif_exists(ops: Sequence[str]) -> bool:
    """Whether a motif's output node exists (some built edge enters it)."""
    built = built_edges(MOTIF_NODES, [o != "none" for o in ops])
    return any(b for b, (_, i) in zip(built, dag_edges(MOTIF_NODES)) if i == MOTIF_NODES - 1)


def _run(x: torch.Tensor, nodes: int, edges: nn.ModuleDict) -> list[torch.Tensor | None]:
    """Node values of a concatenating DAG (None for nodes that do not exist)."""
    states: list[torch.Tensor | None] = [x]
    k = 0
    for i in range(1, nodes):
        parts = []
        for j in range(i):
            if str(k) in edges:  # built edges come from nodes that exist
                parts.append(edges[str(k)](states[j]))
            k += 1
        states.append(torch.cat(parts, dim=1) if parts else None)
    return states


class PaperMotif(nn.Module):
    """A level-2 motif with depthwise concatenation at every node, then a 1x1 conv-BN-ReLU to C channels.

    Args:
        c_in: the input's channels.
        c: C.
        ops: one primitive per edge, in `dag_edges(MOTIF_NODES)` order.

    Attributes:
        widths: the channels of each node (0: the node does not exist).
    """

    def __init__(self, c_in: int, c: int, ops: Sequence[str]):
        super().__init__()
        built = built_edges(MOTIF_NODES, [o != "none" for o in ops])
        self.widths = [c_in] + [0] * (MOTIF_NODES - 1)
        self.edges = nn.ModuleDict()
        for k, (j, i) in enumerate(dag_edges(MOTIF_NODES)):
            if built[k]:
                self.edges[str(k)], width = paper_op(ops[k], self.widths[j], c)
                self.widths[i] += width
        if not self.widths[-1]:
            raise ValueError("a motif without a path from its input to its output has no network")
        self.end = _conv_bn_relu(nn.Conv2d(self.widths[-1], c, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.end(_run(x, MOTIF_NODES, self.edges)[-1])


class PaperCell(nn.Module):
    """The level-3 cell: nodes concatenate the C-channel outputs of the motifs on their edges.

    Args:
        c_in: the input's channels.
        c: C.
        motifs: the primitives of each level-2 motif.
        cell: per cell edge, "none" or "motif<m>".

    Attributes:
        out_channels: the output's channels (its input's when the output node does not exist).
    """

    def __init__(self, c_in: int, c: int, motifs: Sequence[Sequence[str]], cell: Sequence[str]):
        super().__init__()
        index = [None if o == "none" else int(o[len("motif") :]) for o in cell]
        used = [m is not None and motif_exists(motifs[m]) for m in index]
        built = built_edges(CELL_NODES, used)
        widths = [c_in] + [0] * (CELL_NODES - 1)
        self.edges = nn.ModuleDict()
        for k, (j, i) in enumerate(dag_edges(CELL_NODES)):
            if built[k]:
                m = index[k]
                assert m is not None  # built edges are among the used ones, which name a motif
                self.edges[str(k)] = PaperMotif(widths[j], c, motifs[m])
                widths[i] += c
        self.out_channels = widths[-1] or c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _run(x, CELL_NODES, self.edges)[-1]
        return torch.zeros_like(x) if out is None else out


class PaperNet(nn.Module):
    """The standalone network of one arch in the paper's representation (macro layers, pooling, linear)."""

    def __init__(self, task: Task, macro: Macro, motifs: Sequence[Sequence[str]], cell: Sequence[str]):
        super().__init__()
        make_cell = lambda w: PaperCell(w, w, motifs, cell)  # noqa: E731
        width_of = lambda built, w: built.out_channels  # noqa: E731
        self.layers, c_out = macro_layers(task.shape[0], macro, PAPER, make_cell, width_of)
        self.head = nn.Linear(c_out, task.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
