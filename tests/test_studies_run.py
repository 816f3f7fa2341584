"""The CI example study end to end on a tiny suite: lock, run, tamper detection, amendments, bundles, CLI.

The suite is the tiny preset trained for 4 steps (seconds), in a workspace of its own; the spec is
studies/examples/fact_scaling_tiny.toml with 40 items instead of 376.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch
from test_studies import EXAMPLES, dump_toml

from empiricist.artifacts import read_manifest
from empiricist.errors import InputError
from empiricist.studies import LockMismatch, amend, bundle, read_toml, replicate, run_study, sign
from empiricist.studies.lock import lock_path
from empiricist.studies.run import prepare_run


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace holding the tiny suite's world, store and 4 sizes (4 training steps)."""
    from empiricist.data.store import TokenStore
    from empiricist.pipeline import prepare
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import train_suite
    from empiricist.world import WorldConfig

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("study-ws")
    cfg = get_preset("tiny").replace(steps=4, resume_every=2, threads=1)
    prep = prepare(WorldConfig.preset("tiny"), cfg.vocab_size, root, progress=False)
    train_suite(cfg, TokenStore.open(prep.store), workspace=root, progress=False)
    return root


@pytest.fixture(scope="module")
def locked(ws, tmp_path_factory) -> Path:
    """The CI example (40 items), signed by both parties."""
    spec = tmp_path_factory.mktemp("study") / "fact_scaling_tiny.toml"
    text = (EXAMPLES / "fact_scaling_tiny.toml").read_text()
    spec.write_text(text.replace("\nn_items = 376", "\nn_items = 40"))
    first = sign(spec, "proponent", "Ada", workspace=ws)
    assert not first["complete"] and [a for a in first["artifacts"] if a.startswith("model:")] == \
        ["model:t1", "model:t2", "model:t3", "model:t4"]
    with pytest.raises(InputError, match="already signed"):
        sign(spec, "proponent", "Ada", workspace=ws)
    assert sign(spec, "skeptic", "Bob", workspace=ws)["complete"]
    return spec


@pytest.fixture(scope="module")
def ran(locked, ws):
    return run_study(locked, workspace=ws)


def test_run_end_to_end(ran, locked):
    r = ran.results
    assert r["status"] == "pre-registered" and r["tasks"]["facts"]["n_items"] == 40
    assert [c["id"] for c in r["controls"]] == ["largest_beats_chance", "shuffled_at_chance"]
    assert [(p["party"], p["id"]) for p in r["predictions"]] == [
        ("proponent", "rises"), ("proponent", "big_gain"), ("proponent", "steep"), ("skeptic", "small_gain"),
        ("skeptic", "rises")]
    for p in r["controls"] + r["predictions"]:
        assert p["verdict"] in ("corroborated", "falsified", "inconclusive") and p["lo"] <= p["estimate"] <= p["hi"]
    for p in r["predictions"]:
        assert 0 <= p["p_hold"] <= p["p_hold_adj"] <= 1 and 0 <= p["p_fail"] <= p["p_fail_adj"] <= 1
    # 4-step models are at chance: the positive control cannot pass, and the study says so
    assert not r["controls_passed"] and r["outcome"].startswith("INCONCLUSIVE")
    assert all(p["final"] == "inconclusive" and not p["counted"] for p in r["parties"])
    assert r["predictions"][1]["verdict"] == "falsified"  # t4 - t1 >= 0.2 is out of reach of chance-level models
    saved = json.loads((ran.folder / "results.json").read_text())
    assert saved["predictions"] == json.loads(json.dumps(r["predictions"]))
    assert (ran.folder / "evals" / "seed0" / "results.parquet").is_file()
    assert read_manifest(ran.folder, kind="study_run")["config"]["spec_sha256"] == r["spec_sha256"]
    html = ran.report.read_text()
    assert "Party proponent" in html and "Party skeptic" in html and "INCONCLUSIVE: control" in html


