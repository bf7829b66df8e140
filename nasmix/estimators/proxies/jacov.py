"""Jacob_cov: how decorrelated the input Jacobians of a batch's images are."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import corrcoef_rows, input_jacobian, proxy

K = 1e-5


@proxy("jacov")
def jacov(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Jacob_cov (Mellor et al. 2021, first version): -sum(log(v + k) + 1 / (v + k)), k = 1e-5.

    v are the eigenvalues of the correlation matrix of the per-image
    Jacobians d(sum of outputs)/d(input) (NASLib's `jacov`). Departures:
    `eigvalsh` of the symmetric matrix instead of `eig`, and an image whose
    Jacobian has no variance counts as correlated 1 with all (NumPy gives
    NaN), so a network blind to its input scores very low instead of NaN.

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> import math
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
        >>> x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> math.isfinite(jacov(net, x, y, Task("t", 3, (3, 2, 2))))
        True
    """
    v = torch.linalg.eigvalsh(corrcoef_rows(input_jacobian(net, x)))
    return float(-(torch.log(v + K) + 1.0 / (v + K)).sum())
