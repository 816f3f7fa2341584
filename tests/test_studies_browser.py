"""The study report in a real browser: it opens from file://, and markup in model outputs and in the spec
stays text. Uses the Chromium + Playwright fixture of test_report_browser (skipped without them)."""

from __future__ import annotations

import json

import test_report_browser
from test_report import EVIL
from test_studies import LABELS, base_spec, study_results

from empiricist.studies import parse_spec
from empiricist.studies.analysis import analyse
from empiricist.studies.eval_kind import eval_body
from empiricist.studies.protocol import results_document
from empiricist.studies.report import render_study_report, write_study_report

page = test_report_browser.page  # the module-scoped browser page fixture


def evil_report_data() -> dict:
    doc = base_spec()
    doc["parties"][0]["position"] = EVIL
    doc["study"]["question"] = EVIL
    study = parse_spec(doc)
    return results_document(study, doc, eval_body(study, LABELS), analyse(study, study_results(0.3, 0.8, evil=EVIL),
                                                                          LABELS),
                            amendments=[{"date": "2026-01-01", "author": EVIL, "what": "w", "why": EVIL, "prev": ""}])


def test_study_report_escapes_everything_untrusted():
    html = render_study_report(evil_report_data())
    assert EVIL not in html and "window.pwned" in html  # escaped, not dropped
    data = html.split('id="study-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["examples"][0]["prompt"].endswith(EVIL)


def test_study_report_opens_and_never_runs_model_output(page, tmp_path):
    path = write_study_report(evil_report_data(), tmp_path / "report.html")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))
    page.goto(path.resolve().as_uri())
    assert "pro" in page.inner_text("#party-pro") and "corroborated" in page.inner_text("#party-pro")
    examples = page.inner_text("#examples + p + table")
    assert EVIL in examples  # a model output holding <script> is shown as text ...
    assert page.evaluate("window.pwned") is None and page.locator("body script:not([type])").count() == 0
    data = page.evaluate("JSON.parse(document.getElementById('study-data').textContent)")
    assert data["parties"][0]["position"] == EVIL and EVIL in page.inner_text("#amendments + table")
    assert errors == []
