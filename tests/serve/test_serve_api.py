"""The dashboard's JSON API, pages and guards over the fixture store (Starlette's TestClient)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from serve_fixture import DATASET, NB201_OPS, REASON, STUDY, add_eval_epoch


def by_id(body: dict) -> dict:
    return {c["id"]: c for c in body["cells"]}


def test_study_api_shows_every_cell_with_state_progress_and_curve(served):
    client, _, _, cells = served
    r = client.get("/api/study")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    got = by_id(body)
    states = {name: got[c.id]["state"] for name, c in cells.items()}
    assert states == {
        "done": "finished",
        "running": "running",
        "failed": "failed",
        "pending": "pending",
    }
    assert body["counts"] == {
        "pending": 1,
        "running": 1,
        "finished": 1,
        "failed": 1,
        "projected": 0,
    }
    assert body["studies"] == [STUDY]  # passed on as data; the page writes it as text
    run = got[cells["running"].id]
    p = run["progress"]
    assert (
        p["phase"],
        p["search_done"],
        p["search_total"],
        p["eval_done"],
        p["eval_total"],
    ) == ("eval", 2, 2, 1, 3)
    assert p["eval_fraction"] == pytest.approx(1 / 3) and p["elapsed_s"] >= 0
    assert [q["top1"] for q in run["curve"]["points"]] == [0.4]
    assert run["curve"]["search_end_h"] == pytest.approx(4.0 / 3600)  # the divider: the search's 4 s
    done = got[cells["done"].id]
    assert [q["top1"] for q in done["curve"]["points"]] == [0.6, 0.7] and done["curve"]["final"][
        "top5"
    ] == 0.9
    assert got[cells["failed"].id]["reason"] == REASON
    assert got[cells["pending"].id]["progress"]["phase"] == "pending"
    # the report's efficiency measures: the finished cell is ranked, the others are not
    (group,) = body["groups"]
    assert [row["id"] for row in group["ranking"]] == [cells["done"].id]
    assert group["front"] == [cells["done"].id] and group["unranked"] == 3


def test_new_events_reach_the_api_and_events_since(served):
    client, live, path, cells = served
    run = cells["running"]
    before = client.get("/api/version").json()
    add_eval_epoch(path, run, 2, 0.55)  # a worker writes while the dashboard reads
    live.read_now()
    after = client.get("/api/version").json()
    assert after["version"] > before["version"] and after["seq"] > before["seq"]
    curve = by_id(client.get("/api/study").json())[run.id]["curve"]
    assert [q["top1"] for q in curve["points"]] == [0.4, 0.55]
    events = client.get(f"/api/cells/{run.id}/events", params={"since": before["seq"]}).json()["events"]
    assert [(e["key"], e["data"]["test_top1"]) for e in events] == [("eval/epoch/2", 0.55)]
    assert len(client.get(f"/api/cells/{run.id}/events").json()["events"]) == 6
    assert client.get(f"/api/cells/{run.id}/events", params={"since": "x"}).status_code == 400


def test_cell_api_has_trajectory_heatmap_arch_graph_eval_and_resources(served):
    client, _, _, cells = served
    d = client.get(f"/api/cells/{cells['running'].id}").json()
    assert [e["valid_top1"] for e in d["search"]["epochs"]] == [0.3, 0.45]
    assert [e["entropy"] for e in d["search"]["epochs"]] == pytest.approx([1.2, 0.9])
    (hm,) = d["search"]["heatmaps"]
    assert hm["group"] == "cell" and hm["ops"] == NB201_OPS and hm["epochs"] == [1, 2]
    assert len(hm["probs"]) == 2 and len(hm["probs"][0]) == 6 and len(hm["probs"][0][0]) == 5
    assert hm["probs"][1][0][0] > hm["probs"][0][0][0]  # edge 0 sharpens towards op 0
    arch = d["arch"]
    assert arch["what"] == "chosen" and arch["arch"].startswith("nb201:")
    (graph,) = arch["graphs"]
    assert graph["nodes"] == ["0", "1", "2", "3"] and all(len(e) == 3 for e in graph["edges"])
    assert [(e["test_top1"], e["test_top5"]) for e in d["eval"]["epochs"]] == [(0.4, pytest.approx(0.6))]
    res = d["resources"]
    assert res["peak_gpu_bytes"] == 3 * 10**9 and res["search_gpu_s"] == 3.5 and res["eval_gpu_s"] == 2.5
    assert res["params"] == 1234 and res["flops"] == 5678 and d["failure"] is None
    failed = client.get(f"/api/cells/{cells['failed'].id}").json()
    assert failed["failure"]["reason"] == REASON and failed["failure"]["failed_in"] == "search"
    assert failed["arch"]["what"] == "preferred so far"  # its hostile arch string, as data
    assert failed["search"]["heatmaps"][0]["epochs"] == [1]
    pending = client.get(f"/api/cells/{cells['pending'].id}").json()
    assert pending["arch"] is None and pending["search"]["kind"] is None


def test_pages_are_shells_that_never_carry_store_text(served):
    client, _, _, cells = served
    study = client.get("/")
    assert study.status_code == 200 and study.headers["content-type"].startswith("text/html")
    page = client.get(f"/cell/{cells['failed'].id}").text
    for text in (STUDY, DATASET, REASON, "onerror"):
        assert text not in study.text and text not in page
    assert f'data-cell="{cells["failed"].id}"' in page
    hostile = client.get("/cell/<img src=x onerror=alert(1)>")
    assert hostile.status_code == 404 and "<img" not in hostile.text and "&lt;img src=x" in hostile.text
    assert client.get("/api/cells/nope").status_code == 404
    csp = study.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert study.headers["x-content-type-options"] == "nosniff"


def test_assets_are_served_from_the_packages_with_no_cdn(served):
    client = served[0]
    plotly = client.get("/static/plotly.min.js")
    assert (
        plotly.status_code == 200 and len(plotly.content) > 1_000_000 and b"plotly" in plotly.content[:2000]
    )
    for name in ("common.js", "study.js", "cell.js", "dashboard.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and b"http://" not in r.content.replace(
            b"http://www.w3.org/2000/svg", b""
        )
        assert client.get(f"/static/{name}", headers={"if-none-match": r.headers["etag"]}).status_code == 304
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/app.py").status_code == 404


def test_only_loopback_host_names_are_answered(served):
    client = served[0]
    assert client.get("/api/study", headers={"host": "localhost:8050"}).status_code == 200
    assert client.get("/api/study", headers={"host": "[::1]:8050"}).status_code == 200
    assert client.get("/api/study", headers={"host": "rebound.example:8050"}).status_code == 421


def test_api_index_lists_the_endpoints(served):
    endpoints = served[0].get("/api").json()["endpoints"]
    assert {
        "/api/study",
        "/api/cells",
        "/api/cells/{id}",
        "/api/stream",
        "/api/version",
    } <= set(endpoints)
    body = served[0].get("/api/cells").json()
    assert len(body["cells"]) == 4 and all("curve" not in c for c in body["cells"])
    json.dumps(body, allow_nan=False)


def test_a_store_damaged_while_served_keeps_the_last_good_data(served):
    _, live, path, _ = served
    n = len(live.snapshot().records)
    with sqlite3.connect(path) as db:  # another program breaks the schema under the reader
        db.execute("ALTER TABLE events RENAME TO gone")
    snap = live.read_now()
    assert snap.error and "cannot read store" in snap.error  # said, and the last good records kept
    assert len(snap.records) == n
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE gone RENAME TO events")
    assert live.read_now().error is None
