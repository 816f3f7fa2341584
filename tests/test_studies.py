"""Studies without models: spec validation, and/or/not logic, the decision rule, power flags, the ledger.

The decision rule is checked against ``empiricist.stats`` (it must give the same intervals and p-values),
and the power simulation against the analytic power of a one-sided t-test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from empiricist.errors import InputError
from empiricist.evals import Results
from empiricist.stats import (
    adjust_pvalues,
    mean_ci,
    monotonic_trend_test,
    paired_difference,
    scaling_fit,
    tost_paired,
)
from empiricist.studies import check_power, diff, ledger, load_spec, logic, parse_spec
from empiricist.studies.analysis import analyse
from empiricist.studies.decide import adjust

EXAMPLES = Path(__file__).resolve().parents[1] / "studies" / "examples"


# ---------------------------------------------------------------- helpers (also used by test_studies_run)
def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def dump_toml(doc: dict[str, Any]) -> str:
    """Any JSON-like document as TOML: one ``key = <inline value>`` line per top-level key."""
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


def base_spec() -> dict[str, Any]:
    """Two parties disagreeing about large - small on task t (2 choices: chance 0.5), two controls."""
    diff = {"metric": "difference", "task": "t", "models": ["large", "small"]}
    return {
        "study": {"id": "s1", "question": "Is large better than small?", "claim": "large-beats-small"},
        "sampling": {"models": {"small": "m/small", "mid": "m/mid", "large": "m/large"},
                     "tasks": {"t": "world:fact_qa", "ts": "shuffled:t"}, "n_items": 200,
                     "params": {"small": 1000, "mid": 10000, "large": 100000}},
        "power": {"chance": 0.5, "cluster_size": 1, "n_sims": 300},
        "parties": [
            {"name": "pro", "expected": {"t": {"small": 0.5, "mid": 0.6, "large": 0.8}},
             "predictions": [{"id": "gain", **diff, "comparator": ">", "threshold": 0.1}]},
            {"name": "con", "expected": {"t": {"small": 0.5, "mid": 0.5, "large": 0.5}},
             "predictions": [{"id": "same", **diff, "comparator": "equivalent", "margin": 0.1}]},
        ],
        "controls": [
            {"id": "pos", "kind": "positive", "metric": "accuracy", "task": "t", "models": ["large"],
             "comparator": ">", "threshold": 0.2},
            {"id": "neg", "kind": "negative", "metric": "accuracy", "task": "ts", "models": ["large"],
             "comparator": "equivalent", "threshold": "chance", "margin": 0.3},
        ],
    }


def fake_results(scores: dict[tuple[str, str], np.ndarray], clusters: int = 0, evil: str = "") -> Results:
    """Rows with given per-item 0/1 scores per (task, model); 2 choices per item."""
    rows = []
    for (task, model), xs in scores.items():
        for i, s in enumerate(xs):
            rows.append({"task": task, "item_id": f"i{i}", "item_index": i, "model": model, "model_spec": model,
                         "model_hash": model, "n_params": {"small": 1000, "mid": 10000}.get(model, 100000),
                         "cluster": f"c{i // clusters}" if clusters else None, "meta": "{}", "scorer": "loglik",
                         "scoring": "{}", "metric": "acc", "seed": 0, "prompt": f"prompt {i}{evil}",
                         "choices": [" a", f" b{evil}"], "gold": [0], "answer": " a", "pred": 0 if s else 1,
                         "logprobs": [-1.0, -2.0], "score": float(s), "acc": float(s)})
    return Results.from_rows(rows)


def pattern(n: int, p: float, shift: int = 0) -> np.ndarray:
    """n items, round(p n) of them right, spread evenly (deterministic)."""
    return ((np.arange(n) * 0.6180339887 + shift * 0.37) % 1 < p).astype(float)


def study_results(small: float, large: float, n: int = 200, mid: float | None = None, clusters: int = 0,
                  evil: str = "") -> Results:
    scores = {("t", "small"): pattern(n, small), ("t", "large"): pattern(n, large)}
    if mid is not None:
        scores[("t", "mid")] = pattern(n, mid)
    scores[("ts", "large")] = pattern(n, 0.5, shift=1)
    return fake_results(scores, clusters, evil)


LABELS = {"small": "small", "mid": "mid", "large": "large"}


# ---------------------------------------------------------------- spec validation
@pytest.mark.parametrize("edit, field, words", [
    (lambda d: d["parties"][0]["predictions"][0].update(metric="acuracy"), "parties.pro.predictions[0].metric",
     "unknown metric 'acuracy'"),
    (lambda d: d["controls"][0].update(threshold=1.2), "controls[0].threshold", "can never exceed 1.0"),
    (lambda d: d["parties"][0]["predictions"][0].update(comparator="<", threshold=-1.0),
     "parties.pro.predictions[0].threshold", "can never be below"),
    (lambda d: d["controls"].pop(1), "controls", "no negative control"),
    (lambda d: d.pop("controls"), "controls", "no positive control"),
    (lambda d: d["parties"][1]["predictions"][0].update(treshold=0.1), "parties.con.predictions[0].treshold",
     "unknown key 'treshold'"),
    (lambda d: d["parties"][0]["predictions"][0].update(models=["large", "huge"]), "parties.pro.predictions[0].models",
     "unknown model 'huge'"),
    (lambda d: d["parties"][0].update(combine="gain and nope"), "parties.pro.combine", "unknown prediction 'nope'"),
    (lambda d: d["parties"][0].update(combine="gain and"), "parties.pro.combine", "ends too early"),
    (lambda d: d["parties"][1]["predictions"][0].pop("margin"), "parties.con.predictions[0].margin", "missing"),
    (lambda d: d["parties"][0]["predictions"][0].update(metric="slope", models=["small", "large"], threshold="chance"),
     "parties.pro.predictions[0].threshold", "only named threshold"),
    (lambda d: d["parties"][0]["expected"]["t"].update(large=1.5), "parties.pro.expected.t.large", "in [0, 1]"),
    (lambda d: d["sampling"]["tasks"].update(ts="shuffled:nope"), "sampling.tasks.ts", "another"),
    (lambda d: d["parties"].append(copy.deepcopy(d["parties"][0])), "parties[2].name", "two parties"),
    (lambda d: d["analysis"].update(correction="fdr") if "analysis" in d else d.update(analysis={"correction": "x"}),
     "analysis.correction", "unknown correction"),
])
def test_spec_errors_name_the_field(edit, field, words):
    doc = base_spec()
    edit(doc)
    with pytest.raises(InputError) as e:
        parse_spec(doc, Path("s.toml"))
    assert e.value.field == field and words in str(e.value), str(e.value)


def test_malformed_toml_names_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[study]\nid = "x"\nquestion = "unterminated\nclaim = "c"\n')
    with pytest.raises(InputError) as e:
        load_spec(path)
    assert e.value.line == 3 and "line 3" in str(e.value) and str(path) in str(e.value)


def test_examples_are_valid_and_round_trip(tmp_path):
    import empiricist.experiments.probe_evasion
    import empiricist.experiments.sycophancy.study  # noqa: F401  (the plug-ins the examples name, as the CLI does)

    for spec in sorted(EXAMPLES.glob("*.toml")):
        study = load_spec(spec)
        assert study.controls and study.parties and not study.warnings, spec
        again = tmp_path / spec.name
        again.write_text(dump_toml(study.raw))
        assert load_spec(again).raw == study.raw  # the dumper the mutation tests use is faithful


def test_diff_names_changes_by_party_and_index():
    old = base_spec()
    new = copy.deepcopy(old)
    new["parties"].reverse()
    assert diff(old, new) == ["parties: order changed (['pro', 'con'] -> ['con', 'pro'])"]
    new = copy.deepcopy(old)
    new["parties"][1]["predictions"][0]["margin"] = 0.2
    new["controls"].pop()
    new["study"]["title"] = "t"
    changes = diff(old, new)
    assert changes[:2] == ["study.title: added (\"t\")", "parties.con.predictions[0].margin: 0.1 -> 0.2"]
    assert changes[2].startswith('controls[1]: removed (was {"comparator": "equivalent", "id": "neg"')
    assert len(changes) == 3


# ---------------------------------------------------------------- logic
def test_kleene_logic_and_expressions():
    c, i, f = logic.CORROBORATED, logic.INCONCLUSIVE, logic.FALSIFIED
    tree = logic.parse_expression("a or b and not (c)", ["a", "b", "c"], "x")
    assert tree == ("or", [("ref", "a"), ("and", [("ref", "b"), ("not", ("ref", "c"))])])
    assert logic.to_text(tree) == "a or (b and not c)"
    assert logic.parse_expression(logic.to_text(tree), ["a", "b", "c"], "x") == tree
    table = {(c, c): (c, c), (c, f): (f, c), (c, i): (i, c), (i, i): (i, i), (i, f): (f, i), (f, f): (f, f)}
    for (x, y), (want_and, want_or) in table.items():
        for a, b in ((x, y), (y, x)):
            assert logic.evaluate(("and", [("ref", "a"), ("ref", "b")]), {"a": a, "b": b}) == want_and
            assert logic.evaluate(("or", [("ref", "a"), ("ref", "b")]), {"a": a, "b": b}) == want_or
    assert [logic.evaluate(("not", ("ref", "a")), {"a": v}) for v in (c, i, f)] == [f, i, c]
    arr = logic.evaluate(("and", [("ref", "a"), ("not", ("ref", "b"))]), {"a": np.array([1, 1, 0]), "b": np.array([-1, 1, 0])})
    assert arr.tolist() == [1, -1, 0]


# ---------------------------------------------------------------- the decision rule
def test_verdicts_on_synthetic_results():
    study = parse_spec(base_spec())
    clear = analyse(study, study_results(0.3, 0.8), LABELS)
    assert clear["controls_passed"] and [c["verdict"] for c in clear["controls"]] == ["corroborated"] * 2
    assert [(p["name"], p["final"]) for p in clear["parties"]] == [("pro", "corroborated"), ("con", "falsified")]
    assert clear["decisive"] and clear["falsified"] == ["con"]
    same = analyse(study, study_results(0.5, 0.5, n=400), LABELS)
    assert [p["final"] for p in same["parties"]] == ["falsified", "corroborated"]
    noisy = analyse(study, study_results(0.45, 0.55, n=30), LABELS)  # CI straddles 0.1 and the margin
    assert [p["final"] for p in noisy["parties"]] == ["inconclusive", "inconclusive"]
    p = noisy["predictions"][0]
    assert p["lo"] < 0.1 < p["hi"] and p["p_hold_adj"] >= 0.05 and p["p_fail_adj"] >= 0.05
    broken = analyse(study, study_results(0.1, 0.15), LABELS)  # large at 0.15: the positive control fails
    assert not broken["controls_passed"] and broken["failed_controls"] == ["pos"]
    assert all(not p["counted"] and p["final"] == "inconclusive" for p in broken["parties"])
    assert broken["outcome"].startswith("INCONCLUSIVE") and broken["parties"][0]["verdict"] == "falsified"


def test_monotonic_and_slope_predictions():
    doc = base_spec()
    doc["parties"][0]["predictions"] = [
        {"id": "rises", "metric": "monotonic", "task": "t", "models": ["small", "mid", "large"]},
        {"id": "steep", "metric": "slope", "task": "t", "models": ["small", "mid", "large"], "comparator": ">",
         "threshold": 0.05}]
    study = parse_spec(doc)
    up = analyse(study, study_results(0.3, 0.9, mid=0.6), LABELS)
    assert [p["verdict"] for p in up["predictions"][:2]] == ["corroborated", "corroborated"]
    dip = analyse(study, study_results(0.5, 0.9, mid=0.2), LABELS)  # small -> mid drops a lot
    rises = dip["predictions"][0]
    assert rises["verdict"] == "falsified" and rises["estimate"] == pytest.approx(-0.3, abs=0.02)
    assert len(rises["steps"]) == 2 and dip["parties"][0]["final"] == "falsified"


def test_decision_numbers_match_empiricist_stats():
    """The contrast engine gives the intervals and p-values of the stats package (clustered, 90% CI)."""
    study = parse_spec(base_spec())
    rng = np.random.default_rng(3)
    n = 120
    small, large = (rng.random(n) < 0.5).astype(float), (rng.random(n) < 0.7).astype(float)
    res = fake_results({("t", "small"): small, ("t", "mid"): (rng.random(n) < 0.6).astype(float),
                        ("t", "large"): large, ("ts", "large"): (rng.random(n) < 0.5).astype(float)}, clusters=4)
    out = analyse(study, res, LABELS)
    cl = [f"c{i // 4}" for i in range(n)]
    gain, same = out["predictions"]
    want = paired_difference(large, small, clusters=cl, alpha=0.1, method="clustered")
    assert (gain["estimate"], gain["lo"], gain["hi"]) == pytest.approx((want.diff, want.lo, want.hi))
    assert same["p_hold"] == pytest.approx(tost_paired(large, small, 0.1, alpha=0.05, clusters=cl).p_value)
    pos = out["controls"][0]
    acc = mean_ci(large, clusters=cl, alpha=0.1, method="clustered")
    assert (pos["lo"], pos["hi"]) == pytest.approx((acc.lo, acc.hi))
    doc = base_spec()
    doc["parties"][0]["predictions"] = [
        {"id": "rises", "metric": "monotonic", "task": "t", "models": ["small", "mid", "large"]},
        {"id": "steep", "metric": "slope", "task": "t", "models": ["small", "mid", "large"], "comparator": ">",
         "threshold": 0.0}]
    mono, slope = analyse(parse_spec(doc), res, LABELS)["predictions"][:2]
    ys = [res.scores("t", m)[1] for m in ("small", "mid", "large")]
    assert mono["p_hold"] == pytest.approx(monotonic_trend_test([1, 2, 3], ys, clusters=cl, n_boot=100).p_monotone)
    assert slope["estimate"] == pytest.approx(scaling_fit([1000, 10000, 100000], ys, n_boot=100).slope)


def test_vectorised_adjustment_matches_adjust_pvalues():
    p = np.random.default_rng(0).random((50, 6)) ** 2
    for method in ("holm", "bh", "bonferroni"):
        got = adjust(p, method)
        for row, want in zip(got, p, strict=True):
            assert row == pytest.approx(adjust_pvalues(want, method=method)[0])


# ---------------------------------------------------------------- power
def test_power_flags_underpowered_example():
    report = check_power(load_spec(EXAMPLES / "late_training_underpowered.toml"), n_sims=300)
    flags = "\n".join(report["flags"])
    assert "UNDERPOWERED: party 'proponent'" in flags and "EXPECT INCONCLUSIVE" in flags
    assert report["expect_inconclusive"] and all(report["at_risk"].values())
    assert report["worlds"]["proponent"]["parties"]["proponent"]["corroborated"] < 0.2


def test_power_flags_a_party_no_outcome_can_falsify():
    doc = base_spec()
    doc["parties"][0]["predictions"] = [{"id": "some", "metric": "accuracy", "task": "t", "models": ["large"],
                                         "comparator": ">", "threshold": 0.0}]
    doc["parties"][1]["combine"] = "same or not same"
    report = check_power(parse_spec(doc), n_sims=200)
    assert report["at_risk"] == {"pro": False, "con": False}
    assert sum(f.startswith("NOT AT RISK") for f in report["flags"]) == 2
    fine = check_power(parse_spec(base_spec()), n_sims=300)
    assert fine["at_risk"] == {"pro": True, "con": True} and not any("NOT AT RISK" in f for f in fine["flags"])
    assert fine["worlds"]["pro"]["parties"]["pro"]["corroborated"] > 0.8
    assert fine["worlds"]["con"]["parties"]["pro"]["falsified"] > 0.5


def test_simulated_power_matches_the_t_test():
    from statsmodels.stats.power import TTestPower

    doc = base_spec()
    doc["sampling"]["n_items"] = 100
    doc["power"]["n_sims"] = 2000
    doc["controls"][0]["threshold"] = 0.0
    doc["parties"] = [{"name": "pro", "expected": {"t": {"large": 0.6}},
                       "predictions": [{"id": "acc", "metric": "accuracy", "task": "t", "models": ["large"],
                                        "comparator": ">", "threshold": 0.5}]}]
    got = check_power(parse_spec(doc))["worlds"]["pro"]["parties"]["pro"]["corroborated"]
    want = TTestPower().power(effect_size=0.1 / np.sqrt(0.24), nobs=100, alpha=0.05, alternative="larger")
    assert got == pytest.approx(want, abs=0.04)
    doc["parties"][0]["expected"]["t"]["large"] = 0.5  # no effect: corroborated at about the alpha rate
    null = check_power(parse_spec(doc))["worlds"]["pro"]["parties"]["pro"]["corroborated"]
    assert null < 0.075


# ---------------------------------------------------------------- ledger
def test_ledger_claims_replications_and_open_challenges(tmp_path):
    def write(name: str, sid: str, claim: str, verdicts: dict[str, str] | None, **head: Any) -> None:
        doc = base_spec()
        doc["study"].update(id=sid, claim=claim, **head)
        spec = tmp_path / f"{name}.toml"
        spec.write_text(dump_toml(doc))
        if verdicts is not None:
            from empiricist.studies.fields import read_toml
            from empiricist.studies.lock import spec_sha256

            (tmp_path / f"{name}.results").mkdir()
            parties = [{"name": k, "final": v} for k, v in verdicts.items()]
            (tmp_path / f"{name}.results" / "results.json").write_text(json.dumps(
                {"spec_sha256": spec_sha256(read_toml(spec)), "parties": parties, "status": "pre-registered",
                 "decisive": "inconclusive" not in verdicts.values(), "summary": str(verdicts)}))

    write("a", "orig", "c1", {"pro": "corroborated", "con": "falsified"})
    write("b", "again", "c1", {"pro": "corroborated", "con": "falsified"}, replicates=["orig"])
    write("c", "doubt", "c1", None, challenges=["orig"])
    write("d", "other", "c2", {"pro": "inconclusive", "con": "inconclusive"}, challenges=["again"])
    (tmp_path / "notes.toml").write_text('title = "not a study"\n')
    led = ledger(tmp_path)
    assert sorted(led["claims"]) == ["c1", "c2"] and [s["id"] for s in led["claims"]["c1"]] == ["orig", "again", "doubt"]
    rel = {(r["study"], r["target"]): r["state"] for r in led["relations"]}
    assert rel == {("again", "orig"): "agrees", ("doubt", "orig"): "open", ("other", "again"): "open"}
    assert {r["study"] for r in led["open_challenges"]} == {"doubt", "other"}
    (tmp_path / "a.toml").write_text((tmp_path / "a.toml").read_text().replace("better than", "worse than"))
    stale = next(s for s in ledger(tmp_path)["claims"]["c1"] if s["id"] == "orig")
    assert stale["outcome"].startswith("STALE")
