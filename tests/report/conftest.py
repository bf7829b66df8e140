"""Fixtures of the report tests: the hand-made store of report_fixture.py, and its rendered report."""

from __future__ import annotations

import pytest
from report_fixture import build_fixture


@pytest.fixture
def fixture_db(tmp_path):
    """(path, cells by letter) of the five-cell fixture store."""
    path = tmp_path / "fixture.db"
    return path, build_fixture(path)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """The fixture's report, written once per session: (output folder, files, cells)."""
    from nasmix.report.render import write_report

    tmp = tmp_path_factory.mktemp("report")
    cells = build_fixture(tmp / "fixture.db")
    files = write_report(tmp / "fixture.db", tmp / "out", target=0.7)
    return tmp / "out", files, cells
