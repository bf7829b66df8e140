"""Few-shot NAS (Zhao, Wang, Tian, Guo and Fonseca, "Few-shot Neural
Architecture Search", arXiv 2020 / ICML 2021) around any one-shot strategy.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> events = []
    >>> strategy = registry.create("strategy", "fewshot", base="gdas")
    >>> space, budget = registry.create("space", "nb201"), Budget(epochs=2, batch_size=16)
    >>> rng = np.random.default_rng(0)
    >>> arch = strategy.search(space, None, tiny_search_data(), budget, events.append, rng)
    >>> len([e for e in events if isinstance(e, Subnet)])  # one sub-supernet per op of the split edge
    5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Budget, Clock
from nasmix.errors import ConfigError
from nasmix.events import SearchDone, Subnet
from nasmix.search_types import Log, SearchData
from nasmix.strategies.base import Strategy
from nasmix.strategies.oneshot import OneShot, SearchState
from nasmix.strategies.rsws import shared_weight_scores

MODES = ("scratch", "inherit")


def split_edge(state: SearchState, split: str) -> tuple[str, int]:
    """The (group, edge) named by "group:edge", or the first edge of the first group for ""."""
    shapes = state.net.arch_shapes
    if not split:
        return next(iter(shapes)), 0
    group, _, edge = split.partition(":")
    if group not in shapes:
        raise ConfigError(f"fewshot split {split!r}: unknown group {group!r}; valid: {', '.join(shapes)}")
    if not edge.isdigit() or int(edge) >= shapes[group][0]:
        raise ConfigError(f"fewshot split {split!r}: edge must be 0..{shapes[group][0] - 1}")
    return group, int(edge)


def parse_options(text: str) -> dict[str, str]:
    """Options written "key=value,key=value", as a dict of strings (registry.create coerces them).

    Example:
        >>> parse_options("order=2, arch_lr=6e-4")
        {'order': '2', 'arch_lr': '6e-4'}
    """
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"fewshot base_options: {part!r} is not key=value (e.g. 'order=2')")
        out[key.strip()] = value.strip()
    return out


@registry.register("strategy", "fewshot")
class Fewshot(Strategy):
    """Few-shot NAS (Zhao et al. 2021): split the supernet on one edge's ops, search each part, keep the best.

    The supernet is split on one edge (`split`, default the first edge of
    the first group: NAS-Bench-201's 1<-0, as the authors' NB-201 scripts)
    into one sub-supernet per op of that edge. In each, that edge holds only
    its op with weight 1 and no architecture parameter (the `active` lists
    and a one-hot weight row; its alphas exist but get no gradient and are
    never decoded), and the base strategy searches the other edges. Each
    sub-supernet's arch is scored by its validation top-1 with the sub-
    supernet's shared weights (its own ops only; `score_batches` batches, 0:
    the whole validation half) and the best wins. The `SearchEpoch` events
    are numbered in one sequence over every sub-supernet's epochs and carry
    the sub-supernet they belong to; each sub-supernet ends with a `Subnet`
    event. One budget clock counts every sub-supernet's epochs; a cap stops
    the search between epochs and the best sub-supernet so far wins.

    `mode` "scratch" (default) is the authors' NAS-Bench-201 protocol
    (few-shot-NAS, Few-Shot_NasBench201, DARTS-V2-few-shot.py and its five
    scripts, edge_op 0..4): every sub-supernet is trained from scratch with
    the base's full schedule (E = budget.epochs), so the search trains
    ops x E supernet-epochs (5 x E on NB-201), by second-order DARTS (the
    default `base` darts runs with `base_options` "order=2" unless they are
    given). `mode` "inherit" is a cheaper variant in the spirit of the
    paper's transfer from the one-shot supernet: the base first trains the
    whole supernet for W = round(warmup x E) epochs (at most E - 1), then
    every sub-supernet starts from a copy of its weights, architecture
    parameters and optimizer states and continues the schedule for the
    remaining E - W epochs: W + ops x (E - W) supernet-epochs.

    Departures: the authors run each sub-supernet as a separate job and
    report each; choosing among them by the shared-weight validation top-1
    is nasmix's rule. Their repository has no DARTS-space search code, and the
    protocol above is their NB-201 one, used in every space.
    """

    kind: ClassVar[str] = "oneshot"
    spaces: ClassVar[tuple[str, ...] | None] = None
    progress = None  # passed on to the base strategy (see OneShot.progress)
    # The contract suite runs few-shot over GDAS: the splitting logic is the same,
    # and it computes one op per edge instead of all of them in each sub-supernet.
    contract_options: ClassVar[dict] = {"base": "gdas"}
    # The base's options in the authors' protocol: second-order DARTS, as DARTS-V2-few-shot.py.
    PAPER_BASE_OPTIONS: ClassVar[dict[str, str]] = {"darts": "order=2"}

    @dataclass(frozen=True)
    class Config:
        """Few-shot options.

        Attributes:
            base: the one-shot strategy that searches each sub-supernet.
            base_options: the base's options, "key=value,key=value" (None: "order=2" for darts,
                none for the others; "": the base's defaults).
            mode: "scratch" (each sub-supernet from scratch, the full schedule) or "inherit".
            split: the edge to split on, "group:edge" ("": the first edge of the first group).
            warmup: "inherit" only: share of the epochs that train the unsplit supernet.
            score_batches: validation batches that score each sub-supernet's arch (0: all).
        """

        base: str = "darts"
        base_options: str | None = None
        mode: str = "scratch"
        split: str = ""
        warmup: float = 0.5
        score_batches: int = 0

        def __post_init__(self) -> None:
            if self.base == "fewshot":
                raise ConfigError("fewshot cannot wrap itself; choose a one-shot base such as darts")
            if self.mode not in MODES:
                raise ConfigError(f"fewshot mode must be one of {', '.join(MODES)}, got {self.mode!r}")
            if not 0 <= self.warmup < 1 or self.score_batches < 0:
                raise ConfigError(
                    f"fewshot needs 0 <= warmup < 1 and score_batches >= 0, got {self.warmup}, "
                    f"{self.score_batches}"
                )
            if self.base_options:
                parse_options(self.base_options)

    def __init__(self, config: Config = Config()):
        self.config = config

    def base(self) -> OneShot:
        """The wrapped one-shot strategy, with `base_options`."""
        c = self.config
        text = self.PAPER_BASE_OPTIONS.get(c.base, "") if c.base_options is None else c.base_options
        base = registry.create("strategy", c.base, **parse_options(text))
        if not isinstance(base, OneShot):
            valid = [
                e.name
                for e in registry.entries("strategy")
                if getattr(e.obj, "kind", "") == "oneshot" and e.name != "fewshot"
            ]
            raise ConfigError(
                f"fewshot base {c.base!r} is not a one-shot strategy; valid: {', '.join(valid)}"
            )
        base.progress = self.progress
        return base

    def search(
        self, space, estimator, data: SearchData, budget: Budget, log: Log, rng: np.random.Generator
    ) -> Arch:
        c, base = self.config, self.base()
        epochs = budget.epochs
        warm = 0 if c.mode == "scratch" else min(round(c.warmup * epochs), epochs - 1)
        rest = epochs - warm
        parent = base.prepare(space, data, budget, rng, log, total_epochs=epochs)
        group, edge = split_edge(parent, c.split)
        op_names = parent.net.op_names[group]
        total = warm + len(op_names) * rest
        where = f"{group}:{edge}"
        parent.tag = {"epochs": total, "subnet": None, "split": where}
        clock = budget.clock(data.timer, total=total)  # one account over every sub-supernet's epochs
        # A cap is polled between epochs, so also between the warm-up and the first sub-supernet.
        if warm and (base.train_epochs(parent, 1, warm, clock, log) or clock.stop_reason() is not None):
            return self._done(base, parent, log, rng, clock)
        best: tuple | None = None
        subnets = []
        for k, name in enumerate(op_names):
            if c.mode == "inherit":
                sub = base.branch(parent, {group: {edge: k}}, seed=int(rng.integers(2**31 - 1)))
            else:  # a fresh supernet, architecture and optimizers; the first one is the one already built
                sub = parent if k == 0 else base.prepare(space, data, budget, rng, log, total_epochs=epochs)
                if k == 0:
                    del parent  # one supernet in memory at a time
                sub.restrict = {group: {edge: k}}
            sub.tag = {"epochs": total, "subnet": k, "split": f"{where}={name}"}

            def number(e: int, k: int = k) -> int:  # the epoch's number in the search's one count
                return warm + k * rest + (e - warm)

            capped = base.train_epochs(sub, warm + 1, epochs, clock, log, number=number)
            arch, _ = base.finish(sub, log, rng)
            loss, top1 = shared_weight_scores(sub, [arch], batches=c.score_batches or None)[0].tolist()
            subnets.append(
                {"index": k, "op": name, "arch": arch.to_str(), "valid_loss": loss, "valid_top1": top1}
            )
            log(Subnet(**subnets[-1]))
            if best is None or (top1, -loss) > best[0]:
                best = ((top1, -loss), arch, top1)
            del sub
            if capped or (k + 1 < len(op_names) and clock.stop_reason() is not None):
                log(clock.capped())
                break
        assert best is not None
        summary = {"valid_top1": best[2], "split": where, "mode": c.mode, "subnets": subnets}
        log(SearchDone(best[1].to_str(), extra=summary))
        return best[1]

    def _done(self, base: OneShot, parent: SearchState, log: Log, rng, clock: Clock) -> Arch:
        """A cap stopped the warm-up: the unsplit supernet's arch."""
        log(clock.capped())
        arch, summary = base.finish(parent, log, rng)
        log(SearchDone(arch.to_str(), extra=summary))
        return arch
