"""Experiment studies: the probe-evasion grid as a pre-registered study (spec, verdicts, lock, run, report).

The verdict logic is checked on synthetic runs whose outcome is known; the lock by mutating every leaf of
a locked spec and by changing the grid's defaults and the rule's text and source; the whole path
(check, lock, run, cached re-run, report, bundle, CLI) on the CI-sized spec, which trains the reduced
grid (9 runs of 800 steps, ~20 s on one core).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_studies import EXAMPLES, dump_toml
from test_studies_run import _leaves, _mutate, _name

from empiricist.errors import InputError
from empiricist.experiments.probe_evasion import GRIDS, predictions
from empiricist.stats import mean_ci
from empiricist.studies import (
    LockMismatch,
    bundle,
    kind_of,
    ledger,
    load_spec,
    migrate_lock,
    parse_spec,
    read_lock,
    read_toml,
    replicate,
    run_study,
    sign,
)
from empiricist.studies.experiment import ExperimentStudy, decide_study
from empiricist.studies.run import prepare_run


def experiment_check(study: Any) -> dict[str, Any]:
    return kind_of(study).check(study)


def prepare_experiment(spec: Path) -> Any:
    return prepare_run(spec)

CI_SPEC = EXAMPLES / "probe_evasion_ci.toml"
SRC = Path(__file__).resolve().parents[1] / "src" / "empiricist"


def ci_doc(**config: Any) -> dict[str, Any]:
    doc = read_toml(CI_SPEC)
    doc["experiment"]["config"].update(config)
    return doc


# ---------------------------------------------------------------- the verdict logic on known outcomes
def synthetic_rows(probe: dict[str, float], gen: dict[str, float], acc: dict[str, float] | None = None, seeds: int = 6,
                   twin_probe: float = 0.99, emb: float = 0.08) -> list[dict[str, Any]]:
    """Runs of the reduced grid's cells (λ ∈ {0, 1}, fraction 0.6) with given means and a little seed noise."""
    rng = np.random.default_rng(0)
    acc = acc or {}
    rows = []
    for variant, lam in (("none", 0.0), ("adversarial", 1.0), ("frozen", 1.0)):
        for s in range(seeds):
            def noisy(x: float, scale: float) -> float:
                return float(x + scale * rng.standard_normal())

            rows.append({"seed": s, "frac": 0.6, "lam": lam, "variant": variant, "chance": 0.261,
                         "lin_h1": noisy(probe.get(variant, twin_probe), 0.01), "lin_emb": noisy(emb, 0.005),
                         "gen_step": noisy(gen.get(variant, 400.0), 10), "final_test_acc": noisy(acc.get(variant, 1.0),
                                                                                                  0.002)})
    return rows


