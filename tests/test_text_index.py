"""The text index counts what the documents' text holds: checked against independent counts and grep."""

from __future__ import annotations

import json
import random
import re
import subprocess

import pytest
from conftest import run_cli

from empiricist.errors import ArtifactError, InputError

PIECES = ["Mark Twain", "computers", "computer", "the river", "Lisbon", "naïve café", "  ", "\t\t-- ", "\n",
          "aaa", "abab", "The", "THE", "x", "-- quote", "dé", "42", ", ", ". "]


def _texts(n: int = 400, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) + rng.choice(["", " ", "  ", "\t", "\n"]) for _ in range(rng.randint(3, 40)))
            for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from empiricist.data import Document, build_store, train_bpe
    from empiricist.data.store import TokenStore

    root = tmp_path_factory.mktemp("text")
    texts = _texts()
    tok = train_bpe(texts, 320, root / "tok")
    store = TokenStore.open(build_store((Document(f"d{i}", t, {"n": i % 3}) for i, t in enumerate(texts)), tok,
                                        root / "store", progress=False))
    return texts, store, root


def _overlapping(text: str, q: str) -> int:
    return sum(1 for _ in re.finditer(f"(?={re.escape(q)})", text))


def _substrings(texts: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        t = rng.choice(texts)
        a = rng.randrange(len(t))
        q = t[a:a + rng.randint(1, 18)]
        if q and "\x00" not in q:
            out.append(q)
    return out


def test_counts_equal_an_independent_count_for_hundreds_of_random_substrings(corpus):
    from empiricist.lookup.ngram import open_default_ngram
    from empiricist.lookup.text import TextIndex

    texts, store, root = corpus
    index = TextIndex.open(store, progress=False, workspace=root)
    ngram = open_default_ngram(store, root, progress=False)
    queries = _substrings(texts, 400, seed=0)
    differ = 0
    for q in queries:
        want = [_overlapping(t, q) for t in texts]
        assert index.count(q) == sum(want), q
        assert index.doc_counts(q) == {i: c for i, c in enumerate(want) if c}, q
        tokens = ngram.count(q)
        assert tokens <= sum(want), q  # one tokenisation of q is one of the ways q can occur
        differ += tokens != sum(want)
    assert differ > 100  # the sample is full of substrings that straddle or sit inside tokens


def test_counts_equal_grep_for_phrases_that_cannot_overlap_themselves(corpus, tmp_path):
    from empiricist.lookup.text import TextIndex

    texts, store, root = corpus
    index = TextIndex.open(store, progress=False, workspace=root)
    corpus_file = tmp_path / "docs.txt"
    corpus_file.write_text("\n".join(texts), encoding="utf-8")  # docs end at a newline: no match crosses one
    checked = 0
    for q in dict.fromkeys(_substrings(texts, 600, seed=1)):
        self_overlap = any(q[:k] == q[-k:] for k in range(1, len(q)))
        if "\n" in q or self_overlap:
            continue
        grep = subprocess.run(["grep", "-o", "-F", "-e", q, str(corpus_file)], capture_output=True,
                              env={"LC_ALL": "C"}, check=False)
        assert grep.returncode in (0, 1)
        assert index.count(q) == grep.stdout.count(b"\n"), q
        checked += 1
    assert checked > 150
    assert index.count("Mark Twain") == sum(t.count("Mark Twain") for t in texts) > 0


def test_normalised_indexes_ignore_case_and_collapse_whitespace(corpus):
    from empiricist.lookup.text import TextIndex, TextNorm

    texts, store, root = corpus
    folded = TextIndex.open(store, TextNorm(ignore_case=True), progress=False, workspace=root)
    spaced = TextIndex.open(store, TextNorm(normalize_space=True), progress=False, workspace=root)
    for q in ["the", "THE river", "Mark Twain", "Naïve CAFÉ"]:
        assert folded.count(q) == sum(_overlapping(t.lower(), q.lower()) for t in texts)
    for q in ["-- quote", "Mark Twain computers", "\t\t--   Mark"]:
        norm = re.sub(r"\s+", " ", q)
        assert spaced.count(q) == sum(_overlapping(re.sub(r"\s+", " ", t), norm) for t in texts)
    assert spaced.count("-- Mark") > TextIndex.open(store, progress=False, workspace=root).count("-- Mark")
    assert folded.path != spaced.path and folded.manifest["config"]["ignore_case"]


def test_find_ranks_documents_with_character_offsets_and_reopens_from_disk(corpus):
    from empiricist.lookup.text import TextIndex

    texts, store, root = corpus
    index = TextIndex.open(store, progress=False, workspace=root)
    found = index.find("Lisbon", max_docs=5)
    want = sorted(((i, t.count("Lisbon")) for i, t in enumerate(texts) if "Lisbon" in t), key=lambda x: (-x[1], x[0]))
    assert found.count == sum(c for _, c in want) and found.num_docs == len(want)
    assert [(h.index, h.occurrences) for h in found.documents] == want[:5]
    for h in found.documents:
        assert h.id == f"d{h.index}" and all(texts[h.index][o:o + 6] == "Lisbon" for o in h.offsets)
    stats = index.manifest["stats"]
    assert stats["bytes"] > 0 and stats["build_seconds"] >= 0 and index.manifest["chars"] == sum(map(len, texts))
    again = TextIndex.open(store, progress=False, workspace=root, build=False)
    assert again.count("Lisbon") == found.count
    with pytest.raises(InputError, match="non-empty"):
        index.count("")


def test_a_damaged_or_foreign_index_is_refused(corpus, small_store, tmp_path):
    from empiricist.data.store import TokenStore
    from empiricist.lookup.text import INDEX_FILE, TextIndex, build_text_index

    _, store, _ = corpus
    path = build_text_index(store, out_dir=tmp_path / "t", progress=False)
    with pytest.raises(ArtifactError, match="another store"):
        TextIndex.open(TokenStore.open(small_store), path=path)
    data = bytearray((path / INDEX_FILE).read_bytes())
    (path / INDEX_FILE).write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ArtifactError):
        TextIndex.open(store, path=path)
    with pytest.raises(ArtifactError, match="index build --kind text"):
        TextIndex.open(store, path=tmp_path / "absent", build=False)


