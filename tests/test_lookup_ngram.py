"""Tests for empiricist.lookup n-gram index and tracing, each query checked against a brute-force scan.

The reference encodes every document's tokens as one character per token and scans with ``str.find``
(documents joined by a character no token maps to, so no match crosses a document boundary). It never
touches the suffix array, so agreement means infini-gram's index, our files and our plumbing are right.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from pathlib import Path

import numpy as np
import pytest

from empiricist.data import Document, TokenStore, build_store, train_bpe
from empiricist.errors import ArtifactError, EmpiricistError, InputError

pytest.importorskip("infini_gram")

from empiricist.lookup import (
    NgramIndex,
    build_ngram_index,
    infinigram,
    trace,
    trace_text,
)

WORDS = ["river", "stone", "lantern", "copper", "meadow", "falcon", "harbor", "quiet", "ember", "violet",
         "orchard", "signal", "winter", "marble", "thistle", "canyon"]
PHRASES = ["the committee approved the northern bridge project in early spring",
           "all volunteers must register at the front desk before noon",
           "copper wire conducts heat and electricity very well"]


def make_docs(n: int = 320, seed: int = 0) -> list[Document]:
    """Short docs of random words with planted repeated phrases, exact duplicates and one empty doc."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        parts = [" ".join(rng.choices(WORDS, k=rng.randint(2, 10)))]
        if rng.random() < 0.35:
            parts.append(rng.choice(PHRASES))
        parts.append(" ".join(rng.choices(WORDS, k=rng.randint(0, 8))))
        text = " ".join(p for p in parts if p)
        if i % 50 == 7:
            text = docs[i - 5].text  # an exact duplicate
        if i == 11:
            text = ""
        docs.append(Document(f"doc-{i}", text, {"n": i, "genre": rng.choice(["news", "story"])}))
    return docs


