"""Where a cell is: its phase, how far each phase has come, how long it has run and how long it
has left. Pure functions of a `CellRecord` and the time now.

- Phase: pending (no events), search (no chosen arch yet), eval (an arch chosen, no end),
  ended (an end event: finished, failed or projected).
- Progress: the search's epochs (one-shot: the last `search_epoch`'s number of its
  `epochs`; few-shot numbers all its sub-supernets' epochs in one sequence) or candidates
  (discrete: the `candidate` events of the cell's `search.candidates`), and the evaluation's
  epochs (the last `eval_epoch` of `eval.train.epochs`).
- Elapsed: wall seconds the cell has run, from the store's time of each of its events:
  each attempt counts from its `attempt` event to its last event (to now, for the
  attempt still running), so the pause between a killed run and its resume is not counted.
- ETA: wall seconds the current phase still needs, an estimate: the phase's units left
  times the pace of this attempt's units (the mean time between them; the time from the
  phase's start to the first when there is one), less the time since the last unit
  ended. A cap (`max_seconds`) of the phase bounds it. The evaluation phase's estimate is
  the cell's; a searching cell's says nothing of the evaluation still to come.
- The store cannot tell a live run from a killed one (both have events and no end):
  `last_event_s`, the seconds since the cell's last event, lets a reader judge.

Example:
    >>> from nasmix.study.schema import CellRecord, EventRecord
    >>> ev = (EventRecord("attempt/1", "attempt", "setup", {"device": "cpu"}, 1, "c", 100.0),
    ...       EventRecord("arch_chosen", "arch_chosen", "search", {"arch": "a"}, 2, "c", 110.0),
    ...       EventRecord("eval/epoch/1", "eval_epoch", "eval", {"epoch": 1}, 3, "c", 130.0))
    >>> settings = {"eval": {"train": {"epochs": 4}}}
    >>> p = cell_progress(CellRecord("c", "c", "s", "t", "e", "d", 0, "running", settings, ev), now=140.0)
    >>> p.phase, p.eval_done, p.eval_total, p.elapsed_s, p.eta_s
    ('eval', 1, 4, 40.0, 50.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasmix.events import END_STATES
from nasmix.study.schema import CellRecord, EventRecord
from nasmix.validate import is_real

PHASES = ("pending", "search", "eval", "ended")


@dataclass(frozen=True)
class CellProgress:
    """A cell's phase, progress and times (seconds of wall time).

    Attributes:
        phase: pending, search, eval or ended.
        search_unit: "epochs" (one-shot) or "candidates" (discrete).
        search_done, search_total: units of the search done and planned (total None: unknown).
        eval_done, eval_total: epochs of the evaluation done and planned.
        elapsed_s: wall seconds run, over all attempts (None: not started).
        eta_s: wall seconds the current phase still needs (None: no estimate yet).
        eta_phase: the phase `eta_s` is for.
        last_event_s: seconds since the cell's last event (None: no events).
        attempts: how many times the cell was started.
    """

    phase: str
    search_unit: str
    search_done: int
    search_total: int | None
    eval_done: int
    eval_total: int | None
    elapsed_s: float | None
    eta_s: float | None
    eta_phase: str | None
    last_event_s: float | None
    attempts: int

    def fraction(self, phase: str) -> float | None:
        """Done / planned of a phase ("search" or "eval"), in [0, 1]; None when the total is unknown."""
        if phase == "search":
            done, total = self.search_done, self.search_total
        else:
            done, total = self.eval_done, self.eval_total
        return min(1.0, done / total) if total else None


def _setting(rec: CellRecord, *path: str):
    node: Any = rec.settings
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _number(value) -> float | None:
    return float(value) if is_real(value) else None


def _attempts(events: Sequence[EventRecord]) -> list[list[EventRecord]]:
    """The cell's events split at each `attempt` event (events before the first form their own run)."""
    runs: list[list[EventRecord]] = []
    for e in events:
        if e.kind == "attempt" or not runs:
            runs.append([])
        runs[-1].append(e)
    return runs


