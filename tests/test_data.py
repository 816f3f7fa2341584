"""Tests for empiricist.data: readers, duplicates, tokenizers and the token store (tiny synthetic data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from empiricist.artifacts import write_manifest
from empiricist.data import (
    Document,
    TokenStore,
    build_store,
    build_store_from_path,
    detect_format,
    eos_id,
    find_duplicates,
    iter_documents,
    load_tokenizer,
    save_hf_tokenizer,
    tokenizer_hash,
    train_bpe,
)
from empiricist.errors import ArtifactError, InputError

TEXTS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman twice.",
    "Paris is the capital of France.",
    "",
    "Numbers 1 2 3 and symbols <|endoftext|> inside text.",
    "The cat sat on the mat.",
    "Water boils at 100 degrees Celsius at sea level.",
]


def corpus(n: int = 60) -> list[str]:
    return [f"{TEXTS[i % len(TEXTS)]} Sentence {i} about topic {i % 7}." for i in range(n)]


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_bpe(corpus(200) + TEXTS, 400, tmp_path_factory.mktemp("tok") / "tokenizer.json")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def docs_of(texts: list[str]) -> list[Document]:
    return [Document(f"d{i}", t, {"n": i}) for i, t in enumerate(texts)]


# ---------------------------------------------------------------- readers
def test_txt_folder_recursive_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "notes.md").write_text("ignored")
    docs = list(iter_documents(tmp_path))
    assert [(d.id, d.text) for d in docs] == [("a.txt", "first"), ("b/two.txt", "second"), ("empty.txt", "")]
    assert [d.id for d in iter_documents(tmp_path)] == [d.id for d in docs]  # stable


def test_jsonl_ids_and_meta(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "c.jsonl", [{"id": "x", "text": "hi", "genre": "news"},
                                           {"text": "no id", "facts": [1, 2]}])
    with open(f, "a") as fh:
        fh.write("\n")  # blank lines are fine
    docs = list(iter_documents(f))
    assert [d.id for d in docs] == ["x", "c.jsonl:2"]
    assert docs[0].meta == {"genre": "news"} and docs[1].meta == {"facts": [1, 2]}
    gz = tmp_path / "g" / "d.jsonl.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(b'{"body": "zipped", "uid": 7}\n'))
    (d,) = iter_documents(gz.parent, text_field="body", id_field="uid")
    assert (d.id, d.text) == ("7", "zipped")


def test_parquet_streams_rows(tmp_path: Path) -> None:
    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "lang": ["en", "fr", "de"]}), f, row_group_size=2)
    docs = list(iter_documents(f))
    assert [d.id for d in docs] == ["p.parquet:0", "p.parquet:1", "p.parquet:2"]
    assert docs[2].meta == {"lang": "de"}
    pq.write_table(pa.table({"text": ["a", None]}), f)
    with pytest.raises(InputError) as e:
        list(iter_documents(f))
    assert (e.value.path, e.value.row, e.value.field) == (str(f), 1, "text")
    with pytest.raises(InputError, match="no such column"):
        list(iter_documents(f, text_field="body"))


def test_hf_saved_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["one", "two"], "id": ["u1", "u2"], "k": [1, 2]}).save_to_disk(
        str(tmp_path / "ds"))
    assert detect_format(tmp_path / "ds") == "hf"
    docs = list(iter_documents(tmp_path / "ds"))
    assert [(d.id, d.text, d.meta) for d in docs] == [("u1", "one", {"k": 1}), ("u2", "two", {"k": 2})]


def test_world_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "docs.jsonl", [{"id": "w0", "text": "fact", "genre": "wiki", "subset": "train"}])
    (tmp_path / "other.jsonl").write_text("not read")
    write_manifest(tmp_path, "world", {"seed": 0})
    assert detect_format(tmp_path) == "world"
    (d,) = iter_documents(tmp_path)
    assert d.meta == {"genre": "wiki", "subset": "train"}


def test_bad_inputs_are_located(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(InputError) as e:
        list(iter_documents(f))
    assert (e.value.path, e.value.line) == (str(f), 2) and "malformed" in str(e.value)
    for record, msg in [({"body": "x"}, "missing"), ({"text": 5}, "must be a string")]:
        write_jsonl(f, [{"text": "ok"}, record])
        with pytest.raises(InputError, match=msg) as e:
            list(iter_documents(f))
        assert (e.value.path, e.value.line, e.value.field) == (str(f), 2, "text")
        assert "bad.jsonl" in str(e.value) and "line 2" in str(e.value)
    write_jsonl(f, [{"id": "a", "text": "1"}, {"id": "a", "text": "2"}])
    with pytest.raises(InputError, match=r"duplicate document id 'a'.*bad.jsonl:1.*bad.jsonl:2"):
        list(iter_documents(f))
    (tmp_path / "empty.jsonl").write_text("")
    assert list(iter_documents(tmp_path / "empty.jsonl")) == []
    with pytest.raises(InputError, match="no such file"):
        list(iter_documents(tmp_path / "missing.jsonl"))


def test_find_duplicates() -> None:
    docs = docs_of(["a b", "c", "a b", "a  b\n", "c"])
    assert find_duplicates(docs) == [["d0", "d2"], ["d1", "d4"]]
    assert find_duplicates(docs, normalize_whitespace=True) == [["d0", "d2", "d3"], ["d1", "d4"]]


# ---------------------------------------------------------------- tokenizer
def test_bpe_deterministic_and_round_trips(tmp_path: Path, tok_path: Path) -> None:
    again = train_bpe(iter(corpus(200) + TEXTS), 400, tmp_path / "again")
    assert again.name == "tokenizer.json" and again.read_bytes() == tok_path.read_bytes()
    assert tokenizer_hash(again) == tokenizer_hash(tok_path)
    tok = load_tokenizer(tok_path)
    assert eos_id(tok) == 0 and tok.token_to_id("<|padding|>") == 1
    assert 258 < tok.get_vocab_size() <= 400
    text = "Héllo wörld — unseen ☃ text\n\ttabs"
    assert tok.decode(tok.encode(text).ids) == text
    with pytest.raises(InputError, match="vocab_size"):
        train_bpe(["x"], 10, tmp_path / "tiny.json")


def test_load_tokenizer_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"not": "a tokenizer"}')
    with pytest.raises(InputError, match="not a valid tokenizer"):
        load_tokenizer(tmp_path)
    with pytest.raises(InputError, match="no tokenizer.json"):
        load_tokenizer(tmp_path / "nope")


def test_save_hf_tokenizer(tmp_path: Path, tok_path: Path) -> None:
    from transformers import AutoTokenizer

    out = save_hf_tokenizer(tok_path, tmp_path / "model")
    assert (out / "tokenizer.json").read_bytes() == tok_path.read_bytes()
    hf = AutoTokenizer.from_pretrained(str(out))
    assert hf.eos_token_id == 0 and hf.pad_token_id == 1
    assert hf("The cat")["input_ids"] == load_tokenizer(tok_path).encode("The cat").ids


# ---------------------------------------------------------------- token store
def test_store_round_trip(tmp_path: Path, tok_path: Path) -> None:
    texts = corpus(40) + TEXTS
    docs = docs_of(texts[:-1]) + [Document("last", texts[-1], {"k": "v"})]
    out = build_store(docs, tok_path, tmp_path / "store", shard_tokens=60, batch_docs=7, progress=False)
    st = TokenStore.open(out)
    tok = st.tokenizer()
    assert st.dtype == np.uint16 and st.num_docs == len(texts) and len(st.manifest["shards"]) > 1
    assert st.doc_offsets.dtype == np.int64 and st.doc_offsets[0] == 0 and st.doc_offsets[-1] == st.num_tokens
    for i, text in enumerate(texts):
        toks = st.doc_tokens(i)
        assert toks[-1] == st.eos_id == 0 and st.eos_id not in toks[:-1]
        assert tok.decode(toks[:-1].tolist(), skip_special_tokens=False) == text
        assert st.doc_text(i) == text
        assert st.doc_of_token(st.doc_offsets[i]) == i and st.doc_of_token(st.doc_offsets[i + 1] - 1) == i
    # a global range across every shard equals the concatenated documents
    whole = st.tokens(0, st.num_tokens)
    assert np.array_equal(whole, np.concatenate([st.doc_tokens(i) for i in range(st.num_docs)]))
    assert np.array_equal(st.tokens(5, 130), whole[5:130])
    last = len(texts) - 1
    assert (st.doc_index("last"), st.doc_id(3), st.doc_meta(last)) == (last, "d3", {"k": "v"})
    rec = st.docs([2, 0])
    assert [r["id"] for r in rec] == ["d2", "d0"] and rec[0]["n_tokens"] == len(st.doc_tokens(2))
    assert np.array_equal(st.doc_of_token(np.array([0, st.num_tokens - 1])), [0, st.num_docs - 1])
    with pytest.raises(IndexError):
        st.tokens(0, st.num_tokens + 1)
    assert st.manifest["inputs"]["tokenizer"] == st.tokenizer_sha256 == tokenizer_hash(tok_path)
    assert st.tokenizer_path.read_bytes() == tok_path.read_bytes()
    fewer = TokenStore.open(build_store(docs[:3], tok_path, tmp_path / "s3", shard_tokens=60, batch_docs=7,
                                        progress=False))
    assert fewer.manifest["config_hash"] == st.manifest["config_hash"] and fewer.fingerprint != st.fingerprint
    st.verify()


def test_store_dedupe_and_from_path(tmp_path: Path, tok_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": t, "i": i} for i, t in enumerate(TEXTS)])
    out = build_store_from_path(src, tok_path, tmp_path / "s", dedupe=True, progress=False)
    st = TokenStore.open(out)
    assert st.num_docs == len(TEXTS) - 1
    assert st.manifest["duplicates"]["kept_copy_of"] == {"c.jsonl:6": "c.jsonl:1"}
    assert st.manifest["source"]["format"] == "jsonl" and st.manifest["source_docs"] == len(TEXTS)
    with pytest.raises(ArtifactError, match="already exists"):
        build_store_from_path(src, tok_path, out, progress=False)


def test_uint32_for_large_vocab(tmp_path: Path) -> None:
    # byte alphabet placed above 65535 so every token id would overflow uint16
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<|endoftext|>": 0} | {f"filler{i}": i for i in range(1, 70_000)}
    vocab |= {ch: 70_000 + j for j, ch in enumerate(sorted(alphabet))}
    big = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    big.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    big.decoder = decoders.ByteLevel()
    big.add_special_tokens(["<|endoftext|>"])
    big.save(str(tmp_path / "big.json"))
    st = TokenStore.open(build_store(docs_of(["hi there", "ok"]), tmp_path / "big.json", tmp_path / "s",
                                     progress=False))
    assert st.dtype == np.uint32 and st.vocab_size > 65535
    assert st.doc_tokens(0)[:-1].min() >= 70_000
    assert st.tokenizer().decode(st.doc_tokens(0)[:-1].tolist()) == "hi there"


def test_tokenizer_mismatch_refused(tmp_path: Path, tok_path: Path) -> None:
    st = TokenStore.open(build_store(docs_of(TEXTS[:3]), tok_path, tmp_path / "s", progress=False))
    st.check_tokenizer(tok_path)
    st.check_tokenizer(st.tokenizer_sha256)
    other = train_bpe(corpus(50), 300, tmp_path / "other.json")
    with pytest.raises(ArtifactError, match="encodes text differently"):
        st.check_tokenizer(other)
    with pytest.raises(ArtifactError, match="but got " + "0" * 64):
        st.check_tokenizer("0" * 64)


def test_interrupted_build_leaves_nothing(tmp_path: Path, tok_path: Path) -> None:
    def docs():
        yield from docs_of(TEXTS)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        build_store(docs(), tok_path, tmp_path / "s", batch_docs=2, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArtifactError):
        TokenStore.open(tmp_path / "s")
    with pytest.raises(InputError, match="no documents"):
        build_store([], tok_path, tmp_path / "s", progress=False)
    with pytest.raises(InputError, match="duplicate document id"):
        build_store([Document("a", "x"), Document("a", "y")], tok_path, tmp_path / "s", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_verify_detects_flipped_byte(tmp_path: Path, tok_path: Path) -> None:
    st = TokenStore.open(build_store(docs_of(TEXTS), tok_path, tmp_path / "s", progress=False))
    shard = st.path / st.manifest["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[3] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="tokens-00000.bin"):
        st.verify()
