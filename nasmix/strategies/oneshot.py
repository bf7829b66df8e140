"""The shared bilevel loop of the one-shot strategies (not registered itself).

Every step takes one batch from each half of the search split: an
architecture step on the valid batch and a weight step on the train batch,
in the order of the method's code (`OneShot.weights_first`: DARTS, PC-DARTS
and DrNAS step the architecture first, GDAS the weights). Subclasses say how
the architecture parameters become the supernet's inputs (`drive`), how
they are decoded (`probs`) and, where the paper says so, how the
architecture step differs (`arch_step`).

Departures shared by every strategy: each epoch walks a fresh permutation of
the valid half (DARTS's code draws every valid batch afresh, with
replacement); the learning rate of epoch e (1-based) is the cosine value at
e - 1 (DARTS's and PC-DARTS's code step their scheduler before the first
epoch, so they start one step down the cosine and end at lr_min).

The loop keeps the data on the device (`DeviceLoader`), sums losses and
correct counts on the device and reads them once per epoch, runs bf16
autocast, channels_last, fused optimizers and grouped convolutions as
`nasmix.accel.Accel` says (by default: all on CUDA; channels_last and fused
optimizers on a CPU), checkpoints the supernet's cells when the memory plan
says the step would not fit (nasmix.spaces.memory; a `MemoryPlanned`
event), and logs one `SearchEpoch` per epoch (with each edge's op
probabilities in its extra fields: `arch_weights_extra`), `Capped` when a cap of the
budget stops it (checked between epochs: nasmix.budget), then `SearchDone`
(nasmix.events).
Randomness: one seed drawn from `rng` seeds the supernet's initialisation,
the architecture parameters, every epoch's batch order and augmentation, and
every sample a strategy draws, so the same seed gives the same arch.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> events = []
    >>> arch = registry.create("strategy", "darts").search(registry.create("space", "nb201"), None,
    ...     tiny_search_data(), Budget(epochs=1, batch_size=16), events.append, np.random.default_rng(0))
    >>> type(events[-1]).__name__, events[-1].arch == arch.to_str()
    ('SearchDone', True)
"""

from __future__ import annotations

import contextlib
import copy
import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasmix.accel import Accel
from nasmix.arch import Arch
from nasmix.budget import Budget, Clock
from nasmix.data.loader import Augment, DeviceLoader
from nasmix.events import PartialFallback, SearchDone, SearchEpoch
from nasmix.search_types import Log, SearchData
from nasmix.spaces.groups import weights_held
from nasmix.spaces.memory import default_budget, plan_memory
from nasmix.spaces.ops import guard_strided_pointwise
from nasmix.spaces.supernet import Supernet
from nasmix.strategies.base import Strategy
from nasmix.train import DivergedError, accuracy_counts, cosine_lr, epoch_seed

Progress = Callable[[int, int], None]
Pair = tuple[torch.Tensor, torch.Tensor]  # (loss, logits) of one batch, detached


@dataclass(frozen=True)
class BilevelConfig:
    """Options every bilevel strategy shares (DARTS's defaults).

    Attributes:
        lr, lr_min: weight learning rate, cosine-annealed per epoch from lr to lr_min.
        momentum, weight_decay, grad_clip: the weights' SGD settings (clip 0: none).
        arch_lr, arch_beta1, arch_weight_decay: the architecture's Adam settings
            (betas (arch_beta1, 0.999)).
        amp: bf16 autocast on CUDA (ignored on CPU; see nasmix.accel.Accel).
    """

    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_beta1: float = 0.5
    arch_weight_decay: float = 1e-3
    amp: bool = True


@dataclass
class Drive:
    """The inputs of one supernet forward besides the images (see nasmix.spaces.supernet)."""

    weights: dict[str, torch.Tensor]
    active: dict[str, list] | None = None
    edge_weights: dict[str, torch.Tensor] | None = None
    add_unsampled: bool = False  # GDAS on NAS-Bench-201: see nasmix.spaces.supernet
    unit_weights: bool = (
        False  # one-hot weights without gradient (GDAS's weight step): see nasmix.spaces.supernet
    )


