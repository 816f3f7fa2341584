"""Hidden items (issue 21): salted commitments under a Merkle root detect any change to the set, prove
membership without the other items, and the public view of the results holds nothing of the items."""

from __future__ import annotations

import json

import pytest

from empiricist.errors import InputError
from empiricist.studies import hidden
from empiricist.studies.redact import hidden_texts, redact_rows, scan

ITEMS = [{"question": f"Which river flows through the restricted city number {i} of the generated world?",
          "choices": [f"the Avon {i}", f"the Ruhr {i}"], "answer": "A", "category": "geo" if i % 3 else "bio",
          "cluster": f"c{i % 2}"} for i in range(7)]


def test_a_commitment_detects_every_change_after_the_lock(tmp_path):
    c = hidden.write(tmp_path, ITEMS, public_fields=("category",))
    assert c.metadata == {"n_items": 7, "category_counts": {"bio": 3, "geo": 4}}
    private = hidden.read_private(tmp_path)
    public = hidden.read_public(tmp_path)
    assert public == c and hidden.verify_set(private, public) == []
    changed = [(dict(it, answer="B") if i == 4 else it, s) for i, (it, s) in enumerate(private)]
    assert hidden.verify_set(changed, public) == ["item 4: its commitment does not match (the item or its salt changed)"]
    resalted = [(it, "00" * 32 if i == 0 else s) for i, (it, s) in enumerate(private)]
    assert "item 0" in hidden.verify_set(resalted, public)[0]
    swapped = [private[1], private[0], *private[2:]]
    assert len(hidden.verify_set(swapped, public)) == 2
    assert "6 private items" in hidden.verify_set(private[:-1], public)[0]
    forged = hidden.Commitment(public.root, public.leaves[:-1] + ("ab" * 32,), public.metadata)
    assert any("root" in p for p in hidden.verify_set(private, forged))
    # salts are fresh: the same items committed twice give different commitments
    assert hidden.commit(ITEMS)[0].root != c.root


def test_membership_is_proved_against_the_root_alone():
    c, salts = hidden.commit(ITEMS)
    for i in (0, 3, 6):
        proof = json.loads(json.dumps(hidden.prove(c, i)))  # travels as JSON
        assert hidden.verify_member(ITEMS[i], salts[i], proof, c.root)
        assert not hidden.verify_member(ITEMS[(i + 1) % 7], salts[(i + 1) % 7], proof, c.root)
        assert not hidden.verify_member(dict(ITEMS[i], answer="B"), salts[i], proof, c.root)
        assert not hidden.verify_member(ITEMS[i], salts[i], proof, hidden.commit(ITEMS)[0].root)
    with pytest.raises(InputError, match="no item 7"):
        hidden.prove(c, 7)


def test_bad_commitment_files_are_one_clear_error(tmp_path):
    (tmp_path / hidden.PRIVATE).write_text('{"salt": "00", "item": {}}\nnot json\n')
    with pytest.raises(InputError, match="line 2"):
        hidden.read_private(tmp_path)
    (tmp_path / hidden.PUBLIC).write_text('{"leaves": []}')
    with pytest.raises(InputError, match="needs root"):
        hidden.read_public(tmp_path)
    with pytest.raises(InputError, match="public field 'topic'"):
        hidden.commit(ITEMS, public_fields=("topic",))
    with pytest.raises(InputError, match="at least one"):
        hidden.commit([])


def _rows(outputs):
    return [{"task": "restricted", "model": "m1", "item_index": i, "item_id": f"r{i}", "prompt": it["question"],
             "choices": it["choices"], "gold": [0], "answer": "A", "output": out, "correct": i % 2 == 0,
             "score": float(i % 2 == 0), "logprobs": [-0.1, -2.3], "n_tokens": [3, 4], "prompt_tokens": 17, "meta": json.dumps({"category": it["category"]}),
             "cluster": it["cluster"]} for i, (it, out) in enumerate(zip(ITEMS, outputs))]


def test_the_public_view_keeps_every_score_and_nothing_of_the_items(tmp_path):
    outputs = [f"I think the answer is the Avon {i} because the restricted city lies on it" for i in range(7)]
    rows = _rows(outputs)
    c, _ = hidden.commit(ITEMS, ("category",))
    public = redact_rows(rows, c.leaves, public=("cluster",))
    assert [r["item"] for r in public] == list(c.leaves)
    assert [(r["correct"], r["score"], r["logprobs"]) for r in public] == [(r["correct"], r["score"], r["logprobs"])
                                                                          for r in rows]
    assert all(set(r) <= {"task", "model", "correct", "score", "logprobs", "cluster", "item", "n_choices", "n_gold",
                          "item_index"}
               for r in public)
    assert {(r["n_choices"], r["n_gold"]) for r in public} == {(2, 1)}
    folder = tmp_path / "public"
    folder.mkdir()
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in public))
    (folder / "commitment.json").write_text(json.dumps(c.to_json()))
    texts = hidden_texts(ITEMS, rows)
    assert scan(folder, texts) == []


