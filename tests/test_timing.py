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