def _leaves(doc: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(doc, dict) and doc:
        return [leaf for k, v in doc.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(doc, list) and doc:
        return [leaf for i, v in enumerate(doc) for leaf in _leaves(v, (*path, i))]
    return [path]


def _name(doc: Any, path: tuple) -> str:
    """The diff's name for a path: list items that are named tables (parties) go by their name."""
    out, node = "", doc
    for key in path:
        if isinstance(key, int):
            out += f".{node[key]['name']}" if isinstance(node[key], dict) and "name" in node[key] else f"[{key}]"
        else:
            out += f".{key}" if out else key
        node = node[key]
    return out


def _mutate(doc: Any, path: tuple) -> str:
    """Change one leaf (an empty list or table gains an entry); returns the suffix the diff names it by."""
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    new = (not old if isinstance(old, bool) else old + 1 if isinstance(old, (int, float)) else
           old + "~" if isinstance(old, str) else ["x"] if isinstance(old, list) else {"x": 1})
    parent[path[-1]] = new
    return "[0]" if old == [] else ".x" if old == {} else ""


def test_every_single_field_change_to_a_locked_spec_is_named(locked, ws, tmp_path):
    doc = read_toml(locked)
    spec = tmp_path / locked.name
    shutil.copy(lock_path(locked), lock_path(spec))
    spec.write_text(dump_toml(doc))
    prepare_run(spec, ws)  # the same document, rewritten: accepted
    leaves = _leaves(doc)
    assert len(leaves) > 100
    for path in leaves:
        mutated = json.loads(json.dumps(doc))
        suffix = _mutate(mutated, path)
        spec.write_text(dump_toml(mutated))
        with pytest.raises(LockMismatch) as e:
            prepare_run(spec, ws)
        assert f"\n  {_name(doc, path)}{suffix}: " in str(e.value), (path, str(e.value))


def test_every_change_to_a_locked_manifest_is_named(locked, ws):
    lock = json.loads(lock_path(locked).read_text())
    checked = 0
    for name, rec in lock["artifacts"].items():
        manifest = Path(rec["path"]) / "manifest.json"
        original = manifest.read_text()
        try:
            for path in _leaves(rec["identity"]):
                data = json.loads(original)
                suffix = _mutate(data, path)
                manifest.write_text(json.dumps(data))
                with pytest.raises(LockMismatch) as e:
                    prepare_run(locked, ws)
                assert f"artifact {name} (" in str(e.value) and f": {_name(data, path)}{suffix}: " in str(e.value), \
                    (name, path, str(e.value))
                checked += 1
            data = json.loads(original)
            data["created"] = "1999-01-01T00:00:00Z"  # when it was written is not what it holds
            manifest.write_text(json.dumps(data))
            prepare_run(locked, ws)
        finally:
            manifest.write_text(original)
    assert checked > 50
    world = Path(lock["artifacts"]["world"]["path"]) / "eval" / "fact_qa.jsonl"
    original = world.read_bytes()
    try:
        world.write_bytes(original + b"\n")
        with pytest.raises(LockMismatch, match=r"world \(world, .*files changed on disk .*eval/fact_qa.jsonl"):
            prepare_run(locked, ws)
    finally:
        world.write_bytes(original)


def test_amendments_are_append_only_and_reported(ran, locked, ws):
    amend(locked, "Ada", "ran 40 of 376 items", "CI <b>time</b>")
    amend(locked, "Bob", "nothing else", "for the record")
    again = run_study(locked, workspace=ws)  # amendments do not unlock the spec; the evals come from the cache
    assert [a["author"] for a in again.results["amendments"]] == ["Ada", "Bob"]
    html = again.report.read_text()
    assert "ran 40 of 376 items" in html and "CI &lt;b&gt;time&lt;/b&gt;" in html
    path = locked.with_name(f"{locked.stem}.amendments.toml")
    text = path.read_text()
    try:
        path.write_text(text.replace("ran 40 of 376", "ran all 376"))
        with pytest.raises(InputError, match="append-only"):
            run_study(locked, workspace=ws)
    finally:
        path.write_text(text)


def test_bundle_and_replicate(ran, locked, ws, tmp_path):
    folder, archive = bundle(locked)
    assert {p.name for p in folder.iterdir()} >= {"spec", "manifests", "transcripts", "analysis", "environment.json"}
    assert (folder / "spec" / lock_path(locked).name).is_file() and (folder / "transcripts" / "seed0").is_dir()
    with tarfile.open(archive) as tar:
        assert f"{folder.name}/analysis/results.json" in tar.getnames()
    fast = replicate(archive, fast=True, out=tmp_path / "fast")
    assert fast["all_match"] and not fast["verdicts_changed"] and len(fast["rows"]) == 7
    full = replicate(folder, workspace=ws, out=tmp_path / "full")  # reuses the workspace's artifacts
    assert full["all_match"] and all(a["identical"] for a in full["artifacts"]) and len(full["artifacts"]) == 6


def test_cli(ran, locked, ws, tmp_path):
    import typer
    from typer.testing import CliRunner

    from empiricist.cli import studies

    app = typer.Typer()
    studies.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["study", "check", str(EXAMPLES / "late_training_underpowered.toml"), "--sims", "200"])
    assert res.exit_code == 0 and "UNDERPOWERED" in res.output and "EXPECT INCONCLUSIVE" in res.output
    res = runner.invoke(app, ["ledger", "--dir", str(locked.parent)])
    assert res.exit_code == 0 and "fact-accuracy-rises-with-size" in res.output and "fact-scaling-tiny" in res.output
    res = runner.invoke(app, ["study", "lock", str(locked), "--party", "nobody", "--signer", "x", "-w", str(ws)])
    assert res.exit_code != 0 and "no party 'nobody'" in str(res.exception)
