import torch
from torch import nn

from nasmix.timing import Timer, count_flops, count_params, device_name


def test_measure_fills_cpu_fields():
    timer = Timer("cpu")
    with timer.measure() as m:
        torch.randn(200, 200) @ torch.randn(200, 200)
    assert m.wall_s > 0 and m.gpu_s is None and m.peak_gpu_bytes is None
    assert m.peak_host_bytes > 0 and m.device == device_name(torch.device("cpu"))
    assert m.device.startswith("cpu:")


def test_flops_and_params_of_a_linear_layer():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    assert count_params(net) == 12 * 5 + 5
    assert count_flops(net, (3, 2, 2)) == 2 * 12 * 5
    assert net.training  # mode restored


def test_a_nested_measurement_keeps_the_enclosing_peak():
    """An inner measure resets the process's peak counters; the outer one must still see its own peak."""
    import numpy as np

    from nasmix.timing import host_peak_bytes

    timer = Timer("cpu")
    with timer.measure() as outer:
        big = np.ones(400_000_000 // 8)  # 400 MB resident
        big_peak = host_peak_bytes()
        del big
        with timer.measure() as inner:
            pass
        with Timer("cpu").measure():  # another timer of the same process resets the same counter
            pass
    slack = 50_000_000  # the kernel's resident-set counters are synchronised lazily
    assert outer.peak_host_bytes >= big_peak - slack
    if not inner.host_peak_is_lifetime:
        assert inner.peak_host_bytes < big_peak - 300_000_000


def test_measurements_nest_three_deep(monkeypatch):
    """A search, an estimate inside it, an epoch inside that: open measurements with equal peaks stay
    apart."""
    import itertools

    import nasmix.timing as timing

    readings = itertools.count(1)
    monkeypatch.setattr(timing, "host_peak_bytes", lambda: next(readings))  # a peak that only grows
    timer = Timer("cpu")
    with timer.measure() as search:
        with timer.measure() as estimate, timer.measure():
            pass
        with timer.measure():
            pass
    assert search.peak_host_bytes > estimate.peak_host_bytes > 0 and not timing._OPEN


def _fake_cuda(monkeypatch, recorded):
    import nasmix.timing as timing

    class FakeEvent:
        def __init__(self, enable_timing=False):
            pass

        def record(self, stream=None):
            recorded.append(stream)

        def elapsed_time(self, other):
            return 1500.0

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 123)
    monkeypatch.setattr(timing, "device_name", lambda device: "cuda: fake")


def test_cuda_events_are_recorded_on_the_timed_devices_stream(monkeypatch):
    """Timing cuda:1 while cuda:0 is current must not time cuda:0's (idle) stream."""
    recorded = []
    _fake_cuda(monkeypatch, recorded)
    monkeypatch.setenv("NASMIX_NO_NVML", "1")
    with Timer(torch.device("cuda:1")).measure() as m:
        pass
    assert recorded == ["stream of cuda:1"] * 2
    assert m.gpu_s == 1.5 and m.peak_gpu_bytes == 123


def test_energy_reads_the_nvml_gpu_behind_the_visible_cuda_index(monkeypatch):
    """A local-backend worker sees its GPU as cuda:0 (CUDA_VISIBLE_DEVICES); NVML numbers all GPUs."""
    import sys
    import types

    asked = []
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: asked.append(i) or i,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: 1000 * (h + 1),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("NASMIX_NO_NVML", raising=False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "_get_nvml_device_index", lambda index: {0: 3}[index])
    from nasmix.timing import _Energy

    assert _Energy(torch.device("cuda:0")).read_j() == 4.0 and asked[0] == 3