@dataclass
class SearchState:
    """Everything one supernet search holds; `OneShot.branch` copies it (few-shot NAS).

    Attributes:
        alphas: group -> (edges, ops) architecture parameters.
        extra_params: further architecture parameters (PC-DARTS's edge betas).
        restrict: group -> {edge: op}: edges fixed to one op (few-shot sub-supernets).
        total_epochs: the horizon of the learning-rate (and temperature) schedules.
        extra: strategy state (samples, masks, stage).
        tag: fields added to every search_epoch event.
    """

    space: Any
    net: Supernet
    alphas: dict[str, torch.Tensor]
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    train: DeviceLoader
    valid: DeviceLoader
    data: SearchData
    seed: int
    total_epochs: int
    budget: Budget = field(default_factory=Budget)
    partial: int = 1
    extra_params: list[torch.Tensor] = field(default_factory=list)
    restrict: dict[str, dict[int, int]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    tag: dict = field(default_factory=dict)
    lr: float = 0.0
    accel: Accel = field(default_factory=Accel)

    @property
    def device(self) -> torch.device:
        return self.data.device

    def arch_params(self) -> list[torch.Tensor]:
        return list(self.alphas.values()) + list(self.extra_params)

    def weight_params(self) -> list[torch.Tensor]:
        """The supernet's trainable weights (cached until the supernet is replaced)."""
        cached = self.extra.get("weight_params")
        if cached is None or cached[0] is not self.net:
            params: list[torch.Tensor] = [p for p in self.net.parameters() if p.requires_grad]
            cached = (self.net, params)
            self.extra["weight_params"] = cached
        return cached[1]


def set_grads(loss: torch.Tensor, params: list[torch.Tensor]) -> None:
    """Set each tensor's `.grad` to d loss / d tensor (None where the loss does not reach it),
    as `zero_grad(set_to_none=True)` then `loss.backward()` would for these tensors.

    Taken with `torch.autograd.grad`, which hands the gradients over: `backward()`
    accumulates each into its tensor through one more dispatched op per tensor (1,399 per
    weight step on the DARTS supernet). A gradient whose strides differ from its tensor's is
    copied into the tensor's layout, as accumulation does (the fused optimizers step
    parameters and gradients of one layout).
    """
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads):
        if g is not None and g.stride() != p.stride() and not _same_layout(g, p):
            g = torch.empty_like(p).copy_(g)
        p.grad = g


def _same_layout(g: torch.Tensor, p: torch.Tensor) -> bool:
    """Whether g is laid out as p, as gradient accumulation judges it (the strides of dimensions
    of size 1 do not count)."""
    return all(n == 1 or a == b for n, a, b in zip(p.shape, g.stride(), p.stride()))


def build_supernet(
    space,
    data: SearchData,
    partial: int,
    seed: int,
    log: Log,
    accel: Accel,
    batch: int | None = None,
) -> tuple[Supernet, int]:
    """The space's supernet with PC-DARTS's K = `partial`, or the largest K below it
    that divides the space's channels (logged as a "partial_fallback" event).

    Args:
        accel: the hot loop's settings (channels_last, grouped convolutions, memory budget).
        batch: the search batch: plan the memory for it (nasmix.spaces.memory: cells are
            checkpointed when the step would not fit; a `MemoryPlanned` event says so).

    Returns:
        (supernet on the data's device, the K used).
    """
    for k in range(max(partial, 1), 0, -1):
        torch.manual_seed(seed)
        try:
            net = space.supernet(data.task, data.size, partial=k)
        except ValueError as err:  # ConfigError is a ValueError; spaces raise either for an impossible K
            if k == 1:
                raise
            reason = str(err)
            continue
        if k != partial:
            log(
                PartialFallback(
                    partial,
                    k,
                    space.registry_name,
                    f"K={partial} does not divide the channels of size {data.size!r}: {reason}",
                )
            )
        net.to(data.device)
        if accel.channels_last:
            net.to(memory_format=torch.channels_last)
        guard_strided_pointwise(net)  # a narrow one is wrong in oneDNN on some CPUs (spaces.ops.pointwise)
        net.grouped_convs = accel.grouped_convs
        if batch is not None and not net.own_memory_plan:  # hierarchical: its own plan (spaces.motif_memory)
            budget = accel.memory_budget if accel.memory_budget is not None else default_budget(data.device)
            held = data.train.x.nbytes + data.valid.x.nbytes  # the loaders keep both halves on the device
            plan = plan_memory(net, data.task.shape, batch, budget, held, accel.autocast(data.device))
            if plan.checkpoint or not plan.fits:
                log(plan.as_event(space.registry_name))
        return net.train(), k
    raise AssertionError("unreachable")


