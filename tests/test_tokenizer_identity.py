"""Tokenizers are compared by what they encode, not by their file's bytes."""

from __future__ import annotations

import json

import pytest

from empiricist.errors import ArtifactError


def test_a_resaved_tokenizer_is_accepted_and_another_one_refused_with_a_way_out(small_store, tmp_path):
    from conftest import synthetic_texts
    from transformers import PreTrainedTokenizerFast

    from empiricist.data.store import TokenStore
    from empiricist.data.tokenizer import encoding_hash, tokenizer_hash, train_bpe

    store = TokenStore.open(small_store)
    PreTrainedTokenizerFast(tokenizer_file=str(store.tokenizer_path)).save_pretrained(tmp_path / "hf")
    store.check_tokenizer(tmp_path / "hf")  # a model folder holding the tokenizer save_pretrained wrote
    # what re-saving with other library versions does to the file: the other merges spelling,
    # call-time padding, other key order and layout
    doc = json.loads(store.tokenizer_path.read_text())
    merges = doc["model"]["merges"]
    doc["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m.split(" ", 1) for m in merges]
    doc["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None, "pad_id": 0,
                      "pad_type_id": 0, "pad_token": "<|padding|>"}
    (tmp_path / "resaved").mkdir()
    resaved = tmp_path / "resaved" / "tokenizer.json"
    resaved.write_text(json.dumps(dict(reversed(list(doc.items()))), indent=4))
    assert tokenizer_hash(resaved) != store.tokenizer_sha256  # other bytes ...
    assert encoding_hash(resaved) == encoding_hash(store.tokenizer_path)  # ... same encoding
    store.check_tokenizer(resaved)
    from tokenizers import Tokenizer

    text = " ".join(synthetic_texts(20, seed=9))
    assert Tokenizer.from_file(str(resaved)).encode(text).ids == store.tokenizer().encode(text).ids

    doc = json.loads(store.tokenizer_path.read_text())
    doc["model"]["merges"] = doc["model"]["merges"][:-1]  # one merge fewer: encodes differently
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "tokenizer.json").write_text(json.dumps(doc))
    other = train_bpe(synthetic_texts(200, seed=5), 260, tmp_path / "other")
    for bad in (tmp_path / "edited", other):
        with pytest.raises(ArtifactError, match="encodes text differently") as e:
            store.check_tokenizer(bad)
        assert str(store.tokenizer_path) in str(e.value) and "--tokenizer" in str(e.value)
