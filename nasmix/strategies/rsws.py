"""Random search with weight sharing (Li and Talwalkar, "Random Search and
Reproducibility for Neural Architecture Search", UAI 2019).

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> events = []
    >>> rsws, nb201 = registry.create("strategy", "rsws", candidates=20), registry.create("space", "nb201")
    >>> budget = Budget(epochs=1, batch_size=16)
    >>> arch = rsws.search(nb201, None, tiny_search_data(), budget, events.append, np.random.default_rng(0))
    >>> events[-1].extra["ranked"]
    20
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.loader import DeviceLoader
from nasmix.errors import ConfigError
from nasmix.strategies.base import Log
from nasmix.strategies.darts import check_bilevel
from nasmix.strategies.oneshot import BilevelConfig, Drive, OneShot, SearchState
from nasmix.train import accuracy_counts, epoch_seed


@torch.no_grad()
def shared_weight_scores(
    state: SearchState, archs: list[Arch], batches: int | None = None, stream: int = 0
) -> torch.Tensor:
    """Validation loss and top-1 of archs with the supernet's shared weights, on the device.

    Each arch runs only its own ops (`space.active`). Batch normalisation uses
    batch statistics: the supernet's running statistics mix every path.

    Args:
        archs: the archs to score.
        batches: score each arch on at most this many validation batches from
            the start of the half (None: the whole half).
        stream: instead give each arch the next `stream` batches of one stream
            cycling over the half (Li and Talwalkar's cheap first round: 10).

    Returns:
        A (len(archs), 2) float64 device tensor of [mean loss, top-1].
    """
    space, net, device = state.space, state.net, state.device
    if "score_loader" not in state.extra:
        state.extra["score_loader"] = DeviceLoader(
            state.data.valid,
            state.data.task,
            state.train.batch_size,
            device,
            channels_last=state.accel.channels_last,
        )
    loader: DeviceLoader = state.extra["score_loader"]
    out = torch.zeros(len(archs), 2, device=device, dtype=torch.float64)
    seen = np.zeros(len(archs))

    def cycle():
        while True:
            yield from loader.batches()

    feed = cycle()
    for i, arch in enumerate(archs):
        weights = {g: w.to(device, non_blocking=True) for g, w in space.arch_weights(arch).items()}
        active = space.active(arch)
        source = [next(feed) for _ in range(stream)] if stream else loader.batches()
        for b, (x, y) in enumerate(source):
            if batches is not None and b >= batches:
                break
            with state.accel.autocast(device):
                logits = net(x, weights, active)
            loss = nn.functional.cross_entropy(logits.float(), y, reduction="sum")
            out[i] += torch.stack([loss.double(), accuracy_counts(logits, y)[0].double()])
            seen[i] += len(y)
    return out / torch.from_numpy(np.maximum(seen, 1)).to(device)[:, None]


@registry.register("strategy", "rsws")
class Rsws(OneShot):
    """Random search with weight sharing (Li and Talwalkar 2019): train on random paths, rank random archs.

    Training: every weight step trains one arch drawn uniformly from the
    space (`space.sample`; only its ops run, through the `active` lists).
    There are no architecture parameters and no architecture steps.
    Selection, as randomNAS_release's `get_eval_arch`: `candidates` random
    archs (the paper: 1,000; by default the Budget's `candidates`, 100 unless
    set) are scored with the shared weights, each on the next `first_batches`
    (10) validation batches of a stream cycling over the validation half;
    the `finalists` (10) best by top-1 (then loss) are scored on the whole
    validation half, and the best wins.

    Defaults: weights SGD lr 0.025 cosine to 0.001, momentum 0.9, weight
    decay 3e-4, clip 5 (DARTS's, as the paper); epochs and batch from the Budget.

    Departures: the number of ranked archs follows the Budget unless
    `candidates` is set (so that a study's candidate budget governs it).
    Scoring uses batch statistics in batch normalisation (the code scores in
    eval mode, with running statistics that mix every path trained). A path
    is an arch of the space, so in the DARTS space it is a whole DARTS cell
    (two inputs per node), as in the paper, but never with `none` on a kept
    edge (the code's sampler may draw it); in spaces with one op per edge it
    is one op per edge. The arch in its search_epoch events is the uniform
    decode (there is no distribution to decode), and their entropy that of
    the uniform distribution.
    """

    config: Config  # its own options (OneShot.__init__ builds them)

    @dataclass(frozen=True)
    class Config(BilevelConfig):
        """RSWS options (the weights' ones of BilevelConfig; its arch_* options are unused).

        Attributes:
            candidates: random archs scored on `first_batches` validation batches each
                (None: the Budget's `candidates`; the paper: 1000).
            first_batches: validation batches per candidate in the first round.
            finalists: the best of them scored on the whole validation half.
        """

        candidates: int | None = None
        first_batches: int = 10
        finalists: int = 10

        def __post_init__(self) -> None:
            check_bilevel(self)
            if (
                (self.candidates is not None and self.candidates < 1)
                or self.finalists < 1
                or self.first_batches < 1
            ):
                raise ConfigError(
                    f"rsws needs candidates, first_batches and finalists >= 1, got {self.candidates}, "
                    f"{self.first_batches}, {self.finalists}"
                )

    def updates_arch(self, state: SearchState, epoch: int) -> bool:
        return False

    def begin_epoch(self, state: SearchState, epoch: int, log: Log) -> dict:
        """Draws the epoch's paths up front: their one-hot weights reach the device in one copy
        per epoch, not one per step (a copy from pageable host memory waits for the device)."""
        rng = np.random.default_rng(epoch_seed(state.seed, epoch) + 3)
        archs = [state.space.sample(rng) for _ in range(len(state.train))]
        if archs:
            rows = [state.space.arch_weights(a) for a in archs]
            stacked = {g: torch.stack([r[g] for r in rows]).to(state.device) for g in rows[0]}
            state.extra["paths"] = deque(
                (a, {g: w[i] for g, w in stacked.items()}) for i, a in enumerate(archs)
            )
        state.extra["path_rng"] = rng  # past the drawn paths: a step beyond them draws on, in order
        return {}

    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        paths: deque = state.extra.setdefault("paths", deque())
        if paths:
            arch, weights = paths.popleft()
        else:
            arch = state.space.sample(state.extra.setdefault("path_rng", np.random.default_rng(state.seed)))
            weights = {g: w.to(state.device) for g, w in state.space.arch_weights(arch).items()}
        return Drive(
            weights, state.space.active(arch), unit_weights=True
        )  # one-hot path weights, no gradient

    def probs(self, state: SearchState) -> dict[str, torch.Tensor]:
        return {g: torch.full_like(a.detach(), 1.0 / a.shape[1]) for g, a in state.alphas.items()}

    def candidate(self, state: SearchState, rng: np.random.Generator) -> Arch:
        """A uniformly random arch, its restricted edges (few-shot) set to their op."""
        arch = state.space.sample(rng)
        if not state.restrict:
            return arch
        return state.space.decode(self.restricted(state, state.space.arch_weights(arch)))

    def finish(self, state: SearchState, log: Log, rng: np.random.Generator) -> tuple[Arch, dict]:
        c = self.config
        n = c.candidates if c.candidates is not None else state.budget.candidates
        archs = [self.candidate(state, rng) for _ in range(n)]
        first = shared_weight_scores(state, archs, stream=c.first_batches).tolist()
        ranked = sorted(range(len(archs)), key=lambda i: (-first[i][1], first[i][0], i))
        finalists = [archs[i] for i in ranked[: c.finalists]]
        final = shared_weight_scores(state, finalists).tolist()
        best = min(range(len(finalists)), key=lambda i: (-final[i][1], final[i][0], i))
        return finalists[best], {
            "valid_loss": final[best][0],
            "valid_top1": final[best][1],
            "ranked": len(archs),
            "finalists": [
                {"arch": a.to_str(), "valid_loss": s[0], "valid_top1": s[1]} for a, s in zip(finalists, final)
            ],
        }