def entropy(probs: dict[str, torch.Tensor]) -> float:
    """Mean entropy (nats) of the per-edge categorical distributions."""
    per_edge = [-(p * p.clamp_min(1e-12).log()).sum(-1) for p in (q.detach().float() for q in probs.values())]
    return float(torch.cat(per_edge).mean())


# The architecture weights in every search_epoch event, for the dashboard's heatmap (nasmix serve):
# per group, each edge's op probabilities rounded to ARCH_PROB_DIGITS, and the group's op names.
ARCH_PROB_DIGITS = 3


def arch_weights_extra(probs: dict[str, torch.Tensor], op_names: dict[str, tuple[str, ...]]) -> dict:
    """The `arch_probs` ({group: [[p per op] per edge]}) and `arch_ops` ({group: [op names]}) fields
    of a search_epoch event: the distributions that `entropy` and decoding read, compact.

    Example:
        >>> arch_weights_extra({"cell": torch.tensor([[0.25, 0.75]])}, {"cell": ("skip", "conv")})
        {'arch_probs': {'cell': [[0.25, 0.75]]}, 'arch_ops': {'cell': ['skip', 'conv']}}
    """
    rows = {}
    for g, q in probs.items():
        rows[g] = [[round(p, ARCH_PROB_DIGITS) for p in edge] for edge in q.detach().float().cpu().tolist()]
    return {"arch_probs": rows, "arch_ops": {g: list(op_names[g]) for g in probs if g in op_names}}