def decide(doc: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    study = parse_spec(doc)
    assert isinstance(study, ExperimentStudy)
    return decide_study(study, *study.adapter.decide(rows, study.config))


def verdicts(res: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["final"] for p in res["parties"]}


def test_evasion_at_a_cost_corroborates_p1_and_falsifies_not_p1():
    rows = synthetic_rows(probe={"adversarial": 0.27, "frozen": 0.95}, gen={"adversarial": 900.0})
    res = decide(ci_doc(), rows)
    assert res["controls_passed"] and verdicts(res) == {"P1": "corroborated", "not-P1": "falsified"}
    by_id = {(p["party"], p["id"]): p for p in res["predictions"]}
    assert by_id[("P1", "evades")]["verdict"] == "corroborated" and by_id[("P1", "cost")]["verdict"] == "corroborated"
    slower, worse = by_id[("P1", "cost")]["parts"]
    assert slower["verdict"] == "corroborated" and worse["verdict"] == "falsified"  # or: one part is enough
    # the numbers are empiricist.stats' 95% t-interval over the runs (one fraction: one run per seed)
    adv = np.array([r["lin_h1"] for r in rows if r["variant"] == "adversarial"])
    e = mean_ci(adv)
    evades = by_id[("P1", "evades")]["parts"][0]
    assert (evades["estimate"], evades["lo"], evades["hi"]) == pytest.approx((e.mean, e.lo, e.hi))
    # the frozen cell, by the same rule: the fresh probe still reads S, so P1 is falsified there
    study = parse_spec(ci_doc())
    frozen = next(c for c in study.adapter.decide(rows, study.config)[0] if c["variant"] == "frozen")
    assert frozen["verdicts"]["evades"] == "falsified" and frozen["verdicts"]["P1"] == "falsified"
    assert frozen["supports"] == "not-P1"


def test_a_readable_statistic_falsifies_p1_whatever_the_cost():
    rows = synthetic_rows(probe={"adversarial": 0.9}, gen={"adversarial": 2000.0}, acc={"adversarial": 0.7})
    res = decide(ci_doc(), rows)
    assert verdicts(res) == {"P1": "falsified", "not-P1": "corroborated"}
    by_id = {(p["party"], p["id"]): p["verdict"] for p in res["predictions"]}
    assert by_id[("P1", "evades")] == "falsified" and by_id[("P1", "cost")] == "corroborated"


def test_evasion_at_no_cost_falsifies_p1():
    rows = synthetic_rows(probe={"adversarial": 0.27}, gen={"adversarial": 410.0}, acc={"adversarial": 0.999})
    res = decide(ci_doc(), rows)
    assert verdicts(res) == {"P1": "falsified", "not-P1": "corroborated"}


def test_noisy_costs_leave_both_parties_inconclusive():
    rows = synthetic_rows(probe={"adversarial": 0.27}, gen={})
    for i, r in enumerate(r for r in rows if r["variant"] == "adversarial"):
        r["gen_step"] += 600.0 if i % 2 else -200.0  # a mean slowdown of +200 (≥ 25% of 400) with a wide CI
    res = decide(ci_doc(), rows)
    assert verdicts(res) == {"P1": "inconclusive", "not-P1": "inconclusive"} and not res["decisive"]


def test_a_failed_control_makes_the_study_inconclusive():
    rows = synthetic_rows(probe={"adversarial": 0.27}, gen={"adversarial": 900.0}, twin_probe=0.27)
    res = decide(ci_doc(), rows)
    assert not res["controls_passed"] and res["failed_controls"] == ["twins_carry_S"]
    assert res["outcome"].startswith("INCONCLUSIVE") and verdicts(res) == {"P1": "inconclusive",
                                                                           "not-P1": "inconclusive"}
    assert {p["name"]: p["verdict"] for p in res["parties"]}["P1"] == "corroborated"  # computed, not counted
    leaky = synthetic_rows(probe={"adversarial": 0.27}, gen={"adversarial": 900.0}, emb=0.6)
    assert decide(ci_doc(), leaky)["failed_controls"] == ["embeddings_blind"]


def test_kleene_matches_the_study_logic():
    from empiricist.studies import logic

    for code_a, a in logic.VERDICTS.items():
        for code_b, b in logic.VERDICTS.items():
            for op in ("and", "or"):
                tree = (op, [("ref", "a"), ("ref", "b")])
                assert predictions.kleene(op, a, b) == logic.verdict_name(logic.evaluate(tree, {"a": code_a,
                                                                                                "b": code_b}))


# ---------------------------------------------------------------- the spec
@pytest.mark.parametrize("edit, field, words", [
    (lambda d: d["parties"][0]["predictions"][0].update(test="hides"), "parties.P1.predictions[0].test",
     "unknown test 'hides'"),
    (lambda d: d["parties"][0]["predictions"][0].update(variant="sneaky"), "parties.P1.predictions[0].variant",
     "unknown variant"),
    (lambda d: d["parties"][0]["predictions"][0].update(lam=3.0), "parties.P1.predictions[0].lam",
     "not a penalised λ"),
    (lambda d: d["parties"][0]["predictions"][0].update(lam=0.0), "parties.P1.predictions[0].lam",
     "not a penalised λ"),
    (lambda d: d["experiment"]["config"].update(seed=3), "experiment.config.seed", "unknown config key"),
    (lambda d: d["experiment"]["config"].update(lambdas=[1.0]), "experiment.config", "include 0"),
    (lambda d: d["experiment"].update(grid="huge"), "experiment.grid", "unknown stego grid"),
    (lambda d: d["experiment"].update(kind="lookup"), "experiment.kind", "unknown kind"),
    (lambda d: d["experiment"].update(seeds=3), "experiment.seeds", "unknown key"),
    (lambda d: d["controls"].pop(1), "controls", "no negative control"),
    (lambda d: d["controls"][0].update(test="evades"), "controls[0].test", "unknown test 'evades'"),
    (lambda d: d["parties"][1].update(combine="not (evades and costs)"), "parties.not-P1.combine",
     "unknown prediction 'costs'"),
])
def test_spec_errors_name_the_field(edit, field, words):
    doc = read_toml(CI_SPEC)
    edit(doc)
    with pytest.raises(InputError) as e:
        parse_spec(doc)
    assert e.value.field == field and words in str(e.value), str(e.value)


def test_examples_check_and_every_party_is_at_risk():
    for name, runs in (("probe_evasion.toml", 3 * 10 * 7), ("probe_evasion_ci.toml", 3 * 3)):
        study = load_spec(EXAMPLES / name)
        rep = experiment_check(study)
        assert rep["n_runs"] == runs and rep["flags"] == [], (name, rep)
    assert load_spec(EXAMPLES / "probe_evasion.toml").config.seeds == 10
    doc = read_toml(CI_SPEC)
    doc["parties"][0]["combine"] = "evades or not evades"
    assert any(f.startswith("NOT AT RISK: party P1") for f in experiment_check(parse_spec(doc))["flags"])


# ---------------------------------------------------------------- the lock
@pytest.fixture
def locked(tmp_path) -> Path:
    spec = tmp_path / CI_SPEC.name
    shutil.copy(CI_SPEC, spec)
    first = sign(spec, "P1", "Ada")
    assert not first["complete"] and list(first["artifacts"]) == ["experiment:stego"]
    ident = first["artifacts"]["experiment:stego"]["identity"]
    assert ident["config"]["seeds"] == 3 and ident["config_hash"] and "evasion_margin" in ident["decision_rule"]
    assert sign(spec, "not-P1", "Bob")["complete"]
    return spec


def test_every_single_field_change_to_a_locked_spec_is_named(locked):
    doc = read_toml(locked)
    locked.write_text(dump_toml(doc))
    prepare_experiment(locked)  # the same document, rewritten: accepted
    leaves = _leaves(doc)
    assert len(leaves) > 30
    for path in leaves:
        mutated = json.loads(json.dumps(doc))
        suffix = _mutate(mutated, path)
        locked.write_text(dump_toml(mutated))
        with pytest.raises(LockMismatch) as e:
            prepare_experiment(locked)
        assert f"\n  {_name(doc, path)}{suffix}: " in str(e.value), (path, str(e.value))


def test_a_changed_grid_default_or_rule_is_named(locked, monkeypatch):
    monkeypatch.setitem(GRIDS, "reduced", GRIDS["reduced"].replace(evasion_margin=0.2))
    with pytest.raises(LockMismatch, match=r"artifact experiment:stego .*config.evasion_margin: 0.1 -> 0.2"):
        prepare_experiment(locked)
    monkeypatch.undo()
    monkeypatch.setattr(predictions, "__doc__", predictions.__doc__.replace("0 and a mean", "0 and a median"))
    with pytest.raises(LockMismatch, match=r"decision_rule: "):
        prepare_experiment(locked)
    monkeypatch.undo()
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: real(obj) + ("# edited\n" if obj is predictions else ""))
    with pytest.raises(LockMismatch, match=r"rule_source_sha256: "):
        prepare_experiment(locked)
    monkeypatch.undo()
    prepare_experiment(locked)


