"""Zero-cost proxies as an estimator: score untrained networks on one batch.

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.testing import tiny_search_data
    >>> space, data = registry.create("space", "nb201"), tiny_search_data()
    >>> est = registry.create("estimator", "zero_cost", proxy="params")
    >>> archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    >>> estimates = est.score_many(space, archs, data)
    >>> len(estimates), estimates[0].extra["candidates_per_s"] > 0
    (3, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nasmix import registry
from nasmix.arch import Arch
from nasmix.data.loader import Augment, DeviceLoader
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimate, Estimator
from nasmix.estimators.proxies.base import main_only
from nasmix.estimators.recipe import arch_seed, build_seeded

FLOOR = 1e30  # non-finite proxy values are clipped to +-FLOOR so that searches can rank them


@registry.register("estimator", "zero_cost")
class ZeroCost(Estimator):
    """Zero-cost proxy: score each untrained candidate with a registered proxy on one fixed batch.

    One batch of `batch_size` training images (drawn once per search, seeded,
    on data.device) is reused for every candidate. As in NASLib's zero-cost
    predictor, which takes the first batch of its training loader, the batch
    holds 32 images by default and is augmented as NASLib's CIFAR training
    transform augments (random crop after padding by 1/8 of the side, 4
    pixels on 32x32 and 2 on ImageNet16's 16x16, and a horizontal flip;
    `augment=false` gives the plain images). A candidate costs building its
    network (seeded initialisation, size data.size, its auxiliary head removed:
    proxies see the main logits and the main network only) and one proxy
    call. `score_many` scores a list of candidates in one timed pass; each
    Estimate is charged the pass's seconds divided by the number of
    candidates, and its extra records candidates_per_s. A
    proxy value that is not finite (e.g. nwot's log-determinant of a singular
    kernel) is clipped to -1e30 (NaN, -inf) or 1e30 (+inf), flagged in extra; a
    proxy where lower is better (`higher_is_better=False`) is negated first.
    Source: Abdelfattah et al. (2021), "Zero-Cost Proxies for Lightweight
    NAS", and NASLib's zero-cost predictor (one batch of its training loader,
    networks in training mode); the proxies are listed by `nasmix list proxy`.
    Departures: a candidate's network is built on the CPU then moved (NASLib
    too); proxies do not share work between candidates; the augmentation draws
    come from the search's seed, not from a data loader's state.

    Example:
        >>> ZeroCost(ZeroCost.Config(proxy="synflow")).config.batch_size
        32
    """

    kind = "proxy"

    @dataclass(frozen=True)
    class Config:
        """Options of the zero-cost estimator.

        Attributes:
            proxy: the registered proxy (`nasmix list proxy`).
            batch_size: images in the one batch every candidate sees (NASLib: 32).
            augment: crop and flip the batch as NASLib's training loader does.
        """

        proxy: str = "synflow"
        batch_size: int = 32
        augment: bool = True

        def __post_init__(self) -> None:
            registry.get("proxy", self.proxy)  # an unknown name lists close matches
            if self.batch_size < 1:
                raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    def __init__(self, config: Config = Config()):
        self.config = config
        fn = registry.get("proxy", config.proxy).obj
        # Searches maximise: a proxy where lower is better is negated (the registered wrapper says which).
        self.sign = 1.0 if getattr(fn, "higher_is_better", True) else -1.0
        # Each candidate's network is built for its one call and then dropped, so the wrapper's
        # save-and-restore of its weights (proxies.base.network_kept) would be timed work for nothing.
        self.proxy = getattr(fn, "__wrapped__", fn)
        self.seed = 0
        self._batch: tuple[object, torch.Tensor, torch.Tensor] | None = None  # (data, x, y)

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        self.seed = int(rng.integers(2**31))
        self._batch = None

    def batch(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        """The one batch (normalised images, labels) on data.device; drawn once per data and seed."""
        if self._batch is None or self._batch[0] is not data:
            n = min(self.config.batch_size, len(data.train))
            pick = np.sort(np.random.default_rng(self.seed).choice(len(data.train), size=n, replace=False))
            side = min(data.task.shape[1:])
            augment = Augment(crop_padding=max(1, side // 8), flip=True) if self.config.augment else None
            loader = DeviceLoader(data.train.take(pick), data.task, n, data.device, augment=augment)
            x, y = next(iter(loader.batches(self.seed)))
            self._batch = (data, x, y)
        return self._batch[1], self._batch[2]

    def score_many(self, space, archs: Sequence[Arch], data) -> list[Estimate]:
        """Score several candidates in one timed pass.

        Args:
            space: their search space.
            archs: the candidates.
            data: the search data (its training half gives the batch).

        Returns:
            One Estimate per arch, in order; cost_s is the pass's seconds
            divided evenly, extra["candidates_per_s"] the pass's rate.

        Example:
            >>> import numpy as np
            >>> from nasmix.testing import tiny_search_data
            >>> space = registry.create("space", "nb201")
            >>> est = ZeroCost(ZeroCost.Config(proxy="params"))
            >>> archs = [space.sample(np.random.default_rng(0))]
            >>> [e.score > 0 for e in est.score_many(space, archs, tiny_search_data())]
            [True]
        """
        archs = list(archs)
        if not archs:
            return []
        x, y = self.batch(data)
        raw: list[float] = []
        with data.timer.measure() as m:
            for arch in archs:
                net = build_seeded(space, arch, data.task, data.size, arch_seed(self.seed, arch))
                net = main_only(net).to(data.device)
                net.train()
                raw.append(self.sign * float(self.proxy(net, x, y, data.task)))
        per = m.wall_s / len(archs)
        rate = len(archs) / m.wall_s if m.wall_s > 0 else math.inf
        cfg = self.config
        fidelity = {"proxy": cfg.proxy, "batch_size": len(y), "augment": cfg.augment, "size": data.size}
        out = []
        for value in raw:
            finite = math.isfinite(value)
            score = value if finite else (FLOOR if value == math.inf else -FLOOR)
            extra = {
                "candidates_per_s": rate,
                "batch_candidates": len(archs),
                "device": m.device,
                **({} if finite else {"non_finite": str(value)}),
            }
            out.append(Estimate(score, per, dict(fidelity), extra=extra))
        return out

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Score one candidate (`score_many` of one).

        Args:
            space: its search space.
            arch: the candidate.
            data: the search data.
            parent: ignored.

        Returns:
            The proxy's value and the measured seconds.
        """
        return self.score_many(space, [arch], data)[0]