def _search_progress(rec: CellRecord) -> tuple[str, int, int | None, list[EventRecord]]:
    """(unit, done, total, the unit events) of the search."""
    epochs = [e for e in rec.events if e.kind == "search_epoch"]
    cands = [e for e in rec.events if e.kind == "candidate"]
    oneshot = bool(epochs) or (not cands and rec.estimator_kind == "oneshot")
    if oneshot:
        done = max((int(_number(e.data.get("epoch")) or 0) for e in epochs), default=0)
        planned = [_number(e.data.get("epochs")) for e in epochs]
        planned.append(_number(_setting(rec, "search", "epochs")))
        total = max((int(p) for p in planned if p), default=0) or None
        return "epochs", done, total, epochs
    candidates = _number(_setting(rec, "search", "candidates"))
    return (
        "candidates",
        len({e.key for e in cands}),
        int(candidates) if candidates else None,
        cands,
    )


def _eta(units: list[EventRecord], start: float, left: int, now: float) -> float | None:
    """Seconds for `left` more units at the pace of `units` (this attempt's, in time order)."""
    if left <= 0:
        return 0.0
    if not units:
        return None
    times = [e.time for e in units]
    pace = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else times[0] - start
    if pace <= 0:
        return None
    return max(0.0, left * pace - max(0.0, now - times[-1]))


def _cap_left(cap, used: float | None) -> float | None:
    cap = _number(cap)
    return None if cap is None or used is None else max(0.0, cap - used)


def cell_progress(rec: CellRecord, now: float) -> CellProgress:
    """The cell's phase, progress, elapsed time and ETA at time `now` (seconds since the epoch).

    Args:
        rec: the cell with its events (their store times).
        now: the time to measure to (time.time()).

    Returns:
        The CellProgress.
    """
    events = sorted(rec.events, key=lambda e: e.seq)
    unit, s_done, s_total, s_units = _search_progress(rec)
    evals = [e for e in events if e.kind == "eval_epoch"]
    e_done = max((int(_number(e.data.get("epoch")) or 0) for e in evals), default=0)
    end = rec.event("end") or {}
    e_total = _number(end.get("epochs")) or _number(_setting(rec, "eval", "train", "epochs"))
    e_total = int(e_total) if e_total else None
    ended = rec.state in END_STATES
    chosen = next((e for e in events if e.key == "arch_chosen"), None)
    phase = "ended" if ended else "pending" if not events else "eval" if chosen else "search"
    runs = _attempts(events)
    elapsed = None
    if runs:
        elapsed = 0.0
        for i, run in enumerate(runs):
            stop = now if (i == len(runs) - 1 and not ended) else max(e.time for e in run)
            elapsed += max(0.0, stop - run[0].time)
    eta = None
    if phase in ("search", "eval"):
        current = runs[-1]
        seqs = {e.seq for e in current}
        start = current[0].time
        if phase == "search":
            mine = [e for e in s_units if e.seq in seqs]
            eta = _eta(mine, start, (s_total or 0) - s_done, now) if s_total else None
            last = s_units[-1].data if s_units else {}
            used = _number(last.get("elapsed_s"))
            used = None if used is None else used + max(0.0, now - s_units[-1].time)
            cap = _cap_left(_setting(rec, "search", "max_seconds"), used)
        else:
            mine = [e for e in evals if e.seq in seqs]
            if chosen is not None:  # it is, in the eval phase
                start = max(start, chosen.time)
            eta = _eta(mine, start, (e_total or 0) - e_done, now) if e_total else None
            trained = sum(_number(e.data.get("train_s")) or 0.0 for e in evals)
            running = max(0.0, now - (evals or events)[-1].time)
            cap = _cap_left(_setting(rec, "eval", "max_seconds"), trained + running)
        if eta is not None and cap is not None:
            eta = min(eta, cap)
    last_event = max(0.0, now - events[-1].time) if events else None
    attempts = sum(1 for e in events if e.kind == "attempt")
    eta_phase = phase if eta is not None else None
    done = (s_done, s_total, e_done, e_total)
    return CellProgress(phase, unit, *done, elapsed, eta, eta_phase, last_event, attempts)
