"""EPE-NAS: how the input Jacobians of each class's images correlate, per class."""

from __future__ import annotations

import torch
from torch import nn

from nasmix.data.base import Task
from nasmix.estimators.proxies.base import corrcoef_rows, input_jacobian, proxy

K = 1e-5


@proxy("epe_nas")
def epe_nas(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """EPE-NAS (Lopes et al. 2021): per-class Jacobian correlation scores, combined over classes.

    For each class c in the batch, s_c = sum(log(|C_c| + k)), k = 1e-5, where
    C_c is the correlation matrix of the input Jacobians of c's images. With
    at most 100 classes the score is sum_c |s_c|; with more, s_c is divided by
    the class's image count and the score is sum_{c, c'} |s_c - s_c'| / classes,
    as the authors' code (and NASLib's `epe_nas`) does. The number of
    classes is the network's output width. Departure: an image whose Jacobian
    has no variance correlates 1 with all (NumPy gives NaN).

    Args:
        net, x, y, task: see nasmix.estimators.proxies.base.

    Returns:
        The score (higher is better).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
        >>> x, y = torch.randn(6, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
        >>> epe_nas(net, x, y, Task("t", 3, (3, 2, 2))) >= 0
        True
    """
    jac = input_jacobian(net, x)
    classes = task.num_classes if task is not None else int(y.max()) + 1
    scores = []
    for c in torch.unique(y).tolist():
        rows = jac[y == c]
        corr = (
            corrcoef_rows(rows) if len(rows) > 1 else torch.ones(1, 1, dtype=torch.float64, device=jac.device)
        )
        s = torch.log(corr.abs() + K).sum()
        scores.append(s / len(corr) if classes > 100 else s)
    s = torch.stack(scores)
    if classes <= 100:
        return float(s.abs().sum())
    return float((s[:, None] - s[None, :]).abs().sum() / len(s))
