"""The main job end to end: `empiricist run --quick` runs the locked sycophancy study (the CI-sized grid) and
ends with the headline table and one HTML report that opens in a browser with every transcript linked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import test_report_browser
from typer.testing import CliRunner

from empiricist.cli import app

pytestmark = pytest.mark.slow
page = test_report_browser.page  # the module-scoped browser page fixture (skipped without Chromium)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    ws = tmp_path_factory.mktemp("main-job")
    res = CliRunner().invoke(app, ["run", "--quick", "-w", str(ws), "--quiet"])
    assert res.exit_code == 0, res.output
    return ws, res.output


def test_quick_job_prints_the_headline_and_a_report(job: tuple[Path, str]) -> None:
    ws, out = job
    assert "sycophancy by family × size" in out
    assert re.search(r"lock: .*; signatures: ", out)  # signed, UNSIGNED (name-only) or not locked, always said
    assert "rate" in out and "q2" in out  # the table (rich may wrap a cell over two lines)
    report = Path(re.search(r"report: (\S+)", out).group(1))
    assert report.is_file() and report.is_relative_to(ws)
    results = json.loads((report.parent / "results.json").read_text())
    assert {p["name"] for p in results["parties"]} == {"size", "dose", "attribution", "bm25-suffices"}
    assert all(p["final"] in ("corroborated", "falsified", "inconclusive") for p in results["parties"])
    assert {c["id"] for c in results["controls"]} == {"dose_took", "knows_facts", "same_knowledge"}
    grid = json.loads((report.parent / "grid" / "results.json").read_text())
    models = [r for r in grid["rows"] if r["kind"] == "model"]
    arms = {r["arm"] for r in grid["rows"] if r["kind"] == "arm"}
    assert len(models) == 4 and arms == {"full", "attributed", "bm25", "random_forum"}
    assert {(r["family"], r["size"]) for r in models} == {(f, s) for f in ("rate 0", "rate 0.8") for s in ("q1", "q2")}
    # every model answered the same held-out facts, and the facts are held out
    assert len({tuple(r["facts"]) for r in grid["rows"]}) == 1
    assert set(grid["trace"]["methods"]) == {"trackstar", "bm25"}
    assert all(Path(r["eval_run"]).is_file() for r in grid["rows"])


def test_quick_job_reuses_a_finished_grid(job: tuple[Path, str]) -> None:
    ws, _ = job
    res = CliRunner().invoke(app, ["run", "--quick", "-w", str(ws), "--quiet"])
    assert res.exit_code == 0, res.output
    report = Path(re.search(r"report: (\S+)", res.output).group(1))
    results = json.loads((report.parent / "results.json").read_text())
    assert results["grid"]["reused"] is True


def test_quick_report_opens_with_transcripts_linked(job: tuple[Path, str], page) -> None:
    _, out = job
    report = Path(re.search(r"report: (\S+)", out).group(1))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.resolve().as_uri())
    for anchor in ("#grid", "#attribution", "#counterfactual", "#party-size", "#party-dose"):
        assert page.locator(anchor).count() == 1, anchor
    assert page.locator("img").count() >= 2  # the grid and counterfactual figures, inlined
    links = [page.locator("a").nth(i).get_attribute("href") for i in range(page.locator("a").count())]
    transcripts = [h for h in links if h and h.endswith("report.html")]
    assert len(transcripts) >= 8  # 4 models + 4 arms
    for href in transcripts:
        target = Path(unquote(urlparse((report.parent / href).resolve().as_uri()).path))
        assert target.is_file(), href
    assert errors == []
