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

import math
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


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


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, *args, output_mask=None, **kwargs) -> int:
    """Each of a convolution's input and weight gradients costs what its forward costs:
    2 x (output elements) x (inputs per group x kernel) (PyTorch 2.14's formula counts the
    weight gradient of a grouped convolution `groups` times over)."""
    mask = output_mask if output_mask is not None else args[7]
    return 2 * math.prod(grad_out_shape) * math.prod(w_shape[1:]) * (int(mask[0]) + int(mask[1]))


def flop_counter() -> FlopCounterMode:
    """FlopCounterMode with grouped-convolution backward counted right.

    Example:
        >>> x, w = torch.randn(2, 8, 4, 4, requires_grad=True), torch.randn(8, 2, 3, 3, requires_grad=True)
        >>> with flop_counter() as f:
        ...     torch.nn.functional.conv2d(x, w, padding=1, groups=4).sum().backward()
        >>> f.get_total_flops() == 3 * 2 * (2 * 8 * 4 * 4) * (2 * 3 * 3)
        True
    """
    return FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops}
    )
