"""ATen operators dispatched by a block of PyTorch code, counted with TorchDispatchMode.

Every ATen op below autograd is one dispatch, and on a GPU (almost) every
non-view op is one kernel launch: the count predicts a step's launch
overhead without a GPU, and it is the same on every machine (the code, not
the hardware, decides it). Views (`is_view` ops: slices, reshapes,
transposes) launch nothing; they are counted apart.

Example:
    >>> import torch
    >>> with OpCounter() as c:
    ...     _ = torch.ones(3).mul(2).sum()
    >>> c.total, c.by_name["aten.mul.Tensor"]
    (3, 1)
"""

from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """Counts ATen ops by overload name while active.

    Attributes:
        by_name: op overload name -> calls.
        total: all calls; views: calls of view ops.
    """

    def __init__(self):
        super().__init__()
        self.by_name: Counter = Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.by_name[str(func)] += 1
        if getattr(func, "is_view", False):
            self.views += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.by_name.values())

    def top(self, k: int = 10, per: float = 1.0) -> list[tuple[str, float]]:
        """The k most called ops, each count divided by `per` (e.g. per step)."""
        return [(name.removeprefix("aten."), n / per) for name, n in self.by_name.most_common(k)]
