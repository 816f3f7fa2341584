"""Tests for contamination detection, membership inference and retrieval ground truth on a tiny world."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from empiricist.data import TokenStore, build_store, iter_documents, train_bpe
from empiricist.errors import ArtifactError, InputError

pytest.importorskip("infini_gram")

from empiricist.lookup import NgramIndex, build_ngram_index
from empiricist.lookup.contamination import (
    ItemContamination,
    contamination_report,
    is_contaminated,
    split_clean_contaminated,
)
from empiricist.lookup.groundtruth import (
    evaluate_contamination,
    planted_ids,
    rank_metrics,
    retrieval_groundtruth,
    to_markdown,
)
from empiricist.lookup.membership import membership_scores, min_k_prob, roc_auc, token_logprobs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    from empiricist.world import World, WorldConfig, generate_world

    config = WorldConfig.preset("tiny", plant_rate=0.1)
    return World.open(generate_world(config, out_dir=tmp_path_factory.mktemp("w") / "world", progress=False))


@pytest.fixture(scope="module")
def store(world, tmp_path_factory: pytest.TempPathFactory) -> TokenStore:
    root = tmp_path_factory.mktemp("store")
    tok = train_bpe((d.text for d in iter_documents(world.path)), 2000, root / "tok")
    return TokenStore.open(build_store(iter_documents(world.path), tok, root / "store", progress=False))


@pytest.fixture(scope="module")
def index(store: TokenStore, tmp_path_factory: pytest.TempPathFactory) -> NgramIndex:
    path = build_ngram_index(store, tmp_path_factory.mktemp("ng") / "idx", progress=False)
    return NgramIndex.open(path, store)


@pytest.fixture(scope="module")
def handle(store: TokenStore):
    from transformers import PreTrainedTokenizerFast

    from empiricist.suite.config import ModelSize
    from empiricist.suite.handles import ModelHandle
    from empiricist.suite.model import build_model

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(store.tokenizer_path), eos_token="<|endoftext|>")
    tokenizer.pad_token = tokenizer.eos_token
    model = build_model(ModelSize("t", 16, 1, 2), store.vocab_size, 128, seed=0).eval()
    return ModelHandle(model, tokenizer, {"name": "tiny-random", "weights_sha256": "c" * 64})


@pytest.fixture(scope="module")
def reports(world, store, index) -> dict[str, list[ItemContamination]]:
    """Both eval files' reports under the any-match rule; other rules are re-decided from the counts."""
    return {name: contamination_report(world.eval_items(name), store, index, min_fraction=0.0)
            for name in ("fact_qa", "sycophancy")}


@pytest.mark.parametrize("name", ["fact_qa", "sycophancy"])
def test_detector_finds_exactly_the_planted_items(world, reports, name: str) -> None:
    planted = planted_ids(world)[name]
    assert len(planted) >= 20
    report = reports[name]
    flagged = {r.item_id for r in report if is_contaminated(r.n_matching, r.n_ngrams)}  # the default rule
    recall = len(flagged & planted) / len(planted)
    precision = len(flagged & planted) / max(len(flagged), 1)
    assert recall >= 0.9 and precision >= 0.9
    assert not flagged - planted  # every item that was not planted is clean
    docs_of = {row["item_id"]: set(row["doc_ids"]) for row in world.planted}
    for r in report:
        if r.item_id in planted:  # the whole item occurs verbatim, in the document it was planted in
            assert r.longest_overlap == r.n_tokens and r.n_matching == r.n_ngrams
            assert docs_of[r.item_id] <= {d.id for d in r.documents}
            assert all(d.meta["subset"] == "planted" for d in r.documents)


def test_split_clean_contaminated_uses_the_default_rule(world, store, index) -> None:
    items = world.eval_items("fact_qa")
    clean, dirty = split_clean_contaminated(items, store, index)
    assert set(dirty) == planted_ids(world)["fact_qa"]
    assert clean + dirty != [] and set(clean) | set(dirty) == {it["id"] for it in items}
    assert not set(clean) & set(dirty) and clean == [it["id"] for it in items if it["id"] not in dirty]


def test_any_match_rule_flags_template_neighbours(world, reports) -> None:
    flagged = {r.item_id for r in reports["sycophancy"] if r.contaminated}
    planted = planted_ids(world)["sycophancy"]
    assert planted <= flagged  # recall stays perfect, precision does not
    assert len(flagged) > 2 * len(planted)


def test_overlap_counts_on_hand_made_texts(world, store, index) -> None:
    doc = store.doc_text(5)
    inside = doc[: min(len(doc), 200)]
    r = contamination_report([inside, "zzqx vvkj wwpl qqrt"], store, index, n=5, max_docs=3)
    assert r[0].contaminated and r[0].longest_overlap == r[0].n_tokens and r[0].n_matching == r[0].n_ngrams
    assert store.doc_id(5) in {d.id for d in r[0].documents} and r[0].longest_text == inside
    assert not r[1].contaminated and r[1].longest_overlap < 5 and r[1].documents == []
    assert r[1].item_id == "1" and r[1].to_dict()["n_matching"] == 0


