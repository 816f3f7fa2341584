"""One search API over three backends: MiniLM embeddings, a model's own embeddings, and BM25.

``build_search_index(store, kind)`` writes an artifact folder: ``chunks.npy`` (what each searchable unit
is: document, token span, character span) plus the backend's files (``vectors.faiss`` or ``bm25/``),
and a manifest naming the store's fingerprint and the embedder's identity. ``SearchIndex.open(path,
store)`` refuses another store (or, for ``kind="model"``, another model). Units are whole documents, or
with ``chunk_tokens=N`` consecutive windows of N store tokens (a long document then matches where it
talks about the query instead of being averaged into a blur).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from empiricist.artifacts import (
    Workspace,
    building,
    config_hash,
    is_complete,
    quick_check,
    read_manifest,
    write_manifest,
)
from empiricist.errors import ArtifactError, InputError
from empiricist.lookup.bm25 import BM25Backend, bm25_settings, build_bm25
from empiricist.lookup.semantic import Embedder, VectorBackend, build_vectors, minilm_embedder, model_embedder

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.execute import Executor
    from empiricist.suite.handles import ModelHandle

KIND = "search_index"
KINDS = ("minilm", "model", "bm25")
CHUNKS_FILE = "chunks.npy"  # int64 rows: doc index, token start, token end, char start, char end
FORMAT = 1


@dataclass(frozen=True)
class Hit:
    """A search result: the document (store index and id), its score, which chunk matched, and metadata.

    ``score``: cosine similarity (embedding kinds) or BM25 score; higher is better. ``chunk`` numbers the
    unit within its document (0 for whole documents); ``tokens``/``chars`` are its span in the document.
    """

    doc_index: int
    doc_id: str
    score: float
    chunk: int
    meta: dict[str, Any] = field(default_factory=dict)
    tokens: tuple[int, int] = (0, 0)
    chars: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"doc_index": self.doc_index, "doc_id": self.doc_id, "score": self.score, "chunk": self.chunk,
                "meta": self.meta, "tokens": list(self.tokens), "chars": list(self.chars)}


def store_identity(store: TokenStore) -> dict[str, str]:
    """What a search index depends on in the store: its data fingerprint (content, not build time)."""
    return {"store": str(store.fingerprint), "tokenizer": str(store.tokenizer_sha256)}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"unknown search index kind {kind!r}; choose from {', '.join(KINDS)}")


def _check_chunk_tokens(chunk_tokens: int | None) -> None:
    if chunk_tokens is not None and (isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int)
                                     or chunk_tokens < 1):
        raise InputError(f"chunk_tokens must be a positive integer or None, got {chunk_tokens!r}")


def chunk_store(store: TokenStore, chunk_tokens: int | None, batch_docs: int = 256) -> tuple[np.ndarray, list[str]]:
    """The searchable units of ``store`` and their texts; empty documents have none.

    Token windows map to exact substrings of the document through the store tokenizer's offsets (the
    store's own tokenization, checked against its token counts).
    """
    tok = store.tokenizer()
    tok.encode_special_tokens = True  # as the store tokenized its documents
    rows: list[tuple[int, int, int, int, int]] = []
    texts: list[str] = []
    for a in range(0, store.num_docs, batch_docs):
        idx = range(a, min(a + batch_docs, store.num_docs))
        docs = [store.doc_text(i) for i in idx]
        encs = tok.encode_batch(docs, add_special_tokens=False) if chunk_tokens else [None] * len(docs)
        for i, text, enc in zip(idx, docs, encs):
            if not text:
                continue
            n_tok = int(store.doc_offsets[i + 1] - store.doc_offsets[i]) - 1  # without the trailing EOS
            if enc is None:
                rows.append((i, 0, n_tok, 0, len(text)))
                texts.append(text)
                continue
            if len(enc.ids) != n_tok:
                raise ArtifactError(f"store {store.path}: document {i} re-tokenizes to {len(enc.ids)} tokens "
                                    f"but the store holds {n_tok}; the store and its tokenizer disagree")
            for s in range(0, n_tok, chunk_tokens):
                e = min(s + chunk_tokens, n_tok)
                c0, c1 = enc.offsets[s][0], enc.offsets[e - 1][1]
                rows.append((i, s, e, c0, c1))
                texts.append(text[c0:c1])
    return np.asarray(rows, dtype=np.int64).reshape(-1, 5), texts


def default_search_index_path(store: TokenStore, kind: str, chunk_tokens: int | None = None,
                              identity: dict[str, Any] | None = None,
                              workspace: Workspace | str | Path | None = None) -> Path:
    """Default home: the indexes of the store's own workspace (else ``workspace``)."""
    key = {"store": store_identity(store), "kind": kind, "chunk_tokens": chunk_tokens, "embedder": identity}
    return Workspace.of(store.path, workspace).indexes / f"search-{kind}-{config_hash(key)}"


