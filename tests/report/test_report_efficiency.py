"""The headline measures on hand-made trajectories: equal budgets, time to targets, AUC, Pareto
layers, the random-search gain, and the order they give, including the runs that game a ratio."""

from __future__ import annotations

import pytest

from nasmix.report import efficiency, metrics
from nasmix.report.aggregate import combo_stats
from nasmix.report.data import CellRecord, EventRecord
from nasmix.report.efficiency import accuracy_at, budget_grid, pareto_layers, random_baseline

H = 3600.0


def trajectory(
    name: str,
    search_s: float,
    epochs: list[tuple[float, float]],
    strategy: str = "darts",
    space: str = "darts",
    state: str = "finished",
    device: str = "cpu",
    dataset: str = "cifar10",
) -> CellRecord:
    """A cell that searched for `search_s` seconds, then trained epochs of (seconds, test top-1)."""
    ev = [EventRecord("arch_chosen", "arch_chosen", "search", {"search_s": search_s, "device": device})]
    for i, (secs, top1) in enumerate(epochs, start=1):
        ev.append(
            EventRecord(
                f"eval/epoch/{i}",
                "eval_epoch",
                "eval",
                {"epoch": i, "train_s": secs, "test_top1": top1, "device": device},
            )
        )
    if state != "running":
        ev.append(EventRecord("end", state, "end", {"test_top1": epochs[-1][1], "epochs_done": len(epochs)}))
    label = f"{space} / {strategy} / {dataset} / seed 0 ({name})"
    return CellRecord(name, label, space, strategy, "supernet", dataset, 0, state, {}, tuple(ev))


def scored(records: list[CellRecord], target: float = 0.9) -> dict[str, metrics.CellMetrics]:
    curves = {r.id: metrics.runtime_curve(r) for r in records}
    return {m.id: m for m in efficiency.score(metrics.study_metrics(records, target=target), curves)}


def test_the_ratio_is_gamed_and_the_headline_is_not():
    # issue 13: 10% top-1 after 6 s against 35% after 42 s, and chance level (10 classes) at once
    cheap = trajectory("cheap", 3.0, [(3.0, 0.10)])
    real = trajectory("real", 21.0, [(21.0, 0.35)])
    instant = trajectory("instant", 0.0, [(0.0, 0.10)])
    almost = trajectory("almost", 1e-3, [(1e-3, 0.10)])
    m = scored([cheap, instant, almost, real])
    # the old headline, top-1 per cost-hour, puts the useless runs first
    assert m["cheap"].top1_per_cost_h == pytest.approx(0.10 / (6 / H))
    assert m["cheap"].top1_per_cost_h > m["real"].top1_per_cost_h
    assert max(m.values(), key=lambda x: x.top1_per_cost_h or 0).id == "almost"
    # the headline: the same budget (42 s) for all; the cheap runs keep their 10%
    assert m["real"].rank == 1
    assert all(m[k].rank > 1 for k in ("cheap", "instant", "almost"))
    assert [m[k].top1_at_budget for k in ("cheap", "instant", "almost", "real")] == [0.10, 0.10, 0.10, 0.35]
    # equal accuracy at B: the one that had it sooner ranks higher
    assert m["instant"].rank == 2 and m["almost"].rank == 3 and m["cheap"].rank == 4
    assert m["real"].budget_h == pytest.approx(42 / H)
    # the per-hour ratio is still reported, as a column
    assert efficiency.summary_rows(list(m.values()))[0]["id"] == "real"


def test_accuracy_at_a_budget_holds_the_latest_checkpoint():
    curve = metrics.runtime_curve(trajectory("a", 3600.0, [(1800.0, 0.3), (1800.0, 0.2), (3600.0, 0.6)]))
    assert accuracy_at(curve, 1.49) is None  # nothing tested yet
    assert accuracy_at(curve, 1.5) == 0.3 and accuracy_at(curve, 2.0) == 0.2  # the latest, not the best
    assert accuracy_at(curve, 3.0) == 0.6 and accuracy_at(curve, 100.0) == 0.6  # held after the end
    # the reach time of the headline is metrics.time_to_target
    reach = metrics.time_to_target
    assert reach(curve, 0.25) == 1.5 and reach(curve, 0.6) == 3.0 and reach(curve, 0.7) is None


