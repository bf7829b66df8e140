"""The only place that reads clocks: wall time, GPU time from CUDA events,
peak GPU and host memory, energy from NVML, FLOPs and parameter counts.

Every Measurement names the device it came from; figures are comparable
only between measurements of the same device.

Example:
    >>> import torch
    >>> timer = Timer(torch.device("cpu"))
    >>> with timer.measure() as m:
    ...     _ = sum(range(1000))
    >>> m.wall_s >= 0 and m.device.startswith("cpu")
    True
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class Measurement:
    """What one timed block cost.

    Attributes:
        device: the device that did the work, in words.
        wall_s: wall-clock seconds, after synchronising the device.
        gpu_s: seconds between CUDA events (None on CPU).
        peak_gpu_bytes: peak allocated GPU memory in the block (None on CPU).
        peak_host_bytes: peak resident host memory of this process.
        host_peak_is_lifetime: True where the OS cannot reset the host peak,
            so the figure is the process's lifetime peak.
        energy_j: GPU energy from NVML where the GPU reports it.
    """

    device: str
    wall_s: float = 0.0
    gpu_s: float | None = None
    peak_gpu_bytes: int | None = None
    peak_host_bytes: int | None = None
    host_peak_is_lifetime: bool = False
    energy_j: float | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """A plain dict for events and JSON."""
        return asdict(self)


@functools.cache
def device_name(device: torch.device | str) -> str:
    """A readable name for a device, e.g. 'cuda: NVIDIA H100 80GB HBM3'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {cpu}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so a clock reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_host_peak() -> bool:
    """Reset the kernel's resident-set peak (Linux clear_refs); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def host_peak_bytes() -> int:
    """Peak resident host memory of this process since the last reset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _Energy:
    """Total GPU energy counter through NVML (optional dependency)."""

    def __init__(self, device: torch.device):
        self.handle = None
        if device.type != "cuda" or os.environ.get("NASMIX_NO_NVML"):
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            index = device.index if device.index is not None else torch.cuda.current_device()
            # NVML numbers every GPU of the machine; CUDA only the visible ones (CUDA_VISIBLE_DEVICES)
            with contextlib.suppress(Exception):
                index = torch.cuda._get_nvml_device_index(index)
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.nvml = pynvml
        except Exception:  # no NVML, or a GPU that does not report energy
            self.handle = None

    def read_j(self) -> float | None:
        if self.handle is None:
            return None
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0


@dataclass(eq=False)  # told apart by identity: two open measurements may hold equal values
class _Open:
    """A measurement in progress, and the peaks it saw before a nested one reset the counters."""

    device: torch.device
    host: int = 0
    gpu: int = 0


# Measurements in progress in this process, outermost first. Peak counters are global
# (host: the process; GPU: the device), so a nested measurement's reset would erase
# the enclosing ones' peaks: they are folded in here first.
_OPEN: list[_Open] = []


def _fold_open_peaks(device: torch.device) -> None:
    host = host_peak_bytes()
    gpu = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    for span in _OPEN:
        span.host = max(span.host, host)
        if gpu is not None and span.device == device:
            span.gpu = max(span.gpu, gpu)


def _device_key(device: torch.device) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


class Timer:
    """Measures blocks of work on one device.

    Measurements may nest (an epoch inside a search): each reports the peaks
    of its whole block.

    Args:
        device: the torch device doing the work.

    Example:
        >>> with Timer(torch.device("cpu")).measure() as m:
        ...     pass
        >>> m.gpu_s is None
        True
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.name = device_name(self.device)
        self._energy = _Energy(self.device)

    def now(self) -> float:
        """Wall seconds after synchronising the device (a point on a clock)."""
        synchronize(self.device)
        return time.perf_counter()

    @contextlib.contextmanager
    def measure(self) -> Iterator[Measurement]:
        """Time the block; the yielded Measurement is filled in at its end."""
        m = Measurement(device=self.name)
        cuda = self.device.type == "cuda"
        device = _device_key(self.device)
        if _OPEN:
            _fold_open_peaks(device)
        lifetime = not _reset_host_peak()
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            start_event = torch.cuda.Event(enable_timing=True)
            end_event = torch.cuda.Event(enable_timing=True)
            stream = torch.cuda.current_stream(self.device)  # this device's, not the current device's
        energy0 = self._energy.read_j()
        t0 = self.now()
        if cuda:
            start_event.record(stream)
        span = _Open(device)
        _OPEN.append(span)
        try:
            yield m
        finally:
            _OPEN.remove(span)
            if cuda:
                end_event.record(stream)
            m.wall_s = self.now() - t0
            if cuda:
                m.gpu_s = start_event.elapsed_time(end_event) / 1000.0
                m.peak_gpu_bytes = max(int(torch.cuda.max_memory_allocated(self.device)), span.gpu)
            m.peak_host_bytes = max(host_peak_bytes(), span.host)
            m.host_peak_is_lifetime = lifetime
            energy1 = self._energy.read_j()
            if energy0 is not None and energy1 is not None:
                m.energy_j = energy1 - energy0


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of one image (multiply-add counted as 2), in eval mode.

    Args:
        model: the network; it is left in the mode it was in.
        input_shape: (C, H, W) of one image.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros((1, *input_shape), device=device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)
