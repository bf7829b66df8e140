"""Fixtures of the dashboard's tests: the fixture store, and the app over it (Starlette's TestClient)."""

from __future__ import annotations

import warnings

import pytest
from serve_fixture import build_store


@pytest.fixture
def store_db(tmp_path):
    """(path, cells by name) of the four-cell fixture store."""
    path = tmp_path / "study.db"
    return path, build_store(path)


@pytest.fixture
def served(store_db):
    """(client, live, path, cells): the dashboard over the fixture store, as served on 127.0.0.1."""
    pytest.importorskip(
        "starlette",
        reason="the serve extra is not installed: pip install 'nasmix[serve]'",
    )
    pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")
    with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx still works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from nasmix.serve.app import create_app
    from nasmix.serve.live import LiveStudy

    path, cells = store_db
    live = LiveStudy(path, interval=60.0)  # the tests ask for reads (read_now)
    live.start()
    try:
        yield (
            TestClient(create_app(live), base_url="http://127.0.0.1:8050"),
            live,
            path,
            cells,
        )
    finally:
        live.stop()
