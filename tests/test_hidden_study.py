"""A locked eval study on hidden items (issue 21), end to end on the tiny suite: the lock pins the
commitment root, only the holder of the items can run it, a changed item or commitment is refused, the
public bundle holds every score and verdict and nothing of the items or the models' outputs on them,
and the audit ties the public bundle to the private run and the lock."""

from __future__ import annotations

import json

import pytest
import test_studies_run
from test_studies import EXAMPLES

from empiricist.errors import ArtifactError, InputError
from empiricist.studies import LockMismatch, hidden, run_study, sign
from empiricist.studies.audit import audit_run, publish_run
from empiricist.studies.redact import hidden_texts, scan

ws = test_studies_run.ws  # the tiny suite's workspace (4 training steps), a module fixture shared with that file


@pytest.fixture(scope="module")
def study(ws, tmp_path_factory):
    """The tiny fact-scaling study with its fact questions hidden: 30 of the world's fact items,
    committed, signed by both parties, run once by the holder, and published."""
    from empiricist.evals.tasks import world_tasks

    world = next((ws / "worlds").glob("*/manifest.json")).parent
    items = [{k: v for k, v in it.to_dict().items() if k in ("id", "prompt", "choices", "target", "cluster")}
             for it in world_tasks(world, ["fact_qa"])["fact_qa"].items[:30]]
    folder = tmp_path_factory.mktemp("study")
    hidden.write(folder / "restricted", items, public_fields=("cluster",))
    spec = folder / "hidden_facts.toml"
    text = (EXAMPLES / "fact_scaling_tiny.toml").read_text().replace("\nn_items = 376", "\nn_items = 30")
    spec.write_text(text.replace('facts = "world:fact_qa"', 'facts = "hidden:restricted"'))
    sign(spec, "proponent", "Ada", workspace=ws)
    lock = sign(spec, "skeptic", "Bob", workspace=ws)
    run = run_study(spec, workspace=ws)
    public = publish_run(spec, out=folder / "public")
    return spec, items, lock, run, public


def test_the_lock_pins_the_commitment_root_not_the_items(study):
    spec, items, lock, _, _ = study
    art = lock["artifacts"]["task:facts"]
    assert art["identity"]["root"] == hidden.read_public(spec.parent / "restricted").root
    assert art["identity"]["n_items"] == 30
    locked_text = (spec.parent / "hidden_facts.lock.json").read_text()
    assert not any(i["prompt"] in locked_text for i in items)


