"""An n-gram index sharded by document range answers every verb exactly as the one-shard index does,
resumes a killed build from the shards already done, and refuses a shard layout that does not cover the
store."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from empiricist.data.store import TokenStore
from empiricist.errors import ArtifactError, InputError
from empiricist.lookup import ngram_build
from empiricist.lookup.ngram import NgramIndex
from empiricist.lookup.ngram_build import build_ngram_index, shard_ranges


@pytest.fixture(scope="module")
def indexes(small_store, tmp_path_factory):
    store = TokenStore.open(small_store)
    root = tmp_path_factory.mktemp("ngram-shards")
    one = NgramIndex.open(build_ngram_index(store, root / "one", progress=False), store)
    three = NgramIndex.open(build_ngram_index(store, root / "three", progress=False, shards=3), store)
    yield store, one, three
    one.close()
    three.close()


def _queries(store: TokenStore, n: int = 150, seed: int = 0) -> list[list[int]]:
    """Real n-grams (including each shard boundary's last and first tokens), and absent ones."""
    rng = random.Random(seed)
    offsets = np.asarray(store.doc_offsets)
    out = []
    for _ in range(n):
        d = rng.randrange(store.num_docs)
        a, b = int(offsets[d]), int(offsets[d + 1])
        k = rng.randint(1, 6)
        s = rng.randrange(a, max(a + 1, b - k))
        out.append([int(t) for t in store.tokens(s, min(s + k, b))])
    for first, last in shard_ranges(store, 3):
        for d in (first, last - 1):  # documents on either side of each cut: the start and the end
            a, b = int(offsets[d]), int(offsets[d + 1])
            out += [[int(t) for t in store.tokens(a, a + 3)], [int(t) for t in store.tokens(b - 3, b)],
                    [int(t) for t in store.tokens(b - 1, b)]]
    out += [[rng.randrange(store.vocab_size) for _ in range(5)] for _ in range(20)]
    return out


def test_shards_cover_the_documents_in_order(indexes):
    store, _, three = indexes
    ranges = shard_ranges(store, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == store.num_docs
    assert all(a < b for a, b in ranges) and all(ranges[i][1] == ranges[i + 1][0] for i in range(2))
    tokens = [int(store.doc_offsets[b] - store.doc_offsets[a]) for a, b in ranges]
    assert max(tokens) < 1.2 * min(tokens)  # about equal token counts
    assert [m["docs"] for m in three.manifest["engine"]["shards"]] == [list(r) for r in ranges]
    assert len(three._engine.find(input_ids=[1]).segment_by_shard) == 3  # the engine sees three shards
    assert shard_ranges(store, 10**6) == [(i, i + 1) for i in range(store.num_docs)]  # never an empty shard


def test_every_verb_matches_the_one_shard_index(indexes):
    store, one, three = indexes
    for q in _queries(store):
        assert three.count(q) == one.count(q), q
        pa, pb = one.positions(q), three.positions(q)
        assert sorted(zip(*map(list, pa))) == sorted(zip(*map(list, pb))), q
        fa, fb = one.find(q, max_docs=None), three.find(q, max_docs=None)
        assert (fa.count, fa.num_docs) == (fb.count, fb.num_docs)
        assert [(h.index, h.offsets) for h in fa.documents] == [(h.index, h.offsets) for h in fb.documents]
        assert three.longest_prefix(q + [7, 9, 11]) == one.longest_prefix(q + [7, 9, 11])
        da, db = one.next_token_distribution(q, 10**6), three.next_token_distribution(q, 10**6)
        assert (da.suffix_len, da.count, da.counts) == (db.suffix_len, db.count, db.counts), q
        assert not da.approx and not db.approx
    cut = shard_ranges(store, 3)[1][0]  # a text running across the first cut
    ids = [int(t) for t in store.tokens(int(store.doc_offsets[cut]) - 20, int(store.doc_offsets[cut]) + 20)]
    assert three.maximal_matches(ids, min_len=2) == one.maximal_matches(ids, min_len=2)
    cnf = [["alpha beta", "gamma"], ["violin"]]
    assert three.count_cnf(cnf) == one.count_cnf(cnf) > 0
    a, b = one.find_cnf(cnf, max_docs=None), three.find_cnf(cnf, max_docs=None)
    assert [(h.index, h.offsets) for h in a.documents] == [(h.index, h.offsets) for h in b.documents]


def test_a_killed_build_resumes_from_the_shards_done(small_store, tmp_path):
    store = TokenStore.open(small_store)
    out = tmp_path / "idx"
    ranges = shard_ranges(store, 3)
    parts = tmp_path / ".idx.shards"
    a, b = ranges[1]  # as if the job died after its second unit
    done = parts / f"docs-{a}-{b}"
    ngram_build.build_shard(str(store.path), a, b, str(done), ngram_build.store_content(store), 1, 1.0)
    inode = (done / "table.0").stat().st_ino
    with NgramIndex.open(build_ngram_index(store, out, progress=False, shards=3), store) as idx:
        assert (out / "table.1").stat().st_ino == inode  # the finished unit was reused, not computed twice
        assert (out / "table.0").stat().st_ino != inode
        reference = NgramIndex.open(build_ngram_index(store, tmp_path / "ref", progress=False), store)
        for q in _queries(store, 40, seed=1):
            assert idx.count(q) == reference.count(q)
        reference.close()
    assert not parts.exists()  # merged into the index, the units are gone


def test_a_shard_layout_that_skips_documents_is_refused(indexes, tmp_path):
    import shutil

    store, _, three = indexes
    copy = tmp_path / "bad"
    shutil.copytree(three.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["engine"]["shards"][1]["docs"][0] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="shard|bytes"):
        NgramIndex(copy, store, manifest)
    with pytest.raises(InputError, match="--ngram-shards"):
        build_ngram_index(store, tmp_path / "x", progress=False, shards=0)


def test_the_cli_builds_a_sharded_index_and_counts_on_it(small_store, tmp_path, capsys):
    from conftest import run_cli

    args = ["--store", str(small_store), "--workspace", str(tmp_path), "-q"]
    code, out, err = run_cli(capsys, "index", "build", "--kind", "ngram", "--ngram-shards", "2", *args)
    assert code == 0, err
    store = TokenStore.open(small_store)
    path = ngram_build.default_ngram_index_path(store, tmp_path)
    assert len(json.loads((path / "manifest.json").read_text())["engine"]["shards"]) == 2
    code, out, _ = run_cli(capsys, "count", "alpha beta", "--tokens", *args)
    with NgramIndex.open(build_ngram_index(store, tmp_path / "one", progress=False), store) as one:
        assert code == 0 and int(out.strip()) == one.count("alpha beta") > 0
    code, _, err = run_cli(capsys, "index", "build", "--kind", "ngram", "--ngram-shards", "0", *args)
    assert code != 0 and "--ngram-shards" in err
