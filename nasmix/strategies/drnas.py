"""DrNAS: Dirichlet Neural Architecture Search (Chen, Wang, Cheng, Tang and Hsieh, ICLR 2021).

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> arch = registry.create("strategy", "drnas").search(registry.create("space", "nb201"), None,
    ...     tiny_search_data(), Budget(epochs=1, batch_size=16), lambda e: None, np.random.default_rng(0))
    >>> arch.space
    'nb201'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.strategies.base import Log
from nasmix.strategies.darts import check_bilevel
from nasmix.strategies.oneshot import BilevelConfig, Drive, OneShot, SearchState, build_supernet


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """DrNAS's positive map of the architecture parameters: ELU(alpha) + 1."""
    return nn.functional.elu(alpha) + 1.0


def dirichlet_sample(alpha: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """A reparameterised Dirichlet(ELU(alpha) + 1) sample per row (gradients reach alpha).

    Args:
        alpha: (edges, ops) architecture parameters.
        keep: optional (edges, ops) bool mask of the ops still in the space
            (progressive pruning); the others get weight 0.

    Returns:
        (edges, ops) weights, each row on the probability simplex. A masked row
        is exactly a Dirichlet of its kept ops' concentrations: the renormalised
        part of a Dirichlet vector is Dirichlet with the parts' concentrations.

    Example:
        >>> w = dirichlet_sample(torch.zeros(3, 4))
        >>> bool((w >= 0).all()) and torch.allclose(w.sum(-1), torch.ones(3))
        True
    """
    w = Dirichlet(concentration(alpha.float()), validate_args=False).rsample()
    if keep is not None:
        w = w * keep
        w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    return w


def _carry_momentum(old_net: nn.Module, old_opt: torch.optim.Optimizer, net: nn.Module,
                    opt: torch.optim.Optimizer) -> None:  # fmt: skip
    """Give the widened network's parameters the momentum of their predecessors (same name),
    in the leading slice; the new channels start at 0, which SGD's first step treats as a fresh buffer."""
    previous = dict(old_net.named_parameters())
    with torch.no_grad():
        for name, p in net.named_parameters():
            src = previous.get(name)
            buf = None if src is None else old_opt.state.get(src, {}).get("momentum_buffer")
            if buf is None or buf.dim() != p.dim():
                continue
            new = torch.zeros_like(p)
            region = tuple(slice(0, min(a, b)) for a, b in zip(buf.shape, p.shape))
            new[region].copy_(buf[region])
            opt.state[p]["momentum_buffer"] = new


@registry.register("strategy", "drnas")
class Drnas(OneShot):
    """DrNAS (Chen et al. 2021): op weights sampled from a learned Dirichlet, KL-regularised toward a prior.

    Each edge's op weights are a reparameterised sample (pathwise gradient)
    of Dirichlet(ELU(alpha) + 1), drawn anew for every forward; the
    architecture loss adds reg_scale x sum over edges of KL(Dirichlet(ELU(alpha)
    + 1) || Dirichlet(prior)). Steps alternate as in DARTS (first order,
    architecture step first). Decoding reads softmax(alpha) of the ops still
    in the space, as DrNAS's genotype does.

    Defaults are DrNAS's NAS-Bench-201 search (201-space/train_search.py)
    with its "kl" regulariser: weights SGD lr 0.025 cosine to 0.001, momentum
    0.9, weight decay 3e-4, clip 5; architecture Adam lr 3e-4, betas (0.5,
    0.999) and no weight decay (DrNAS's architect sets Adam's weight decay to
    reg_scale for its default "l2" regulariser and to 0 for "kl"); the KL
    with scale 1e-3 and prior concentration 1; all channels (partial 1).
    DrNAS's "l2" variant is reg_scale=0 with arch_weight_decay=1e-3.

    Progressive learning (`progressive=True`, the paper's DARTS-space
    recipe): the epochs split into two equal stages. Stage 1 runs partial
    channels K = stage_partial[0] (6) with every op; then each edge keeps
    its `keep` (4) strongest ops, the others leave the space (their weight
    is 0, they are not computed, and their alphas are set to 0 as DrNAS's
    `prune` does), and stage 2 runs K = stage_partial[1] (4): wider ops. In
    each stage the architecture steps start after `arch_warmup` of its
    epochs (DrNAS: 10 of 25). The learning rate's cosine schedule spans both
    stages; Adam's state carries on, and so do the weights' momentum buffers
    (DrNAS's `configure_optimizer`).

    Departures: widening copies each learned tensor, and its momentum buffer,
    into the leading slice of its wider successor and initialises the rest
    afresh (DrNAS's Net2Net widening replicates channels so that the function
    is preserved); a K that does not divide a space's channels falls back to
    the largest one that does (a "partial_fallback" event); progressive
    search runs at the budget's size (DrNAS searches its 20-cell, 36-channel
    network directly) and keeps the defaults above, where DrNAS's
    DARTS-space script uses weights lr 0.1 cosine to 0 and architecture lr
    6e-4 (set lr, lr_min and arch_lr for that recipe).
    """

    @dataclass(frozen=True)
    class Config(BilevelConfig):
        """DrNAS options (the shared bilevel ones, see BilevelConfig, plus these).

        Attributes:
            arch_weight_decay: Adam's weight decay of the architecture (0, as DrNAS with its KL).
            reg_scale: weight of the KL regulariser (0: none).
            prior: concentration of the Dirichlet prior (the "anchor").
            partial: PC-DARTS's K when not progressive (1: all channels).
            progressive: the two-stage progressive learning above.
            stage_partial: K of stage 1 and stage 2.
            keep: ops each edge keeps after stage 1.
            arch_warmup: share of each stage's epochs before architecture steps start.
        """

        arch_weight_decay: float = 0.0  # DrNAS's "kl" option: the KL replaces Adam's weight decay
        reg_scale: float = 1e-3
        prior: float = 1.0
        partial: int = 1
        progressive: bool = False
        stage_partial: tuple[int, int] = (6, 4)
        keep: int = 4
        arch_warmup: float = 0.4

        def __post_init__(self) -> None:
            check_bilevel(self)
            if self.reg_scale < 0 or self.prior <= 0 or self.partial < 1 or self.keep < 1:
                raise ConfigError("drnas needs reg_scale >= 0, prior > 0, partial >= 1 and keep >= 1")
            if len(self.stage_partial) != 2 or min(self.stage_partial) < 1 or not 0 <= self.arch_warmup < 1:
                raise ConfigError("drnas needs two stage_partial values >= 1 and 0 <= arch_warmup < 1")

    def partial_channels(self) -> int:
        return self.config.stage_partial[0] if self.config.progressive else self.config.partial

    def init_extra(self, state: SearchState) -> None:
        state.extra["stage"] = 1
        state.extra["keep"] = None  # group -> (edges, ops) bool mask once pruned

    def _stage_of(self, state: SearchState, epoch: int) -> tuple[int, int, int]:
        """(stage, first epoch of the stage, epochs in the stage) of a schedule epoch."""
        first_len = (state.total_epochs + 1) // 2
        if not self.config.progressive or epoch <= first_len:
            return 1, 1, first_len if self.config.progressive else state.total_epochs
        return 2, first_len + 1, state.total_epochs - first_len

    def updates_arch(self, state: SearchState, epoch: int) -> bool:
        if not self.config.progressive:
            return True
        _, start, length = self._stage_of(state, epoch)
        return epoch - start >= int(self.config.arch_warmup * length)

    def begin_epoch(self, state: SearchState, epoch: int, log: Log) -> dict:
        stage = self._stage_of(state, epoch)[0]
        if stage == 2 and state.extra["stage"] == 1:
            self._grow(state, log)
        return {"stage": state.extra["stage"]} if self.config.progressive else {}

    def _grow(self, state: SearchState, log: Log) -> None:
        """Prune each edge to its `keep` strongest ops and widen the ops to stage 2's K."""
        keep = {}
        with torch.no_grad():
            for g, p in self.probs(state).items():
                k = min(self.config.keep, p.shape[1])
                mask = torch.zeros_like(p, dtype=torch.bool)
                mask.scatter_(1, p.topk(k, dim=1).indices, True)
                keep[g] = mask
                state.alphas[g].masked_fill_(~mask, 0.0)  # as DrNAS's prune(): the KL still sees these entries
        old_net, old_opt = state.net, state.w_opt
        old = old_net.state_dict()
        stage2, batch = self.config.stage_partial[1], state.budget.batch_size
        net, k = build_supernet(state.space, state.data, stage2, state.seed + 1, log, state.accel, batch)
        with torch.no_grad():
            for name, t in net.state_dict().items():
                src = old.get(name)
                if src is None or src.dim() != t.dim():
                    continue
                if src.shape == t.shape:
                    t.copy_(src)
                elif t.dim() > 0:
                    region = tuple(slice(0, min(a, b)) for a, b in zip(src.shape, t.shape))
                    t[region].copy_(src[region])
        state.net, state.partial = net, k
        state.extra.update(stage=2, keep=keep, active={g: [m.nonzero().flatten().tolist() for m in mask.cpu()]
                                                        for g, mask in keep.items()})  # fmt: skip
        a_state = state.a_opt.state_dict()
        self.make_optimizers(state)
        state.a_opt.load_state_dict(a_state)  # the architecture parameters and Adam's state carry on
        for group in state.w_opt.param_groups:
            group["lr"] = state.lr
        _carry_momentum(old_net, old_opt, state.net, state.w_opt)

    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        keep = state.extra.get("keep")
        with torch.set_grad_enabled(for_arch):
            weights = {g: dirichlet_sample(a, None if keep is None else keep[g]) for g, a in state.alphas.items()}
        return Drive(weights, state.extra.get("active") if keep is not None else None)

    def probs(self, state: SearchState) -> dict[str, torch.Tensor]:
        keep = state.extra.get("keep")
        out = {}
        for g, a in state.alphas.items():
            logits = a.detach().float()
            if keep is not None:
                logits = logits.masked_fill(~keep[g], float("-inf"))
            out[g] = logits.softmax(-1)
        return out

    def regulariser(self, state: SearchState) -> torch.Tensor | None:
        if self.config.reg_scale == 0:
            return None
        total = None
        for a in state.alphas.values():
            conc = concentration(a.float())
            kl = kl_divergence(Dirichlet(conc, validate_args=False),
                               Dirichlet(torch.full_like(conc, self.config.prior), validate_args=False)).sum()  # fmt: skip
            total = kl if total is None else total + kl
        return self.config.reg_scale * total