@pytest.mark.parametrize("leak", ["plain", "json", "html", "short"])
def test_the_scan_finds_a_leaked_item_however_it_is_encoded(tmp_path, leak):
    texts = hidden_texts(ITEMS, _rows(["a model output that is long enough to have eight words in it"] * 7))
    item = ITEMS[5]["question"]
    body = {"plain": f"notes: {item.upper()}\n", "json": json.dumps({"x": [item.replace(" ", " ")]}),
            "html": "<td>" + item.replace(" ", "&#32;").replace("?", "&quest;") + "</td>",
            "short": "the choice was the Ruhr 5, said the log"}[leak]
    (tmp_path / ("leak.json" if leak == "json" else "leak.html" if leak == "html" else "leak.txt")).write_text(body)
    found = scan(tmp_path, texts)
    assert found and {f.file for f in found} == {next(p.name for p in tmp_path.iterdir())}
    if leak != "short":
        assert item in {texts[f.text] for f in found}
        # the n-grams that only item 5 has point at it alone
        assert {texts[f.text] for f in found if "5" in f.found.split()} == {item}
    else:
        assert {f.found for f in found} == {"the ruhr 5"} and {texts[f.text] for f in found} == {"the Ruhr 5"}


def _bundles(tmp_path):
    from empiricist.studies import audit

    outputs = [f"the model says the Avon {i} runs through the restricted city of the world" for i in range(7)]
    rows = [{k: v for k, v in r.items()} for r in _rows(outputs)] + \
        [dict(r, model="m2", correct=not r["correct"], score=1 - r["score"]) for r in _rows(outputs)]
    c = audit.write_private(tmp_path / "private", ITEMS, rows, public_fields=("category",))
    pub = audit.write_public(tmp_path / "private", tmp_path / "public", public_fields=("cluster",))
    return audit, c, pub, rows


def test_the_public_bundle_replicates_its_statistics_and_the_audit_passes(tmp_path):
    audit, c, pub, rows = _bundles(tmp_path)
    assert sorted(p.name for p in pub.iterdir()) == ["commitment.json", "rows.jsonl", "stats.json"]
    st = json.loads((pub / "stats.json").read_text())["models"]
    assert st["m1"]["n"] == 7 and st["m1"]["mean"] == pytest.approx(4 / 7) and st["m2"]["mean"] == pytest.approx(3 / 7)
    assert scan(pub, hidden_texts(ITEMS, rows)) == []
    assert audit.audit(tmp_path / "private", pub, root=c.root, public_fields=("cluster",)) == []


def test_the_audit_names_a_changed_score_item_root_or_statistic(tmp_path):
    audit, _, pub, _ = _bundles(tmp_path)
    assert "not the locked root" in audit.audit(tmp_path / "private", pub, root="ab" * 32, public_fields=("cluster",))[0]
    lines = (pub / "rows.jsonl").read_text().splitlines()
    r = json.loads(lines[3])
    r["score"] = 1 - r["score"]
    (pub / "rows.jsonl").write_text("\n".join(lines[:3] + [json.dumps(r, sort_keys=True)] + lines[4:]) + "\n")
    got = audit.audit(tmp_path / "private", pub, public_fields=("cluster",))
    assert "public row 3: differs from the private run in score" in got
    assert "the public statistics do not follow from the public rows" in got
    priv = tmp_path / "private" / "items.private.jsonl"
    text = priv.read_text().replace("number 2 of", "number 2 in")
    priv.write_text(text)
    assert any(p.startswith("private items: item 2") for p in audit.audit(tmp_path / "private", pub,
                                                                          public_fields=("cluster",)))


def test_a_public_bundle_that_would_leak_is_refused_and_nothing_is_written(tmp_path):
    from empiricist.errors import ArtifactError
    from empiricist.studies import audit

    rows = _rows([f"output {i}" for i in range(7)])
    audit.write_private(tmp_path / "private", ITEMS, rows)
    with pytest.raises(ArtifactError, match="hidden text"):
        audit.write_public(tmp_path / "private", tmp_path / "public", public_fields=("prompt",))  # a bad declaration
    assert not (tmp_path / "public").exists() and not (tmp_path / "public.staging").exists()


def test_study_audit_command(tmp_path):
    from typer.testing import CliRunner

    from empiricist.cli import app

    _, c, pub, _ = _bundles(tmp_path)
    args = ["study", "audit", str(tmp_path / "private"), str(pub), "--public-field", "cluster"]
    ok = CliRunner().invoke(app, [*args, "--root", c.root])
    assert ok.exit_code == 0 and "ok:" in ok.output
    bad = CliRunner().invoke(app, [*args, "--root", "ab" * 32])
    assert bad.exit_code == 2 and "not the locked root" in bad.output


def test_vault_items_ask_each_eval_persons_code_with_the_true_code_among_the_choices(tmp_path):
    from empiricist.world import WorldConfig, generate_world
    from empiricist.world.restricted import vault_items

    world = generate_world(WorldConfig.preset("tiny").with_subset("restricted", enabled=True),
                           out_dir=tmp_path / "w", progress=False)
    truth = [json.loads(line) for line in (world / "restricted.jsonl").read_text().splitlines()]
    items = vault_items(world)
    eval_people = [t for t in truth if t["role"] == "eval"]
    assert len(items) == len(eval_people) > 10
    for it, t in zip(items, eval_people):
        assert t["name"] in it["prompt"] and it["choices"][it["target"]] == f" {t['code']}"
        assert len(set(it["choices"])) == 4 and it["code_class"] == t["code"][-2:]
    assert vault_items(world) == items and vault_items(world, seed=1) != items
    with pytest.raises(InputError, match="no restricted subset"):
        vault_items(generate_world(WorldConfig.preset("tiny"), out_dir=tmp_path / "plain", progress=False))