class OneShot(Strategy):
    """Base of the bilevel one-shot strategies; subclasses set `Config` and `drive`."""

    kind: ClassVar[str] = "oneshot"
    spaces: ClassVar[tuple[str, ...] | None] = None
    progress: Progress | None = None  # (steps done, steps planned), called per step without a device sync
    weights_first: ClassVar[bool] = False  # the weight step before the architecture step (GDAS's order)
    accel: Accel | None = None  # the hot loop's settings (None: Accel.auto; tests force CUDA's on a CPU)

    config: BilevelConfig
    Config: ClassVar[type[BilevelConfig]]  # each strategy's own subclass

    def __init__(self, config: BilevelConfig | None = None):
        self.config = config if config is not None else self.Config()

    # ---- hooks ------------------------------------------------------------
    def partial_channels(self) -> int:
        """PC-DARTS's K of the supernet this strategy builds (1: all channels)."""
        return 1

    def init_alphas(
        self, shapes: dict[str, tuple[int, int]], device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Initial architecture parameters: 1e-3 x N(0, 1), as DARTS."""
        return {g: (1e-3 * torch.randn(s)).to(device).requires_grad_() for g, s in shapes.items()}

    def init_extra(self, state: SearchState) -> None:
        """Add strategy-specific parameters or state to a fresh search."""

    @abstractmethod
    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        """The supernet inputs of the next architecture step (for_arch, with a graph
        to the architecture parameters) or weight step (detached)."""

    def probs(self, state: SearchState) -> dict[str, torch.Tensor]:
        """The per-edge op probabilities that decode and entropy read (softmax(alpha))."""
        return {g: a.detach().softmax(-1) for g, a in state.alphas.items()}

    def decode_weights(self, state: SearchState) -> dict[str, torch.Tensor]:
        """The weights `space.decode` reads (default: `probs`)."""
        return self.probs(state)

    def regulariser(self, state: SearchState) -> torch.Tensor | None:
        """A term added to the architecture loss (DrNAS's KL), or None."""
        return None

    def clip_params(self, state: SearchState) -> list[torch.Tensor]:
        """The tensors whose gradients the weight step clips as one norm (default: the weights)."""
        return state.weight_params()

    def begin_step(self, state: SearchState) -> None:
        """Called before each step's architecture and weight steps (GDAS samples here)."""

    def begin_epoch(self, state: SearchState, epoch: int, log: Log) -> dict:
        """Called before each epoch; returns fields for its search_epoch event."""
        return {}

    def updates_arch(self, state: SearchState, epoch: int) -> bool:
        """Whether this epoch has architecture steps (False during a warm-up)."""
        return True

    def finish(self, state: SearchState, log: Log, rng: np.random.Generator) -> tuple[Arch, dict]:
        """The chosen arch and fields for search_done (default: the decoded arch)."""
        return self.decode(state), {}

    # ---- the loop ---------------------------------------------------------
    def search(
        self, space, estimator, data: SearchData, budget: Budget, log: Log, rng: np.random.Generator
    ) -> Arch:
        clock = budget.clock(data.timer, total=budget.epochs)
        state = self.prepare(space, data, budget, rng, log, total_epochs=budget.epochs)
        if self.train_epochs(state, 1, budget.epochs, clock, log):
            log(clock.capped())
        arch, summary = self.finish(state, log, rng)
        log(SearchDone(arch.to_str(), extra=summary))
        return arch

    def prepare(
        self, space, data: SearchData, budget: Budget, rng: np.random.Generator, log: Log, total_epochs: int
    ) -> SearchState:
        """A fresh search: supernet, architecture parameters, optimizers, loaders."""
        seed = int(rng.integers(2**31 - 1))
        accel = self.accel or Accel.auto(data.device, self.config.amp)
        net, k = build_supernet(space, data, self.partial_channels(), seed, log, accel, budget.batch_size)
        alphas = self.init_alphas(net.arch_shapes, data.device)
        loaders = [
            DeviceLoader(
                half,
                data.task,
                budget.batch_size,
                data.device,
                Augment(),
                shuffle=True,
                channels_last=accel.channels_last,
            )
            for half in (data.train, data.valid)
        ]
        state = SearchState(
            space,
            net,
            alphas,
            None,  # type: ignore[arg-type]  # the optimizers are made just below, from the state
            None,  # type: ignore[arg-type]
            loaders[0],
            loaders[1],
            data,
            seed,
            total_epochs,
            budget,
            partial=k,
            accel=accel,
        )
        self.init_extra(state)
        self.make_optimizers(state)
        return state

    def make_optimizers(self, state: SearchState) -> None:
        """(Re)create both optimizers over the state's current parameters (see `Accel.sgd`)."""
        c = self.config
        state.w_opt = state.accel.sgd(state.weight_params(), c.lr, c.momentum, c.weight_decay)
        betas = (c.arch_beta1, 0.999)
        state.a_opt = state.accel.adam(state.arch_params(), c.arch_lr, betas, c.arch_weight_decay)

    def branch(self, parent: SearchState, restrict: dict[str, dict[int, int]], seed: int) -> SearchState:
        """A copy of a search (weights, architecture parameters, optimizer states)
        with some edges fixed to one op: a few-shot sub-supernet."""
        state = copy.copy(parent)
        state.net = copy.deepcopy(parent.net)
        state.alphas = {g: a.detach().clone().requires_grad_() for g, a in parent.alphas.items()}
        state.extra_params = [p.detach().clone().requires_grad_() for p in parent.extra_params]
        shared = {"score_loader"}  # device data: shared, not copied; masks and caches are rebuilt
        state.extra = {
            k: v if k in shared else copy.deepcopy(v)
            for k, v in parent.extra.items()
            if k not in ("restrict_masks", "weight_params")
        }
        state.restrict = {g: dict(e) for g, e in restrict.items()}
        state.tag = dict(parent.tag)
        state.seed = seed
        self.make_optimizers(state)
        # load_state_dict keeps the very tensors it is given (same device and dtype), and the optimizers
        # update them in place: without copies every sibling would start from the previous one's state.
        state.w_opt.load_state_dict(copy.deepcopy(parent.w_opt.state_dict()))
        state.a_opt.load_state_dict(copy.deepcopy(parent.a_opt.state_dict()))
        return state

    def forward_args(self, state: SearchState, for_arch: bool) -> Drive:
        """`drive`, with the restricted edges (few-shot) fixed to their op."""
        d = self.drive(state, for_arch)
        if not state.restrict:
            return d
        weights = dict(d.weights)
        shapes = state.net.arch_shapes
        active: dict[str, list[Any]] = {
            g: list(d.active[g]) if d.active else [None] * shapes[g][0] for g in shapes
        }
        if "restrict_masks" not in state.extra:  # built once, then reused on the device
            masks = {}
            for g, fixed in state.restrict.items():
                mask = torch.zeros(shapes[g], dtype=torch.bool)
                for e, op in fixed.items():
                    mask[e, op] = True
                masks[g] = (mask.to(state.device), mask.any(1, keepdim=True).to(state.device))
            state.extra["restrict_masks"] = masks
        for g, fixed in state.restrict.items():
            mask, rows = state.extra["restrict_masks"][g]
            for e, op in fixed.items():
                active[g][e] = [op]
            weights[g] = torch.where(rows, mask.to(weights[g].dtype), weights[g])
        return Drive(weights, active, d.edge_weights, d.add_unsampled, d.unit_weights)

    def restricted(self, state: SearchState, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights with the restricted edges set to the one-hot of their op."""
        out = dict(weights)
        for g, fixed in state.restrict.items():
            w = out[g].detach().clone()
            for e, op in fixed.items():
                w[e] = 0.0
                w[e, op] = 1.0
            out[g] = w
        return out

    def decode(self, state: SearchState) -> Arch:
        """The arch the current architecture parameters prefer."""
        return state.space.decode(
            {g: w.cpu() for g, w in self.restricted(state, self.decode_weights(state)).items()}
        )

    def _forward(self, state: SearchState, x: torch.Tensor, d: Drive) -> torch.Tensor:
        if d.add_unsampled or d.unit_weights:
            return state.net(x, d.weights, d.active, d.edge_weights, d.add_unsampled, d.unit_weights)
        return state.net(x, d.weights, d.active, d.edge_weights)

    def arch_step(self, state: SearchState, train: tuple, valid: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """One first-order architecture step on the valid batch.

        Returns:
            (the batch's cross-entropy, its logits), both detached.
        """
        x, y = valid
        d = self.forward_args(state, for_arch=True)
        with state.accel.autocast(state.device):
            logits = self._forward(state, x, d)
            loss = nn.functional.cross_entropy(logits.float(), y)
        reg = self.regulariser(state)
        total = loss if reg is None else loss + reg
        params = state.arch_params()
        # Only the architecture gradients: autograd skips the weights' gradients altogether.
        grads = torch.autograd.grad(total, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g
        state.a_opt.step()
        return loss.detach(), logits.detach()

    def weight_step(
        self, state: SearchState, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of the supernet's weights on the train batch."""
        d = self.forward_args(state, for_arch=False)
        with state.accel.autocast(state.device):
            logits = self._forward(state, x, d)
            loss = nn.functional.cross_entropy(logits.float(), y)
        set_grads(loss, self.grad_targets(state))  # unsampled ops get None: no gradient, no step
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.clip_params(state), self.config.grad_clip)
        state.w_opt.step()
        return loss.detach(), logits.detach()

    def grad_targets(self, state: SearchState) -> list[torch.Tensor]:
        """The tensors the weight step differentiates: the weights, and whatever else the
        clip reads (DrNAS clips the architecture parameters' gradients with the weights')."""
        weights, clip = state.weight_params(), self.clip_params(state)
        if clip is weights:
            return weights
        seen = {id(p) for p in weights}
        return weights + [p for p in clip if id(p) not in seen]

    def step(
        self, state: SearchState, train: tuple, valid: tuple, arch_on: bool = True
    ) -> tuple[Pair, Pair | None]:
        """One search step: `begin_step`, then the architecture step on the valid batch
        (when `arch_on`) and the weight step on the train batch, in the method's order
        (`weights_first`). The search loop and bench/search.py both run this.

        Returns:
            ((train loss, train logits), (valid loss, valid logits) or None), all detached.
        """
        self.begin_step(state)
        arch = None
        # Architecture step first: both forwards read the same weights (groups.weights_held).
        with weights_held() if arch_on and not self.weights_first else contextlib.nullcontext():
            if arch_on and not self.weights_first:
                arch = self.arch_step(state, train, valid)
            weight = self.weight_step(state, *train)
        if arch_on and self.weights_first:
            arch = self.arch_step(state, train, valid)
        return weight, arch

    def steps_per_epoch(self, state: SearchState) -> int:
        return min(len(state.train), len(state.valid))

    def train_epochs(
        self,
        state: SearchState,
        first: int,
        last: int,
        clock: Clock,
        log: Log,
        number: Callable[[int], int] | None = None,
    ) -> bool:
        """Run epochs first..last of the schedule (1-based, of `state.total_epochs`),
        ticking `clock` once per epoch and stopping early when it says so.

        Args:
            clock: the search's clock (nasmix.budget), polled between epochs.
            number: maps a schedule epoch to the number its event carries (few-shot
                numbers all its sub-searches' epochs in one sequence).

        Returns:
            Whether the clock stopped it (the caller logs `clock.capped()`).
        """
        c = self.config
        steps = self.steps_per_epoch(state)
        for epoch in range(first, last + 1):
            if clock.stop_reason() is not None:
                return True
            state.lr = cosine_lr(epoch - 1, state.total_epochs, c.lr, c.lr_min)
            for group in state.w_opt.param_groups:
                group["lr"] = state.lr
            extra = self.begin_epoch(state, epoch, log)
            arch_on = self.updates_arch(state, epoch)
            torch.manual_seed(epoch_seed(state.seed, epoch) + 1)
            sums = torch.zeros(
                4, device=state.device, dtype=torch.float64
            )  # train loss, correct; valid loss, correct
            seen = [0, 0]
            i = 0
            timer = state.data.timer
            assert timer is not None  # SearchData.__post_init__ sets it
            with timer.measure() as m:
                batches = zip(
                    state.train.batches(epoch_seed(state.seed, epoch)),
                    state.valid.batches(epoch_seed(state.seed, epoch) + 7),
                )
                for i, (train, valid) in enumerate(batches, start=1):
                    (loss, logits), arch = self.step(state, train, valid, arch_on)
                    sums[:2] += torch.stack(
                        [loss.double() * len(train[1]), accuracy_counts(logits, train[1])[0].double()]
                    )
                    seen[0] += len(train[1])
                    if arch is not None:
                        sums[2:] += torch.stack(
                            [arch[0].double() * len(valid[1]), accuracy_counts(arch[1], valid[1])[0].double()]
                        )
                        seen[1] += len(valid[1])
                    if self.progress is not None:
                        self.progress(i, steps)
            clock.tick(gpu_s=m.gpu_s)
            self._log_epoch(state, epoch, sums, seen, m, i, log, extra, number, clock)
        return False

    def _log_epoch(self, state, epoch, sums, seen, m, steps_done, log, extra, number, clock: Clock) -> None:
        tl, tc, vl, vc = sums.tolist()  # the epoch's one host read of the metrics
        tn, vn = seen
        if not math.isfinite(tl) or not math.isfinite(vl):
            raise DivergedError(f"search loss is {tl if not math.isfinite(tl) else vl} in epoch {epoch}")
        probs = self.probs(state)
        epochs = state.tag.get("epochs", state.total_epochs)
        tags = {k: v for k, v in state.tag.items() if k != "epochs"}
        train = (tl / tn, tc / tn) if tn else (None, None)
        valid = (vl / vn, vc / vn) if vn else (None, None)
        arch = self.decode(state).to_str()
        n = number(epoch) if number else epoch
        extra = {**tags, **extra, **arch_weights_extra(probs, getattr(state.net, "op_names", {}))}
        log(
            SearchEpoch(
                n,
                epochs,
                train[0],
                train[1],
                valid[0],
                valid[1],
                arch,
                entropy(probs),
                m.wall_s,
                m.gpu_s,
                m.peak_gpu_bytes,
                m.peak_host_bytes,
                m.device,
                steps_done,
                state.lr,
                state.partial,
                clock.elapsed_s(),
                extra=extra,
            )
        )
