"""The dashboard's web application (Starlette): two pages, their scripts, and a JSON API.

Routes (all GET; nothing writes):
- `/`: the study page; `/cell/{id}`: a cell's page (404 for an id the store lacks);
- `/static/{name}`: the pages' scripts and style, and Plotly's bundled plotly.min.js
  (from the installed `plotly` package: no CDN, the pages work offline);
- `/api`: an index of the API; `/api/study`: every cell with progress and curve, and
  each group's ranking and Pareto front; `/api/cells`; `/api/cells/{id}`: one cell
  in full; `/api/cells/{id}/events?since=SEQ`: its stored events; `/api/version`: the
  snapshot's version; `/api/stream`: server-sent events, one `update` per new version
  (docs/serve.md has the fields).

Every handler reads the latest snapshot of a `LiveStudy` (never SQLite), and the
study's figures are computed once per version. Responses carry a strict
Content-Security-Policy (scripts from this server only), `nosniff`, no referrer and
no framing. A server bound to a loopback address answers only requests whose Host
is a loopback name (`host_allowed`), so a web page elsewhere cannot read the study
through DNS rebinding.

Example:
    >>> from starlette.testclient import TestClient   # doctest: +SKIP
    >>> client = TestClient(create_app(live))           # doctest: +SKIP
    >>> client.get("/api/study").json()["counts"]       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.util
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nasmix.serve.cellview import cell_detail
from nasmix.serve.launch import LOOPBACK_HOSTS
from nasmix.serve.live import LiveStudy, Snapshot
from nasmix.serve.pages import cell_page, not_found_page, study_page
from nasmix.serve.views import (
    StudyData,
    cell_summary,
    curve_json,
    jsonable,
    study_data,
    study_view,
)

STATIC = Path(__file__).with_name("static")
ASSETS = {
    "dashboard.css": "text/css",
    "common.js": "text/javascript",
    "study.js": "text/javascript",
    "cell.js": "text/javascript",
    "plotly.min.js": "text/javascript",
}
SECURITY_HEADERS = {
    # Plotly sets inline styles; no script runs but this server's files.
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
SSE_POLL_S = 0.25  # how often a stream looks for a new snapshot
SSE_KEEPALIVE_S = 15.0  # a comment this often keeps tunnels and proxies from closing an idle stream


def plotly_js() -> Path:
    """The plotly.min.js that the installed `plotly` package ships.

    Raises:
        FileNotFoundError: plotly is not installed (the `serve` extra), or ships no bundle.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed: pip install 'nasmix[serve]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"the plotly package ships no {path}")
    return path