def test_the_public_bundle_holds_every_score_and_verdict_and_nothing_hidden(study):
    spec, items, _, run, public = study
    res = json.loads((public / "results.json").read_text())
    assert res["predictions"] == run.results["predictions"] and res["parties"] == run.results["parties"]
    rows = [json.loads(line) for line in (public / "facts" / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 30 and {r["model"] for r in rows} == set(json.loads(
        (public / "facts" / "stats.json").read_text())["models"])
    from empiricist.evals.results import Results

    private_rows = [r for p in sorted((run.folder / "evals").glob("seed*")) for r in Results.read(p).rows()
                    if r["task"] == "facts"]
    texts = hidden_texts(items, private_rows, public=("cluster",))  # cluster ids were declared public
    assert len(texts) > 30 * 12  # every prompt and choice, and the models' outputs
    assert scan(public, texts) == []
    assert sorted(p.name for p in public.iterdir()) == ["facts", "facts_shuffled", "results.json"]
    assert audit_run(spec, public) == []
    from empiricist.studies.audit import replicate_public

    assert replicate_public(spec, public) == []  # every verdict re-decided from the public rows alone


def test_the_audit_names_a_changed_public_score(study, tmp_path):
    import shutil

    spec, _, _, _, public = study
    copy = tmp_path / "public"
    shutil.copytree(public, copy)
    lines = (copy / "facts" / "rows.jsonl").read_text().splitlines()
    r = json.loads(lines[0])
    r["score"] = 1 - r["score"]
    (copy / "facts" / "rows.jsonl").write_text("\n".join([json.dumps(r, sort_keys=True), *lines[1:]]) + "\n")
    got = audit_run(spec, copy)
    assert any("public row 0: differs from the private run in score" in p for p in got)
    # scores changed enough to move a verdict: re-deciding from the public rows says which
    from empiricist.studies.audit import replicate_public

    rows = [json.loads(line) for line in (copy / "facts" / "rows.jsonl").read_text().splitlines()]
    big = [dict(r, score=1.0 if r["model"].startswith("tiny/t4") else 0.0) for r in rows]
    (copy / "facts" / "rows.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in big))
    moved = replicate_public(spec, copy)
    assert moved and all("the public rows decide" in p for p in moved)


def test_a_changed_hidden_item_or_commitment_is_refused_and_only_the_holder_can_run(study, ws, tmp_path):
    import shutil

    spec, _, _, _, _ = study
    other = tmp_path / "s"
    shutil.copytree(spec.parent, other, ignore=shutil.ignore_patterns("*.results", "public"))
    s2 = other / spec.name
    priv = other / "restricted" / hidden.PRIVATE
    saved = priv.read_text()
    priv.write_text(saved.replace('"target": 0', '"target": 1', 1))  # an item edited after the lock
    with pytest.raises(ArtifactError, match="do not match their commitment"):
        run_study(s2, workspace=ws, out=tmp_path / "r1")
    priv.unlink()  # a party without the items
    with pytest.raises(InputError, match="only the holder"):
        run_study(s2, workspace=ws, out=tmp_path / "r2")
    priv.write_text(saved)
    hidden.write(other / "restricted", [dict(i, id=f"x{n}") for n, (i, _) in
                                        enumerate(hidden.read_private(other / "restricted"))])  # a new commitment
    with pytest.raises(LockMismatch, match="task:facts"):
        run_study(s2, workspace=ws, out=tmp_path / "r3")


def test_blinded_results_unblinding_and_the_minds_changed_record_are_in_the_lock_chain(study, tmp_path):
    import shutil

    from empiricist.evals.results import Results
    from empiricist.studies import blinding, ledger, read_lock, read_toml
    from empiricist.studies.integrity import check_lock

    spec0, _, _, _, _ = study
    folder = tmp_path / "s"
    shutil.copytree(spec0.parent, folder, ignore=shutil.ignore_patterns("public"))
    spec = folder / spec0.name
    view = blinding.blinded_view(spec, "skeptic")
    real = {}
    for p in sorted((folder / f"{spec.stem}.results" / "evals").glob("seed*")):
        for r in Results.read(p).rows():
            real.setdefault((r["task"], r["model"]), []).append(r["score"])
    shown = view["tasks"]["facts"]
    assert set(shown) == {"condition A", "condition B", "condition C", "condition D"}
    assert sorted(v["mean"] for v in shown.values()) == pytest.approx(sorted(
        sum(xs) / len(xs) for (t, _), xs in real.items() if t == "facts"))
    assert blinding.blinded_view(spec, "proponent")["tasks"] == view["tasks"]  # the same labels for every party
    with pytest.raises(InputError, match="has not unblinded"):
        blinding.record_position(spec, "skeptic", False, "no change")
    mapping = blinding.unblind(spec, "skeptic")
    assert set(mapping) == set(shown) and all(m.startswith("tiny/t") for m in mapping.values())
    blinding.record_position(spec, "skeptic", True, "t4 did not beat t1: I now doubt size matters here")
    with pytest.raises(InputError, match="unknown party"):
        blinding.record_position(spec, "referee", True, "x")
    lock = read_lock(spec)
    assert [b["type"] for b in blinding.history(lock)] == ["blinded_view", "blinded_view", "unblind", "position"]
    from empiricist.artifacts import verify

    assert verify(folder / f"{spec.stem}.results") == []  # the run's own artifact is untouched
    assert all(c.ok for c in check_lock(spec, doc=read_toml(spec)))
    led = ledger([folder])
    entry = next(s for ss in led["claims"].values() for s in ss if s.get("id") == "fact-scaling-tiny")
    assert entry["positions"]["skeptic"]["changed"] is True
    # a position record edited afterwards breaks the chain
    for e in lock["chain"]:
        if e["body"].get("type") == "position":
            e["body"]["changed"] = False
    (folder / f"{spec.stem}.lock.json").write_text(json.dumps(lock))
    assert not all(c.ok for c in check_lock(spec, doc=read_toml(spec)))


def test_publish_and_audit_commands(study, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from empiricist.cli import app

    spec0, _, _, _, _ = study
    folder = tmp_path / "s"
    shutil.copytree(spec0.parent, folder, ignore=shutil.ignore_patterns("public"))
    spec = folder / spec0.name
    r = CliRunner().invoke(app, ["study", "publish", str(spec), "--out", str(folder / "pub")])
    assert r.exit_code == 0 and "no hidden text" in " ".join(r.output.split())
    from empiricist.artifacts import verify

    assert verify(folder / f"{spec.stem}.results") == []
    ok = CliRunner().invoke(app, ["study", "audit", str(spec), str(folder / "pub")])
    assert ok.exit_code == 0 and "ok:" in ok.output, ok.output
    (folder / "pub" / "results.json").write_text(json.dumps({"tampered": True}))
    bad = CliRunner().invoke(app, ["study", "audit", str(spec), str(folder / "pub")])
    assert bad.exit_code == 2 and "results.json" in " ".join(bad.output.split())
