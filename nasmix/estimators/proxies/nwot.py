"""NWOT: how differently a batch's images switch the network's ReLUs on and off."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import proxy


@proxy("nwot")
def nwot(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """NASWOT (Mellor et al. 2021, second version): log|det K_H| of the ReLU activation codes.

    Every `nn.ReLU` module's input is binarised (> 0) per image; K_H[i, j]
    counts the units on which images i and j agree (N_A minus the Hamming
    distance), summed over all ReLU modules; the score is the log of its
    absolute determinant (NASLib's `nwot`). ReLUs applied as functions
    (not modules) are not seen. A network whose ReLUs code every image
    alike scores -inf (a singular K_H).

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> import math
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 3))
        >>> x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> math.isfinite(nwot(net, x, y, Task("t", 3, (3, 2, 2))))
        True
    """
    k = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)

    def hook(module: nn.Module, inputs, out) -> None:
        codes = (inputs[0].detach().reshape(len(x), -1) > 0).float()
        # float32 counts are exact below 2^24 units per layer; the sum over layers is float64
        agree = codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T
        k.add_(agree.double())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(k).logabsdet)
