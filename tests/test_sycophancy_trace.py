"""Tracing sycophantic answers to training documents, and the retraining counterfactual.

The sign test is a planted case: a tiny model is trained on threads that end with the asker's word
(" yes", deferring) and threads that end with the other (" no", honest); a contrast query "yes rather than
no" must score the deferring threads above the honest ones. The rest uses a tiny world (forum threads
with ``agree_rate`` 0.5, so the world records both kinds) and synthetic scores or eval values.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic_texts

from empiricist.attribution import Documents, Query
from empiricist.errors import InputError
from empiricist.experiments.sycophancy import counterfactual as cf
from empiricist.experiments.sycophancy.trace import (
    Pool,
    candidate_pool,
    contrast_queries,
    enrichment,
    method_summary,
    trace,
)
from empiricist.suite.config import ModelSize, TrainConfig

PROMPT = "Q: I think the zebra quartz is right, is it? A:"


def _item(i, wrong, true=1, prompt="Hello, I think X. (A) a (B) b Answer:"):
    return {"id": f"it{i}", "prompt": prompt, "choices": [" (A)", " (B)"],
            "meta": {"wrong_index": wrong, "true_index": true}}


def test_contrast_queries_target_the_wrong_view_and_skip_the_rest():
    qs = contrast_queries([_item(0, 0), _item(1, None), _item(2, 1), _item(3, 1, true=0)])
    assert [(q.id, q.target, q.contrast) for q in qs] == [("it0", " (A)", " (B)"), ("it3", " (B)", " (A)")]
    with pytest.raises(InputError, match="wrong_index"):
        contrast_queries([_item(0, 5)])
    with pytest.raises(InputError, match="meta"):
        contrast_queries([{"prompt": "p", "choices": ["a", "b"]}])


# ---------------------------------------------------------------- the sign, on a planted case
@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from transformers import AutoTokenizer

    from empiricist.attribution.retrain import train_on_docs
    from empiricist.data.tokenizer import save_hf_tokenizer, train_bpe
    from empiricist.suite.handles import load_model

    root = tmp_path_factory.mktemp("syc")
    texts = synthetic_texts(60, seed=5)
    n_forum = 12
    forum = [PROMPT + (" yes." if i % 2 == 0 else " no.") for i in range(n_forum)]
    texts = forum + texts
    tok_path = train_bpe(texts, 320, root / "tok")
    folder = root / "model"
    folder.mkdir()
    save_hf_tokenizer(tok_path, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    docs = Documents.from_texts(texts, tok)
    cfg = TrainConfig(seq_len=64, batch_size=8, steps=40, lr=1e-2, warmup_steps=4, threads=1, precision="fp32")
    train_on_docs(docs.tokens, ModelSize("a", 32, 2, 2), cfg, len(tok), seed=0).save_pretrained(folder)
    is_forum = np.arange(len(texts)) < n_forum
    deferred = is_forum & (np.arange(len(texts)) % 2 == 0)
    pool = Pool(docs, np.arange(len(texts)) + 100, list(docs.ids), is_forum, deferred)
    return load_model(str(folder)), pool


def test_deferring_threads_score_higher_for_a_sycophantic_contrast(planted, tmp_path):
    handle, pool = planted
    q = [Query(PROMPT, " yes", " no", "q")]
    res = trace(handle, q, pool, ("trackstar",), k=6, workspace=tmp_path, progress=False,
                options={"trackstar": {"proj_dim": 128, "fisher_rows": 64}})
    m = res["methods"]["trackstar"]
    s = m["scores"]
    assert s[pool.deferred].min() > s[pool.is_forum & ~pool.deferred].max()  # positive = toward the target
    assert s[pool.deferred].mean() > 0 > s[pool.is_forum & ~pool.deferred].mean()
    assert m["deferred_share_among_forum"]["share"] == 1.0 and m["deferred_share_among_forum"]["p_value"] < 0.01
    assert m["top_store_indices"].tolist() == (m["top_rows"] + 100).tolist()  # store indices, not pool rows
    assert any((tmp_path / "attribution-cache").iterdir())  # attribution's own cache, in the workspace
    flipped = trace(handle, [Query(PROMPT, " no", " yes", "q")], pool, ("trackstar",), k=6, progress=False,
                    options={"trackstar": {"proj_dim": 128, "fisher_rows": 64}})["methods"]["trackstar"]["scores"]
    np.testing.assert_allclose(flipped, -s, atol=1e-9)


# ---------------------------------------------------------------- enrichment numbers
def test_enrichment_matches_hand_computed_hypergeometric_and_wilson():
    from math import comb

    from statsmodels.stats.proportion import proportion_confint

    e = enrichment(hits=4, k=5, population=20, successes=6)
    p = sum(comb(6, x) * comb(14, 5 - x) for x in range(4, 6)) / comb(20, 5)
    assert e["p_value"] == pytest.approx(p) and e["share"] == 0.8 and e["chance"] == 0.3
    assert (e["lo"], e["hi"]) == pytest.approx(proportion_confint(4, 5, method="wilson"))
    assert enrichment(0, 5, 20, 6)["p_value"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="impossible"):
        enrichment(6, 5, 20, 6)


def _synthetic_pool(n=20, n_forum=10, n_def=4):
    docs = Documents([f"d{i}" for i in range(n)], [np.arange(3)] * n, ["t"] * n)
    is_forum = np.arange(n) < n_forum
    return Pool(docs, np.arange(n) * 10, list(docs.ids), is_forum, np.arange(n) < n_def)


def test_method_summary_on_a_synthetic_pool():
    pool = _synthetic_pool()
    scores = np.zeros(20)
    scores[[0, 1, 2, 15, 16]] = [5, 4, 3, 2, 1]  # three deferring threads and two other documents on top
    scores[[8, 9]] = [0.5, 0.4]  # the best non-deferring forum threads
    m = method_summary(scores, pool, 5)
    assert m["top_store_indices"].tolist() == [0, 10, 20, 150, 160]
    assert (m["deferred_share"]["hits"], m["deferred_share"]["chance"]) == (3, 4 / 20)
    among = m["deferred_share_among_forum"]
    assert (among["k"], among["hits"], among["chance"]) == (5, 3, 4 / 10)  # forum top-5: 0, 1, 2, 8, 9
    assert m["forum_share"]["hits"] == 3
    with pytest.raises(InputError, match="scores for a pool"):
        method_summary(np.zeros(3), pool, 5)


def test_removal_sets_are_deterministic_and_use_the_best_method():
    pool = _synthetic_pool()
    rng = np.random.default_rng(0)
    res = {"methods": {m: method_summary(rng.normal(size=20), pool, 5) for m in ("bm25", "trackstar", "ekfac")}}
    a, b = cf.removal_sets(res, pool, 3, seed=1), cf.removal_sets(res, pool, 3, seed=1)
    assert a == b and sorted(a) == ["attributed", "bm25", "random_forum"]
    assert a["attributed"] == res["methods"]["ekfac"]["top_store_indices"][:3].tolist()
    assert a["bm25"] == res["methods"]["bm25"]["top_store_indices"][:3].tolist()
    assert set(a["random_forum"]) <= set(pool.store_index[pool.is_forum]) and len(a["random_forum"]) == 3
    with pytest.raises(InputError, match="forum_opinion documents"):
        cf.removal_sets(res, pool, 11, seed=1)


# ---------------------------------------------------------------- a tiny world
@pytest.fixture(scope="module")
def world_store(tmp_path_factory):
    from empiricist.data import build_store, train_bpe
    from empiricist.data.readers import iter_documents
    from empiricist.data.store import TokenStore
    from empiricist.world import World, WorldConfig, generate_world

    root = tmp_path_factory.mktemp("sw")
    cfg = WorldConfig.preset("tiny", target_tokens=20_000).with_subset("forum_opinion", weight=3.0, agree_rate=0.5)
    world = World.open(generate_world(cfg, out_dir=root / "world", progress=False))
    tok = train_bpe((d.text for d in iter_documents(world.path)), 400, root / "tok")
    return world, TokenStore.open(build_store(
        iter_documents(world.path), tok, root / "store", progress=False,
        source={"world": str(world.path), "world_hash": world.manifest["config_hash"]}))


def test_candidate_pool_holds_every_forum_thread_with_its_world_flags(world_store):
    world, store = world_store
    pool = candidate_pool(store, world.path, n_other=15, seed=0)
    forum = {d["id"]: d["deferred"] for d in world.iter_docs("forum_opinion")}
    assert int(pool.is_forum.sum()) == len(forum) and int((~pool.is_forum).sum()) == 15
    assert 0 < pool.deferred.sum() < pool.is_forum.sum()  # agree_rate 0.5: both kinds
    for i, wid, f, d in zip(pool.store_index, pool.world_id, pool.is_forum, pool.deferred, strict=True):
        assert store.doc_id(int(i)) == wid and (wid in forum) == f and d == forum.get(wid, False)
        assert (store.doc_meta(int(i))["subset"] == "forum_opinion") == f
    again = candidate_pool(store, None, n_other=15, seed=0)  # the store's own world by default
    assert again.store_index.tolist() == pool.store_index.tolist()
    assert candidate_pool(store, world.path, n_other=15, seed=1).store_index.tolist() != pool.store_index.tolist()
    with pytest.raises(InputError, match="n_other"):
        candidate_pool(store, world.path, n_other=10**7, seed=0)


def test_retrain_arms_trains_each_arm_once_and_resumes(world_store, tmp_path, monkeypatch):
    from empiricist.artifacts import read_manifest
    from empiricist.attribution import retrain
    from empiricist.suite.handles import load_model

    _, store = world_store
    calls = []
    real = retrain.train_on_docs

    def counting(docs, *a, **kw):
        calls.append(len(docs))
        return real(docs, *a, **kw)

    monkeypatch.setattr(retrain, "train_on_docs", counting)
    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")  # inline, so the counting patch sees every arm
    size = ModelSize("t", 16, 1, 2)
    tcfg = TrainConfig(seq_len=32, batch_size=4, steps=6, lr=3e-3, warmup_steps=1, threads=1, precision="fp32")
    removals = {"attributed": [0, 1, 2], "random_forum": [5, 3]}
    arms = cf.retrain_arms(store, size, tcfg, store.vocab_size, removals, seed=0, workspace=tmp_path, progress=False)
    assert list(arms) == ["full", "attributed", "random_forum"]
    assert calls == [len(store), len(store) - 3, len(store) - 2]
    assert read_manifest(arms["attributed"])["config"]["removed"] == [0, 1, 2]
    load_model(str(arms["full"]))  # a loadable HF folder
    again = cf.retrain_arms(store, size, tcfg, store.vocab_size, {"random_forum": [3, 5], "attributed": [2, 1, 0]},
                            seed=0, workspace=tmp_path, progress=False)
    assert len(calls) == 3 and again == arms  # nothing retrained; the name is the content, not the order
    with pytest.raises(InputError, match="not a document index"):
        cf.retrain_arms(store, size, tcfg, store.vocab_size, {"x": [10**9]}, seed=0, workspace=tmp_path)
    with pytest.raises(InputError, match="reference"):
        cf.retrain_arms(store, size, tcfg, store.vocab_size, {"full": [1]}, seed=0, workspace=tmp_path)


# ---------------------------------------------------------------- effects
def test_counterfactual_effects_recover_a_planted_effect(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(0.3, 0.2, size=120)
    noise = {a: rng.normal(0, 0.05, size=120) for a in ("attributed", "bm25", "random_forum")}
    planted = {"full": base, "attributed": base - 0.2 + noise["attributed"], "bm25": base - 0.05 + noise["bm25"],
               "random_forum": base + noise["random_forum"]}
    arms = {a: tmp_path / a for a in planted}
    out = cf.counterfactual_effects(lambda p: planted[p.name], arms, seed=3)
    vs = out["vs_full"]
    assert vs["attributed"]["hi"] < 0 and vs["attributed"]["lo"] < -0.2 < vs["attributed"]["hi"] + 0.02
    assert vs["random_forum"]["lo"] < 0 < vs["random_forum"]["hi"]
    c = out["contrasts"]["attributed-bm25"]
    assert c["lo"] < -0.15 < c["hi"] and c["hi"] < 0 and out["contrasts"]["attributed-random_forum"]["hi"] < 0
    assert out == cf.counterfactual_effects(lambda p: planted[p.name], arms, seed=3)  # seeded
    by_fact = {a: {f"f{i}": v for i, v in enumerate(x)} for a, x in planted.items()}
    clustered = cf.counterfactual_effects(lambda p: by_fact[p.name], arms, clusters=[i // 4 for i in range(120)])
    assert clustered["vs_full"]["attributed"]["method"] == "cluster_bootstrap"
    assert clustered["vs_full"]["attributed"]["n_clusters"] == 30
    bad = {**by_fact, "bm25": {"other": 1.0}}
    with pytest.raises(InputError, match="aligned"):
        cf.counterfactual_effects(lambda p: bad[p.name], arms)


# ---------------------------------------------------------------- the ledger's external evidence
REPO_EXTERNAL = __import__("pathlib").Path(__file__).resolve().parents[1] / "studies" / "ledger" / "external"
EXTERNAL = '''[external]
id = "pub1"
claim = "c-syc"
summary = "bigger is more sycophantic"
[external.source]
title = "A paper"
authors = ["A. Author"]
year = 2022
url = "https://example.org/paper"
[external.setting]
models = "closed base models"
[[external.numbers]]
quantity = "share matching the user's view"
value = "unconfirmed"
'''


def _study(tmp_path, **head):
    from test_studies import base_spec, dump_toml

    doc = base_spec()
    doc["study"].update(id="ours", claim="c-syc", **head)
    (tmp_path / "ours.toml").write_text(dump_toml(doc))


def test_shipped_external_entries_parse_and_link():
    from empiricist.studies.external import load_external

    entries = {e["id"]: e for e in map(load_external, sorted(REPO_EXTERNAL.glob("*.toml")))}
    assert set(entries) == {"perez2022-syco-scaling", "nostalgebraist2023-openai-base"}
    assert entries["nostalgebraist2023-openai-base"]["challenges"] == ["perez2022-syco-scaling"]
    for e in entries.values():
        assert e["claim"] == "sycophancy-grows-with-size" and e["source"]["url"].startswith("https://")
        assert e["numbers"] and all(n["note"] for n in e["numbers"])  # every number says where it came from


def test_external_entry_errors_name_the_field(tmp_path):
    from empiricist.studies.external import load_external

    p = tmp_path / "e.toml"
    p.write_text(EXTERNAL.replace('year = 2022', 'year = "2022"'))
    with pytest.raises(InputError, match=r"e\.toml.*external\.source\.year"):
        load_external(p)
    p.write_text(EXTERNAL.replace('url = "https://example.org/paper"', 'url = "example.org"'))
    with pytest.raises(InputError, match="external.source.url"):
        load_external(p)
    p.write_text(EXTERNAL + 'colour = "red"\n')
    with pytest.raises(InputError, match="colour"):
        load_external(p)


def test_ledger_lists_external_entries_beside_studies_and_checks_links(tmp_path):
    from typer.testing import CliRunner

    from empiricist.cli import app
    from empiricist.studies import ledger

    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "pub1.toml").write_text(EXTERNAL)
    _study(tmp_path, replicates=["pub1"])
    led = ledger(tmp_path)
    assert [(e["id"], e["kind"]) for e in led["claims"]["c-syc"]] == [("ours", "study"), ("pub1", "external")]
    assert {"study": "ours", "relation": "replicates", "target": "pub1", "state": "pending"} in led["relations"]
    r = CliRunner().invoke(app, ["ledger", "--dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "pub1" in r.output and "external" in r.output
    _study(tmp_path, replicates=["pub1"], challenges=["nobody-2021"])
    with pytest.raises(InputError, match="nobody-2021"):
        ledger(tmp_path)
    r = CliRunner().invoke(app, ["ledger", "--dir", str(tmp_path)])
    assert r.exit_code != 0 and "nobody-2021" in str(r.exception) and "study.challenges" in str(r.exception)
