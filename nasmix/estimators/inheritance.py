"""Weight inheritance: a mutated child starts from its parent's trained weights.

Example:
    >>> from torch import nn
    >>> parent, child = nn.Linear(2, 3), nn.Sequential(nn.Linear(2, 3))
    >>> inherit(child, {"0.weight": parent.weight.detach(), "bias": parent.bias.detach()})
    (1, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasmix import registry
from nasmix.arch import Arch
from nasmix.errors import ConfigError
from nasmix.estimators.base import Estimate
from nasmix.estimators.recipe import Recipe, TrainingEstimator, arch_seed, fit


def inherit(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy into `model` every tensor of `state` whose name and shape match one of its own.

    Parameters and buffers (batch-norm statistics) alike; the rest of the
    model keeps its fresh initialisation.

    Args:
        model: the child network.
        state: the parent's state_dict.

    Returns:
        (tensors copied, tensors in the model's state_dict).
    """
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if matched:
        own.update(matched)
        model.load_state_dict(own)
    return len(matched), len(own)


@registry.register("estimator", "inheritance")
class Inheritance(TrainingEstimator):
    """Weight inheritance: a child copies its trained parent's matching tensors, then trains for fewer epochs.

    Every trained candidate's weights are kept (on the CPU, in a cache of the
    `cache_size` most recent). When the strategy names a parent
    (`parent_of`, e.g. the arch an evolution step mutated) whose weights are
    cached, the child's network copies each of the parent's tensors whose
    name and shape match its own, and trains for `epochs`; otherwise it
    trains from scratch for `scratch_epochs`. The score is its validation
    top-1; the cost the measured seconds.
    Source: weight inheritance in large-scale evolution (Real et al. 2017,
    "Large-Scale Evolution of Image Classifiers") and the network morphisms
    of Elsken et al. (2018, LEMONADE) and Cai et al. (2018), surveyed by
    Elsken et al. (2019, section 5).
    Departures: no function-preserving morphism: a changed operation starts
    from a fresh initialisation (and from the parent's tensors when names
    and shapes happen to match, which depends on how the space names its
    modules: e.g. nb201 numbers only the non-`none` edges of a cell).

    Example:
        >>> Inheritance(Inheritance.Config(epochs=2)).config.scratch_epochs
        12
    """

    kind = "training"

    @dataclass(frozen=True)
    class Config(Recipe):
        """Options (the recipe's, plus inheritance).

        Attributes:
            epochs: training epochs of a child that inherits.
            scratch_epochs: training epochs of a candidate without cached parent weights.
            cache_size: trained networks kept for children to inherit from.
        """

        epochs: int = 4
        scratch_epochs: int = 12
        cache_size: int = 32

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.scratch_epochs < 1 or self.cache_size < 1:
                raise ConfigError(
                    "scratch_epochs and cache_size must be >= 1, "
                    f"got {self.scratch_epochs}, {self.cache_size}"
                )

    def __init__(self, config: Config = Config()):
        super().__init__(config)
        self.cache: OrderedDict[tuple[Arch, str], dict[str, torch.Tensor]] = OrderedDict()

    def prepare(self, space, data, budget, rng: np.random.Generator) -> None:
        super().prepare(space, data, budget, rng)
        self.cache.clear()

    def estimate(self, space, arch: Arch, data, parent: Arch | None = None) -> Estimate:
        """Train the arch, from its parent's weights when they are cached, and score it.

        Args:
            space: its search space.
            arch: the candidate.
            data: the search data.
            parent: the arch it was derived from, if any.

        Returns:
            The validation top-1, the measured seconds, and the fidelity
            (epochs, inherited tensors, parent).
        """
        c = self.config
        state = None
        if parent is not None:
            state = self.cache.get((parent, data.size))
            if state is not None:
                self.cache.move_to_end((parent, data.size))
        copied: list[tuple[int, int]] = []
        epochs = c.epochs if state is not None else c.scratch_epochs
        run = fit(
            space,
            arch,
            data,
            c.recipe(),
            arch_seed(self.seed, arch),
            batch_size=self.batch_size,
            epochs=epochs,
            init=(lambda m: copied.append(inherit(m, state))) if state is not None else None,
        )
        if run.model is not None:
            self.cache[(arch, data.size)] = {
                k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()
            }
            self.cache.move_to_end((arch, data.size))
            while len(self.cache) > c.cache_size:
                self.cache.popitem(last=False)
        n, total = copied[0] if copied else (0, 0)
        fidelity = {
            **self.fidelity(data, epochs),
            "inherited": n,
            "tensors": total,
            "parent": parent.to_str() if state is not None and parent is not None else None,
        }
        return Estimate(run.score, run.seconds, fidelity, extra=run.extra)
