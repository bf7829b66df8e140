"""GDAS: Searching for a Robust Neural Architecture in Four GPU Hours (Dong and Yang, CVPR 2019).

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> events = []
    >>> arch = registry.create("strategy", "gdas").search(registry.create("space", "nb201"), None,
    ...     tiny_search_data(), Budget(epochs=2, batch_size=16), events.append, np.random.default_rng(0))
    >>> [e.extra["tau"] for e in events if e.kind == "search_epoch"]
    [10.0, 0.1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.strategies.base import Log
from nasmix.strategies.darts import check_bilevel
from nasmix.strategies.oneshot import BilevelConfig, Drive, OneShot, SearchState


def gumbel(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise, -log(Exp(1)), finite (GDAS redraws on inf; a clamp does it in one go)."""
    return -torch.empty(shape, device=device).exponential_().clamp_min(1e-20).log()


@registry.register("strategy", "gdas")
class Gdas(OneShot):
    """GDAS (Dong and Yang 2019): one op per edge sampled by hard Gumbel-softmax; only that op runs.

    Per edge the logits (log_softmax(alpha) + Gumbel noise) / tau give
    probabilities p; the forward uses the hard one-hot h of argmax p, with the
    straight-through gradient h - stop_grad(p) + p. Only the sampled op of
    each edge is computed, forward and backward (the supernet's `active`
    lists), so the unsampled ops' weights get no gradient and no update.
    tau falls linearly from tau_max (first epoch) to tau_min (last epoch), as
    GDAS's `set_tau`. Each step trains the weights on a train batch, then the
    architecture on a valid batch (GDAS's order: `weights_first`), each with
    its own Gumbel sample. Decoding takes softmax(alpha), as GDAS's genotype does.

    Defaults: tau 10 -> 0.1 (the paper and its scripts); weights SGD lr 0.025
    cosine to 0.001, momentum 0.9, weight decay 3e-4, clip 5 (DARTS's values;
    GDAS's released configs use weight decay 5e-4 with Nesterov momentum);
    architecture Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3 (GDAS's
    code); epochs and batch from the Budget (the paper: 240 epochs, batch 128).

    Departures: both samples of a step (independent Gumbel draws) are drawn
    at its start, so the host reads the sampled indices once per step; as
    alpha changes only in the architecture step, which comes last, they are
    drawn from the same alpha as in GDAS's code. In the NAS-Bench-201 space
    the edge output also adds the unsampled ops' hard weights (zeros in
    value), which passes them the sum of the output's gradient, as GDAS's
    NAS-Bench-201 cell (xautodl's `forward_gdas`); elsewhere the gradient
    reaches alpha only through the sampled op's weight, as in GDAS's
    DARTS-space code (`MixedOp.forward_gdas`). The learning rate follows the cosine per epoch
    (GDAS's scheduler per step). The DARTS space's reduction cell is
    searched too (GDAS fixes a hand-designed one), and it is decoded by the
    space's DARTS rule (two distinct input edges per node; GDAS's genotype
    keeps the two strongest (op, input) pairs, which may share an input).
    Gumbel noise is clamped instead of redrawn when infinite. Gradient
    clipping covers the weights only: GDAS clips `network.parameters()`,
    which hold alpha, whose gradient at that point (the last architecture
    step's, plus the weight batch's) then counts in the norm; measured on
    the NB-201 search supernet it is at most 0.9% of the weights' gradient
    norm and changes the clipping factor by at most 3e-5 (docs/strategies.md).
    """

    config: Config  # its own options (OneShot.__init__ builds them)

    @dataclass(frozen=True)
    class Config(BilevelConfig):
        """GDAS options (the shared bilevel ones, see BilevelConfig).

        Attributes:
            tau_max, tau_min: the Gumbel-softmax temperature's first and last value.
        """

        tau_max: float = 10.0
        tau_min: float = 0.1

        def __post_init__(self) -> None:
            check_bilevel(self)
            if not 0 < self.tau_min <= self.tau_max:
                raise ConfigError(f"gdas needs 0 < tau_min <= tau_max, got {self.tau_min} and {self.tau_max}")

    weights_first = True  # GDAS's search_func: w_optimizer.step(), then a_optimizer.step()
    unsampled_spaces: ClassVar[tuple[str, ...]] = ("nb201",)  # edges add the unsampled ops' weights (above)

    def begin_epoch(self, state: SearchState, epoch: int, log: Log) -> dict:
        c, total = self.config, state.total_epochs
        frac = (epoch - 1) / max(total - 1, 1)
        state.extra["tau"] = (1 - frac) * c.tau_max + frac * c.tau_min
        return {"tau": state.extra["tau"]}

    def begin_step(self, state: SearchState) -> None:
        """Draw both samples of the step; one host read of their indices."""
        tau = state.extra["tau"]
        noise, picks = {}, []
        with torch.no_grad():
            for g, a in state.alphas.items():
                logp = a.detach().float().log_softmax(-1)
                noise[g] = gumbel((2, *a.shape), a.device)
                picks.append(((logp + noise[g]) / tau).argmax(-1))  # (2, edges): arch sample, weight sample
        indices = torch.cat(picks, dim=1).tolist()  # the step's one host-device synchronisation
        state.extra["noise"] = noise
        state.extra["pick_tensors"] = dict(zip(state.alphas, picks))
        state.extra["picks"], start = {}, 0
        for g, a in state.alphas.items():
            n = a.shape[0]
            state.extra["picks"][g] = (indices[0][start : start + n], indices[1][start : start + n])
            start += n

    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        if "picks" not in state.extra:  # a forward outside the loop (tests, scoring)
            state.extra.setdefault("tau", self.config.tau_max)
            self.begin_step(state)
        which = 0 if for_arch else 1
        weights, active = {}, {}
        for g, a in state.alphas.items():
            idx = state.extra["picks"][g][which]
            active[g] = [[i] for i in idx]
            if for_arch:
                probs = (
                    (a.float().log_softmax(-1) + state.extra["noise"][g][0]) / state.extra["tau"]
                ).softmax(-1)
                # The one-hot of the computed op: argmax of p itself can differ where two logits tie
                # after the softmax.
                hard = nn.functional.one_hot(state.extra["pick_tensors"][g][0], a.shape[1]).to(probs.dtype)
                weights[g] = hard - probs.detach() + probs  # straight-through: forward h, gradient of p
            else:
                weights[g] = nn.functional.one_hot(state.extra["pick_tensors"][g][1], a.shape[1]).float()
        add = state.space.registry_name in self.unsampled_spaces
        return Drive(
            weights, active, add_unsampled=add, unit_weights=not for_arch
        )  # weight step: exact one-hots