def test_internals_never_import_studies_and_studies_never_import_experiments():
    def offenders(package: str, pattern: str) -> list[str]:
        return [str(p.relative_to(SRC)) for p in (SRC / package).rglob("*.py")
                if re.search(rf"^\s*(from|import) empiricist\.{pattern}", p.read_text(), re.MULTILINE)]

    assert offenders("internals", "studies") == [] and offenders("internals", "experiments") == []
    assert offenders("studies", "experiments") == []
    body = ast.parse((SRC / "experiments" / "__init__.py").read_text()).body
    assert len(body) == 1 and isinstance(body[0].value, ast.Constant)  # a docstring only: merges stay trivial


def test_a_spec_may_name_the_experiment_by_its_new_name_or_its_alias():
    doc = read_toml(CI_SPEC)
    doc["experiment"]["kind"] = "probe_evasion"
    renamed = parse_spec(doc)
    assert renamed.adapter is parse_spec(read_toml(CI_SPEC)).adapter and renamed.experiment == "probe_evasion"


# ---------------------------------------------------------------- migrating the lock written before the move
@pytest.fixture
def old_lock(tmp_path) -> Path:
    """The shipped default study's lock as it was signed, when the rule lived in empiricist.internals.stego."""
    spec = tmp_path / "probe_evasion.toml"
    shutil.copy(EXAMPLES / "probe_evasion.toml", spec)
    lock = read_lock(EXAMPLES / "probe_evasion.toml")
    lock["artifacts"] = lock["migrations"][0]["previous_artifacts"]
    del lock["migrations"]
    (tmp_path / "probe_evasion.lock.json").write_text(json.dumps(lock))
    return spec


