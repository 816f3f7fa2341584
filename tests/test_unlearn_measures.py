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