def test_budget_grid():
    assert budget_grid(1.0, 8.0) == pytest.approx((1.0, 2.0, 4.0, 8.0))
    assert budget_grid(1.0, 8.0)[-1] == 8.0  # exactly B
    assert budget_grid(0.0, 8.0) == (8.0,) and budget_grid(8.0, 8.0) == (8.0,) and budget_grid(1.0, 0.0) == ()
    assert budget_grid(1.0, 100.0, points=3) == pytest.approx((1.0, 10.0, 100.0))


def test_pareto_layers():
    pts = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.9), (4.0, 0.3), (1.0, 0.5)]
    assert pareto_layers(pts) == [1, 2, 1, 3, 1]  # ties share a layer
    assert pareto_layers([]) == []


def test_ties_break_on_reach_then_auc():
    # all end at 0.5 top-1 at B = 4 h; "early" reaches it at 2 h; "late" and "steady" at 4 h,
    # "steady" having had 0.4 from 1 h on (a larger area)
    early = trajectory("early", 3600.0, [(3600.0, 0.5), (7200.0, 0.5)])
    late = trajectory("late", 3600.0, [(3600.0, 0.1), (7200.0, 0.5)])
    steady = trajectory("steady", 0.0, [(3600.0, 0.4), (10800.0, 0.5)])
    m = scored([late, steady, early])
    assert [m[k].reach_h for k in ("early", "late", "steady")] == [2.0, 4.0, 4.0]
    assert m["steady"].auc > m["late"].auc
    assert [m[k].rank for k in ("early", "steady", "late")] == [1, 2, 3]
    # the ranking figure's combinations (space / method / dataset) follow the same order
    spaced = [
        trajectory("early", 3600.0, [(3600.0, 0.5)], space="b"),
        trajectory("late", 3600.0, [(3600.0, 0.1), (7200.0, 0.5)], space="a"),
    ]
    combos = [k for k, _ in combo_stats(list(scored(spaced).values()))]
    assert combos == ["b / darts / cifar10", "a / darts / cifar10"]


def test_time_to_targets_and_auc_on_the_common_axis():
    fast = trajectory("fast", 0.0, [(3600.0, 0.3), (3600.0, 0.45)])  # 2 h
    slow = trajectory("slow", 0.0, [(7200.0, 0.2), (7200.0, 0.9)])  # 4 h: B
    m = scored([fast, slow], target=0.4)
    assert m["fast"].budget_h == m["slow"].budget_h == 4.0
    assert m["fast"].time_to_target_h == 2.0 and m["slow"].time_to_target_h == 4.0
    # relative targets: 50% and 90% of the best top-1 at B (0.9): 0.45 and 0.81
    assert m["fast"].time_to_rel_h == (2.0, None) and m["slow"].time_to_rel_h == (4.0, 4.0)
    assert m["fast"].auc == pytest.approx((0.3 * 1 + 0.45 * 2) / 4)  # held to B, not to its own end
    assert m["slow"].auc == pytest.approx(0.2 * 2 / 4)
    assert m["fast"].pareto_layer == m["slow"].pareto_layer == 1


