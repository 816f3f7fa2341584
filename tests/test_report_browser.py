"""The report in a real browser: opens from file://, the filter works, injected markup stays text.

Needs the Debian ``chromium`` package (/usr/bin/chromium) and Playwright for Python (``pip install
playwright``; its bundled driver is enough, no ``playwright install``). Skipped, saying why, without them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report import EVIL, fake_results

from empiricist.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page():
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("no chromium at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_report_opens_filters_and_never_runs_model_output(page, tmp_path):
    results = fake_results(n=12, evil=True, models=(("small", 10, 0.5), ("large", 100, 0.5)))
    path = write_report(results, tmp_path / "report.html")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))
    page.goto(path.resolve().as_uri())
    rows = page.locator("tr.transcript-row")
    assert rows.count() == 24 and errors == []
    assert page.evaluate("window.pwned") is None  # the model's <script> did not run
    assert page.locator("#transcript-body script").count() == 0
    assert EVIL in rows.first.inner_text()  # ... it is shown as text
    page.fill("#f-text", "prompt 11")
    assert rows.count() == 2  # one item, two models
    page.fill("#f-text", "")
    page.select_option("#f-model", "large")
    assert rows.count() == 12
    page.select_option("#f-score", "correct")
    assert 0 < rows.count() < 12
    assert "matching" in page.inner_text("#f-count")
    assert page.evaluate("window.pwned") is None and errors == []
