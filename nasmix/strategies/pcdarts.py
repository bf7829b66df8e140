"""PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search
(Xu, Xie, Zhang, Chen, Qi, Tian and Xiong, ICLR 2020).

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> arch = registry.create("strategy", "pcdarts").search(registry.create("space", "nb201"), None,
    ...     tiny_search_data(), Budget(epochs=1, batch_size=16), lambda e: None, np.random.default_rng(0))
    >>> arch.space
    'nb201'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.events import EdgeNormFallback
from nasmix.strategies.base import Log
from nasmix.strategies.darts import check_bilevel, softmax_weights
from nasmix.strategies.oneshot import BilevelConfig, Drive, OneShot, SearchState


def node_groups(net, group: str) -> list[list[int]]:
    """The edges of a group that enter the same node, as lists of edge indices.

    Read from the supernet's optional `edge_nodes` attribute (group -> the node
    each edge enters); without it every edge of the group is taken to share
    one node (see the PCDarts docstring).
    """
    nodes = getattr(net, "edge_nodes", {}).get(group)
    edges = net.arch_shapes[group][0]
    if nodes is None:
        return [list(range(edges))]
    out: dict = {}
    for e, node in enumerate(nodes):
        out.setdefault(node, []).append(e)
    return list(out.values())


@registry.register("strategy", "pcdarts")
class Pcdarts(OneShot):
    """PC-DARTS (Xu et al. 2020): DARTS on 1/K of each edge's channels, with edge normalisation.

    Each mixed edge runs its ops on the first 1/K of the channels; the rest
    bypass it and the channels are shuffled (the supernet's `partial` option).
    Edge normalisation: every edge's output is scaled by softmax(beta) over
    the edges entering the same node; the arch is decoded from softmax(alpha)
    scaled by those edge weights (which decides the kept edges in the DARTS
    space). First-order steps, as the paper.

    Defaults are PC-DARTS's CIFAR-10 search (train_search.py): K = 4;
    weights SGD lr 0.1 cosine to 0.001 (its `learning_rate_min`; the
    ImageNet search, train_search_imagenet.py, anneals to 0), momentum 0.9,
    weight decay 3e-4, clip 5; architecture Adam lr 6e-4, betas (0.5,
    0.999), weight decay 1e-3; architecture steps start after 30% of the
    epochs (15 of the paper's 50, as its code's `epoch >= 15`). The batch
    size comes from the Budget (the paper: 256, which its lr 0.1 assumes).

    Departures: where K does not divide a space's channels, the largest K
    below it that does is used (a "partial_fallback" event); a space's edges
    that change the channel count (simple_cell's reduction edges) compute all
    their channels. Which edges share a node is read from the supernet's
    `edge_nodes` attribute (every built-in space has it); a supernet without
    it gets one softmax over all edges of each group (an "edge_norm_fallback"
    event), which keeps the edges' relative weights but not the per-node scale.
    """

    config: Config  # its own options (OneShot.__init__ builds them)

    @dataclass(frozen=True)
    class Config(BilevelConfig):
        """PC-DARTS options (the shared bilevel ones, see BilevelConfig, plus these).

        Attributes:
            partial: K, the channel proportion's denominator.
            warmup: share of the epochs before architecture steps start.
            edge_norm: edge normalisation on or off.
        """

        lr: float = 0.1
        lr_min: float = 0.001
        arch_lr: float = 6e-4
        partial: int = 4
        warmup: float = 0.3
        edge_norm: bool = True

        def __post_init__(self) -> None:
            check_bilevel(self)
            if self.partial < 1 or not 0 <= self.warmup < 1:
                raise ConfigError(
                    f"pcdarts needs partial >= 1 and 0 <= warmup < 1, got {self.partial}, {self.warmup}"
                )

    def partial_channels(self) -> int:
        return self.config.partial

    def init_extra(self, state: SearchState) -> None:
        if not self.config.edge_norm:
            return
        groups = list(state.net.arch_shapes)
        state.extra_params = [
            (1e-3 * torch.randn(state.net.arch_shapes[g][0])).to(state.device).requires_grad_()
            for g in groups
        ]
        state.extra["beta_groups"] = groups  # the group of each extra parameter, in order
        state.extra["node_groups"] = {
            g: [torch.tensor(e, device=state.device) for e in node_groups(state.net, g)] for g in groups
        }
        if not hasattr(state.net, "edge_nodes"):
            state.extra["edge_norm_note"] = True

    def begin_epoch(self, state: SearchState, epoch: int, log: Log) -> dict:
        if state.extra.pop("edge_norm_note", False):
            reason = "the supernet has no edge_nodes attribute: one softmax over all edges of each group"
            log(EdgeNormFallback(state.space.registry_name, reason))
        return {}

    def updates_arch(self, state: SearchState, epoch: int) -> bool:
        return epoch > int(self.config.warmup * state.total_epochs)

    def edge_weights(self, state: SearchState, for_arch: bool) -> dict[str, torch.Tensor] | None:
        """softmax(beta) over the edges entering each node, per group."""
        if "beta_groups" not in state.extra:
            return None
        out = {}
        with torch.set_grad_enabled(for_arch):
            for g, beta in zip(state.extra["beta_groups"], state.extra_params):
                parts = state.extra["node_groups"][g]
                if len(parts) == 1:
                    out[g] = beta.softmax(-1)
                else:
                    w = torch.empty_like(beta)
                    for idx in parts:
                        w = w.index_copy(0, idx, beta[idx].softmax(-1))
                    out[g] = w
        return out

    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        return Drive(softmax_weights(state, for_arch), edge_weights=self.edge_weights(state, for_arch))

    def decode_weights(self, state: SearchState) -> dict[str, torch.Tensor]:
        probs = self.probs(state)
        edges = self.edge_weights(state, False)
        if edges is None:
            return probs
        return {g: p * edges[g].detach()[:, None] for g, p in probs.items()}
