"""The typed schema: cell specs and their ids, events and their JSON, the budget's clock,
and arch strings under non-default space options."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from nasmix import registry
from nasmix.arch import Arch
from nasmix.budget import Budget
from nasmix.config import study_from_dict
from nasmix.errors import ConfigError
from nasmix.events import (
    ArchChosen,
    Attempt,
    Candidate,
    Capped,
    EdgeNormFallback,
    End,
    EvalEpoch,
    EventSchemaError,
    MemoryPlanned,
    PartialFallback,
    SearchDone,
    SearchEpoch,
    Subnet,
    kinds,
    parse,
)
from nasmix.study.grid import expand
from nasmix.study.schema import CellRecord, CellSpec, EventRecord
from nasmix.study.store import Store

EPOCH = SearchEpoch(1, 3, 2.3, 0.1, None, None, "nb201:x", 1.6, 0.5, None, None, 123, "cpu", 4, 0.025)
CANDIDATE = Candidate(2, "nb201:y", 0.5, 1.0, 2.0, 0.6, "nb201:x", {"epochs": 1}, False, 0.9, "cuda", 3.0)
EXAMPLES = [
    Attempt("cpu: test", "nb201:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
    dataclasses.replace(EPOCH, extra={"tau": 10.0, "subnet": None}),
    dataclasses.replace(CANDIDATE, extra={"estimate_index": 7}),
    Capped(1, 3, 0.5, projected_s=1.5, reason="max_seconds", phase="eval"),
    SearchDone("nb201:x", 0.6, extra={"subnets": [{"index": 0, "op": "none"}]}),
    PartialFallback(6, 2, "nb201", "K=6 does not divide 4"),
    EdgeNormFallback("chain", "no edge_nodes"),
    MemoryPlanned("darts", 64, 10**9, 2 * 10**8, 5 * 10**9, 10**9, True, False, 12 * 10**8),
    MemoryPlanned("nb201", 8, None, 10**6, 10**7, None, False, True, 11 * 10**6),
    Subnet(0, "none", "nb201:x", 2.0, 0.2),
    ArchChosen("nb201:x", 10.0, None, None, None, 1000, None, "cpu", 1200, 3_000_000, "oneshot", 10),
    EvalEpoch(1, 0.025, 2.0, 0.2, 1.0, 0.1, test_top1=0.3, test_top5=0.7, checkpoint="ck/epoch-0001.pt"),
    End(state="finished", arch="nb201:x", epochs_done=2, epochs=2, test_top1=0.3, eval_train_s=2.0),
    End(state="projected", arch="nb201:x", epochs_done=1, epochs=3, eval_projected_s=3.0),
    End(state="failed", reason="NaN loss", traceback="..."),
]


def test_every_kind_has_an_example():
    assert sorted({e.kind for e in EXAMPLES}) == kinds()


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_events_round_trip_through_json(event):
    data = json.loads(json.dumps(event.to_json()))
    assert data["v"] == 1 and parse(event.kind, event.phase, data) == event
    record = EventRecord.of(event.key(2), event)
    assert record.event == event and record.kind == event.kind


def test_event_data_keeps_the_stored_layout():
    assert "checkpoint" not in EvalEpoch(2, 0.1, 1.0, 0.5, 1.0, 0.1).to_json()  # absent until it applies
    assert End(state="failed", reason="x").to_json() == {"reason": "x", "v": 1}
    assert ArchChosen("a", 1.0, strategy_kind="discrete").to_json()["kind"] == "discrete"
    assert Capped(1, 2, 3.0, phase="eval").key() == "eval/capped"
    assert dataclasses.replace(CANDIDATE, index=4).key() == "search/candidate/4"


def test_unreadable_event_data_is_a_clear_error():
    with pytest.raises(EventSchemaError, match="unknown event kind 'telemetry'"):
        parse("telemetry", "search", {})
    with pytest.raises(EventSchemaError, match="version 9"):
        parse("subnet", "search", {**Subnet(0, "x", "a", 1.0, 0.0).to_json(), "v": 9})
    with pytest.raises(EventSchemaError, match="cannot be read"):
        parse("candidate", "search", {"index": 1})
    with pytest.raises(TypeError, match="clashes"):
        SearchDone("a", extra={"arch": "b"})
    with pytest.raises(TypeError, match="not a JSON value"):
        SearchDone("a", extra={"net": object()})


AXES = {"spaces": ["chain"], "strategies": ["random", "darts"], "datasets": ["cifar10"], "seeds": [0, 1]}
STUDY = {
    "study": {"name": "t", **AXES},
    "search": {"candidates": 3, "max_seconds": 60},
    "eval": {"epochs": 2},
    "space": {"chain": {"layers": 3}},
    "data": {"train_subset": 100, "path": "/somewhere"},
}


def test_cell_spec_json_round_trip_and_stable_ids():
    cells, _ = expand(study_from_dict(STUDY))
    assert len(cells) == 4 and len({c.id for c in cells}) == 4
    for cell in cells:
        back = CellSpec.from_json(cell.to_json(), cell.study)
        assert back == cell and back.id == cell.id and hash(back) == hash(cell)
        assert cell.data.path is None  # the data's location is not part of a cell
    discrete = next(c for c in cells if c.strategy == "random")
    assert discrete.budget() == Budget(candidates=3, max_seconds=60.0)
    assert discrete.budget(replay=2).replay == 2 and discrete.train_config.epochs == 2
    options = json.loads(discrete.to_json())["settings"]["options"]
    assert options == {"space": {"layers": 3}, "strategy": {}, "estimator": {}}
    oneshot = next(c for c in cells if c.strategy == "darts")
    assert "estimator" not in json.loads(oneshot.to_json())["settings"]["options"] and oneshot.oneshot


def test_a_cell_record_derives_its_state_and_types_its_events():
    events = (EventRecord.of("attempt/1", EXAMPLES[0]), EventRecord.of("end", EXAMPLES[-1]))
    rec = CellRecord("c", "c", "nb201", "gdas", "supernet", "synthetic", 0, "failed", {}, events)
    assert rec.first(End).reason == "NaN loss" and rec.first(End, state="finished") is None
    assert rec.of_kind(End) == [EXAMPLES[-1].to_json()] and rec.events_of(Attempt) == [EXAMPLES[0]]


def test_a_memory_plan_event_round_trips_through_the_store(tmp_path):
    """A real plan's `MemoryPlanned` (a search's plan that checkpoints and still does not fit),
    stored under the key a study's search log gives it, reads back as the same typed event."""
    from nasmix.spaces.memory import plan_memory
    from nasmix.testing import TINY_TASK

    net = registry.create("space", "simple_cell").supernet(TINY_TASK, "tiny")
    event = plan_memory(net, (3, 8, 8), batch=4, budget=1, held_bytes=1000).as_event("simple_cell")
    assert event.checkpoint and not event.fits and event.checkpointed_bytes < event.activation_bytes
    cell = expand(study_from_dict(STUDY))[0][0]
    with Store(tmp_path / "study.db") as store:
        store.add_cells([cell])
        assert store.append(cell.id, event.key(1), event)
        (stored,) = store.events(cell.id, kind="memory_plan")
        assert (stored.key, stored.phase) == ("search/memory_plan/1", "search")
        assert stored.event == event and stored.data["total_bytes"] == event.total_bytes
        assert store.record(cell.id).events_of(MemoryPlanned) == [event]


