"""The report's outputs: every file written, HTML self-contained, Markdown links valid,
the command's errors, and a 9-cell study sized like a real run (no timing here: bench/ may time it)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from nasmix.cli import main
from nasmix.report.render import write_report


def test_every_output_is_written(rendered):
    out, files, cells = rendered
    for key in ("html", "md", "summary_csv", "marginal_csv"):
        assert files[key].exists() and files[key].stat().st_size > 0
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    svgs = sorted(p.stem for p in (out / "figures").glob("*.svg"))
    assert pngs == svgs
    # a grid, ranking, marginal, Pareto, one graph per cell, one drawing per chosen arch (D chose none)
    assert {"grid_synthetic", "budgets", "ranking", "marginal", "pareto"} <= set(pngs)
    assert {f"cell_{c.id}" for c in cells.values()} <= set(pngs)
    assert sum(1 for p in pngs if p.startswith("arch_")) == 4
    for p in (out / "figures").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for p in (out / "figures").glob("*.svg"):
        assert ET.parse(p).getroot().tag.endswith("svg")
        assert "device" in p.read_text(), f"{p.name} does not name its device"


def test_html_is_self_contained_and_complete(rendered):
    out, files, _ = rendered
    text = files["html"].read_text()
    imgs = re.findall(r"<img [^>]*src=\"([^\"]+)\"", text)
    assert len(imgs) == len(list((out / "figures").glob("*.png")))
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", text), "the page must not load anything"
    needles = ("Headline: accuracy within equal budgets", "Summary", "Per module", "Pareto fronts")
    needles += ("Projected runtimes", "Failed cells", "best-practices checklist", "Appendix A", "Appendix B")
    needles += ("out of GPU memory", "15.9", "cuda: NVIDIA H100 80GB HBM3", "GPU-hour")
    for needle in needles:
        assert needle in text, needle
    assert "&#9745;" in text and "&#9744;" in text  # answered and open checklist items


def test_markdown_links_existing_figures(rendered):
    out, files, _ = rendered
    md = files["md"].read_text()
    links = re.findall(r"\]\((figures/[^)]+)\)", md)
    assert links and all((out / link).exists() for link in links)
    assert "| rank | cell |" in md and "- [x]" in md and "- [ ]" in md


def test_cli_report_and_missing_store(tmp_path, fixture_db, capsys):
    path, _ = fixture_db
    assert main(["report", str(tmp_path / "missing.db"), "-o", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", str(path), "-o", str(tmp_path / "y"), "--target", "1.5x"])


def test_empty_store_still_reports(tmp_path):
    from nasmix.study.store import Store

    Store(tmp_path / "empty.db").close()
    files = write_report(tmp_path / "empty.db", tmp_path / "out")
    assert "No cell chose an architecture" in files["html"].read_text()


def test_nine_cells_report(tmp_path):
    from report_fixture import build_nine

    from nasmix.report.layout import overlaps

    build_nine(tmp_path / "nine.db")
    assert main(["report", str(tmp_path / "nine.db"), "-o", str(tmp_path / "out"), "--shared-time-axis"]) == 0
    assert len(list((tmp_path / "out" / "figures").glob("cell_*.png"))) == 9
    layouts = json.loads((tmp_path / "out" / "figures" / "layout.json").read_text())
    assert {k: overlaps(v) for k, v in layouts.items() if overlaps(v)} == {}