def _embedder_for(kind: str, model: ModelHandle | None) -> Embedder | None:
    if kind == "minilm":
        return minilm_embedder()
    if kind == "model":
        return model_embedder(model)
    return None


def build_search_index(store: TokenStore, kind: str = "minilm", out_dir: str | Path | None = None,
                       chunk_tokens: int | None = None, model: ModelHandle | None = None, progress: bool = True, *,
                       stopwords: str | None = "en", overwrite: bool = False,
                       workspace: Workspace | str | Path | None = None, executor: Executor | None = None) -> Path:
    """Build a search index over ``store``; returns the artifact folder (atomic: complete or absent).

    ``kind``: ``"minilm"`` (packaged all-MiniLM-L6-v2), ``"model"`` (``model``'s mean-pooled last hidden
    states; pass a ModelHandle) or ``"bm25"`` (``stopwords``: a bm25s language code or None). A complete
    index built from the same inputs at ``out_dir`` is reused unless ``overwrite``. ``executor``: embed
    in units of work on it (semantic.build_vectors); BM25 is built here.
    """
    _check_kind(kind)
    _check_chunk_tokens(chunk_tokens)
    embedder = _embedder_for(kind, model)
    identity = embedder.identity if embedder is not None else {"embedder": "bm25", **bm25_settings(stopwords)}
    out = (Path(out_dir) if out_dir is not None
           else default_search_index_path(store, kind, chunk_tokens, identity, workspace))
    config = {"format": FORMAT, "kind": kind, "chunk_tokens": chunk_tokens, "embedder": identity}
    inputs = store_identity(store)
    if is_complete(out) and not overwrite:
        found = read_manifest(out, kind=KIND)
        if found.get("inputs") == inputs and found.get("config") == config:
            return out
        raise ArtifactError(f"{out} holds a different search index (other store, kind or settings); pass "
                            "overwrite=True or choose another folder")
    with building(out, overwrite=overwrite, kind=KIND, force=overwrite) as tmp:
        chunks, texts = chunk_store(store, chunk_tokens)
        np.save(tmp / CHUNKS_FILE, chunks)
        if embedder is not None:
            stats = build_vectors(texts, embedder, tmp, progress=progress, executor=executor)
        else:
            stats = build_bm25(texts, tmp, identity, progress=progress)
        stats.update({"num_chunks": len(chunks), "num_docs": int(store.num_docs)})
        write_manifest(tmp, KIND, config, inputs=inputs, extra={"stats": stats})
    if progress:
        tqdm.write(f"{kind} search index ready at {out} ({len(chunks):,} units)")
    return out


