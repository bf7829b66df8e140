"""`nasmix serve` in real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
the study page shows every cell with its state; an event appended to the store while the page is open
adds a point to the running cell's curve without a reload; a cell page shows its heatmap and arch
graph; no hostile name from the store runs as markup. Screenshots go to the test's tmp folder (their
paths are printed: pytest -s shows them).

Skipped, with the reason, without chromium, chromedriver, selenium or the serve extra.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serve_fixture import REASON, add_eval_epoch

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,1000",
)

pytestmark = pytest.mark.slow


def _needs():
    for path in (CHROMIUM, DRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            pytest.skip(f"no {path} (Debian: apt-get install chromium chromium-driver)")
    for name in ("selenium", "starlette", "uvicorn", "plotly"):
        pytest.importorskip(name, reason=f"{name} is not installed: pip install 'nasmix[serve]'")


@pytest.fixture
def server(store_db):
    """`nasmix serve` on the fixture store at a free port: (url, path, cells)."""
    _needs()
    path, cells = store_db
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "nasmix.cli",
        "serve",
        str(path),
        "--port",
        "0",
        "--interval",
        "0.2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # "nasmix serve: http://127.0.0.1:PORT/  (...)"
        assert "http://127.0.0.1:" in line, line + proc.stderr.read() if proc.poll() is not None else line
        url = line.split()[2]
        yield url, path, cells
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    service = Service(DRIVER if os.path.exists(DRIVER) else shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, script: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def shot(driver, tmp_path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def test_dashboard_in_headless_chromium(server, browser, tmp_path):
    url, path, cells = server
    browser.get(url)
    wait_for(browser, "return document.querySelectorAll('#cells .card').length === 4")
    states = browser.execute_script(
        "var o = {}; document.querySelectorAll('#cells .card').forEach(function (c) {"
        "  o[c.getAttribute('data-cell')] = [c.getAttribute('data-state'),"
        "                                    c.querySelector('.badge').textContent];"
        "}); return o;"
    )
    expected = {
        "done": "finished",
        "running": "running",
        "failed": "failed",
        "pending": "pending",
    }
    assert states == {cells[k].id: [v, v] for k, v in expected.items()}
    run = cells["running"].id
    curve = f"document.querySelector('[data-curve=\"{run}\"]')"
    wait_for(browser, f"return {curve} && {curve}.querySelector('.main-svg') !== null")
    points = int(browser.execute_script(f"return {curve}.getAttribute('data-points')"))
    assert points == 3  # the search's 2 epochs and the first tested epoch
    # the hostile names are on the page as text, and ran as nothing
    text = browser.execute_script("return document.body.innerText")
    assert REASON in text and "window.__pwned" in text
    assert browser.execute_script(
        "return window.__pwned === undefined && window.__nasmixViolations.length === 0"
    )
    wait_for(browser, "return document.getElementById('live').textContent === 'live'")
    shot(browser, tmp_path, "study")

    browser.execute_script("window.__notReloaded = true")
    add_eval_epoch(path, cells["running"], 2, 0.55)  # a worker writes while the page is open
    wait_for(browser, f"return {curve}.getAttribute('data-points') === '{points + 1}'")
    drawn = browser.execute_script(f"return {curve}.data[{curve}.data.length - 1].y")
    assert drawn == [0.4, 0.55]  # Plotly's own data: the new point is drawn
    assert browser.execute_script("return window.__notReloaded === true")  # no reload happened
    shot(browser, tmp_path, "study-updated")

    browser.get(url + f"cell/{run}")
    wait_for(
        browser,
        "return document.querySelector('#heatmaps .heatmap .hm, #heatmaps .heatmap image')",
    )
    wait_for(browser, "return document.querySelector('#arch svg.archgraph')")
    graph = browser.execute_script(
        "var s = document.querySelector('#arch svg.archgraph');"
        "return [s.getAttribute('data-nodes'), s.querySelectorAll('path.edge').length,"
        "        document.querySelector('#heatmaps .heatmap').getAttribute('data-epochs')];"
    )
    assert graph[0] == "4" and graph[1] >= 1 and graph[2] == "2"
    wait_for(
        browser,
        "return document.getElementById('eval').getAttribute('data-points') === '2'",
    )
    shot(browser, tmp_path, "cell-running")
    browser.execute_script("document.getElementById('heatmaps').parentNode.scrollIntoView()")
    shot(browser, tmp_path, "cell-running-weights-and-arch")

    browser.get(url + f"cell/{cells['failed'].id}")
    wait_for(browser, "return !document.getElementById('failure').hidden")
    assert REASON in browser.execute_script("return document.getElementById('failure').innerText")
    assert browser.execute_script(
        "return window.__pwned === undefined && window.__nasmixViolations.length === 0"
    )
    shot(browser, tmp_path, "cell-failed")
