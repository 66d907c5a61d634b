"""A real browser: Voilà serves a notebook with the live panel, a plotly importance chart
and the controls; headless Chromium renders them, clicks Start and Stop, and screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CELLS = [
    """import autotune
from autotune import auto_tune
from sklearn.datasets import load_iris

X, y = load_iris(return_X_y=True, as_frame=True)""",
    """result = auto_tune(X, y, n_trials=8, families=["linear", "knn"], study_name="browser")""",
    """result.plot_importance()""",
    """ctl = autotune.controls(X, y, families=["knn"], n_trials=400, study_name="controls")""",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def voila(tmp_path: Path) -> Iterator[str]:
    """A Voilà server on a free localhost port, serving the test notebook."""
    notebook = tmp_path / "browser.ipynb"
    nb = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, notebook)
    port = _free_port()
    # one OpenMP thread: shared CI cores make spinning HistGradientBoosting threads crawl
    env = {
        **os.environ,
        "AUTOTUNE_STORAGE": f"sqlite:///{tmp_path}/autotune.db",
        "OMP_NUM_THREADS": "1",
    }
    log = open(tmp_path / "voila.log", "w")  # noqa: SIM115 - closed in the teardown
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            str(notebook),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}voila/static/", timeout=2):
                    pass
                break
            except OSError as error:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "voila.log").read_text()) from error
                if getattr(error, "code", None):  # an HTTP status: the server answers
                    break
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _counts(page, scope: str) -> int:
    text = page.locator(f"{scope} .autotune-counts").first.inner_text()
    return int(re.search(r"complete (\d+)", text).group(1))


@pytest.mark.slow
def test_panel_controls_and_importance_render_and_run(voila: str, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "install Debian's chromium (make test does it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(voila, timeout=180_000)
        page.wait_for_selector(".autotune-controls", timeout=180_000)

        # the live panel of the blocking auto_tune call, finished
        panel = page.locator(".autotune-panel").first
        expect(panel.locator(".widget-hprogress")).to_be_visible()
        expect(panel).to_contain_text("finished")
        expect(panel.locator(".js-plotly-plot")).to_be_visible(timeout=30_000)
        # the importance chart, drawn by plotly.js
        importance = page.locator(".js-plotly-plot").filter(has_text="Parameter importance")
        expect(importance.first).to_be_visible(timeout=30_000)
        expect(importance.first.locator(".bars path").first).to_be_attached()

        # the controls: Start runs in the background and the progress advances
        form = page.locator(".autotune-controls")
        expect(form.locator("button.jupyter-button", has_text="Start")).to_be_enabled()
        expect(form.locator("input[type=checkbox]").first).to_be_attached()
        form.locator("button.jupyter-button", has_text="Start").click()
        live = ".autotune-controls .autotune-panel"
        page.wait_for_selector(f"{live} .widget-hprogress", timeout=60_000)
        deadline = time.monotonic() + 120
        while _counts(page, live) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        first = _counts(page, live)
        assert first >= 3
        page.wait_for_function(
            f"""() => {{
                const t = document.querySelector('{live} .autotune-counts').innerText;
                return parseInt(t.match(/complete (\\d+)/)[1]) > {first};
            }}""",
            timeout=60_000,
        )

        # Stop: the run ends after the trial in progress and the form reports a result
        page.locator(f"{live} button.jupyter-button", has_text="Stop").click()
        expect(form).to_contain_text("done: best", timeout=120_000)
        expect(page.locator(live)).to_contain_text("stopped")
        stopped_at = _counts(page, live)
        assert stopped_at < 400

        # Voilà scrolls inside its own container: make the viewport as tall as the content
        page.evaluate("document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
        bottom = page.locator(".autotune-controls").bounding_box()
        page.set_viewport_size({"width": 1280, "height": int(bottom["y"] + bottom["height"]) + 40})
        page.wait_for_timeout(500)
        shot = tmp_path / "browser.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
