"""Report metrics against hand-computed values of the fixture store (see conftest.py)."""

from __future__ import annotations

import csv

import pytest

from nasmix.report import aggregate, efficiency, metrics
from nasmix.report.checklist import checklist
from nasmix.report.data import load_records

H = 3600.0


@pytest.fixture
def study(fixture_db):
    path, cells = fixture_db
    records = {r.id: r for r in load_records(path)}
    by_letter = {k: records[c.id] for k, c in cells.items()}
    curves = {r.id: metrics.runtime_curve(r) for r in records.values()}
    ms = efficiency.score(metrics.study_metrics(list(records.values()), target=0.7), curves)
    return by_letter, {k: next(m for m in ms if m.id == r.id) for k, r in by_letter.items()}, ms


def test_states_and_curves(study):
    rec, _, _ = study
    assert {k: r.state for k, r in rec.items()} == {
        "A": "finished",
        "B": "finished",
        "C": "projected",
        "D": "failed",
        "E": "finished",
    }
    a = metrics.runtime_curve(rec["A"])
    assert a.search == ((0.5, 0.3), (1.0, 0.5)) and a.search_end_h == 1.0
    assert [(p.x_h, p.top1, p.top5, p.epoch) for p in a.points] == [(2.0, 0.6, 0.9, 2), (3.0, 0.8, 0.95, 4)]
    assert (a.final.x_h, a.final.top1, a.end_h, a.projected_h) == (3.0, 0.8, 3.0, None)
    c = metrics.runtime_curve(rec["C"])
    # candidates sit at the search's end minus the cost still to come: 1800 - 600 and 1800 seconds
    assert c.search == ((1200 / H, 0.4), (0.5, 0.45))
    assert [p.x_h for p in c.points] == [0.75, 1.0] and c.end_h == 1.0
    assert c.projected_h == pytest.approx((1800 + 9000) / H)
    e = metrics.runtime_curve(rec["E"])  # looked-up candidates: evenly over the search's 3000 s
    assert [x for x, _ in e.search] == pytest.approx([1000 / H, 2000 / H, 3000 / H])
    d = metrics.runtime_curve(rec["D"])
    assert d.search_end_h is None and d.points == () and d.final is None and d.end_h == pytest.approx(600 / H)


def test_cell_metrics_match_hand_computation(study):
    _, m, _ = study
    assert m["A"].cost_basis == "gpu"
    assert m["A"].cost_h == pytest.approx((3000 + 4 * 1800) / H)
    assert m["A"].top1_per_cost_h == pytest.approx(0.8 / (10200 / H))
    assert m["B"].top1_per_cost_h == pytest.approx(0.7 / 3.0)
    assert m["C"].top1_per_cost_h == pytest.approx(0.5 / 1.0)
    assert m["E"].top1_per_cost_h == pytest.approx(0.6 / (3000 / H))
    assert m["D"].top1_per_cost_h is None and m["D"].failed_in == "search"
    assert m["D"].reason == "out of GPU memory" and m["D"].peak_gpu_gb == pytest.approx(15.9)
    assert (m["A"].top1, m["A"].top5, m["C"].top5) == (0.8, 0.95, 0.8)
    assert m["A"].energy_kj == pytest.approx(1400.0) and m["B"].energy_kj is None
    assert (m["A"].runtime_h, m["A"].search_h, m["A"].eval_h) == (3.0, 1.0, 2.0)
    # time to 70%: A at its 4th epoch (3 h), B at its 2nd (3 h); C and E never
    assert [m[k].time_to_target_h for k in "ABCDE"] == [3.0, 3.0, None, None, None]
    # anytime AUC over the longest runtime (3 h): step curves of the tested checkpoints
    assert m["A"].auc == pytest.approx(0.6 * 1 / 3)
    assert m["B"].auc == pytest.approx(0.5 * 1 / 3)
    assert m["C"].auc == pytest.approx((0.3 * 0.25 + 0.5 * 2) / 3)
    assert m["E"].auc == pytest.approx(0.6 * 2 / 3)
    assert m["D"].auc is None
    assert m["A"].devices == ("cuda: NVIDIA H100 80GB HBM3",)
    assert (m["C"].epochs_done, m["C"].epochs, m["C"].projected_h) == (2, 10, pytest.approx(3.0))


