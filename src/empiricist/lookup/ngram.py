"""Exact n-gram queries over a token store, answered by infini-gram's suffix-array engine.

``build_ngram_index(store)`` writes the index (see ``ngram_build``); ``NgramIndex.open(path, store)``
serves a handful of verbs, each taking text (tokenized with the store's own tokenizer, as the store
tokenized its documents: literal special strings stay text) or a list of token ids:

* ``count(q)``: occurrences of ``q`` inside documents (a match never crosses a document boundary);
* ``find(q, max_docs)`` / ``documents(q, max_docs)``: the documents containing ``q``, with metadata;
* ``next_token_distribution(q)``: the ∞-gram distribution (longest suffix of ``q`` seen with a next token);
* ``count_cnf(cnf)`` / ``find_cnf(cnf)``: documents matching an AND of ORs of n-grams.

Documents are the store's (index ``i``, id ``store.doc_id(i)``), never infini-gram's own numbering.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from empiricist.artifacts import Workspace, quick_check, read_manifest, verify
from empiricist.errors import ArtifactError, InputError
from empiricist.lookup.infinigram import load_engine, map_file
from empiricist.lookup.ngram_build import KIND, default_ngram_index_path, legacy_store_inputs, store_inputs
from empiricist.lookup.results import DocumentHit, FindResult, NextTokenDistribution

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore

Query = str | Sequence[int] | np.ndarray
Cnf = Sequence[Sequence[Query]]


class NgramIndex:
    """An opened n-gram index, bound to the exact store (and tokenizer) it was built from."""

    max_query_tokens = 1000

    def __init__(self, path: Path, store: TokenStore, manifest: dict[str, Any]) -> None:
        self.path, self.store, self.manifest = path, store, manifest
        eng = manifest["engine"]
        self.width = int(eng["token_width"])
        self.separator = int(eng["doc_separator"])
        self.vocab_size = int(store.vocab_size)
        self.num_tokens, self.num_docs = int(store.num_tokens), int(store.num_docs)
        layout = eng.get("shards") or [{"docs": [0, self.num_docs], "pointer_bytes": eng["pointer_bytes"]}]
        self._shards = [_Shard(path, k, len(layout), store, self.width, int(sh["docs"][0]), int(sh["docs"][1]),
                               int(sh["pointer_bytes"])) for k, sh in enumerate(layout)]
        if [sh.first for sh in self._shards] + [self.num_docs] != [0] + [sh.last for sh in self._shards]:
            raise ArtifactError(f"{path}: the manifest's shards do not cover the store's {self.num_docs} "
                                "documents in order (corrupted?)")
        # The C++ engine itself (its Python wrapper re-checks every query token; ours are checked already).
        self._engine = load_engine(path, int(store.eos_id), self.vocab_size, str(eng["token_dtype"])).engine
        self._tokenizer: Any = None
        self._unigram: np.ndarray | None = None
        self._info: dict[int, tuple[str, dict[str, Any]]] = {}

    @classmethod
    def open(cls, path: str | Path | None, store: TokenStore, *, verify_files: bool = False,
             workspace: Workspace | str | Path | None = None) -> NgramIndex:
        """Open the index at ``path`` (None: the store's default location, see ``default_ngram_index_path``).

        Refuses (ArtifactError) an incomplete folder or an index of another store or tokenizer;
        ``verify_files`` also re-hashes every file against the manifest.
        """
        path = Path(path) if path is not None else default_ngram_index_path(store, workspace)
        manifest = read_manifest(path, kind=KIND)
        built, given = manifest.get("inputs", {}), store_inputs(store)
        if built.get("store") == legacy_store_inputs(store)["store"]:  # an index named before content naming
            given = {**given, "store": built["store"]}
        was_tok, was_store = str(built.get("tokenizer"))[:12], str(built.get("store"))[:12]
        if built.get("tokenizer") != given["tokenizer"]:
            raise ArtifactError(f"{path} was built for tokenizer {was_tok}…, but store {store.path} uses "
                                f"tokenizer {given['tokenizer'][:12]}…: rebuild the index")
        if built.get("store") != given["store"]:
            raise ArtifactError(f"{path} was built from another token store (manifest {was_store}…) than "
                                f"{store.path} ({given['store'][:12]}…): rebuild it with "
                                "build_ngram_index(store)")
        if verify_files and (bad := verify(path)):
            raise ArtifactError(f"n-gram index {path} is corrupted: {', '.join(bad)}")
        quick_check(path, manifest)  # every open: sizes, small-file hashes, sampled blocks; never a wrong count
        return cls(path, store, manifest)

    def close(self) -> None:
        """Release the engine's memory maps (the object is unusable afterwards)."""
        self._engine = None
        self._shards = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"NgramIndex({str(self.path)!r}, tokens={self.num_tokens}, docs={self.num_docs}, "
                f"shards={len(self._shards)})")

    # ------------------------------------------------------------ input
    def ids(self, query: Query, what: str = "query", max_tokens: int | None = None) -> list[int]:
        """Token ids of ``query`` (text or ids), checked: non-empty, in the vocab, not over-long."""
        limit = self.max_query_tokens if max_tokens is None else max_tokens
        if isinstance(query, str):
            if not query:
                raise InputError(f"empty {what}")
            ids = self._tok().encode(query, add_special_tokens=False).ids
        elif isinstance(query, (Sequence, np.ndarray)) and not isinstance(query, (bytes, bytearray)):
            ids = [_token_id(q, i, what) for i, q in enumerate(query)]
        else:
            raise InputError(f"{what} must be text or a list of token ids, not {type(query).__name__}")
        if not ids:
            raise InputError(f"empty {what}")
        if len(ids) > limit:
            raise InputError(f"{what} has {len(ids)} tokens; the limit is {limit}")
        bad = [(i, t) for i, t in enumerate(ids) if t >= self.vocab_size]
        if bad:
            raise InputError(f"{what} has token id {bad[0][1]} at position {bad[0][0]}, outside the vocab "
                             f"[0, {self.vocab_size})")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok().decode(list(ids), skip_special_tokens=False)

    def _tok(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = self.store.tokenizer()
            self._tokenizer.encode_special_tokens = True  # as the store tokenized its documents
        return self._tokenizer

    # ------------------------------------------------------------ verbs
    def maximal_matches(self, ids: Sequence[int], min_len: int = 1, max_freq: int | None = None
                        ) -> list[tuple[int, int]]:
        """[start, end) of the maximal stretches of ``ids`` (checked token ids) found inside documents.

        Maximal: no reported stretch starting earlier reaches as far. Kept when at least ``min_len`` long
        and occurring at most ``max_freq`` times: OLMoTrace's rule (as in infini-gram's ``attribute``, whose
        thread per position costs more than it saves on a few cores, so we loop here).
        """
        ids = [int(t) for t in ids]
        q = np.asarray(ids, dtype=np.int64)
        longest = [self._longest(ids[i:], q[i:]) for i in range(len(ids))]
        limit = 2**63 - 1 if max_freq is None else max_freq
        return maximal_spans(longest, lambda i, j: self._count(ids[i:j]), min_len, limit)

    def count(self, query: Query) -> int:
        """How many times ``query`` occurs inside documents."""
        return self._count(self.ids(query))

    def find(self, query: Query, max_docs: int | None = 10) -> FindResult:
        """Occurrence count, number of documents, and the documents (most occurrences first).

        Exact, so it reads every occurrence: O(count) time and memory for a very common n-gram.
        """
        ids = self.ids(query)
        return self._result(ids, *self.positions(ids), max_docs)

    def positions(self, query: Query) -> tuple[np.ndarray, np.ndarray]:
        """Every occurrence of ``query`` as (store document index, token offset in it), unsorted."""
        found = [sh.locate(sh.ptrs(lo, hi)) for sh, (lo, hi) in zip(self._shards, self._segments(self.ids(query)))]
        return np.concatenate([d for d, _ in found]), np.concatenate([o for _, o in found])

    def longest_prefix(self, ids: Sequence[int]) -> int:
        """Length of the longest prefix of ``ids`` (checked token ids) occurring inside some document."""
        return self._longest([int(t) for t in ids], np.asarray(ids, dtype=np.int64))

    def _longest(self, ids: list[int], q: np.ndarray) -> int:
        """One suffix-array search: if ``ids`` is absent, the suffixes on either side of where it would
        sit share the longest common prefix with it (separators never equal a real token); the longest
        over the shards."""
        segments = self._segments(ids)
        if any(hi > lo for lo, hi in segments):
            return len(ids)
        return max(sh.common_prefix(lo, q) for sh, (lo, _) in zip(self._shards, segments))

    def documents(self, query: Query, max_docs: int | None = 10) -> list[DocumentHit]:
        """The documents containing ``query``: ``find(query, max_docs).documents``."""
        return self.find(query, max_docs).documents

    def next_token_distribution(self, query: Query, max_support: int = 1000) -> NextTokenDistribution:
        """∞-gram: the distribution after the longest suffix of ``query`` that has a next token in-document.

        Exact when that suffix occurs at most ``max_support`` times; above that the engine samples
        (``approx=True``), as infini-gram does. An occurrence ending a document has no next token.
        """
        if not isinstance(max_support, int) or max_support < 1:
            raise InputError(f"max_support must be a positive integer, got {max_support!r}")
        ids = self.ids(query)
        # Doubling then bisection; invariant: the suffix of length lo has continuations, that of hi not.
        n, lo, hi = len(ids), 0, 1
        while hi <= n and self._continued(ids[n - hi:]) > 0:
            lo, hi = hi, hi * 2
        hi = min(hi, n + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self._continued(ids[n - mid:]) > 0 else (lo, mid)
        if lo == 0:
            uni = self._unigram_counts()
            nz = np.flatnonzero(uni)
            return NextTokenDistribution(ids, 0, self.num_tokens, {int(t): int(uni[t]) for t in nz})
        suffix = ids[n - lo:]
        res = self._engine.ntd(prompt_ids=suffix, max_support=max_support)
        counts = {int(t): int(r.cont_cnt) for t, r in res.result_by_token_id.items()}
        eos = int(self.store.eos_id)  # the engine reports "document ended" as EOS: take those back out
        counts[eos] = counts.get(eos, 0) - self._doc_end_count(suffix)
        counts = {t: c for t, c in counts.items() if c > 0}
        return NextTokenDistribution(ids, lo, self._continued(suffix), counts, bool(res.approx))

    def count_cnf(self, cnf: Cnf) -> int:
        """Number of documents matching ``cnf``: every clause has at least one of its n-grams in the doc.

        ``[[a, b], [c]]`` means (a OR b) AND c. Exact and document-level (infini-gram's own CNF count is
        a sampled count of nearby co-occurrences; we use its engine for each n-gram's occurrences).
        """
        return int(self._cnf(self._cnf_ids(cnf))[0].size)

    def find_cnf(self, cnf: Cnf, max_docs: int | None = 10) -> FindResult:
        """The documents matching ``cnf`` (see ``count_cnf``) with where its n-grams occur in them."""
        terms = self._cnf_ids(cnf)
        matched, docs, offs = self._cnf(terms)
        keep = np.isin(docs, matched)
        # Positions where some term starts, each counted once even if several terms start there.
        pairs = np.unique(np.stack([docs[keep], offs[keep]]), axis=1)
        return self._result(terms, pairs[0], pairs[1], max_docs)

    # ------------------------------------------------------------ engine plumbing
    def _segments(self, ids: list[int]) -> list[tuple[int, int]]:
        """Suffix-array ranks [lo, hi) of ``ids`` in each shard."""
        return [(int(lo), int(hi)) for lo, hi in self._engine.find(input_ids=ids).segment_by_shard]

    def _count(self, ids: list[int]) -> int:
        return int(self._engine.count(input_ids=ids).count)

    def _doc_end_count(self, ids: list[int]) -> int:
        """Occurrences of ``ids`` that end a document (followed by a separator, or the end of a shard)."""
        return self._count(ids + [self.separator]) + sum(sh.ends_with(ids) for sh in self._shards)

    def _continued(self, ids: list[int]) -> int:
        """Occurrences of ``ids`` that have a next token in the same document."""
        return self._count(ids) - self._doc_end_count(ids)

    def _unigram_counts(self) -> np.ndarray:
        if self._unigram is None:
            counts = np.zeros(self.vocab_size, dtype=np.int64)
            step = 1 << 24
            for a in range(0, self.num_tokens, step):
                chunk = np.asarray(self.store.tokens(a, min(a + step, self.num_tokens)))
                counts += np.bincount(chunk, minlength=self.vocab_size)[: self.vocab_size]
            self._unigram = counts
        return self._unigram

    def _cnf_ids(self, cnf: Cnf) -> list[list[list[int]]]:
        if isinstance(cnf, (str, bytes)) or not isinstance(cnf, Sequence) or not cnf:
            raise InputError("a CNF query is a non-empty list of clauses, each a non-empty list of n-grams "
                             "(text or token-id lists), e.g. [['a', 'b'], ['c']] for (a OR b) AND c")
        out = []
        for c, clause in enumerate(cnf):
            if isinstance(clause, (str, bytes)) or not isinstance(clause, Sequence) or not clause:
                raise InputError(f"CNF clause {c} must be a non-empty list of n-grams, got {clause!r}")
            if all(isinstance(t, (int, np.integer)) for t in clause):
                raise InputError(f"CNF clause {c} is a bare list of token ids; wrap each n-gram in a list: "
                                 f"[{list(clause)!r}]")
            out.append([self.ids(t, what=f"CNF clause {c} term {k}") for k, t in enumerate(clause)])
        return out

    def _cnf(self, terms: list[list[list[int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matching documents, and (doc, offset) of every term occurrence, for a checked CNF."""
        matched: np.ndarray | None = None
        all_docs, all_offs = [], []
        for clause in terms:
            clause_docs = []
            for ids in clause:
                docs, offs = self.positions(ids)
                all_docs.append(docs)
                all_offs.append(offs)
                clause_docs.append(docs)
            union = np.unique(np.concatenate(clause_docs))
            matched = union if matched is None else np.intersect1d(matched, union, assume_unique=True)
        assert matched is not None
        return matched, np.concatenate(all_docs), np.concatenate(all_offs)

    def _result(self, query: Any, docs: np.ndarray, offs: np.ndarray, max_docs: int | None) -> FindResult:
        """Group occurrences by document; most occurrences first, then lower document index."""
        if max_docs is not None and (not isinstance(max_docs, int) or max_docs < 0):
            raise InputError(f"max_docs must be a non-negative integer or None, got {max_docs!r}")
        order = np.lexsort((offs, docs))
        docs, offs = docs[order], offs[order]
        uniq, starts, counts = np.unique(docs, return_index=True, return_counts=True)
        rank = np.lexsort((uniq, -counts))[: max_docs if max_docs is not None else None]
        self.describe(uniq[rank])
        hits = [self.hit(int(uniq[j]), offs[starts[j]:starts[j] + counts[j]]) for j in rank]
        return FindResult(query, int(docs.size), int(uniq.size), hits)

    def describe(self, docs: Any) -> None:
        """Fetch ids and metadata of ``docs`` in store order (each docs-table block read once), cached."""
        todo = sorted({int(d) for d in np.asarray(docs).ravel()} - self._info.keys())
        if len(self._info) + len(todo) > 100_000:
            self._info.clear()
        for d in todo:
            self._info[d] = (self.store.doc_id(d), self.store.doc_meta(d))

    def hit(self, doc: int, offsets: np.ndarray | Sequence[int], **extra: Any) -> DocumentHit:
        """A DocumentHit for store document ``doc`` with its id and metadata."""
        if doc not in self._info:
            self.describe([doc])
        doc_id, meta = self._info[doc]
        offs = tuple(int(o) for o in offsets)
        return DocumentHit(doc, doc_id, len(offs), offs, meta, **extra)


class _Shard:
    """One document range's files: its tokens with separators, suffix array and separator positions."""

    def __init__(self, path: Path, k: int, shards: int, store: TokenStore, width: int, first: int, last: int,
                 pointer_bytes: int) -> None:
        from empiricist.lookup.infinigram import separator_positions, shard_files

        ds_name, sa_name, od_name = shard_files(k, shards)
        self.first, self.last, self.width, self.pointer_bytes = first, last, width, pointer_bytes
        offsets = store.doc_offsets
        n = int(offsets[last] - offsets[first]) + (last - first)  # tokens and separators
        for name, size in {ds_name: n * width, sa_name: n * pointer_bytes, od_name: (last - first) * 8}.items():
            file = path / name
            if not file.is_file() or file.stat().st_size != size:
                raise ArtifactError(f"{file} is missing or not the {size} bytes this store needs (corrupted?)")
        self.ds = np.frombuffer(map_file(path / ds_name), dtype=f"<u{width}")
        self.sa_bytes = map_file(path / sa_name)
        self.sa = np.frombuffer(self.sa_bytes, dtype=np.uint8)
        self.sep_pos = (np.fromfile(path / od_name, dtype="<u8") // width).astype(np.int64)
        if not np.array_equal(self.sep_pos, separator_positions(store, first, last)):
            raise ArtifactError(f"{path / od_name} does not match the store's document offsets")

    def ptr(self, rank: int) -> int:
        r = self.pointer_bytes
        return int.from_bytes(self.sa_bytes[rank * r:(rank + 1) * r], "little")

    def ptrs(self, lo: int, hi: int) -> np.ndarray:
        """Byte pointers into this shard's tokens for suffix-array ranks [lo, hi)."""
        r = self.pointer_bytes
        raw = self.sa[lo * r:hi * r].reshape(-1, r)
        buf = np.zeros((raw.shape[0], 8), dtype=np.uint8)
        buf[:, :r] = raw
        return buf.view("<u8").ravel()

    def locate(self, ptrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(store document index, token offset inside it) for byte pointers into this shard."""
        pos = np.asarray(ptrs, dtype=np.int64) // self.width
        docs = np.searchsorted(self.sep_pos, pos, side="right") - 1
        return docs + self.first, pos - self.sep_pos[docs] - 1

    def common_prefix(self, rank: int, q: np.ndarray) -> int:
        """Longest common prefix of ``q`` with the suffixes at ranks ``rank - 1`` and ``rank``."""
        best = 0
        for r in (rank - 1, rank):
            if 0 <= r < self.ds.size:
                p = self.ptr(r) // self.width
                seg = self.ds[p:p + q.size]
                diff = np.flatnonzero(seg != q[:seg.size])
                best = max(best, int(diff[0]) if diff.size else int(seg.size))
        return best

    def ends_with(self, ids: list[int]) -> bool:
        """Whether the shard's last document ends in ``ids`` (no separator follows it in the file)."""
        return len(ids) <= self.ds.size and bool(np.array_equal(self.ds[-len(ids):], ids))


def maximal_spans(longest: Sequence[int], counts: Any, min_len: int, max_freq: int) -> list[tuple[int, int]]:
    """The span rule: (start, end) for each ``i`` whose match ``[i, i + longest[i])`` passes the filters
    (``counts(i, j)``: occurrences of [i, j)) and ends beyond every span kept before it."""
    out, last_end = [], 0
    for i, n in enumerate(longest):
        if n >= min_len and i + n > last_end and counts(i, i + n) <= max_freq:
            out.append((i, i + n))
            last_end = i + n
    return out


def _token_id(q: Any, i: int, what: str) -> int:
    if isinstance(q, (bool, np.bool_)) or not isinstance(q, (int, np.integer)):
        raise InputError(f"{what} position {i}: token ids must be integers, got {q!r}")
    if q < 0:
        raise InputError(f"{what} has negative token id {int(q)} at position {i}")
    return int(q)


def open_default_ngram(store: TokenStore, workspace: Workspace | str | Path | None = None, build: bool = True,
                       progress: bool = True) -> NgramIndex:
    """The store's n-gram index at its default place (``default_ngram_index_path``), built first if absent
    (``build=False``: an ArtifactError naming the command that builds it)."""
    from empiricist.artifacts import is_complete
    from empiricist.lookup.ngram_build import build_ngram_index

    path = default_ngram_index_path(store, workspace)
    if not is_complete(path):
        if not build:
            raise ArtifactError(f"no n-gram index for store {store.path}; run `empiricist index build`")
        build_ngram_index(store, progress=progress, workspace=workspace)
    return NgramIndex.open(path, store)
