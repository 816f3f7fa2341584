"""The minimal experiment of docs/design.md, registered from outside the library and run as a study.

The test writes the document's Python block to a module, imports it (which registers the experiment) and
takes the document's spec through check, lock (both parties), run and report, so the example in the
design document is known to work as written.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from empiricist.errors import InputError
from empiricist.studies import kind_of, load_spec, read_lock, run_study, sign
from empiricist.studies.experiment import EXPERIMENTS

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def _blocks() -> tuple[str, str]:
    section = DESIGN.read_text(encoding="utf-8").split("## Experiments: the plug-in interface", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    spec = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    assert len(code) == 1 and len(spec) == 1, "the section holds one Python and one TOML block"
    return code[0], spec[0]


@pytest.fixture
def coins(tmp_path, monkeypatch):
    code, spec = _blocks()
    (tmp_path / "coins_experiment.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("coins_experiment")
    yield tmp_path / "coins.toml", spec
    sys.modules.pop("coins_experiment", None)
    EXPERIMENTS.pop("coins", None)
    assert module is not None


def test_the_documented_experiment_runs_check_lock_run_report(coins, tmp_path):
    path, text = coins
    assert len(_blocks()[0].splitlines()) <= 70  # small, as the document promises
    path.write_text(text)
    study = load_spec(path)
    report = kind_of(study).check(study)
    assert report["n_runs"] == 15 and report["flags"] == []
    sign(path, "biased", "Ada")
    lock = sign(path, "fair", "Bob")
    assert lock["complete"] and list(lock["artifacts"]) == ["experiment:coins"]
    ident = lock["artifacts"]["experiment:coins"]["identity"]
    assert ident["kind"] == "coins_grid" and ident["config"]["flips"] == 200 and len(ident["rule_source_sha256"]) == 64
    run = run_study(path, workspace=tmp_path / "ws")
    r = run.results
    assert r["status"] == "pre-registered" and r["controls_passed"]
    assert {p["name"]: p["final"] for p in r["parties"]} == {"biased": "corroborated", "fair": "falsified"}
    assert [(p["party"], p["cell"], p["verdict"]) for p in r["predictions"]] == [
        ("biased", "bias 0.7", "corroborated"), ("fair", "bias 0.7", "corroborated")]
    html = run.report.read_text()
    assert "Party biased" in html and '<h2 id="cells">Coins</h2>' in html and "share of heads" in html
    assert read_lock(path) == lock  # running never rewrites the lock


def test_an_edited_rule_is_refused_after_locking(coins, tmp_path):
    path, text = coins
    path.write_text(text)
    sign(path, "biased", "Ada")
    module = sys.modules["coins_experiment"]
    source = Path(module.__file__)
    source.write_text(source.read_text().replace("0.5 + margin", "0.4 + margin"))
    importlib.reload(module)
    from empiricist.studies import LockMismatch

    with pytest.raises(LockMismatch, match="rule_source_sha256"):
        sign(path, "fair", "Bob")


def test_a_bad_cell_names_its_field(coins):
    path, text = coins
    path.write_text(text.replace("bias = 0.7", "bias = 0.6", 1))
    with pytest.raises(InputError) as e:
        load_spec(path)
    assert e.value.field == "parties.biased.predictions[0].bias" and "no coin of bias 0.6" in str(e.value)
