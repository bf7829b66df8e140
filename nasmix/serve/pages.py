"""The dashboard's two HTML pages: fixed shells that load the scripts, which fetch the JSON API
and write every value from the store into the page as text (never as markup).

The only value put into a shell is a cell id, HTML-escaped into an attribute. The
scripts and Plotly come from this server (`/static/`), so the pages work offline;
the Content-Security-Policy (`app.SECURITY_HEADERS`) lets no other script run.

Example:
    >>> 'data-cell="&lt;b&gt;"' in cell_page("<b>")
    True
"""

from __future__ import annotations

import html

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/plotly.min.js"></script>
<script src="/static/common.js"></script>
<script src="/static/{script}"></script>
</head>
"""

_STUDY_BODY = """<body data-page="study">
<header class="top">
  <h1 id="title">nasmix study</h1>
  <span id="live" class="live">connecting</span>
  <span id="counts" class="counts"></span>
</header>
<div id="banner" class="banner" hidden></div>
<main>
<section>
  <h2>Cells</h2>
  <p class="hint">State, progress of the search (S) and the evaluation (E), wall time run and the
  estimated time the current phase still needs. Open a cell for its search trajectory, architecture
  weights, chosen arch and evaluation.</p>
  <div id="cells" class="grid"></div>
</section>
<section>
  <h2>Accuracy over runtime</h2>
  <p class="hint">Test accuracy of the chosen arch over measured runtime (search, then evaluation
  training), as in the report; the gray line marks the end of the search, the green curve is the
  search's own accuracy where it has one.</p>
  <div id="curves" class="curves"></div>
</section>
<section>
  <h2>Efficiency</h2>
  <p class="hint">Within each comparison group (one dataset on one device), cells ranked by test top-1
  within the group's common budget, then by how soon they reached it; the Pareto front of cost
  against that accuracy (docs/reports.md). Running and failed cells are not ranked.</p>
  <div id="groups"></div>
</section>
</main>
<footer id="footer" class="footer">A read-only view of the study store.
  JSON API: <a href="/api">/api</a>.</footer>
</body>
</html>
"""

_CELL_BODY = """<body data-page="cell" data-cell="{cell}">
<header class="top">
  <a class="back" href="/">&larr; study</a>
  <h1 id="title">cell</h1>
  <span id="state" class="badge"></span>
  <span id="live" class="live">connecting</span>
</header>
<div id="banner" class="banner" hidden></div>
<main>
<p id="meta" class="meta"></p>
<div id="failure" class="failure" hidden></div>
<section><h2>Progress and resources</h2><dl id="facts" class="facts"></dl></section>
<section><h2>Search trajectory</h2><p id="search-note" class="hint"></p>
  <div id="search" class="chart"></div></section>
<section><h2>Architecture weights per edge</h2>
  <p class="hint">Each edge's op probabilities over the search's epochs, per group: the strongest op's,
  or one op's (menu at the top left).</p>
  <div id="heatmaps"></div></section>
<section><h2 id="arch-title">Chosen arch</h2><div id="arch"></div></section>
<section><h2>Evaluation</h2><div id="eval" class="chart"></div></section>
<section><h2>Settings</h2><details><summary>the cell's settings as stored</summary>
  <pre id="settings"></pre></details></section>
</main>
<footer class="footer">A read-only view of the study store. This cell as JSON: <a id="json-link"
  href="/api">/api</a>.</footer>
</body>
</html>
"""


def study_page() -> str:
    """The study page's HTML."""
    return _HEAD.format(title="nasmix study", script="study.js") + _STUDY_BODY


def cell_page(cell: str) -> str:
    """A cell page's HTML (the id escaped; the script reads it from the body's data-cell)."""
    return _HEAD.format(title="nasmix cell", script="cell.js") + _CELL_BODY.format(cell=html.escape(cell))


def not_found_page(what: str) -> str:
    """A 404 page naming what was not found (escaped)."""
    body = f'<body><main><h1>Not found</h1><p>{html.escape(what)}</p><p><a href="/">the study</a></p></main>'
    return _HEAD.format(title="nasmix: not found", script="common.js") + body + "</body></html>"
