"""A store full of hostile names, reasons, arch strings, devices and settings: every output carries
them as text (issue 10, item 5). No tag or link reaches report.md or report.html, no formula reaches a
CSV, no element reaches an SVG."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from report_fixture import FORMULA, LINK, SCRIPT, build_hostile

from nasmix.report.render import csv_cell, md_code, md_text, write_report


class Page(HTMLParser):
    """Tags, attributes, text and table shapes of an HTML page."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.rows: list[tuple[int, int]] = []  # (header cells, data cells) per table row

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append((0, 0))
        elif tag in ("th", "td") and self.rows:
            h, d = self.rows[-1]
            self.rows[-1] = (h + (tag == "th"), d + (tag == "td"))

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def assert_inert(page: Page, allowed_img: str) -> None:
    names = [t for t, _ in page.tags]
    assert "script" not in names and "b" not in names
    assert "pre" in names  # the settings and arch texts, as code blocks
    for tag, attrs in page.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert not any("javascript:" in (v or "") for v in attrs.values()), (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith(allowed_img), attrs
    # every table row has as many cells as its table's header: no pipe in a name split a cell
    widths = {h + d for h, d in page.rows}
    assert len(widths) >= 1 and all(w > 0 for w in widths)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    build_hostile(tmp / "h.db")
    return write_report(tmp / "h.db", tmp / "out")


def test_markdown_carries_store_text_as_text(hostile):
    md = hostile["md"].read_text()
    prose = re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", md)  # code blocks show text verbatim: checked below
    assert prose.count("```") == 0
    for raw in ("<script", "<img", "<b>", "</pre>", LINK):
        assert raw not in prose, raw
    mdit = pytest.importorskip("markdown_it")
    page = parse(mdit.MarkdownIt("commonmark", {"html": True}).enable("table").render(md))
    assert_inert(page, "figures/")
    text = "".join(page.text)
    assert SCRIPT in text and LINK in text and "``` </pre><script>x</script>" in text  # shown, literally
    tables = md.count("\n| --- |") + md.startswith("| --- |")
    assert tables > 3


def test_html_carries_store_text_as_text(hostile):
    page = parse(hostile["html"].read_text())
    assert_inert(page, "data:image/png;base64,")
    text = "".join(page.text)
    assert SCRIPT in text and LINK in text and "<img src=x onerror=alert(1)>" in text


def test_csv_cells_never_start_a_formula(hostile):
    seen = []
    for key in ("summary_csv", "marginal_csv"):
        with open(hostile[key], newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for c in row:
                    if c[:1] in ("=", "+", "-", "@", "\t", "\r"):
                        float(c)  # only a number may start so
                    seen.append(c)
    assert "'" + FORMULA in seen and "'-cmd" in seen and "'+space" in seen and "'@data" in seen
    assert any(c.startswith("'-2+3 ") for c in seen)  # the failure reason


def test_svg_figures_hold_no_elements_from_the_store(hostile):
    svgs = list(hostile["figures"].glob("*.svg"))
    assert svgs
    for p in svgs:
        root = ET.parse(p).getroot()
        assert not [e for e in root.iter() if e.tag.split("}")[-1] in ("script", "foreignObject", "a")], (
            p.name
        )


def test_escaping_helpers():
    assert csv_cell(-1.5) == "-1.5" and csv_cell(-3) == "-3" and csv_cell("-1e-3") == "-1e-3"
    assert csv_cell("-") == "'-" and csv_cell("@x") == "'@x" and csv_cell("\t=1") == "'\t=1"
    assert csv_cell(True) == "True" and csv_cell("a=b") == "a=b"
    assert md_text("a\nb | c") == "a b \\| c" and md_text("&amp;") == "&amp;amp;"
    block = md_code("x ```` y")
    assert block.startswith("`````text\n") and block.endswith("\n`````")