def test_the_shipped_lock_verifies_and_records_its_migration():
    prepare_run(EXAMPLES / "probe_evasion.toml")  # spec and experiment as locked
    lock = read_lock(EXAMPLES / "probe_evasion.toml")
    (entry,) = lock["migrations"]
    assert entry["why"] == "moved: empiricist.internals.stego -> empiricist.experiments.probe_evasion"
    assert entry["command"] == "empiricist study migrate-lock probe_evasion.toml"
    old = entry["previous_artifacts"]["experiment:stego"]["identity"]
    new = lock["artifacts"]["experiment:stego"]["identity"]
    assert old["rule_source_sha256"] != new["rule_source_sha256"] and old["decision_rule"] == new["decision_rule"]
    assert {k for k in old if old[k] != new[k]} == {"analysis", "rule_source_sha256"}
    assert lock["complete"] and len(lock["signoffs"]) == 2 and migrate_lock(EXAMPLES / "probe_evasion.toml")[
        "migrated"] is False


def test_migrate_lock_rewrites_an_old_lock_after_checking_it_exactly(old_lock):
    with pytest.raises(LockMismatch, match="rule_source_sha256"):
        prepare_run(old_lock)
    before = read_lock(old_lock)
    res = migrate_lock(old_lock)
    assert res["migrated"] and any("rule_source_sha256" in c for c in res["changes"])
    after = read_lock(old_lock)
    assert after["migrations"][0]["previous_artifacts"] == before["artifacts"]
    assert {k: v for k, v in after.items() if k not in ("artifacts", "migrations")} == \
        {k: v for k, v in before.items() if k != "artifacts"}  # the spec and its sign-offs are untouched
    prepare_run(old_lock)
    assert migrate_lock(old_lock)["migrated"] is False


def test_migrate_lock_command(old_lock):
    import typer
    from typer.testing import CliRunner

    from empiricist.cli import studies

    app = typer.Typer()
    studies.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["study", "migrate-lock", str(old_lock)])
    assert res.exit_code == 0 and "migrated (moved: empiricist.internals.stego" in res.output, res.output
    assert read_lock(old_lock)["migrations"][0]["command"] == "empiricist study migrate-lock probe_evasion.toml"
    res = runner.invoke(app, ["study", "migrate-lock", str(old_lock)])
    assert res.exit_code == 0 and "already current" in res.output


def test_migrate_lock_refuses_any_change_beyond_the_move(old_lock, monkeypatch):
    lock = read_lock(old_lock)
    ident = lock["artifacts"]["experiment:stego"]["identity"]
    ident["rule_source_sha256"] = "0" * 64  # a rule whose source was edited, not just moved
    (old_lock.parent / "probe_evasion.lock.json").write_text(json.dumps(lock))
    with pytest.raises(LockMismatch, match="beyond the declared code moves.*\n.*rule_source_sha256"):
        migrate_lock(old_lock)
    lock["artifacts"]["experiment:stego"]["identity"]["rule_source_sha256"] = \
        read_lock(EXAMPLES / "probe_evasion.toml")["migrations"][0]["previous_artifacts"]["experiment:stego"][
            "identity"]["rule_source_sha256"]
    (old_lock.parent / "probe_evasion.lock.json").write_text(json.dumps(lock))
    monkeypatch.setitem(GRIDS, "default", GRIDS["default"].replace(cost_rel=0.3))  # a changed default is no move
    with pytest.raises(LockMismatch, match="config.cost_rel: 0.25 -> 0.3"):
        migrate_lock(old_lock)
    assert "migrations" not in read_lock(old_lock)