class Brute:
    """Plain scans over the store's token arrays: the reference every query is checked against."""

    def __init__(self, store: TokenStore) -> None:
        self.docs = [store.doc_tokens(i).tolist() for i in range(store.num_docs)]
        self.vocab_size = store.vocab_size
        self.text = "\U0010ffff".join(self._s(d) for d in self.docs)
        self.starts = []
        pos = 0
        for d in self.docs:
            self.starts.append(pos)
            pos += len(d) + 1

    @staticmethod
    def _s(ids: list[int]) -> str:
        return "".join(chr(0x100 + t) for t in ids)

    def occurrences(self, q: list[int]) -> list[tuple[int, int]]:
        s, out, k = self._s(q), [], self.text.find(self._s(q))
        while k >= 0:
            d = bisect_right(self.starts, k) - 1
            out.append((d, k - self.starts[d]))
            k = self.text.find(s, k + 1)
        return out

    def count(self, q: list[int]) -> int:
        return len(self.occurrences(q))

    def continuations(self, q: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for d, o in self.occurrences(q):
            if o + len(q) < len(self.docs[d]):
                t = self.docs[d][o + len(q)]
                out[t] = out.get(t, 0) + 1
        return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TokenStore:
    root = tmp_path_factory.mktemp("lookup")
    docs = make_docs()
    tok = train_bpe([d.text for d in docs], 360, root / "tokenizer.json")
    return TokenStore.open(build_store(docs, tok, root / "store", progress=False))


@pytest.fixture(scope="module")
def index(store: TokenStore, tmp_path_factory: pytest.TempPathFactory) -> NgramIndex:
    path = build_ngram_index(store, tmp_path_factory.mktemp("idx") / "ngram", progress=False)
    return NgramIndex.open(path, store)


@pytest.fixture(scope="module")
def brute(store: TokenStore) -> Brute:
    return Brute(store)


def sample_queries(brute: Brute, n: int, seed: int) -> list[list[int]]:
    """Present n-grams (some ending in EOS), random id strings, and strings straddling two documents."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        d = brute.docs[rng.randrange(len(brute.docs))]
        o = rng.randrange(len(d))
        out.append(d[o:o + rng.randint(1, 12)])
    out += [[rng.randrange(brute.vocab_size) for _ in range(rng.randint(1, 4))] for _ in range(n // 2)]
    for _ in range(n // 4):
        i = rng.randrange(len(brute.docs) - 1)
        out.append(brute.docs[i][-rng.randint(1, 3):] + brute.docs[i + 1][:rng.randint(1, 3)])
    return out


# ---------------------------------------------------------------- counts and documents
def test_counts_match_brute_force(index: NgramIndex, brute: Brute) -> None:
    queries = sample_queries(brute, 400, seed=1)
    assert any(brute.count(q) == 0 for q in queries) and any(brute.count(q) > 5 for q in queries)
    for q in queries:
        assert index.count(q) == brute.count(q), q


def test_documents_match_brute_force(index: NgramIndex, brute: Brute, store: TokenStore) -> None:
    for q in sample_queries(brute, 120, seed=2):
        found = index.find(q, max_docs=None)
        expected: dict[int, list[int]] = {}
        for d, o in brute.occurrences(q):
            expected.setdefault(d, []).append(o)
        assert found.count == sum(map(len, expected.values()))
        assert found.num_docs == len(expected)
        got = {h.index: list(h.offsets) for h in found.documents}
        assert got == {d: sorted(o) for d, o in expected.items()}
        keys = [(-h.occurrences, h.index) for h in found.documents]
        assert keys == sorted(keys)  # most occurrences first, then lower index
        for h in found.documents[:3]:
            assert h.id == store.doc_id(h.index) and h.meta == store.doc_meta(h.index)
        top = index.documents(q, max_docs=2)
        assert [h.index for h in top] == [h.index for h in found.documents[:2]]


def test_text_queries_use_the_store_tokenizer(index: NgramIndex, store: TokenStore, brute: Brute) -> None:
    tok = store.tokenizer()
    text = " the committee approved the northern bridge"
    ids = tok.encode(text, add_special_tokens=False).ids
    assert index.count(text) == index.count(ids) == brute.count(ids) > 3
    assert index.find(text).query == ids


# ---------------------------------------------------------------- next-token distributions
def brute_ntd(brute: Brute, q: list[int]) -> tuple[int, dict[int, int]]:
    for k in range(len(q), 0, -1):
        cont = brute.continuations(q[-k:])
        if cont:
            return k, cont
    uni: dict[int, int] = {}
    for d in brute.docs:
        for t in d:
            uni[t] = uni.get(t, 0) + 1
    return 0, uni


def test_next_token_distribution_matches_brute_force(index: NgramIndex, brute: Brute) -> None:
    rng = random.Random(3)
    junk = [rng.randrange(brute.vocab_size) for _ in range(80)]  # a repeated random prefix forces back-off
    queries = [[j, j] + q for j, q in zip(junk, sample_queries(brute, 80, seed=4))]
    queries += [brute.docs[5][-3:], [0], brute.docs[40][:4]]  # ends a document; lone EOS; a doc start
    backed_off = 0
    for q in queries:
        k, cont = brute_ntd(brute, q)
        backed_off += 0 < k < len(q)
        got = index.next_token_distribution(q, max_support=10**9)
        assert (got.suffix_len, got.counts, got.approx) == (k, cont, False), q
        assert got.count == sum(cont.values())
        assert abs(sum(got.probs().values()) - 1) < 1e-9
    assert backed_off > 20


def test_next_token_distribution_samples_above_max_support(index: NgramIndex, brute: Brute) -> None:
    q = [brute.docs[0][0]]
    exact = brute.continuations(q)
    got = index.next_token_distribution(q, max_support=4)
    assert got.approx and got.count == sum(exact.values())
    assert set(got.counts) <= set(exact) | {0}


# ---------------------------------------------------------------- CNF (AND of ORs)
def test_cnf_matches_brute_force(index: NgramIndex, brute: Brute) -> None:
    rng = random.Random(5)
    pool = [q for q in sample_queries(brute, 200, seed=6) if 1 <= len(q) <= 3]
    for _ in range(60):
        cnf = [[rng.choice(pool) for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(1, 3))]
        docs = None
        occ: dict[tuple[int, int], None] = {}
        for clause in cnf:
            clause_docs = set()
            for term in clause:
                for d, o in brute.occurrences(term):
                    clause_docs.add(d)
                    occ[(d, o)] = None
            docs = clause_docs if docs is None else docs & clause_docs
        assert index.count_cnf(cnf) == len(docs), cnf
        found = index.find_cnf(cnf, max_docs=None)
        assert found.num_docs == len(docs)
        assert {h.index for h in found.documents} == docs
        assert found.count == sum(1 for d, _ in occ if d in docs)
    # Text terms; each document holds at most one planted phrase, so these two never meet.
    either = {d for t in (" committee", " volunteers") for d, _ in brute.occurrences(index.ids(t))}
    assert index.count_cnf([[" committee", " volunteers"]]) == len(either) > 0
    assert index.count_cnf([[" committee"], [" volunteers"]]) == 0


# ---------------------------------------------------------------- tracing
def brute_spans(brute: Brute, seq: list[int], min_len: int, max_freq: int) -> list[tuple[int, int, int]]:
    """Left- and right-maximal substrings of ``seq`` found in some document, then length/frequency filters."""
    present = lambda i, j: brute.count(seq[i:j]) > 0
    out = []
    for i in range(len(seq)):
        j = i
        while j < len(seq) and present(i, j + 1):
            j += 1
        if j > i and (i == 0 or not present(i - 1, j)) and j - i >= min_len:
            c = brute.count(seq[i:j])
            if c <= max_freq:
                out.append((i, j, c))
    return out


def make_output(brute: Brute, rng: random.Random, n_pieces: int = 6) -> list[int]:
    """Verbatim snippets of training documents glued together with random tokens in between."""
    out: list[int] = []
    for _ in range(n_pieces):
        d = brute.docs[rng.randrange(len(brute.docs))]
        o = rng.randrange(len(d))
        out += d[o:o + rng.randint(2, 14)]
        out += [rng.randrange(1, brute.vocab_size) for _ in range(rng.randint(0, 3))]
    return out


@pytest.mark.parametrize("min_len,max_freq", [(1, 10**6), (3, 1000), (4, 3), (6, 1)])
def test_trace_spans_match_brute_force(index: NgramIndex, brute: Brute, min_len: int, max_freq: int) -> None:
    rng = random.Random(min_len * 100 + max_freq % 97)
    n_spans = 0
    for _ in range(6):
        out = make_output(brute, rng)
        got = trace(index, out, min_len=min_len, max_freq=max_freq, max_docs=10**6)
        expected = brute_spans(brute, out, min_len, max_freq)
        assert [(s.start, s.end, s.count) for s in got.spans] == expected
        n_spans += len(expected)
        for s in got.spans:
            assert s.length == s.end - s.start and s.prompt_tokens == 0
            assert {h.index for h in s.documents} == {d for d, _ in brute.occurrences(out[s.start:s.end])}
            assert s.text == index.decode(out[s.start:s.end])
    assert n_spans >= 6


def test_trace_with_prompt_reports_output_coordinates(index: NgramIndex, brute: Brute) -> None:
    rng = random.Random(9)
    for _ in range(6):
        prompt, out = make_output(brute, rng, 3), make_output(brute, rng, 3)
        got = trace(index, out, prompt_ids=prompt, min_len=2, max_freq=50)
        p = len(prompt)
        expected = [(max(i - p, 0), j - p, c, max(p - i, 0))
                    for i, j, c in brute_spans(brute, prompt + out, 2, 50) if j > p]
        assert [(s.start, s.end, s.count, s.prompt_tokens) for s in got.spans] == expected
        assert got.prompt_len == p and got.output_ids == out


def test_trace_ranks_documents_by_spans_then_length(index: NgramIndex, brute: Brute,
                                                    store: TokenStore) -> None:
    phrase = index.ids(PHRASES[0])
    out = phrase[:6] + [7, 7] + phrase[4:] + index.ids(" copper wire conducts heat")
    got = trace(index, out, min_len=3, max_freq=1000, max_docs=5)
    spans_of: dict[int, list[int]] = {}
    for k, s in enumerate(got.spans):
        for d in {d for d, _ in brute.occurrences(out[s.start:s.end])}:
            spans_of.setdefault(d, []).append(k)
    key = {d: (-len(ks), -sum(got.spans[k].length for k in ks), d) for d, ks in spans_of.items()}
    assert [h.index for h in got.documents] == sorted(key, key=key.__getitem__)[:5]
    for h in got.documents:
        assert list(h.spans) == spans_of[h.index] and h.score == len(spans_of[h.index])
        assert h.meta == store.doc_meta(h.index)
    for s in got.spans:
        members = {d for d, ks in spans_of.items() if got.spans.index(s) in ks}
        assert [h.index for h in s.documents] == sorted(members, key=key.__getitem__)[:5]
    as_dict = got.to_dict()
    assert as_dict["spans"][0]["documents"][0]["id"].startswith("doc-") and 0 < as_dict["coverage"] <= 1
    got = trace_text(index, "We heard that all volunteers must register at the front desk today", min_len=4)
    assert any("volunteers must register at the front desk" in s.text for s in got.spans)




# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("query", ["", [], "vocab_size", [10**9], [-1], [1.5], [True], None, {"a": 1}, b"ab",
                                   list(range(1, 300)) * 4])
def test_bad_queries_are_refused(index: NgramIndex, query: object) -> None:
    query = [index.vocab_size] if query == "vocab_size" else query
    with pytest.raises(InputError):
        index.count(query)  # type: ignore[arg-type]


def test_bad_cnf_and_options_are_refused(index: NgramIndex) -> None:
    calls = [lambda c=c: index.count_cnf(c) for c in ([], [[]], [[1, 2]], "abc", [["a"], []], [[[999]]])]
    calls += [lambda: index.next_token_distribution([1], max_support=0), lambda: index.find([1], max_docs=-1),
              lambda: trace_text(index, [1, 2, 3])]  # type: ignore[arg-type]
    calls += [lambda kw=kw: trace(index, [1, 2, 3], **kw)
              for kw in ({"min_len": 0}, {"max_freq": 0}, {"max_docs": -1}, {"min_len": True})]
    for call in calls:
        with pytest.raises(InputError):
            call()
    assert issubclass(InputError, EmpiricistError)


# ---------------------------------------------------------------- artifact behaviour
def test_index_of_another_store_or_tokenizer_is_refused(index: NgramIndex, store: TokenStore,
                                                        tmp_path: Path) -> None:
    docs = make_docs(40, seed=1)
    same_tok = TokenStore.open(build_store(docs, store.tokenizer_path, tmp_path / "a", progress=False))
    with pytest.raises(ArtifactError, match="another token store"):
        NgramIndex.open(index.path, same_tok)
    tok = train_bpe([d.text for d in docs], 300, tmp_path / "tokenizer.json")
    other_tok = TokenStore.open(build_store(docs, tok, tmp_path / "b", progress=False))
    with pytest.raises(ArtifactError, match="tokenizer"):
        NgramIndex.open(index.path, other_tok)
    with pytest.raises(ArtifactError, match="another store"):
        build_ngram_index(same_tok, index.path, progress=False)
    manifest = index.manifest
    assert manifest["kind"] == "ngram_index" and manifest["inputs"]["tokenizer"] == store.tokenizer_sha256


def test_interrupted_build_leaves_nothing_complete(store: TokenStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = infinigram.run_all

    def interrupted(commands: list[list[str]]) -> None:
        if commands[0][1] == "merge":
            raise KeyboardInterrupt
        real(commands)

    monkeypatch.setattr(infinigram, "run_all", interrupted)
    out = tmp_path / "ngram"
    with pytest.raises(KeyboardInterrupt):
        build_ngram_index(store, out, progress=False)
    # nothing left but the (hidden, never hashed) build lock
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] in ([], [".ngram.lock"])
    with pytest.raises(ArtifactError, match="does not exist"):
        NgramIndex.open(out, store)
    out.mkdir()
    (out / "tokenized.0").write_bytes(b"\xff\xff")  # a half-written folder without its manifest
    with pytest.raises(ArtifactError, match="incomplete"):
        NgramIndex.open(out, store)


def test_multi_slice_build_and_confusing_path(store: TokenStore, brute: Brute, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Several indexer slices merged (small overlap), in a folder whose name would confuse the engine."""
    monkeypatch.setattr(infinigram, "HACK_BYTES", 1024)
    calls: list[str] = []
    real = infinigram.run_all
    monkeypatch.setattr(infinigram, "run_all", lambda cmds: (calls.extend(c[1] for c in cmds), real(cmds)))
    path = build_ngram_index(store, tmp_path / "table-offset-tokenized", progress=False, cpus=3)
    assert calls.count("make-part") == 3 and calls[-2:] == ["merge", "concat"]
    ix = NgramIndex.open(path, store)
    ranks = np.asarray(ix._shards[0].ptrs(0, ix.num_tokens + ix.num_docs)) // ix.width
    assert np.array_equal(np.sort(ranks), np.arange(ix.num_tokens + ix.num_docs))
    for q in sample_queries(brute, 100, seed=8):
        assert ix.count(q) == brute.count(q)
    assert build_ngram_index(store, path, progress=False) == path  # reused, not rebuilt
    ix.close()


def test_default_location_is_in_the_workspace(store: TokenStore, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPIRICIST_HOME", str(tmp_path / "ignored"))  # the library never reads it
    path = build_ngram_index(store, progress=False, workspace=tmp_path)
    assert path.parent == tmp_path / "indexes" and not (store.path / "ngram").exists()
    assert not (tmp_path / "ignored").exists()
    with NgramIndex.open(None, store, workspace=tmp_path) as ix:
        assert ix.path == path and ix.count([0]) == store.num_docs


def test_corrupted_files_are_refused(store: TokenStore, tmp_path: Path) -> None:
    path = build_ngram_index(store, tmp_path / "ngram", progress=False)
    with open(path / "table.0", "r+b") as f:
        f.write(b"\x00\x01")
    with pytest.raises(ArtifactError, match="corrupted"):
        NgramIndex.open(path, store, verify_files=True)
    with pytest.raises(ArtifactError, match="table.0 does not match its sha256"):
        NgramIndex.open(path, store)  # the cheap check on every open catches it too
    with open(path / "table.0", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(ArtifactError, match="bytes, the manifest says"):
        NgramIndex.open(path, store)


class FakeStore:
    """The store attributes the index uses, over u32 token ids (a vocab beyond 65535) without a tokenizer."""

    def __init__(self, root: Path, docs: list[list[int]], vocab_size: int) -> None:
        self.path, self.vocab_size, self.eos_id = root, vocab_size, 0
        self.dtype, self.tokenizer_sha256 = np.dtype(np.uint32), "f" * 64
        toks = np.concatenate([np.asarray(d + [0], dtype=np.uint32) for d in docs])
        self.doc_offsets = np.concatenate([[0], np.cumsum([len(d) + 1 for d in docs])]).astype(np.int64)
        self.num_tokens, self.num_docs = int(toks.size), len(docs)
        self.tokens = lambda a, b: toks[int(a):int(b)]
        self.doc_tokens = lambda i: self.tokens(self.doc_offsets[i], self.doc_offsets[i + 1])
        self.doc_id, self.doc_meta = (lambda i: f"u{i}"), (lambda i: {"i": i})
        root.mkdir(parents=True, exist_ok=True)
        (root / "manifest.json").write_text('{"kind": "token_store"}')


def test_u32_tokens(tmp_path: Path) -> None:
    """4-byte tokens: indexed where the machine has the RAM infini-gram's indexer asks for, else refused."""
    rng = random.Random(11)
    big = [70_000 + k for k in range(40)]
    docs = [[rng.choice(big) for _ in range(rng.randint(1, 30))] for _ in range(150)]
    store = FakeStore(tmp_path / "store", docs, vocab_size=70_100)
    if infinigram.physical_memory() < infinigram.U32_MIN_MEMORY:
        with pytest.raises(ArtifactError, match="4-byte tokens"):
            build_ngram_index(store, tmp_path / "ngram", progress=False)  # type: ignore[arg-type]
        assert not (tmp_path / "ngram").exists()
        return
    path = build_ngram_index(store, tmp_path / "ngram", progress=False)  # type: ignore[arg-type]
    ix = NgramIndex.open(path, store)  # type: ignore[arg-type]
    assert ix.manifest["engine"]["token_dtype"] == "u32" and ix.width == 4
    brute = Brute(store)  # type: ignore[arg-type]
    for q in sample_queries(brute, 150, seed=12):
        assert ix.count(q) == brute.count(q)
    out = make_output(brute, rng)
    got = trace(ix, out, min_len=2, max_freq=10**6, max_docs=3)
    assert [(s.start, s.end, s.count) for s in got.spans] == brute_spans(brute, out, 2, 10**6)
    k, cont = brute_ntd(brute, docs[3][:2])
    ntd = ix.next_token_distribution(docs[3][:2])
    assert (ntd.suffix_len, ntd.counts) == (k, cont)
