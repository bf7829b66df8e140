"""report.html in headless Chromium, offline: every figure decodes, the page is not blank, and in
every figure as the browser shows it no legend covers data or text and no two texts overlap.

A copy of the page gets a small script and the figures' layouts (figures/layout.json, recorded
when each PNG was drawn). Once the page has loaded, the script checks each <img> against its layout
(the decoded PNG has the layout's size), scales the layout to the size the image is displayed at,
and compares every legend box with the figure's data points, line segments, bars and texts, and
every text with every other; it writes what it found onto <body>, and `--dump-dom` prints it.
Skipped when no Chromium is installed (Debian: apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

PROBE = """<script>
var LAYOUTS = %s;
function hit(a, b) {
  return Math.min(a[2], b[2]) - Math.max(a[0], b[0]) > 1 && Math.min(a[3], b[3]) - Math.max(a[1], b[1]) > 1;
}
function hitPoint(b, p) {
  var dx = Math.max(b[0] - p[0], 0, p[0] - b[2]), dy = Math.max(b[1] - p[1], 0, p[1] - b[3]);
  return Math.hypot(dx, dy) < p[2] - 0.5;
}
function hitSegment(b, s) {  // Liang-Barsky on the box shrunk by a pixel
  var x0 = b[0] + 1, y0 = b[1] + 1, x1 = b[2] - 1, y1 = b[3] - 1, t0 = 0, t1 = 1;
  if (x0 >= x1 || y0 >= y1) return false;
  var dx = s[2] - s[0], dy = s[3] - s[1];
  var pq = [[-dx, s[0] - x0], [dx, x1 - s[0]], [-dy, s[1] - y0], [dy, y1 - s[1]]];
  for (var i = 0; i < 4; i++) {
    var p = pq[i][0], q = pq[i][1];
    if (p === 0) { if (q < 0) return false; continue; }
    var r = q / p;
    if (p < 0) t0 = Math.max(t0, r); else t1 = Math.min(t1, r);
    if (t0 > t1) return false;
  }
  return true;
}
function coversData(box, ax) {
  return ax.points.some(function (p) { return hitPoint(box, p); }) ||
         ax.segments.some(function (s) { return hitSegment(box, s); }) ||
         ax.bars.some(function (b) { return hit(box, b); });
}
function scaled(v, k) { return v.map(function (x) { return x * k; }); }
window.addEventListener("load", function () {
  var imgs = Array.from(document.images), found = [], checked = 0, legends = 0, data = 0;
  imgs.forEach(function (img) {
    var name = img.getAttribute("data-figure"), L = LAYOUTS[name];
    if (!L) { found.push(name + ": no layout"); return; }
    if (img.naturalWidth !== L.width || img.naturalHeight !== L.height) {
      found.push(name + ": size differs");
      return;
    }
    var k = img.clientWidth / img.naturalWidth;  // as displayed
    if (!(k > 0)) { found.push(name + ": not displayed"); return; }
    var axes = L.axes.map(function (a) {
      data += a.points.length + a.segments.length + a.bars.length;
      return {points: a.points.map(function (p) { return scaled(p, k); }),
              segments: a.segments.map(function (s) { return scaled(s, k); }),
              bars: a.bars.map(function (b) { return scaled(b, k); })};
    });
    var texts = L.texts.map(function (t) { return {text: t.text, box: scaled(t.box, k), axes: t.axes}; });
    L.legends.forEach(function (lg) {
      legends++;
      var box = scaled(lg, k);
      axes.forEach(function (a) { if (coversData(box, a)) found.push(name + ": a legend covers data"); });
      texts.forEach(function (t) { if (hit(box, t.box)) found.push(name + ": a legend covers " + t.text); });
    });
    texts.forEach(function (t, i) {
      texts.slice(i + 1).forEach(function (u) {
        if (hit(t.box, u.box)) found.push(name + ": " + t.text + " / " + u.text);
      });
      if (t.axes !== null && coversData(t.box, axes[t.axes])) found.push(name + ": " + t.text + " on data");
    });
    checked++;
  });
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-loaded", ok);
  document.body.setAttribute("data-checked", checked);
  document.body.setAttribute("data-legends", legends);
  document.body.setAttribute("data-datapoints", data);
  document.body.setAttribute("data-overlaps", found.length);
  document.body.setAttribute("data-text", document.body.innerText.length);
  document.body.setAttribute("data-height", document.body.scrollHeight);
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = found.slice(0, 20).join("\\n");
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_report_opens_offline_and_no_figure_overlaps(rendered, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    out, files, _ = rendered
    layouts = files["layout"].read_text()
    json.loads(layouts)
    page = tmp_path / "probe.html"  # a copy beside nothing: the page must need no other file
    probe = PROBE % layouts.replace("</", "<\\/").replace("<!--", "<\\!--")  # inert inside <script>
    page.write_text(files["html"].read_text().replace("</body>", probe + "</body>"))
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, f"no page rendered: {dom[:300]!r}"
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(0)))
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    n = len(list((out / "figures").glob("*.png")))
    assert int(attrs["images"]) == n and int(attrs["loaded"]) == n, attrs
    assert int(attrs["checked"]) == n, html.unescape(found.group(1) if found else "")
    # the legends were there to check, and the data they were checked against
    assert int(attrs["legends"]) >= 6 and int(attrs["datapoints"]) > 100, attrs
    assert int(attrs["overlaps"]) == 0, html.unescape(found.group(1))
    assert int(attrs["text"]) > 2000 and int(attrs["height"]) > 2000, attrs