# ---------------------------------------------------------------- end to end on the reduced grid
@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stego-study")
    ws = folder / "ws"
    spec = folder / CI_SPEC.name
    shutil.copy(CI_SPEC, spec)
    sign(spec, "P1", "Ada", workspace=ws)
    sign(spec, "not-P1", "Bob", workspace=ws)
    return spec, ws, run_study(spec, workspace=ws)


def test_run_end_to_end(ran):
    _, ws, run = ran
    r = run.results
    assert r["status"] == "pre-registered" and r["kind"] == "experiment" and not r["grid"]["reused"]
    unsigned = "UNSIGNED (name-only) sign-offs: P1 (Ada), not-P1 (Bob)"  # signed locks: tests/test_signed_locks.py
    assert r["signatures"] == r["lock"]["signatures"] == unsigned and unsigned in run.report.read_text()
    assert r["grid"]["n_runs"] == 9 and Path(r["grid"]["path"]).parent == ws / "stego"
    assert [c["id"] for c in r["controls"]] == ["twins_carry_S", "embeddings_blind"] and r["controls_passed"]
    assert [(p["party"], p["id"]) for p in r["predictions"]] == [("P1", "evades"), ("P1", "cost"),
                                                                  ("not-P1", "evades"), ("not-P1", "cost")]
    flip = {"corroborated": "falsified", "falsified": "corroborated", "inconclusive": "inconclusive"}
    final = verdicts(r)
    assert final["not-P1"] == flip[final["P1"]]  # the parties are each other's negation
    for p in r["predictions"]:
        for part in p["parts"]:
            assert part["lo"] <= part["estimate"] <= part["hi"] and part["verdict"] in flip
    assert {(c["variant"], c["lam"]) for c in r["cells"]} == {("adversarial", 1.0), ("frozen", 1.0)}
    html = run.report.read_text()
    assert html.count("data:image/png;base64,") == 3 and "Party P1" in html and "Party not-P1" in html
    assert "Every cell" in html and "evasion_margin" in html
    saved = json.loads((run.folder / "results.json").read_text())
    assert saved["predictions"] == json.loads(json.dumps(r["predictions"]))


def test_rerun_reuses_the_grid_and_refuses_a_tampered_one(ran):
    spec, ws, run = ran
    again = run_study(spec, workspace=ws)
    assert again.results["grid"]["reused"] and again.results["predictions"] == run.results["predictions"]
    runs_csv = Path(run.results["grid"]["path"]) / "runs.csv"
    original = runs_csv.read_bytes()
    try:
        runs_csv.write_bytes(original + b"\n")
        with pytest.raises(LockMismatch, match="no longer matches its own manifest:\n  runs.csv"):
            run_study(spec, workspace=ws)
    finally:
        runs_csv.write_bytes(original)


def test_bundle_replicate_ledger_and_cli(ran, tmp_path):
    import typer
    from typer.testing import CliRunner

    from empiricist.cli import studies

    spec, ws, run = ran
    folder, archive = bundle(spec)
    assert "- signatures: UNSIGNED (name-only) sign-offs: P1 (Ada), not-P1 (Bob)" in (folder / "README.md").read_text()
    assert (folder / "transcripts" / "phase.png").is_file() and (folder / "manifests" / "grid.manifest.json").is_file()
    fast = replicate(archive, fast=True, out=tmp_path / "fast")
    assert fast["all_match"] and len(fast["rows"]) == 6
    full = replicate(folder, workspace=ws, out=tmp_path / "full")  # the workspace's grid is reused
    assert full["all_match"] and [a["identical"] for a in full["artifacts"]] == [True]
    led = ledger(spec.parent)
    entry = led["claims"]["networks-evade-linear-probes-at-a-cost"][0]
    assert entry["ran"] and entry["verdicts"] == verdicts(run.results) and not entry["stale"]
    app = typer.Typer()
    studies.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["study", "check", str(spec)])
    assert res.exit_code == 0 and "pre-registered" in res.output and "every party is at risk" in res.output
    res = runner.invoke(app, ["study", "run", str(spec), "-w", str(ws), "--quiet"])
    assert res.exit_code == 0 and "reused" in res.output and verdicts(run.results)["P1"] in res.output
    assert "UNSIGNED (name-only) sign-offs" in " ".join(res.output.split())
    res = runner.invoke(app, ["study", "run", str(spec), "-w", str(ws), "--max-items", "3"])
    assert res.exit_code != 0 and "--max-items applies to eval studies" in str(res.exception)
