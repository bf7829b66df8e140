"""report.html in headless Chromium, offline: every figure decodes and the page is not blank.

A copy of the page gets a small script that, once the page has loaded,
writes onto <body> how many images it has, how many decoded (naturalWidth
> 0), and how much text it shows; `--dump-dom` prints the result. Skipped
when no Chromium is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-loaded", ok);
  document.body.setAttribute("data-text", document.body.innerText.length);
  document.body.setAttribute("data-height", document.body.scrollHeight);
});
</script>"""


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_report_opens_offline_with_every_figure(rendered, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    out, files, _ = rendered
    page = tmp_path / "probe.html"  # a copy beside nothing: the page must need no other file
    page.write_text(files["html"].read_text().replace("</body>", PROBE + "</body>"))
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           page.as_uri()]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, f"no page rendered: {dom[:300]!r}"
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(0)))
    n = len(list((out / "figures").glob("*.png")))
    assert int(attrs["images"]) == n and int(attrs["loaded"]) == n, attrs
    assert int(attrs["text"]) > 2000 and int(attrs["height"]) > 2000, attrs
