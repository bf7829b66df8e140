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

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from nasmix import registry
from nasmix.budget import Budget
from nasmix.errors import ConfigError
from nasmix.events import PartialFallback
from nasmix.search_types import Log, SearchData
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


def _carry_momentum(
    old_net: nn.Module, old_opt: torch.optim.Optimizer, net: nn.Module, opt: torch.optim.Optimizer
) -> None:
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


@dataclass(frozen=True)
class Recipe:
    """The defaults one of DrNAS's search scripts gives a space.

    Attributes:
        script: the script in DrNAS's code (xiangning-chen/DrNAS).
        stage_partial: K of progressive stage 1 and stage 2.
        keep: ops each edge keeps for stage 2.
        arch_warmup: share of each stage's epochs before architecture steps start.
        drop_none: search without the `none` op.
        lr, lr_min, arch_lr: the progressive search's learning rates.
        clip_alpha: the weight step's gradient clipping also counts alpha's gradient on the
            weight batch (the script's model registers alpha among `model.parameters()`).
    """

    script: str
    stage_partial: tuple[int, int]
    keep: int
    arch_warmup: float
    drop_none: bool
    lr: float
    lr_min: float
    arch_lr: float
    clip_alpha: bool


RECIPES: dict[str, Recipe] = {
    # ks = [6, 4], num_keeps = [7, 4], 25 + 25 epochs, architecture steps from epoch 10 of each stage,
    # PRIMITIVES without 'none', lr 0.1 cosine to 0, arch lr 6e-4.
    # alpha is a plain tensor there, outside model.parameters(): the clip covers the weights.
    "darts": Recipe("DARTS-space/train_search.py", (6, 4), 4, 10 / 25, True, 0.1, 0.0, 6e-4, False),
    # ks = [4, 2], num_keeps = [5, 3], 50 + 50 epochs, architecture steps from epoch 10 of each stage,
    # all 5 ops, lr 0.025 cosine to 0.001, arch lr 3e-4.
    # alpha is an nn.Parameter of TinyNetwork: clip_grad_norm_(model.parameters()) counts its gradient.
    "nb201": Recipe(
        "201-space/train_search_progressive.py", (4, 2), 3, 10 / 50, False, 0.025, 0.001, 3e-4, True
    ),
}
# Spaces DrNAS never searched take its DARTS-space recipe, with their own op set.
OTHER = dataclasses.replace(
    RECIPES["darts"], script="DARTS-space/train_search.py (another space)", drop_none=False
)
# The non-progressive search: 201-space/train_search.py (k = 1), in every space.
PLAIN = {"lr": 0.025, "lr_min": 0.001, "arch_lr": 3e-4}


_T = TypeVar("_T")


def _filled(value: _T | None, name: str) -> _T:
    """A Config field that `Drnas.resolved` has filled from the space's recipe (None only before)."""
    if value is None:
        raise AssertionError(f"DrNAS's {name} was read before its recipe resolved it")
    return value