def test_cli_count_and_docs_match_the_text_and_say_when_tokens_differ(corpus, capsys):
    texts, store, root = corpus
    args = ["--store", store.path, "--workspace", root, "-q"]
    want = sum(_overlapping(t, "computer") for t in texts)
    code, out, err = run_cli(capsys, "count", "computer", *args)
    assert code == 0 and out.strip() == str(want)
    code, out, _ = run_cli(capsys, "count", "computer", "--json", *args)
    counts = json.loads(out)
    assert counts["text"] == want and counts["tokens"] < want  # "computers" hides most of them from the tokens
    code, out, err = run_cli(capsys, "count", "computer", *args)
    assert "tokenisation" in err
    code, out, _ = run_cli(capsys, "count", "computer", "--tokens", *args)
    assert int(out) == counts["tokens"]
    code, out, _ = run_cli(capsys, "count", "the", "-i", *args)
    assert int(out) == sum(_overlapping(t.lower(), "the") for t in texts)
    code, out, _ = run_cli(capsys, "count", *args, "--", "-- quote")  # a phrase that starts with dashes
    assert code == 0 and int(out) == sum(t.count("-- quote") for t in texts)
    code, _, err = run_cli(capsys, "count", "-- quote", *args)
    assert code == 2 and "empiricist count [OPTIONS] -- '-- quote'" in err
    code, out, _ = run_cli(capsys, "docs", "Lisbon", "--json", "--max-docs", "3", *args)
    hits = json.loads(out)
    assert len(hits) == 3 and all("Lisbon" in texts[h["index"]] for h in hits)
    code, out, _ = run_cli(capsys, "docs", "Lisbon", *args)
    assert code == 0 and "occurrences" in out and "genre" not in out


def test_cli_tables_name_their_score_and_show_only_metadata_the_corpus_has(corpus, capsys):
    _, store, root = corpus
    args = ["--store", store.path, "--workspace", root, "-q"]
    code, out, _ = run_cli(capsys, "search", "Lisbon river", *args)
    assert code == 0 and "bm25 score" in out and "occurrences" not in out and "genre" not in out
    assert " n " in out.splitlines()[1] or "│ n " in out  # the corpus's own metadata field


def test_cli_trace_text_reports_each_span_as_the_text_holds_it(corpus, capsys):
    texts, store, root = corpus
    output = texts[7][:60] + " zzqx " + texts[11][:50]
    code, out, err = run_cli(capsys, "trace", "--text", output, "--min-len", "3", "--json", "--store", store.path,
                             "--workspace", root, "-q")
    assert code == 0, err
    spans = json.loads(out)["spans"]
    assert spans
    for span in spans:
        assert span["text_count"] == sum(_overlapping(t, span["text"]) for t in texts) >= span["count"]
