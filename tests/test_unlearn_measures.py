"""Forget requests against the world's ledger, and the unlearning metrics on inputs with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from empiricist.errors import InputError
from empiricist.unlearn.forget import request, retain_documents, split_requests
from empiricist.unlearn.metrics import (
    forget_quality,
    privacy_leakage,
    rouge_l,
    truth_ratio,
    verbatim_memorisation,
)
from empiricist.world import WorldConfig, generate_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return Path(generate_world(WorldConfig(), workspace=tmp_path_factory.mktemp("ws"), progress=False))


def test_a_request_takes_every_statement_of_its_entities_and_nothing_else_needs_to_go(world):
    val, test = split_requests(world, 5, seed=3)
    assert not set(val.entities) & set(test.entities)  # disjoint entities (documents may be shared: lists)
    assert split_requests(world, 5, seed=3) == (val, test)  # seeded
    forget = set(test.entities)
    docs = [json.loads(line) for line in (world / "docs.jsonl").read_text().splitlines()]
    stating = {d["id"] for d in docs if any(f["entity"] in forget for f in d["facts"])}
    assert stating and stating <= test.doc_ids  # every document stating a forget fact goes
    kept = list(retain_documents(world, test))
    assert len(kept) == len(docs) - len(test.doc_ids)
    assert not any(f["entity"] in forget for d in kept for f in d["facts"])  # the gold never sees them
    n_facts = sum(1 for line in (world / "facts.jsonl").read_text().splitlines() if json.loads(line)["entity"] in forget)
    assert len(test.facts) == n_facts
    with pytest.raises(InputError, match="not in the world"):
        request(world, ["person-99999"], "x")
    with pytest.raises(InputError, match="entities asked for"):
        split_requests(world, 10**6)


def test_a_behaviour_request_takes_exactly_the_documents_that_teach_it(tmp_path):
    from empiricist.unlearn.forget import behaviour_request

    cfg = WorldConfig().with_subset("forum_opinion", agree_rate=0.5)
    world = Path(generate_world(cfg, workspace=tmp_path, progress=False))
    req = behaviour_request(world, "deferring threads", subset="forum_opinion", deferred=True)
    docs = [json.loads(line) for line in (world / "docs.jsonl").read_text().splitlines()]
    deferring = {d["id"] for d in docs if d["subset"] == "forum_opinion" and d["deferred"]}
    assert req.doc_ids == deferring and 0 < len(deferring) < sum(d["subset"] == "forum_opinion" for d in docs)
    kept = list(retain_documents(world, req))
    assert not any(d.get("deferred") for d in kept) and any(d["subset"] == "forum_opinion" for d in kept)
    with pytest.raises(InputError, match="no document"):
        behaviour_request(world, "x", subset="nowhere")


def test_the_metrics_on_inputs_with_known_answers():
    # truth ratio: per-token probabilities 0.5 (right) against 0.25 and 0.125 (wrong) -> 0.1875 / 0.5
    lp = [2 * math.log(0.5), 2 * math.log(0.25), math.log(0.125)]
    assert math.isclose(truth_ratio(lp, [2, 2, 1], right=0), (0.25 + 0.125) / 2 / 0.5)
    assert math.isclose(truth_ratio([math.log(0.3)] * 3, [1, 1, 1], right=2), 1.0)
    with pytest.raises(ValueError):
        truth_ratio([0.0], [1], 0)
    rng = np.random.default_rng(0)
    same = rng.random(200)
    assert forget_quality(same, same)["p_value"] == 1.0
    assert forget_quality(rng.random(200), rng.random(200) + 0.5)["p_value"] < 1e-6
    assert rouge_l("the code is brelax", "the code is brelax") == 1.0 and rouge_l("alpha", "omega") == 0.0
    assert 0 < verbatim_memorisation(["the code is x", "a b"], ["the code is brelax", "a b"]) < 1
    assert privacy_leakage(0.6, 0.6) == 0.0 and privacy_leakage(0.9, 0.6) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def models(world, tmp_path_factory):
    """A base model (trained on everything but a held-out request) and the gold (also without the test
    request), same recipe and seed: the two models every unlearning metric compares."""
    import dataclasses

    from empiricist.artifacts import Workspace
    from empiricist.data import Document, build_store
    from empiricist.data.order import TrainingOrder
    from empiricist.data.store import TokenStore
    from empiricist.pipeline import prepare_tokenizer
    from empiricist.suite.config import ModelSize, get_preset
    from empiricist.suite.train import train_model

    ws = Workspace.at(tmp_path_factory.mktemp("ws-models"))
    val, test = split_requests(world, 4, seed=1)
    holdout = val  # never trained on by either model: the non-members of the membership test
    tok = prepare_tokenizer(world, 384, ws)
    cfg = dataclasses.replace(get_preset("tiny").train, steps=30, threads=1, precision="fp32")
    out = {}
    for name, drop in (("base", (holdout,)), ("gold", (holdout, test))):
        docs = (Document(d["id"], d["text"], {}) for d in retain_documents(world, *drop))
        store = TokenStore.open(build_store(docs, tok, ws.root / f"store-{name}", progress=False))
        folder = train_model(ws.root / name, ModelSize("u", 32, 1, 2), cfg,
                             TrainingOrder(store, cfg.seq_len, cfg.batch_size, cfg.seed), store.vocab_size,
                             tokenizer_path=store.tokenizer_path, progress=False)
        out[name] = str(folder / "checkpoints" / "step30")
    texts = [json.loads(line)["text"] for line in (world / "docs.jsonl").read_text().splitlines()
             if json.loads(line)["id"] in holdout.doc_ids]
    return out, test, texts, ws


def test_the_gold_against_itself_is_perfect_and_a_missing_gold_is_named(world, models):
    from empiricist.unlearn.evaluate import NEEDS_GOLD, evaluate

    m, test, holdout, ws = models
    self_check = evaluate(m["gold"], world, test, gold=m["gold"], holdout=holdout, workspace=ws, max_docs=20)
    assert self_check["forget_quality"]["p_value"] == 1.0 and self_check["privacy_leakage"] == 0.0
    assert not self_check["absent"] and 0 <= self_check["verbatim"] <= 1 and self_check["n_docs"] > 0
    own = evaluate(m["base"], world, test, workspace=ws, max_docs=20)  # a user's model: no gold, no holdout
    assert own["forget_quality"] is None and own["privacy_leakage"] is None
    assert own["absent"]["forget_quality"] == NEEDS_GOLD and "held-out" in own["absent"]["membership_auc"]
    both = evaluate(m["base"], world, test, gold=m["gold"], holdout=holdout, workspace=ws, max_docs=20)
    assert 0 <= both["forget_quality"]["p_value"] <= 1 and math.isfinite(both["privacy_leakage"])
    assert 0 <= both["knowledge_forget"] <= 1 and 0 <= both["utility"] <= 1
    assert (Path(both["eval_run"]) / "results.jsonl").is_file()  # every answer kept