def test_time_to_target_and_auc_edge_cases():
    P, C = metrics.Point, metrics.Curve
    curve = C((), None, 1.0, None, (P(2.0, 0.5, None), P(4.0, 0.9, None)), None, 4.0, None)
    assert metrics.time_to_target(curve, 0.5) == 2.0 and metrics.time_to_target(curve, 0.95) is None
    assert metrics.anytime_auc(curve, 4.0) == pytest.approx(0.5 * 2 / 4)
    assert metrics.anytime_auc(curve, 8.0) == pytest.approx((0.5 * 2 + 0.9 * 4) / 8)  # held after the end
    assert metrics.anytime_auc(curve, 1.0) == 0.0 and metrics.anytime_auc(curve, 0.0) is None


def test_wall_basis_when_a_cell_lacks_gpu_time(study):
    rec, _, _ = study
    assert metrics.cost_basis([rec["A"], rec["B"]]) == "gpu"
    ms = metrics.study_metrics(list(rec.values()), basis="wall")
    a = next(m for m in ms if m.id == rec["A"].id)
    assert a.cost_basis == "wall" and a.cost_h == pytest.approx(3.0)
    assert metrics.cost_seconds(rec["D"], "gpu") is None and metrics.cost_seconds(rec["D"], "wall") == 600.0


def test_headline_measures_match_hand_computation(study):
    _, m, _ = study
    # one group (one dataset, one device); common budget B = the longest runtime with a result: A and B, 3 h
    assert {m[k].group for k in "ABCDE"} == {"synthetic on cuda: NVIDIA H100 80GB HBM3"}
    assert [m[k].top1_at_budget for k in "ABCDE"] == [0.8, 0.7, 0.5, None, 0.6]
    assert [m[k].reach_h for k in "ABCDE"] == [3.0, 3.0, 1.0, None, 1.0]
    # budgets: 4 points evenly in log time from the first tested checkpoint (C's, 0.75 h) to B
    grid = [0.75, 0.75 * 4 ** (1 / 3), 0.75 * 4 ** (2 / 3), 3.0]
    assert m["A"].budgets_h == pytest.approx(grid) and m["E"].budgets_h == pytest.approx(grid)
    assert m["A"].top1_at_budgets == (None, None, None, 0.8)  # its first test is at 2 h, after b3 (1.89 h)
    assert m["C"].top1_at_budgets == (0.3, 0.5, 0.5, 0.5)  # a capped cell keeps what it reached
    assert m["E"].top1_at_budgets == (None, 0.6, 0.6, 0.6)
    # targets at 50% and 90% of the best top-1 at B (0.8): 0.4 and 0.72
    assert [m[k].time_to_rel_h for k in "ABCE"] == [(2.0, 3.0), (2.0, None), (1.0, None), (1.0, None)]
    # Pareto layers of (cost, top-1 at B): E and A on the front; C (beaten by E) and B (by A) next
    assert [m[k].pareto_layer for k in "ABCDE"] == [1, 2, 2, None, 1]
    # gain over random search of the same budget: C is nb201's random-search cell, at 50% from 1 h on
    assert m["A"].gain_vs_random == pytest.approx(0.3) and m["B"].gain_vs_random == pytest.approx(0.2)
    assert m["A"].gain_per_cost_h == pytest.approx(0.3 / (10200 / H))
    assert m["A"].baseline == "random search, 1 cell"
    assert (m["C"].baseline, m["C"].gain_vs_random) == ("is the baseline", None)
    assert [m[k].rank for k in "ABCDE"] == [1, 2, 4, None, 3]