def host_allowed(host: str | None, allowed: Iterable[str] | None) -> bool:
    """Whether a request's Host header names an allowed host (any port); `allowed` None allows all.

    Example:
        >>> host_allowed("localhost:8050", LOOPBACK_HOSTS), host_allowed("[::1]:8050", LOOPBACK_HOSTS)
        (True, True)
        >>> host_allowed("evil.example:8050", LOOPBACK_HOSTS), host_allowed(None, LOOPBACK_HOSTS)
        (False, False)
    """
    if allowed is None:
        return True
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):  # [v6 address]:port
        name = host[1 : host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in {a.lower() for a in allowed}


class _Guard:
    """ASGI middleware: the Host check and the security headers on every response."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] | None):
        self.app = app
        self.allowed = None if allowed is None else tuple(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.allowed):
            response = Response(
                "this dashboard answers only to a loopback host name\n",
                421,
                media_type="text/plain",
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Assets:
    """The static files, read once, with their gzip form and an ETag."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[bytes, bytes, str]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> tuple[bytes, bytes, str]:
        with self._lock:
            if name not in self._cache:
                path = plotly_js() if name == "plotly.min.js" else STATIC / name
                raw = path.read_bytes()
                tag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'
                self._cache[name] = (raw, gzip.compress(raw, 6), tag)
            return self._cache[name]


def _json(value, status: int = 200) -> Response:
    body = json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))
    return Response(
        body,
        status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


class Dashboard:
    """The handlers over one LiveStudy, with the study's figures cached per snapshot version."""

    def __init__(self, live: LiveStudy, store_label: str):
        self.live = live
        self.store_label = store_label
        self.assets = _Assets()
        self._data: tuple[int, StudyData] | None = None
        self._lock = threading.Lock()

    def data(self, snap: Snapshot) -> StudyData:
        with self._lock:
            if self._data is None or self._data[0] != snap.version:
                self._data = (snap.version, study_data(snap.records))
            return self._data[1]

    def meta(self, snap: Snapshot) -> dict:
        return {
            "version": snap.version,
            "seq": snap.seq,
            "read_at": snap.read_at,
            "error": snap.error,
            "now": time.time(),
            "store": self.store_label,
        }

    # ---- pages ------------------------------------------------------------------------------
    async def study(self, request: Request) -> Response:
        return HTMLResponse(study_page(), headers={"cache-control": "no-cache"})

    async def cell(self, request: Request) -> Response:
        cell = request.path_params["cell"]
        if cell not in {r.id for r in self.live.snapshot().records}:
            return HTMLResponse(not_found_page(f"The store has no cell {cell!r}."), 404)
        return HTMLResponse(cell_page(cell), headers={"cache-control": "no-cache"})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("not found\n", 404, media_type="text/plain")
        try:
            raw, packed, tag = await asyncio.to_thread(self.assets.get, name)
        except FileNotFoundError as err:
            return Response(f"{err}\n", 404, media_type="text/plain")
        headers = {"etag": tag, "cache-control": "no-cache", "vary": "accept-encoding"}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                packed,
                media_type=ASSETS[name],
                headers={**headers, "content-encoding": "gzip"},
            )
        return Response(raw, media_type=ASSETS[name], headers=headers)

    # ---- the API ----------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return _json(
            {
                "endpoints": {
                    "/api/study": "every cell with progress and curve; counts; rankings; Pareto fronts",
                    "/api/cells": "every cell with progress (no curves)",
                    "/api/cells/{id}": "one cell: summary, curve, search, heatmaps, eval, resources, arch",
                    "/api/cells/{id}/events?since=SEQ&limit=N": "one cell's stored events after SEQ",
                    "/api/version": "the snapshot's version, last event number and read time",
                    "/api/stream": "server-sent events: 'update' with the version, on every change",
                },
                "docs": "docs/serve.md",
            }
        )

    async def version(self, request: Request) -> Response:
        return _json(self.meta(self.live.snapshot()))

    async def study_api(self, request: Request) -> Response:
        snap = self.live.snapshot()
        view = await asyncio.to_thread(lambda: study_view(self.data(snap), time.time()))
        return _json({**self.meta(snap), **view})

    async def cells_api(self, request: Request) -> Response:
        snap = self.live.snapshot()
        data = await asyncio.to_thread(self.data, snap)
        now = time.time()
        cells = [cell_summary(r, m, now) for r, m in zip(data.records, data.metrics)]
        return _json({**self.meta(snap), "cells": cells})

    async def cell_api(self, request: Request) -> Response:
        snap = self.live.snapshot()
        data = await asyncio.to_thread(self.data, snap)
        try:
            i = data.index(request.path_params["cell"])
        except KeyError:
            return _json({"error": f"the store has no cell {request.path_params['cell']!r}"}, 404)
        rec = data.records[i]

        def build() -> dict:
            out = cell_summary(rec, data.metrics[i], time.time())
            out["curve"] = curve_json(data.curves[rec.id])
            return {**self.meta(snap), "cell": out, **cell_detail(rec)}

        return _json(await asyncio.to_thread(build))

    async def events_api(self, request: Request) -> Response:
        snap = self.live.snapshot()
        try:
            rec = snap.record(request.path_params["cell"])
        except KeyError:
            return _json({"error": f"the store has no cell {request.path_params['cell']!r}"}, 404)
        try:
            since = int(request.query_params.get("since", 0))
            limit = int(request.query_params.get("limit", 10_000))
        except ValueError:
            return _json({"error": "since and limit are whole numbers"}, 400)
        rows = [
            {
                "seq": e.seq,
                "key": e.key,
                "kind": e.kind,
                "phase": e.phase,
                "time": e.time,
                "data": e.data,
            }
            for e in rec.events
            if e.seq > since
        ][: max(limit, 0)]
        return _json({**self.meta(snap), "cell": rec.id, "events": rows})

    async def stream(self, request: Request) -> Response:
        live = self.live

        async def updates():
            seen, beat = -1, time.monotonic()
            yield "retry: 2000\n\n"
            while True:
                snap = live.snapshot()
                if snap.version != seen:
                    seen, beat = snap.version, time.monotonic()
                    payload = {
                        "version": snap.version,
                        "seq": snap.seq,
                        "error": snap.error,
                    }
                    yield f"event: update\ndata: {json.dumps(payload)}\n\n"
                elif time.monotonic() - beat > SSE_KEEPALIVE_S:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(SSE_POLL_S)

        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(updates(), media_type="text/event-stream", headers=headers)


def create_app(
    live: LiveStudy,
    allowed_hosts: Iterable[str] | None = LOOPBACK_HOSTS,
    store_label: str = "",
) -> ASGIApp:
    """The dashboard as an ASGI application.

    Args:
        live: the started LiveStudy it shows.
        allowed_hosts: host names a request's Host header may name (None: any; for a server
            bound to a non-loopback address on purpose).
        store_label: how the pages name the store (its path).

    Returns:
        The ASGI application (uvicorn runs it).
    """
    d = Dashboard(live, store_label or str(live.path))
    routes = [
        Route("/", d.study),
        Route("/cell/{cell}", d.cell),
        Route("/static/{name}", d.static),
        Route("/api", d.index),
        Route("/api/", d.index),
        Route("/api/version", d.version),
        Route("/api/study", d.study_api),
        Route("/api/cells", d.cells_api),
        Route("/api/cells/{cell}/events", d.events_api),
        Route("/api/cells/{cell}", d.cell_api),
        Route("/api/stream", d.stream),
    ]
    return _Guard(Starlette(routes=routes), allowed_hosts)
