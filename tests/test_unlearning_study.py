"""The unlearning experiment: the decision rule on rows whose verdict is known, the relearning split and
the stores against the world's ledger, the CI-sized study end to end through `study run`, and the
own-model path (an HF folder and a JSONL of documents, no gold)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from empiricist.errors import InputError
from empiricist.experiments.unlearning import rule
from empiricist.experiments.unlearning.config import METHODS, get_grid

SPECS = Path(__file__).resolve().parents[1] / "src" / "empiricist" / "experiments" / "unlearning" / "specs"


def _row(method, seed, ltr, util, acc, shown, unseen=None):
    return {"kind": "model", "method": method, "seed": seed, "log_truth_ratio_forget": ltr, "utility": util,
            "knowledge_forget": acc, "relearn": {"steps": [0, 1, 2, 4, 8], "shown": shown,
                                                 "unseen": unseen or [0.1] * 5}}


def _rows(method_ltr, method_util, method_shown, n=5):
    """Five seeds: base (none) knows (ltr −1, acc 0.8), gold does not (ltr 0, acc 0.1); the gold learns the
    shown facts slowly (reaches the halfway mark at step 8); the method as given, with a little noise."""
    rows = []
    for s in range(n):
        e = 0.01 * (s - 2)
        rows += [_row("none", s, -1.0 + e, 0.5 + e, 0.8, [0.8] * 5),
                 _row("gold", s, 0.0 + e, 0.5 - e, 0.1, [0.1, 0.1, 0.2, 0.3, 0.5])]
        for m in METHODS:
            rows.append(_row(m, s, method_ltr + e, method_util + e, 0.1, method_shown))
    rows.append({"kind": "stores", "test_docs": 10, "base_test_docs": 10, "gold_test_docs": 0})
    return rows


def test_the_rule_on_rows_whose_verdicts_are_known():
    cfg = get_grid("full")
    # a method at the gold on both counts, relearning at step 1 where the gold needs 8 (4.5×)
    at_gold = {c["method"]: c for c in rule.evaluate_cells(_rows(0.0, 0.5, [0.1, 0.5, 0.7, 0.8, 0.8]), cfg)}
    assert at_gold["npo"]["verdicts"] == {"matches_gold": "corroborated", "relearns_fast": "corroborated"}
    assert at_gold["npo"]["tests"]["relearns_fast"]["estimate"] == pytest.approx(math.log2(9 / 2))
    # the forget facts half forgotten: the gap share 0.5 lies wholly outside ±0.25
    half = rule.evaluate_cells(_rows(-0.5, 0.5, [0.1, 0.1, 0.2, 0.3, 0.5]), cfg)[0]
    assert half["tests"]["matches_gold"]["forget_gap_share"]["verdict"] == "falsified"
    assert half["verdicts"] == {"matches_gold": "falsified", "relearns_fast": "falsified"}  # ratio 1 < 4
    # utility lost: matched on forget, but 0.2 below the gold's retain accuracy
    lost = rule.evaluate_cells(_rows(0.0, 0.3, [0.1] * 5), cfg)[0]
    assert lost["tests"]["matches_gold"]["forget_gap_share"]["verdict"] == "corroborated"
    assert lost["verdicts"]["matches_gold"] == "falsified"
    # never relearning while the gold learns: a large slow-down, falsified; both censored: nothing to decide
    assert lost["verdicts"]["relearns_fast"] == "falsified"
    rows = _rows(0.0, 0.5, [0.1] * 5)
    for r in rows:
        if r.get("method") == "gold":
            r["relearn"]["shown"] = [0.1] * 5
    never = rule.evaluate_cells(rows, cfg)[0]["tests"]["relearns_fast"]
    assert never["verdict"] == "inconclusive" and never["n"] == 0
    assert all(p["left_out"] == "both censored" for p in never["per_seed"])
    controls = rule.control_checks(_rows(0.0, 0.5, [0.1] * 5), cfg)
    assert {k: v["verdict"] for k, v in controls.items()} == {"base_knows": "corroborated",
                                                             "gold_never_saw": "corroborated"}
    assert rule.noise_floor(_rows(0.0, 0.5, [0.1] * 5), cfg)["verdict"] == "corroborated"  # golds 0.02 apart
    leaky = _rows(0.0, 0.5, [0.1] * 5)
    leaky[-1]["gold_test_docs"] = 1  # the gold saw one test document: every verdict is void
    assert rule.control_checks(leaky, cfg)["gold_never_saw"]["verdict"] == "falsified"


def test_a_base_that_never_learned_is_left_out_and_fails_its_control():
    cfg = get_grid("full")
    rows = _rows(0.0, 0.5, [0.1] * 5)
    for r in rows:
        if r.get("method") == "none":
            r["log_truth_ratio_forget"], r["knowledge_forget"] = 0.1, 0.1
    cell = rule.evaluate_cells(rows, cfg)[0]
    assert cell["tests"]["matches_gold"]["forget_gap_share"]["n"] == 0 and cell["verdicts"]["matches_gold"] == "inconclusive"
    assert rule.control_checks(rows, cfg)["base_knows"]["verdict"] == "falsified"


def test_the_config_names_a_bad_key():
    with pytest.raises(InputError, match="unknown config key 'stepz'"):
        get_grid("quick", {"stepz": 3})
    with pytest.raises(InputError, match="seeds"):
        get_grid("quick", {"seeds": [0]})


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    import empiricist.experiments.unlearning.study  # noqa: F401  (registers the experiment, as the CLI does)
    from empiricist.studies import run_study, sign

    tmp = tmp_path_factory.mktemp("unlearning")
    spec = tmp / "unlearning_quick.toml"
    shutil.copy(SPECS / "unlearning_quick.toml", spec)
    ws = tmp / "ws"
    for party, who in (("gold-reachable", "Ada"), ("shallow", "Bob")):
        sign(spec, party, who, workspace=ws)
    return run_study(spec, workspace=ws), spec, ws, tmp


def test_the_quick_study_runs_end_to_end_and_reuses_its_grid(quick_run):
    from empiricist.studies import run_study

    run, spec, ws, tmp = quick_run
    res = run.results
    assert res["experiment"] == "unlearning" and {c["method"] for c in res["cells"]} == set(METHODS)
    assert set(res["control_checks"]) == set(rule.CONTROL_TESTS)
    assert res["control_checks"]["gold_never_saw"]["verdict"] == "corroborated"
    verdicts = {p["name"]: p["final"] for p in res["parties"]}
    assert set(verdicts) == {"gold-reachable", "shallow"}
    assert all(v in ("corroborated", "falsified", "inconclusive") for v in verdicts.values()), verdicts
    page = run.report.read_text()
    assert "Each method against the retrained gold" in page and "data:image/png;base64" in page
    grid = json.loads((run.folder / "grid" / "results.json").read_text())
    models = [r for r in grid["rows"] if r["kind"] == "model"]
    assert {r["method"] for r in models} == {"none", "gold", *METHODS} and len(models) == 6 * 2
    assert all(len(r["relearn"]["shown"]) == len(grid["checkpoints"]) for r in models)
    gold = next(r for r in models if r["method"] == "gold")
    assert gold["forget_quality"]["p_value"] == 1.0 and gold["privacy_leakage"] == 0.0  # the gold against itself
    assert (Path(models[0]["eval_run"]) / "results.jsonl").is_file()  # every answer kept
    assert set(grid["selection"]) >= set(METHODS)
    assert all(s["lr"] in get_grid("quick").unlearn_lrs for m, s in grid["selection"].items() if m in METHODS)
    assert run_study(spec, workspace=ws, out=tmp / "again").results["grid"]["reused"]


def test_relearning_documents_state_only_the_shown_half(quick_run):
    from empiricist.experiments.unlearning.job import relearn_split
    from empiricist.unlearn.forget import draw_requests
    from empiricist.world.load import World

    run, *_ = quick_run
    grid = json.loads((run.folder / "grid" / "results.json").read_text())
    world = Path(grid["world"])
    val, test, hold = draw_requests(world, ("validation", "test", "holdout"), get_grid("quick").n_entities)
    docs, shown, unseen = relearn_split(world, test, 4, hold.doc_ids | val.doc_ids)
    assert docs == grid["relearn"]["docs"] and set(docs) <= test.doc_ids
    facts = {f["id"]: f for f in World.open(world).facts}
    half = set(test.entities[: len(test.entities) // 2])
    assert shown and all(facts[f]["entity"] in half and set(facts[f]["doc_ids"]) & set(docs) for f in shown)
    assert unseen and not any(set(facts[f]["doc_ids"]) & set(docs) for f in unseen)
    assert not set(docs) & (hold.doc_ids | val.doc_ids)


def test_own_model_and_documents_without_a_gold(quick_run, tmp_path):
    from empiricist.unlearn.evaluate import NEEDS_FACTS, NEEDS_GOLD, evaluate_own

    run, _, ws, _ = quick_run
    grid = json.loads((run.folder / "grid" / "results.json").read_text())
    model = next(r["model"] for r in grid["rows"] if r.get("method") == "none")  # an HF NeoX folder
    forget = tmp_path / "forget.jsonl"
    text = "Goupus Krakpem was born in Zobai and works as a painter for the Tollan company in the city. " * 3
    forget.write_text("\n".join(json.dumps({"text": text}) for _ in range(3)) + "\n")
    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text(json.dumps({"text": "A river lies near the old mill, and the town keeps its bells."}) + "\n")
    out = evaluate_own(model, forget, holdout=holdout, workspace=ws)
    assert 0 <= out["verbatim"] <= 1 and out["n_docs"] == 3 and 0 <= out["membership_auc"] <= 1
    assert out["heldout_loss"] > 0
    assert out["forget_quality"] is None and out["absent"]["forget_quality"] == NEEDS_FACTS
    assert out["privacy_leakage"] is None and out["absent"]["privacy_leakage"] == NEEDS_GOLD
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "no"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: .*'text'.*--forget"):
        evaluate_own(model, bad, workspace=ws)


def test_unlearn_run_on_an_own_model_folder_through_the_cli(quick_run, tmp_path):
    from typer.testing import CliRunner

    from empiricist.cli import app

    run, _, ws, _ = quick_run
    grid = json.loads((run.folder / "grid" / "results.json").read_text())
    model = next(r["model"] for r in grid["rows"] if r.get("method") == "none")
    world = Path(grid["world"])
    docs = [json.loads(line) for line in (world / "docs.jsonl").read_text().splitlines()]
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.jsonl"
    forget.write_text("".join(json.dumps({"text": d["text"]}) + "\n" for d in docs[:6]))
    retain.write_text("".join(json.dumps({"text": d["text"]}) + "\n" for d in docs[6:30]))
    out = tmp_path / "unlearned"
    res = CliRunner().invoke(app, ["unlearn", "run", "--model", model, "--forget", str(forget), "--retain", str(retain),
                                   "--method", "npo", "--steps", "2", "--seq-len", "64", "--out", str(out),
                                   "--workspace", str(ws), "--quiet"])
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "unlearning.json").read_text())
    assert saved["unlearned"].endswith("step2") and saved["method"] == "npo"
    assert "why absent" in res.output and "verbatim" in res.output  # the table names what it cannot compute
    assert saved["before"]["verbatim"] >= 0 and saved["after"]["verbatim"] >= 0
    assert "fact questions" in saved["after"]["absent"]["forget_quality"]
    assert "held-out" in saved["after"]["absent"]["privacy_leakage"]
    res = CliRunner().invoke(app, ["unlearn", "run", "--model", str(tmp_path), "--forget", str(forget),
                                   "--out", str(tmp_path / "x"), "--workspace", str(ws)])
    assert res.exit_code != 0 and "config.json" in str(res.exception or res.output)