def test_ranking_and_summary_csv(study, rendered):
    _, m, ms = study
    order = [r["id"] for r in efficiency.summary_rows(ms)]
    assert order == [m[k].id for k in "ABECD"]
    _, files, cells = rendered
    with open(files["summary_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == efficiency.SUMMARY_COLUMNS
    by_id = {r["id"]: r for r in rows}
    a, d = by_id[cells["A"].id], by_id[cells["D"].id]
    assert (a["rank"], a["state"], a["cost_basis"]) == ("1", "finished", "gpu")
    assert float(a["top1_at_budget"]) == 0.8 and float(a["budget_h"]) == 3.0 and float(a["reach_h"]) == 3.0
    assert a["top1_at_budget_3"] == "" and float(a["top1_at_budget_4"]) == 0.8
    assert float(a["budget_h_4"]) == 3.0 and float(a["h_to_50pct_of_best"]) == 2.0
    assert float(a["gain_vs_random"]) == pytest.approx(0.3) and a["pareto_layer"] == "1"
    assert float(a["top1_per_cost_h"]) == pytest.approx(0.8 / (10200 / H))  # still shown, as a column
    assert float(a["cost_h"]) == pytest.approx(10200 / H) and float(a["auc"]) == pytest.approx(0.2)
    assert float(a["time_to_target_h"]) == 3.0 and float(a["energy_kj"]) == pytest.approx(1400)
    assert (d["rank"], d["state"], d["reason"], d["top1"]) == ("", "failed", "out of GPU memory", "")
    assert float(by_id[cells["C"].id]["projected_h"]) == pytest.approx(3.0)


def test_marginal_tables_over_seeds(study):
    _, _m, ms = study
    t = aggregate.marginal(ms, "strategy", ("space",))
    assert t.metric == "top1_at_budget"
    assert t.rows == ("gdas", "random") and t.columns == ("nb201", "simple_cell", "all")
    gdas = t.cells[("gdas", "nb201")]
    assert gdas.n == 2 and gdas.mean == pytest.approx(0.75) and gdas.std == pytest.approx(0.1 / 2**0.5)
    assert t.cells[("gdas", "simple_cell")] == aggregate.Stat(None, None, 0, 1)
    assert t.cells[("gdas", "all")].failed == 1 and t.cells[("gdas", "all")].n == 2
    rnd = t.cells[("random", "all")]
    assert rnd.n == 2 and rnd.mean == pytest.approx(0.55) and rnd.std == pytest.approx(0.1 / 2**0.5)
    ratio = aggregate.marginal(ms, "strategy", ("space",), metric="top1_per_cost_h").cells[("random", "all")]
    assert ratio.mean == pytest.approx((0.5 + 0.72) / 2)  # the per-hour ratio is still computable
    est = aggregate.marginal(ms, "estimator", ("space", "strategy"), metric="top1")
    assert est.cells[("train", "nb201 / random")].mean == 0.5
    axes = [t.axis for t in aggregate.marginal_tables(ms)]
    assert axes == ["strategy", "space", "estimator"]  # one dataset: no dataset table
    assert [k for k, _ in aggregate.combo_stats(ms)][:2] == [
        "nb201 / gdas / synthetic",
        "simple_cell / random + train / synthetic",
    ]


def test_pareto_fronts(study):
    _, m, ms = study
    cost = aggregate.pareto(ms, "cost_h")
    on = {cost.labels[i] for i in cost.front}
    assert on == {m["E"].label, m["A"].label}
    params = aggregate.pareto(ms, "params")
    assert [params.labels[i] for i in params.front] == [m["C"].label, m["E"].label, m["A"].label]
    assert aggregate.pareto_front([(1, 1), (1, 1)]) == [0, 1]  # ties are both on the front


def test_projected_and_failed_tables(study):
    _, m, ms = study
    (p,) = aggregate.projected_rows(ms)
    assert p["label"] == m["C"].label and p["measured_h"] == 1.0 and p["projected_h"] == pytest.approx(3.0)
    (f,) = aggregate.failed_rows(ms)
    assert (f["failed_in"], f["reason"], f["peak_gpu_gb"]) == (
        "search",
        "out of GPU memory",
        pytest.approx(15.9),
    )


def test_checklist_answers_from_the_data(study):
    rec, _, ms = study
    items = {i.text: i for i in checklist(list(rec.values()), ms)}
    random = next(i for t, i in items.items() if "random-search baseline" in t)
    assert random.status == "yes" and "random" in random.evidence
    seeds = next(i for t, i in items.items() if "different seeds" in t)
    assert seeds.status == "no" and "1 seed per combination (up to 2)" in seeds.evidence
    same_eval = next(i for t, i in items.items() if "same evaluation pipeline" in t)
    assert same_eval.status == "yes"
    cost = next(i for t, i in items.items() if "full cost" in t)
    assert cost.status == "yes"
    assert any(i.status is None for i in items.values())  # some are left for the author
    space = next(i for t, i in items.items() if "same space" in t)
    assert space.status == "yes"  # gdas and random + train both ran on nb201 and simple_cell


def test_capped_search_is_projected():
    from nasmix.report.data import CellRecord, EventRecord

    events = (
        EventRecord("arch_chosen", "arch_chosen", "search", {"search_s": 100.0, "search_projected_s": 400.0}),
        EventRecord("eval/epoch/1", "eval_epoch", "eval", {"epoch": 1, "train_s": 50.0, "test_top1": 0.4}),
        EventRecord(
            "end", "projected", "end", {"test_top1": 0.4, "search_projected_s": 400.0, "eval_train_s": 50.0}
        ),
    )
    curve = metrics.runtime_curve(CellRecord("c", "c", "s", "t", "e", "d", 0, "projected", {}, events))
    assert curve.search_end_h == pytest.approx(100 / H) and curve.search_projected_h == pytest.approx(400 / H)
    assert curve.projected_h == pytest.approx(450 / H) and curve.end_h == pytest.approx(150 / H)