class SearchIndex:
    """An opened search index bound to its store. Open with ``SearchIndex.open(path, store)``."""

    def __init__(self, path: Path, store: TokenStore, manifest: dict[str, Any], backend: Any,
                 chunks: np.ndarray) -> None:
        self.path, self.store, self.manifest = path, store, manifest
        self.backend, self.chunks = backend, chunks
        self.kind: str = manifest["config"]["kind"]
        self.chunk_tokens: int | None = manifest["config"]["chunk_tokens"]

    @classmethod
    def open(cls, path: str | Path, store: TokenStore, *, model: ModelHandle | None = None) -> SearchIndex:
        """Open for ``store``; another store's index is refused, as is (kind="model") another model's."""
        path = Path(path)
        manifest = read_manifest(path, kind=KIND)
        quick_check(path, manifest)  # sizes, small-file hashes, sampled blocks: no hits from a damaged index
        built, given = manifest.get("inputs", {}), store_identity(store)
        if built.get("store") != given["store"]:
            raise ArtifactError(f"search index {path} was built from another token store (fingerprint "
                                f"{str(built.get('store'))[:12]}…) than {store.path} "
                                f"({given['store'][:12]}…): rebuild it with build_search_index(store, ...)")
        config = manifest["config"]
        chunks = np.load(path / CHUNKS_FILE)
        if chunks.ndim != 2 or chunks.shape[1] != 5 or (chunks.size and chunks[:, 0].max() >= store.num_docs):
            raise ArtifactError(f"{path / CHUNKS_FILE} is corrupted or belongs to another store")
        kind = config["kind"]
        if kind == "bm25":
            backend: Any = BM25Backend(path, config["embedder"], len(chunks))
        else:
            embedder = minilm_embedder if kind == "minilm" else cls._model(path, config, model)
            backend = VectorBackend(path, embedder)
        if len(backend) != len(chunks):
            raise ArtifactError(f"{path}: the {kind} index holds {len(backend)} entries for {len(chunks)} "
                                "chunks (corrupted?)")
        return cls(path, store, manifest, backend, chunks)

    @staticmethod
    def _model(path: Path, config: dict[str, Any], model: ModelHandle | None) -> Embedder:
        if model is None:
            raise ArtifactError(f"{path} embeds with model {config['embedder'].get('name')!r}: pass "
                                "model=<its ModelHandle> to open it")
        embedder = model_embedder(model)
        want = config["embedder"].get("model_hash")
        if embedder.identity["model_hash"] != want:
            got = embedder.identity["model_hash"]
            raise ArtifactError(f"{path} was built with model {config['embedder'].get('name')!r} (hash "
                                f"{str(want)[:12]}…), not {model.name!r} ({got[:12]}…)")
        return embedder

    def __len__(self) -> int:
        return len(self.chunks)

    def __repr__(self) -> str:
        return f"SearchIndex({str(self.path)!r}, kind={self.kind}, units={len(self)})"

    def search(self, query: str, k: int = 10, *, unique_docs: bool = False) -> list[Hit]:
        """The ``k`` best units for ``query``, best first; ``unique_docs`` keeps each document's best only."""
        return self.search_many([query], k, unique_docs=unique_docs)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, *,
                    unique_docs: bool = False) -> list[list[Hit]]:
        """``search`` for many queries at once (one embedding batch / one BM25 call)."""
        if isinstance(queries, str):
            raise InputError("search_many takes a list of queries; use search() for one")
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise InputError(f"query {i} is empty" if isinstance(q, str) else
                                 f"query {i} must be text, got {type(q).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        queries = list(queries)
        if not queries or not len(self):
            return [[] for _ in queries]
        fetch = k
        while True:
            rows, scores = self.backend.query(queries, fetch)
            results = [self._hits(r, s, k, unique_docs) for r, s in zip(rows, scores)]
            # only a full page of rows can hide more documents behind repeated ones
            short = unique_docs and any(len(h) < k and bool((r >= 0).all()) for h, r in zip(results, rows))
            if not short or fetch >= len(self):
                return results
            fetch = min(fetch * 4, len(self))  # several chunks of one document took places: look deeper

    def _hits(self, rows: np.ndarray, scores: np.ndarray, k: int, unique_docs: bool) -> list[Hit]:
        out: list[Hit] = []
        seen: set[int] = set()
        for r, s in zip(rows.tolist(), scores.tolist()):
            if r < 0:
                continue
            d, t0, t1, c0, c1 = (int(x) for x in self.chunks[r])
            if unique_docs and d in seen:
                continue
            seen.add(d)
            chunk = t0 // self.chunk_tokens if self.chunk_tokens else 0
            out.append(Hit(d, self.store.doc_id(d), float(s), chunk, self.store.doc_meta(d), (t0, t1),
                           (c0, c1)))
            if len(out) == k:
                break
        return out