# ---- the budget's clock -------------------------------------------------------------------------
class FakeTimer:
    """A timer whose clock the test moves."""

    def __init__(self, cuda: bool = False):
        import torch

        self.device = torch.device("cuda" if cuda else "cpu")
        self.t = 100.0

    def now(self) -> float:
        return self.t


def test_the_clock_stops_between_units_never_before_the_first_nor_after_the_last():
    timer = FakeTimer()
    clock = Budget(candidates=3, max_seconds=5.0).clock(timer, total=3)
    timer.t += 10  # already over the cap: still one unit first
    assert clock.stop_reason() is None
    clock.tick()
    assert clock.stop_reason() == "max_seconds"
    assert clock.capped().done == 1 and clock.capped().elapsed_s == 10
    clock.tick(2)
    assert clock.stop_reason() is None  # the work is done: nothing to cap


def test_gpu_caps_count_gpu_seconds_or_wall_seconds_without_cuda_events():
    cpu = Budget(max_gpu_seconds=5.0).clock(FakeTimer(), total=4)
    cpu.tick(gpu_s=100.0)  # ignored on a CPU: wall seconds count
    assert cpu.stop_reason() is None
    cpu.timer.t += 6
    assert cpu.stop_reason() == "max_gpu_seconds"
    gpu = Budget(max_gpu_seconds=5.0).clock(FakeTimer(cuda=True), total=4)
    gpu.timer.t += 600
    gpu.tick(gpu_s=4.0)
    assert gpu.stop_reason() is None
    gpu.tick(gpu_s=1.0)
    assert gpu.stop_reason() == "max_gpu_seconds"


def test_a_replayed_cap_stops_where_it_stopped_whatever_the_clocks_say():
    clock = Budget(max_seconds=1e-9, replay=2).clock(FakeTimer(), total=5)
    clock.timer.t += 1e6
    clock.tick()
    assert clock.stop_reason() is None
    clock.tick()
    assert clock.stop_reason() == "replay"


def test_a_clock_without_a_timer_counts_what_is_ticked():
    clock = Budget(max_seconds=10.0).clock(timer=None, total=3)
    clock.tick(wall_s=6.0)
    assert clock.stop_reason() is None
    clock.set(2, 11.0, 0.0)
    assert clock.stop_reason() == "max_seconds" and clock.elapsed_s() == 11.0


# ---- arch strings -------------------------------------------------------------------------------
OPTIONS = [
    ("chain", {"layers": 3}),
    ("chain", {"ops": ["conv3x3", "skip"]}),
    ("hierarchical", {"motifs": 3}),
    ("darts", {"cells": 5}),
    ("nb201", {"channels": 8}),
]


@pytest.mark.parametrize("name,options", OPTIONS)
def test_arch_strings_round_trip_under_non_default_space_options(name, options):
    space = registry.create("space", name, **options)
    for arch in (space.sample(np.random.default_rng(s)) for s in range(3)):
        text = arch.to_str()
        assert Arch.from_str(text) == arch and Arch.from_str(text, space) == arch
        assert Arch.from_str(text).to_str() == text
    default = registry.create("space", name)
    assert (text.startswith(f"{name}:") and not space.arch_key) or text.startswith(f"{name}{{")
    if space.arch_key:  # an arch of other options is not one of the default space
        with pytest.raises(ConfigError):
            Arch.from_str(text, default)


def test_strings_written_before_options_parse_with_the_cells_space():
    space = registry.create("space", "chain", layers=3)
    arch = space.sample(np.random.default_rng(0))
    legacy = f"chain:{arch.payload}"  # as stores written before the options were named hold it
    assert Arch.from_str(legacy, space) == arch
    with pytest.raises(ConfigError, match="layers"):
        Arch.from_str(legacy)
