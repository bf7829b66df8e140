"""What a search or a training run may spend, and the clock every loop polls.

`Budget` is a value: epochs or candidates, the batch size, and the caps (wall
seconds, GPU seconds). `Clock` is its running account. A loop starts one
(`budget.clock(timer, total)`), records each unit of work it finishes (`tick`)
and asks `stop_reason()` before the next; on a reason it stops and logs
`clock.capped()`. Caps are enforced here and nowhere else, and no exception is
thrown through a log callback to stop a loop.

The rules, the same for every loop (AskTell's candidates, the one-shot and
few-shot epochs, nasmix.train's epochs):
- A cap is checked between units of work, never inside one, never before the
  first unit and never after the last: a capped phase has done at least one
  unit and runs past its cap by at most one.
- Wall seconds: read from the timer since the clock started (for a search,
  its set-up counts too); for a clock without a timer, the seconds ticked.
- GPU seconds: the GPU seconds ticked (CUDA events) where the timer's device
  has them; on a device without them (a CPU) the wall seconds.
- `Budget.replay`: a cap stored by an earlier attempt stops the loop after
  exactly that many units, whatever the clocks say now, so that a capped run
  that was killed resumes to the same result.

Example:
    >>> clock = Budget(candidates=3, max_gpu_seconds=5.0).clock(timer=None, total=3)
    >>> clock.tick(gpu_s=4.0)
    >>> clock.stop_reason() is None
    True
    >>> clock.tick(gpu_s=4.0)
    >>> clock.stop_reason()
    'max_gpu_seconds'
    >>> clock.capped().done
    2
"""

from __future__ import annotations

from dataclasses import dataclass

from nasmix.errors import ConfigError
from nasmix.events import Capped
from nasmix.timing import Timer


@dataclass(frozen=True)
class Budget:
    """How much a search (or a training run) may spend.

    Attributes:
        epochs: supernet training epochs (one-shot strategies), or training epochs.
        candidates: architectures to evaluate (discrete strategies).
        batch_size: the search batch size (NASLib's default 64).
        max_seconds: wall-clock cap (None: no cap).
        max_gpu_seconds: GPU-seconds cap (None: no cap); wall seconds on a device
            without CUDA events.
        replay: stop after this many units, as an earlier attempt's stored cap did
            (set by a study when it resumes a capped search; None otherwise).
    """

    epochs: int = 50
    candidates: int = 100
    batch_size: int = 64
    max_seconds: float | None = None
    max_gpu_seconds: float | None = None
    replay: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "candidates", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"budget {name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_seconds", "max_gpu_seconds", "replay"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"budget {name} must be > 0, got {value}")

    @property
    def has_caps(self) -> bool:
        """Whether any cap (or a replayed one) applies."""
        return self.max_seconds is not None or self.max_gpu_seconds is not None or self.replay is not None

    def clock(self, timer: Timer | None, total: float) -> Clock:
        """Start this budget's clock for a loop of `total` units (now, when it has a timer)."""
        return Clock(self, total, timer)


def has_cuda_events(timer: Timer | None) -> bool:
    """Whether a timer's device measures GPU seconds (else GPU caps count wall seconds)."""
    return timer is not None and timer.device.type == "cuda"


class Clock:
    """A budget's running account: the units done, the seconds spent, and whether to stop.

    Args:
        budget: the caps.
        total: the units the loop plans (epochs or candidates).
        timer: the device's clock; None for a clock that counts only what is ticked.
    """

    def __init__(self, budget: Budget, total: float, timer: Timer | None = None):
        self.budget = budget
        self.total = total
        self.timer = timer
        self.gpu_clock = has_cuda_events(timer)
        self.done: float = 0  # stays an int while whole units are ticked (as stored events say "done": 3)
        self.wall_ticked = 0.0
        self.gpu_ticked = 0.0
        self.start = timer.now() if timer is not None else 0.0

    def tick(self, units: float = 1, *, wall_s: float | None = None, gpu_s: float | None = None) -> None:
        """Record finished work: `units` of the loop, the wall seconds it took (counted by
        a clock without a timer) and its GPU seconds (None where not measured)."""
        self.done += units
        self.wall_ticked += wall_s or 0.0
        self.gpu_ticked += gpu_s or 0.0

    def set(self, done: float, wall_s: float, gpu_s: float) -> None:
        """Replace the account (a training run resumed: the epochs as first stored)."""
        self.done, self.wall_ticked, self.gpu_ticked = done, wall_s, gpu_s

    def elapsed_s(self) -> float:
        """Wall seconds spent: since the start (with a timer) or ticked (without)."""
        if self.timer is None:
            return self.wall_ticked
        return self.timer.now() - self.start

    def gpu_s(self) -> float:
        """GPU seconds spent (wall seconds on a timer without CUDA events)."""
        if self.timer is not None and not self.gpu_clock:
            return self.elapsed_s()
        return self.gpu_ticked

    def stop_reason(self) -> str | None:
        """Why the loop must stop now ("max_seconds", "max_gpu_seconds" or "replay"), or None.

        Reads the timer (which synchronises the device) only when a time cap is set.
        """
        b = self.budget
        if not b.has_caps or self.done <= 0 or self.done >= self.total:
            return None
        if b.replay is not None:  # an earlier attempt's cap decides, not today's clocks
            return "replay" if self.done >= b.replay else None
        if b.max_seconds is not None and self.elapsed_s() >= b.max_seconds:
            return "max_seconds"
        if b.max_gpu_seconds is not None and self.gpu_s() >= b.max_gpu_seconds:
            return "max_gpu_seconds"
        return None

    def capped(self, phase: str = "search") -> Capped:
        """The Capped event of a loop this clock stopped (done, total, elapsed seconds, reason)."""
        return Capped(self.done, self.total, self.elapsed_s(), reason=self.stop_reason(), phase=phase)