@registry.register("strategy", "drnas")
class Drnas(OneShot):
    """DrNAS (Chen et al. 2021): op weights sampled from a learned Dirichlet, regularised toward a prior.

    Each edge's op weights are a reparameterised sample (pathwise gradient)
    of Dirichlet(ELU(alpha) + 1), drawn anew for every forward. Steps
    alternate as in DARTS (first order, architecture step first). Decoding
    reads softmax(alpha) of the ops still in the space, as DrNAS's genotype.
    The regulariser (`reg`) is DrNAS's: "l2" (its scripts' default) puts
    reg_scale (1e-3) on the architecture's Adam as weight decay; "kl" adds
    reg_scale x sum over edges of KL(Dirichlet(ELU(alpha) + 1) ||
    Dirichlet(prior)) to the architecture loss and gives Adam no weight decay.

    Options left unset (None) come from the recipe of DrNAS's script for the
    space searched (`RECIPES`): in the DARTS space the ops exclude `none`
    (DrNAS's PRIMITIVES: 7 ops, so the Dirichlet weights, the KL and the
    pruning see 7); NAS-Bench-201 keeps its 5. Without `progressive` the
    search is 201-space/train_search.py's: weights SGD lr 0.025 cosine to
    0.001, momentum 0.9, weight decay 3e-4, clip 5; architecture Adam lr
    3e-4, betas (0.5, 0.999); all channels (`partial` 1).

    Progressive learning (`progressive=True`): the epochs split into two
    equal stages. Stage 1 runs partial channels K = stage_partial[0] with
    every op; then each edge keeps its `keep` strongest ops, the others
    leave the space (weight 0, not computed, their alphas set to 0 as
    DrNAS's `prune` does), and stage 2 runs K = stage_partial[1]: wider ops.
    In each stage the architecture steps start after `arch_warmup` of its
    epochs. The cosine learning rate spans both stages; Adam's state and the
    weights' momentum buffers carry on (DrNAS's `configure_optimizer`). The
    recipes: DARTS space (DARTS-space/train_search.py) K 6 -> 4, keep 4 of
    7, warm-up 10 of 25 epochs per stage, weights lr 0.1 cosine to 0,
    architecture lr 6e-4; NAS-Bench-201 (201-space/train_search_progressive.py)
    K 4 -> 2, keep 3 of 5, warm-up 10 of 50 epochs per stage, the plain
    learning rates; other spaces the DARTS-space recipe with their own ops.
    DrNAS's budgets, 25 + 25 and 50 + 50 epochs, are the Budget's to set.

    Departures: where stage 1's K does not divide the channels, the nearest
    K that does and still exceeds stage 2's is used (one above it if none
    lies below: 8 -> 4 for the DARTS space's 16 search channels, where
    DrNAS searches 36), a "partial_fallback" event; widening copies each
    learned tensor, and its momentum buffer, into the leading slice of its
    wider successor and initialises the rest afresh (DrNAS's Net2Net
    widening replicates channels so that the function is preserved);
    progressive search runs at the budget's size (DrNAS searches its
    20-cell, 36-channel network directly); the DARTS space's supernet puts
    a batch norm after pooling (DARTS's search network; DrNAS's has none).

    Gradient clipping follows each script: DrNAS's NAS-Bench-201 model
    registers alpha as a parameter, so its `clip_grad_norm_(model.parameters())`
    counts alpha's gradient on the weight batch in the norm (the weight
    step's sample then keeps its graph to alpha); its DARTS-space model keeps
    alpha out of `parameters()`, and the clip covers the weights only.
    """

    config: Config  # its own options (OneShot.__init__ builds them)

    @dataclass(frozen=True)
    class Config(BilevelConfig):
        """DrNAS options (the shared bilevel ones, see BilevelConfig, plus these); None: the space's recipe.

        Attributes:
            lr, lr_min, arch_lr: as BilevelConfig (None: the recipe's, see the class docstring).
            arch_weight_decay: Adam's weight decay of the architecture (None: reg_scale under
                "l2", 0 under "kl").
            reg: the regulariser, "l2" or "kl".
            reg_scale: its weight (0: none).
            prior: concentration of the Dirichlet prior (the "anchor") of "kl".
            partial: PC-DARTS's K when not progressive (1: all channels).
            progressive: the two-stage progressive learning above.
            stage_partial: K of stage 1 and stage 2.
            keep: ops each edge keeps after stage 1.
            arch_warmup: share of each stage's epochs before architecture steps start.
            drop_none: search without the `none` op.
        """

        # None: the space's recipe (`resolved` fills these before the search reads them), where
        # BilevelConfig's fields are plain floats: a deliberate widening of the base's type.
        lr: float | None = None  # type: ignore[assignment]
        lr_min: float | None = None  # type: ignore[assignment]
        arch_lr: float | None = None  # type: ignore[assignment]
        arch_weight_decay: float | None = None  # type: ignore[assignment]
        reg: str = "l2"
        reg_scale: float = 1e-3
        prior: float = 1.0
        partial: int = 1
        progressive: bool = False
        stage_partial: tuple[int, int] | None = None
        keep: int | None = None
        arch_warmup: float | None = None
        drop_none: bool | None = None

        def __post_init__(self) -> None:
            filled = {f.name: getattr(self, f.name) for f in dataclasses.fields(BilevelConfig)}
            for name, stand_in in (
                ("lr", max(0.025, self.lr_min or 0.0)),
                ("lr_min", 0.0),
                ("arch_lr", 3e-4),
                ("arch_weight_decay", 0.0),
            ):
                if filled[name] is None:
                    filled[name] = stand_in  # checked again once the recipe has filled it in
            check_bilevel(BilevelConfig(**filled))
            if self.reg not in ("l2", "kl"):
                raise ConfigError(f"drnas reg must be 'l2' or 'kl', got {self.reg!r}")
            bad_keep = self.keep is not None and self.keep < 1
            if self.reg_scale < 0 or self.prior <= 0 or self.partial < 1 or bad_keep:
                raise ConfigError("drnas needs reg_scale >= 0, prior > 0, partial >= 1 and keep >= 1")
            ks = self.stage_partial
            if ks is not None and (len(ks) != 2 or min(ks) < 1):
                raise ConfigError(f"drnas needs two stage_partial values >= 1, got {self.stage_partial!r}")
            if self.arch_warmup is not None and not 0 <= self.arch_warmup < 1:
                raise ConfigError(f"drnas needs 0 <= arch_warmup < 1, got {self.arch_warmup}")

    def __init__(self, config: BilevelConfig | None = None):
        super().__init__(config)
        self.asked = self.config  # as given; `prepare` fills in the recipe of the space searched

    def recipe(self, space_name: str) -> Recipe:
        """The recipe of DrNAS's script for a space (the DARTS-space one for spaces DrNAS never searched)."""
        return RECIPES.get(space_name, OTHER)

    def resolved(self, space_name: str) -> Drnas.Config:
        """The options with every unset one taken from the space's recipe.

        Example:
            >>> drnas = registry.create("strategy", "drnas", progressive=True)
            >>> c = drnas.resolved("nb201")
            >>> c.stage_partial, c.keep, c.arch_warmup, c.drop_none, c.arch_weight_decay
            ((4, 2), 3, 0.2, False, 0.001)
        """
        c, r = self.asked, self.recipe(space_name)
        rates = {"lr": r.lr, "lr_min": r.lr_min, "arch_lr": r.arch_lr} if c.progressive else PLAIN
        names = (
            "lr",
            "lr_min",
            "arch_lr",
            "stage_partial",
            "keep",
            "arch_warmup",
            "drop_none",
            "arch_weight_decay",
        )
        defaults: dict[str, Any] = {
            **rates,
            "stage_partial": r.stage_partial,
            "keep": r.keep,
            "arch_warmup": r.arch_warmup,
            "drop_none": r.drop_none,
            "arch_weight_decay": c.reg_scale if c.reg == "l2" else 0.0,
        }
        given: dict[str, Any] = {name: getattr(c, name) for name in names}
        out = dataclasses.replace(c, **{k: defaults[k] if v is None else v for k, v in given.items()})
        check_bilevel(out)
        return out

    def prepare(
        self, space, data: SearchData, budget: Budget, rng: np.random.Generator, log: Log, total_epochs: int
    ) -> SearchState:
        config = self.resolved(space.registry_name)
        if config.progressive:
            ks = self._stage_ks(space, data, _filled(config.stage_partial, "stage_partial"), log)
            config = dataclasses.replace(config, stage_partial=ks)
        self.config = config
        return super().prepare(space, data, budget, rng, log, total_epochs)

    def _stage_ks(self, space, data: SearchData, asked: tuple[int, int], log: Log) -> tuple[int, int]:
        """Stage 1's K: `asked[0]` if it divides the channels, else the nearest that does above
        stage 2's K (below asked[0] first, then above it); stage 2's K stays below it."""
        k1, k2 = asked

        def divides(k: int) -> bool:
            try:
                space.supernet(data.task, data.size, partial=k)
            except ValueError:  # ConfigError is a ValueError
                return False
            return True

        below = range(k1, k2, -1)
        above = range(max(k1, k2) + 1, 4 * max(k1, k2) + 1)
        used = next((k for k in (*below, *above) if divides(k)), None)
        if used is None:  # nothing above stage 2's K divides: stage 1 narrower still is impossible
            used = next(k for k in range(k2, 0, -1) if divides(k))
        stage2 = k2 if k2 < used else max(used - 1, 1)  # build_supernet lowers it further if it must
        if used != k1:
            why = (
                f"progressive stage 1: K={k1} does not divide the channels of size {data.size!r}, "
                f"or does not exceed stage 2's K={k2}; stage 2 asks for K={stage2}"
            )
            log(PartialFallback(k1, used, space.registry_name, why))
        return used, stage2

    def partial_channels(self) -> int:
        if self.config.progressive:
            return _filled(self.config.stage_partial, "stage_partial")[0]
        return self.config.partial

    def init_extra(self, state: SearchState) -> None:
        state.extra["stage"] = 1
        ops: dict[str, torch.Tensor] | None = (
            None  # group -> (edges, ops) bool mask of the ops searched (None: all)
        )
        if self.config.drop_none:
            ops = {}
            for g, (edges, _) in state.net.arch_shapes.items():
                row = torch.tensor([n != "none" for n in state.net.op_names[g]], device=state.device)
                ops[g] = row.expand(edges, -1).clone()
            if all(m.all() for m in ops.values()):
                ops = None
        state.extra["ops"] = ops
        state.extra["keep"] = None if ops is None else {g: m.clone() for g, m in ops.items()}  # the ops left

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
        return epoch - start >= int(_filled(self.config.arch_warmup, "arch_warmup") * length)

    def begin_epoch(self, state: SearchState, epoch: int, log: Log) -> dict:
        stage = self._stage_of(state, epoch)[0]
        if stage == 2 and state.extra["stage"] == 1:
            self._grow(state, log)
        return {"stage": state.extra["stage"]} if self.config.progressive else {}

    def _grow(self, state: SearchState, log: Log) -> None:
        """Prune each edge to its `keep` strongest ops and widen the ops to stage 2's K."""
        keep = {}
        ops = state.extra.get("ops")
        with torch.no_grad():
            for g, p in self.probs(state).items():
                searched = p.shape[1] if ops is None else int(ops[g][0].sum())
                k = min(_filled(self.config.keep, "keep"), searched)
                mask = torch.zeros_like(p, dtype=torch.bool)
                mask.scatter_(1, p.topk(k, dim=1).indices, True)
                keep[g] = mask
                state.alphas[g].masked_fill_(
                    ~mask, 0.0
                )  # as DrNAS's prune(): the KL still sees these entries
        old_net, old_opt = state.net, state.w_opt
        old = old_net.state_dict()
        stage2, batch = _filled(self.config.stage_partial, "stage_partial")[1], state.budget.batch_size
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
        state.extra.update(
            stage=2,
            keep=keep,
            active={g: [m.nonzero().flatten().tolist() for m in mask.cpu()] for g, mask in keep.items()},
        )
        a_state = state.a_opt.state_dict()
        self.make_optimizers(state)
        state.a_opt.load_state_dict(a_state)  # the architecture parameters and Adam's state carry on
        for group in state.w_opt.param_groups:
            group["lr"] = state.lr
        _carry_momentum(old_net, old_opt, state.net, state.w_opt)

    def clip_params(self, state: SearchState) -> list[torch.Tensor]:
        if not self.recipe(state.space.registry_name).clip_alpha:
            return state.weight_params()
        return state.weight_params() + state.arch_params()

    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        keep = state.extra.get("keep")
        graph = for_arch or self.recipe(state.space.registry_name).clip_alpha
        if graph and not for_arch:  # DrNAS zeroes alpha's gradient before the weight step's forward
            for a in state.arch_params():
                a.grad = None
        with torch.set_grad_enabled(graph):
            weights = {
                g: dirichlet_sample(a, None if keep is None else keep[g]) for g, a in state.alphas.items()
            }
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
        if self.config.reg != "kl" or self.config.reg_scale == 0:
            return None
        total: torch.Tensor | None = None
        ops = state.extra.get("ops")
        for g, a in state.alphas.items():
            conc = concentration(a.float())
            if ops is not None:  # the KL of the ops searched (DrNAS's 7 in the DARTS space)
                conc = conc[ops[g]].view(conc.shape[0], -1)
            kl = kl_divergence(
                Dirichlet(conc, validate_args=False),
                Dirichlet(torch.full_like(conc, self.config.prior), validate_args=False),
            ).sum()
            total = kl if total is None else total + kl
        return None if total is None else self.config.reg_scale * total
