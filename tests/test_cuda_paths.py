"""CUDA-only branches outside the search loop, run on a CPU with the CUDA calls they make mocked
(the search loop's own CUDA settings are tested for real on a CPU in tests/strategies/test_accel.py)."""

from __future__ import annotations

import torch

from nasmix.events import End
from nasmix.study import run as run_mod


def test_out_of_memory_on_cuda_reports_the_device_peak(monkeypatch):
    """A cell that runs out of GPU memory records the larger of the device's peak and the phases' peak."""
    asked = []
    peak = lambda device=None: asked.append(device) or 7 * 2**30  # noqa: E731
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", peak)
    ends = []
    err = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    state = run_mod._fail(lambda *a: ends.append(a), torch.device("cuda:0"), {"gpu": 3 * 2**30}, err)
    assert state == "failed" and asked == [torch.device("cuda:0")]
    end = ends[0][1]
    assert isinstance(end, End) and end.state == "failed"
    assert end.reason == "out of GPU memory" and end.peak_gpu_bytes == 7 * 2**30