def test_bad_contamination_input(world, store, index, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="none of the text fields"):
        contamination_report([{"id": "x", "prompt": "hi"}], store, index)
    with pytest.raises(InputError, match="empty"):
        contamination_report(["   "], store, index)
    with pytest.raises(InputError, match="min_fraction"):
        contamination_report(["a b"], store, index, min_fraction=2)
    docs = [d for _, d in zip(range(40), iter_documents(world.path))]
    other = TokenStore.open(build_store(docs, store.tokenizer_path, tmp_path / "other", progress=False))
    with pytest.raises(ArtifactError):
        contamination_report(["a b"], other, index)
    with pytest.raises(ArtifactError, match="another token store"):
        NgramIndex.open(index.path, other)


def _brute_logprobs(model, ids: list[int]) -> np.ndarray:
    """log p(ids[t] | ids[:t]) one prefix at a time: no batching, no padding."""
    out = []
    with torch.no_grad():
        for t in range(1, len(ids)):
            logits = model(input_ids=torch.tensor([ids[:t]])).logits[0, -1].double()
            out.append(float(torch.log_softmax(logits, -1)[ids[t]]))
    return np.array(out)


def test_membership_scores_match_brute_force(world, handle) -> None:
    items = world.eval_items("fact_qa")[:6] + world.eval_items("sycophancy")[:3]
    scores = membership_scores(handle, items, k=0.2, batch_tokens=64)
    for item, s in zip(items, scores):
        text = f"{item['question']} {item['answer']}" if "answer" in item else item["question"]
        ids = [0] + handle.tokenizer(text, add_special_tokens=False)["input_ids"]
        lp = _brute_logprobs(handle.model, ids)
        m = max(1, int(0.2 * len(lp)))
        assert s.item_id == item["id"] and s.n_tokens == len(lp)
        assert s.loss == pytest.approx(-lp.mean(), abs=1e-4)
        assert s.min_k_prob == pytest.approx(np.sort(lp)[:m].mean(), abs=1e-4)
        assert s.zlib_ratio == pytest.approx(-lp.mean() / len(zlib.compress(text.encode())), abs=1e-6)
        assert s.scores() == {"min_k": s.min_k_prob, "loss": -s.loss, "zlib": -s.zlib_ratio}
    assert min_k_prob(np.array([-1.0, -5.0, -3.0, -2.0, -4.0]), 0.4) == pytest.approx(-4.5)
    with pytest.raises(InputError, match="context"):
        token_logprobs(handle.model, handle.tokenizer, ["word " * 200])


def test_roc_auc_against_pair_counting() -> None:
    rng = np.random.default_rng(0)
    pos, neg = np.round(rng.normal(1, 1, 30), 1), np.round(rng.normal(0, 1, 40), 1)  # rounded: ties
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert roc_auc(pos, neg) == pytest.approx(pairs)
    assert roc_auc([2, 3], [0, 1]) == 1.0 and roc_auc([0], [1]) == 0.0 and np.isnan(roc_auc([], [1]))


def test_evaluate_contamination_rows(world, store, index, handle) -> None:
    rows = evaluate_contamination(world, store, index, [handle])
    detector = {(r["eval"], r["method"]): r for r in rows if r["model"] is None}
    for name in ("fact_qa", "sycophancy"):
        best = detector[(name, "13-gram overlap: >=80% match (default)")]
        assert best["precision"] >= 0.9 and best["recall"] >= 0.9
    aucs = [r for r in rows if r["model"] == "tiny-random"]
    assert len(aucs) == 6 and all(0.0 <= r["auc"] <= 1.0 for r in aucs)
    table = to_markdown(rows)
    assert table.startswith("| eval |") and "membership: min-20% prob" in table and "—" in table


def test_retrieval_groundtruth_separates_verbatim_from_paraphrase(world, store, index,
                                                                  tmp_path: Path) -> None:
    from empiricist.lookup.search import SearchIndex, build_search_index

    bm25 = SearchIndex.open(build_search_index(store, "bm25", tmp_path / "bm25", progress=False), store)
    rows = retrieval_groundtruth(world, store, {"trace": index, "bm25": bm25}, max_items=25, query="prompt")
    by = {(r["method"], r["facts"]): r for r in rows}
    assert set(by) == {(m, f) for m in ("trace", "bm25") for f in ("verbatim", "paraphrase-only")}
    assert all(r["n_items"] == 25 for r in rows)
    # "<entity> was born in <city>" is in the corpus only for facts ever stated with that template
    assert by[("trace", "verbatim")]["hit@10"] >= 0.6
    assert by[("trace", "paraphrase-only")]["hit@10"] <= 0.2
    assert by[("bm25", "verbatim")]["hit@10"] >= 0.8 and by[("bm25", "paraphrase-only")]["hit@10"] >= 0.8
    assert "| bm25 | paraphrase-only | prompt | 25 |" in to_markdown(rows)
    assert rank_metrics(["a", "b", "c"], {"b", "z"}, 3) == {"hit": 1.0, "recall": 0.5, "precision": 1 / 3,
                                                            "rr": 0.5}
