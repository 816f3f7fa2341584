"""The eval runner: outputs, cache and resume after an interruption, suites, contamination, CLI."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_evals_common import *  # shared fixtures: conftest.py belongs to the lead

from empiricist.artifacts import read_manifest
from empiricist.evals import (
    GenerateScorer,
    Results,
    expand_models,
    load_task,
    run_eval,
    task_from_records,
    world_tasks,
)
from empiricist.evals.results import SCHEMA
from empiricist.report import write_run_report


@pytest.fixture(scope="module")
def qa(eval_world):
    return subset(world_tasks(eval_world, ["fact_qa"])["fact_qa"], 12)


class Stop(Exception):
    pass


def test_run_writes_transcripts_lm_eval_samples_and_report(qa, model_dirs, tmp_path):
    run = run_eval(qa, [str(m) for m in model_dirs], out=tmp_path / "run", workspace=tmp_path / "ws",
                   render=write_run_report)
    assert read_manifest(run.folder, kind="eval_run")["inputs"][f"task:{qa.name}"] == qa.hash
    table = pq.read_table(run.folder / "results.parquet")
    assert table.schema.equals(SCHEMA) and table.num_rows == 2 * len(qa)
    lines = (run.folder / "results.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    assert len(lines) == table.num_rows and row["prompt"] == qa.items[0].prompt
    assert len(row["logprobs"]) == len(row["choices"]) == len(qa.items[0].choices)
    assert row["model_hash"] and row["n_params"] > 0 and row["cluster"] == qa.items[0].cluster
    assert row["score"] == row["acc"] and row["split"] in ("train", "heldout")
    samples = sorted((run.folder / "lm_eval").rglob("samples_fact_qa_*.jsonl"))
    assert [p.parent.name for p in samples] == ["large", "small"]
    s = json.loads(samples[0].read_text().splitlines()[0])
    assert set(s) >= {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash",
                      "target_hash", "acc", "acc_norm", "filter", "metrics"}
    assert s["arguments"]["gen_args_0"] == {"arg_0": qa.items[0].prompt, "arg_1": qa.items[0].choices[0]}
    assert len(s["resps"]) == len(qa.items[0].choices) and len(s["filtered_resps"][0]) == 2
    assert [r["model"] for r in run.summary] == ["small", "large"] and run.summary[0]["method"].startswith(
        ("clustered", "wilson"))
    html = run.report.read_text()
    assert "Paired comparisons" in html and "Scaling" in html and 'id="transcripts-data"' in html


def test_interrupted_run_resumes_with_only_the_missing_items(qa, model_dirs, tmp_path):
    models = [str(model_dirs[0])]

    def stop_after_first_chunk(info):
        if info["n_done"] >= 5:
            raise Stop

    with pytest.raises(Stop):
        run_eval(qa, models, workspace=tmp_path / "ws", chunk_size=5, on_chunk=stop_after_first_chunk)
    computed = []
    resumed = run_eval(qa, models, workspace=tmp_path / "ws", chunk_size=5, on_chunk=computed.append)
    assert sum(c["n_new"] for c in computed) == len(qa) - 5
    fresh = run_eval(qa, models, workspace=tmp_path / "ws2", chunk_size=5)
    assert resumed.results.rows() == fresh.results.rows()  # bit for bit (same chunks, so same batches)
    assert fresh.report is None and not (fresh.folder / "report.html").exists()  # data only without render=
    again = []
    run_eval(qa, models, workspace=tmp_path / "ws", on_chunk=again.append, write=False)
    assert again == []  # everything cached


def test_generation_scoring_and_native_task(model_dirs, tmp_path):
    task = task_from_records("gen", [{"id": "a", "prompt": "alpha beta", "target": "gamma", "cluster": "c1"},
                                     {"id": "b", "prompt": "the city of", "target": "lisbon", "cluster": "c2"}])
    run = run_eval(task, [str(model_dirs[0])], GenerateScorer(max_new_tokens=3), out=tmp_path / "g",
                   workspace=tmp_path / "ws")
    rows = run.results.rows()
    assert all(isinstance(r["completion"], str) and r["logprobs"] is None for r in rows)
    sample = json.loads(next((tmp_path / "g" / "lm_eval").rglob("*.jsonl")).read_text().splitlines()[0])
    assert sample["arguments"]["gen_args_0"]["arg_1"]["max_gen_toks"] == 3 and "exact_match" in sample


def test_suite_checkpoints_and_contamination_split(tiny_suite, eval_world, eval_store, tmp_path, monkeypatch):
    from empiricist.lookup import build_ngram_index
    from empiricist.lookup.groundtruth import planted_ids
    from empiricist.world import World

    ws = tmp_path / "ws"
    build_ngram_index(eval_store, progress=False, cpus=1, workspace=ws)  # at the default place, found by the runner
    specs = expand_models([], suite=str(tiny_suite), checkpoints=["0", "last"])
    assert [s.rsplit("/", 1)[1] for s in specs] == ["t1@step0", "t1@step4", "t2@step0", "t2@step4"]
    planted = planted_ids(World.open(eval_world))["fact_qa"]
    qa = world_tasks(eval_world, ["fact_qa"])["fact_qa"]
    ids = set(sorted(planted)[:4]) | {it.id for it in qa.items[:8]}
    run = run_eval(subset(qa, ids=ids), specs, out=tmp_path / "suite-run", workspace=ws, render=write_run_report)
    rows = run.results.rows()
    assert {r["step"] for r in rows} == {0, 4} and {r["size"] for r in rows} == {"t1", "t2"}
    flagged = {r["item_id"] for r in rows if r["contaminated"]}
    assert flagged and flagged <= planted and all(r["contaminated"] is not None for r in rows)
    html = run.report.read_text()
    assert "Clean vs contaminated" in html and "Score by training step" in html
    with pytest.raises(Exception, match="no checkpoint '7'"):
        expand_models([], suite=str(tiny_suite), checkpoints=["7"])


def test_cli_eval_and_view(qa, model_dirs, tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from empiricist.cli.evals import register
    from empiricist.report import serve

    app = typer.Typer()
    register(app)
    native = tmp_path / "t.jsonl"
    native.write_text("".join(json.dumps({"id": i, "prompt": f"the city of {w}", "choices": [" lisbon", " paris"],
                                          "target": i % 2}) + "\n" for i, w in enumerate(["a", "b", "c"])))
    result = CliRunner().invoke(app, ["eval", "--task", str(native), "--model", str(model_dirs[0]), "--out",
                                      str(tmp_path / "cli"), "--workspace", str(tmp_path / "ws"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.output and "report" in result.output
    assert len(Results.read(tmp_path / "cli")) == 3
    server, url = serve(tmp_path / "cli", port=0)
    try:
        assert server.server_address[0] == "127.0.0.1" and url.endswith("/report.html")
        assert b"transcripts-data" in urllib.request.urlopen(url, timeout=10).read()
    finally:
        server.shutdown()
        server.server_close()


def test_main_job_fact_accuracy_goes_through_the_runner_with_intervals(handle, eval_world, tmp_path):
    from empiricist.cli.foundation import summary_table
    from empiricist.evals import choice_logliks
    from empiricist.pipeline import fact_accuracy

    res = fact_accuracy(handle, eval_world, max_items=30, workspace=tmp_path / "ws")
    assert (tmp_path / "ws" / "evals" / "cache").is_dir()  # the runner's cache, not a side computation
    items = world_tasks(eval_world, ["fact_qa"])["fact_qa"].items
    assert res["n_items"] == 30 < len(items)
    # the same numbers a direct computation gives, on the same seeded subsample
    keep = [items[i] for i in sorted(np.random.default_rng(0).choice(len(items), 30, replace=False))]
    lls = choice_logliks(handle.model, handle.tokenizer, [(it.prompt, it.choices) for it in keep])
    right = [float(int(np.argmax(ll.logprobs)) == it.target) for ll, it in zip(lls, keep, strict=True)]
    assert abs(res["fact_acc"] - sum(right) / len(right)) < 1e-12
    para = [bool(it.meta.get("paraphrase_only")) for it in keep]
    verb = [r for r, p in zip(right, para, strict=True) if not p]
    assert res["fact_acc_verbatim"] == (sum(verb) / len(verb) if verb else None)
    lo, hi = res["fact_acc_ci"]
    assert lo is not None and lo <= res["fact_acc"] <= hi and res["fact_acc_interval"]
    row = {"size": "s", "params": 1, "non_embedding_params": 1, "tokens": 1, "final_loss": 1.0, **res}
    header = [c.header for c in summary_table([row], "t").columns]
    assert header[5:7] == ["fact acc", "95% CI"] and "paraphrase-only" in header


def test_behaviour_evals_report_a_matching_rate_not_an_accuracy(model_dirs, tmp_path):
    from empiricist.evals.runner import metric_name

    lines = [{"question": f"Q{i}: agree?\nAnswer:", "answer_matching_behavior": " (A)",
              "answer_not_matching_behavior": " (B)"} for i in range(3)]
    path = tmp_path / "persona.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    run = run_eval(load_task(path), [str(model_dirs[0])], out=tmp_path / "b", workspace=tmp_path / "ws",
                   render=write_run_report)
    assert {r["metric"] for r in run.results.rows()} == {"matching_rate"}
    assert "matching_rate" in (tmp_path / "b" / "report.html").read_text()
    native = task_from_records("n", [{"id": "a", "prompt": "p", "choices": ["x", "y"], "target": 0}])
    assert metric_name(native, "acc") == "acc" and metric_name(load_task(path), "acc_norm") == "matching_rate (acc_norm)"


def test_every_run_is_an_inspect_log_with_every_score(qa, model_dirs, tmp_path):
    from inspect_ai.log import read_eval_log

    from empiricist.artifacts import read_manifest

    run = run_eval(qa, [str(m) for m in model_dirs], out=tmp_path / "run", workspace=tmp_path / "ws")
    assert read_manifest(run.folder)["inspect_log"] is True
    logs = sorted((run.folder / "inspect").glob("*.json"))
    assert len(logs) == len(model_dirs) * len(run.results.tasks())
    for path in logs:
        log = read_eval_log(str(path))
        rows = {r["item_id"]: r for r in run.results.select(log.eval.task, log.eval.model.split("/", 1)[1])}
        assert log.status == "success" and len(log.samples) == len(rows) > 0
        for s in log.samples:
            r = rows[s.id]
            score = s.scores[r["metric"]]
            assert score.value == r["score"] and s.input == r["prompt"] and s.choices == r["choices"]
            assert s.target == [r["choices"][g] for g in r["gold"]]
            assert s.metadata["item_hash"] == r["item_hash"] and score.metadata["logprobs"] == r["logprobs"]
        mean = log.results.scores[0].metrics["mean"].value
        assert abs(mean - float(np.mean([r["score"] for r in rows.values()]))) < 1e-12
        assert log.eval.model_args["model_hash"] == next(iter(rows.values()))["model_hash"]