def test_gain_over_random_search_of_the_same_budget():
    rnd = trajectory(
        "rnd", 1800.0, [(1800.0, 0.3), (3600.0, 0.5)], strategy="random"
    )  # 0.3 at 1 h, 0.5 at 2 h
    rnd2 = trajectory("rnd2", 5400.0, [(1800.0, 0.4)], strategy="random")  # 0.4 at 2 h
    quick = trajectory("quick", 1800.0, [(1800.0, 0.35)])  # ends at 1 h
    long = trajectory("long", 3600.0, [(7200.0, 0.6)])  # ends at 3 h
    other = trajectory("other", 1800.0, [(1800.0, 0.5)], space="nb201")  # no random search on nb201
    m = scored([rnd, rnd2, quick, long, other])
    assert m["long"].gain_vs_random == pytest.approx(0.6 - (0.5 + 0.4) / 2)
    assert m["long"].gain_per_cost_h == pytest.approx(m["long"].gain_vs_random / 3.0)
    assert m["long"].baseline == "random search, 2 cells"
    # at 1 h the second random-search cell had no result: no baseline is made up
    assert m["quick"].gain_vs_random is None and "no result within this budget" in m["quick"].baseline
    assert (m["other"].baseline, m["other"].gain_vs_random) == ("absent", None)
    assert m["rnd"].baseline == "is the baseline"
    curves = [metrics.runtime_curve(r) for r in (rnd, rnd2)]
    assert random_baseline(curves, 1.0) is None and random_baseline(curves, 2.0) == pytest.approx(0.45)
    assert random_baseline([], 2.0) is None


def test_groups_by_dataset_and_device():
    cpu = trajectory("cpu", 0.0, [(3600.0, 0.5)], device="cpu")
    gpu = trajectory("gpu", 0.0, [(360.0, 0.4)], device="cuda: H100")
    other = trajectory("other", 0.0, [(36.0, 0.2)], device="cpu", dataset="svhn")
    running = trajectory("running", 0.0, [(7200.0, 0.9)], device="cpu", state="running")
    failed = trajectory("failed", 0.0, [(60.0, 0.95)], device="cpu", state="failed")
    pending = CellRecord("pending", "p", "darts", "gdas", "supernet", "svhn", 0, "pending", {}, ())
    pending2 = CellRecord("pending2", "p2", "darts", "gdas", "supernet", "cifar10", 0, "pending", {}, ())
    m = scored([cpu, gpu, other, running, failed, pending, pending2])
    # a cell that has not run joins its dataset's group, if the dataset has only one
    assert m["pending"].group == "svhn on cpu" and m["pending2"].group == "cifar10 on an unrecorded device"
    assert m["cpu"].group == "cifar10 on cpu" and m["gpu"].group == "cifar10 on cuda: H100"
    # each group its own budget and ranking; cells without a result are not ranked, nor set B
    assert (m["cpu"].budget_h, m["gpu"].budget_h, m["other"].budget_h) == (1.0, 0.1, 0.01)
    assert (m["cpu"].rank, m["gpu"].rank, m["other"].rank) == (1, 1, 1)
    assert m["running"].rank is None and m["failed"].rank is None and m["failed"].top1_at_budget is None
    order = [r["id"] for r in efficiency.summary_rows(list(m.values()))]
    assert order.index("cpu") < order.index("running") < order.index("gpu")  # groups in order of appearance


def test_a_cell_without_a_checkpoint_by_the_horizon_is_unscored():
    # horizon_h of 10 s: "slow" tests its arch at 60 s (30 s search + 30 s epoch), after the budget
    fast = trajectory("fast", 1.0, [(1.0, 0.3)])
    slow = trajectory("slow", 30.0, [(30.0, 0.5)])
    curves = {r.id: metrics.runtime_curve(r) for r in (fast, slow)}
    m = {x.id: x for x in efficiency.score(metrics.study_metrics([fast, slow], horizon_h=10 / H), curves)}
    assert m["fast"].top1_at_budget == 0.3 and m["fast"].rank == 1 and m["fast"].best_top1 == 0.3
    assert m["slow"].top1_at_budget is None and m["slow"].rank is None and m["slow"].pareto_layer is None
    assert m["slow"].best_top1 == 0.3 and m["slow"].top1_at_budgets[-1] is None
    assert m["slow"].budgets_h == m["fast"].budgets_h
