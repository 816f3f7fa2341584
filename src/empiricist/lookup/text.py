"""Substring search over documents' text: counts that mean what the user typed, as ``grep -o -F`` does.

The token-level n-gram index (``ngram``) counts one tokenisation of a phrase: " Mark Twain" and
"Mark Twain" are different token sequences, and a phrase inside a token ("computer" in "computers")
is invisible to it. This index works on the characters of each document's stored text, so it finds
every occurrence whatever the tokenizer did. It is an FM-index over the documents (the ``fm-index``
package's ``MultiFMIndex``, Rust): count, per-document counts and positions in time proportional to the
query, never to the corpus. A match never crosses a document boundary.

Normalisation (``TextNorm``): ``ignore_case`` lower-cases documents and query, ``normalize_space``
collapses every run of whitespace to one space. Each setting is its own index (built on first use,
named by the store's content and the setting), because positions differ between them; positions are
character offsets in the (normalised) document text.

Occurrences are counted *overlapping* (``"aa"`` occurs twice in ``"aaa"``), as infini-gram counts; ``grep
-o`` counts non-overlapping matches per line, so the two agree for every query that cannot overlap
itself and holds no newline (tests/test_text_index.py checks both against independent counts).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    atomic_write_bytes,
    building,
    is_complete,
    quick_check,
    read_manifest,
    write_manifest,
)
from empiricist.errors import ArtifactError, InputError
from empiricist.lookup.ngram_build import store_content
from empiricist.lookup.results import DocumentHit, FindResult

if TYPE_CHECKING:
    from fm_index import MultiFMIndex

    from empiricist.data.store import TokenStore

KIND = "text_index"
FORMAT = 1
INDEX_FILE = "fm_index.bin"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TextNorm:
    """How documents and queries are normalised before matching (both the same way)."""

    ignore_case: bool = False
    normalize_space: bool = False

    @property
    def key(self) -> str:
        return ("i" if self.ignore_case else "") + ("s" if self.normalize_space else "") or "raw"

    def __call__(self, text: str) -> str:
        if self.normalize_space:
            text = _SPACE.sub(" ", text)
        return text.lower() if self.ignore_case else text


def default_text_index_path(store: TokenStore, norm: TextNorm = TextNorm(),
                            workspace: Workspace | str | Path | None = None) -> Path:
    return Workspace.of(store.path, workspace).indexes / f"text-{store_content(store)[:16]}-{norm.key}"


def build_text_index(store: TokenStore, norm: TextNorm = TextNorm(), out_dir: str | Path | None = None, *,
                     progress: bool = True, workspace: Workspace | str | Path | None = None) -> Path:
    """Index every document's text (normalised by ``norm``); an existing index of this store is reused."""
    from fm_index import MultiFMIndex

    out = Path(out_dir) if out_dir is not None else default_text_index_path(store, norm, workspace)
    inputs = {"store": store_content(store)}
    with artifact_lock(out):
        if is_complete(out):
            if read_manifest(out, kind=KIND).get("inputs") != inputs:
                raise ArtifactError(f"{out} holds a text index of another store; delete it or choose another folder")
            return out
        if progress:
            print(f"[text-index] indexing the text of {store.num_docs:,} documents ({norm.key})", file=sys.stderr,
                  flush=True)
        t0 = time.perf_counter()
        texts = [norm(t) for t in store.iter_texts()]
        chars = sum(len(t) for t in texts)
        index = MultiFMIndex(texts)
        del texts
        with building(out, kind=KIND) as tmp:
            # the package's own binary state (its __getstate__), not a pickle: read back by __setstate__
            atomic_write_bytes(tmp / INDEX_FILE, index.__getstate__())
            seconds = time.perf_counter() - t0
            nbytes = (tmp / INDEX_FILE).stat().st_size
            write_manifest(tmp, KIND, {"format": FORMAT, "ignore_case": norm.ignore_case,
                                       "normalize_space": norm.normalize_space}, inputs=inputs,
                           extra={"num_docs": store.num_docs, "chars": chars, "package": _version(),
                                  "stats": {"build_seconds": round(seconds, 3), "bytes": nbytes,
                                            "bytes_per_char": round(nbytes / max(chars, 1), 3),
                                            "seconds_per_million_chars": round(seconds / max(chars, 1) * 1e6, 3)}})
    if progress:
        print(f"[text-index] ready at {out} ({seconds:.1f} s, {nbytes / 2**20:.1f} MiB)", file=sys.stderr, flush=True)
    return out


def _version() -> str:
    from importlib.metadata import version

    return version("fm-index")


class TextIndex:
    """An opened text index of one store; ``count`` / ``find`` / ``documents`` take the query as typed."""

    def __init__(self, path: Path, store: TokenStore, norm: TextNorm, index: MultiFMIndex,
                 manifest: dict[str, Any]) -> None:
        self.path, self.store, self.norm, self._fm, self.manifest = path, store, norm, index, manifest

    @classmethod
    def open(cls, store: TokenStore, norm: TextNorm = TextNorm(), path: str | Path | None = None, *,
             build: bool = True, progress: bool = True, workspace: Workspace | str | Path | None = None
             ) -> TextIndex:
        """The store's text index for ``norm`` (built first when absent and ``build``)."""
        from fm_index import MultiFMIndex

        path = Path(path) if path is not None else default_text_index_path(store, norm, workspace)
        if not is_complete(path):
            if not build:
                raise ArtifactError(f"no text index for store {store.path}; run `empiricist index build --kind text`")
            build_text_index(store, norm, path, progress=progress, workspace=workspace)
        manifest = read_manifest(path, kind=KIND)
        if manifest.get("inputs") != {"store": store_content(store)}:
            raise ArtifactError(f"{path} was built from another store than {store.path}: delete it to rebuild")
        quick_check(path, manifest)
        index = MultiFMIndex.__new__(MultiFMIndex, [""])
        index.__setstate__((path / INDEX_FILE).read_bytes())
        if len(index) != store.num_docs:
            raise ArtifactError(f"{path} indexes {len(index)} documents, the store has {store.num_docs}: rebuild it")
        return cls(path, store, norm, index, manifest)

    def _pattern(self, query: str) -> str:
        if not isinstance(query, str) or not query:
            raise InputError("a text query must be a non-empty string")
        if "\x00" in query:
            raise InputError("a text query cannot contain NUL characters")
        return self.norm(query)

    def count(self, query: str) -> int:
        """Occurrences of ``query`` in all documents (overlapping)."""
        return int(self._fm.count_all(self._pattern(query)))

    def doc_counts(self, query: str) -> dict[int, int]:
        """Document index -> occurrences, for every document containing ``query``."""
        return {int(d): int(c) for d, c in self._fm.count(self._pattern(query)).items()}

    def find(self, query: str, max_docs: int | None = 10) -> FindResult:
        """Count, number of documents, and the first ``max_docs`` documents (most occurrences first)."""
        pattern = self._pattern(query)
        per_doc = self.doc_counts(query)
        ranked = sorted(per_doc.items(), key=lambda kv: (-kv[1], kv[0]))
        if max_docs is not None:
            ranked = ranked[:max_docs]
        hits = []
        for doc, n in ranked:
            offsets = tuple(sorted(int(p) for p in self._fm.locate(pattern, doc)))
            hits.append(DocumentHit(doc, self.store.doc_id(doc), n, offsets, self.store.doc_meta(doc)))
        return FindResult(query, sum(per_doc.values()), len(per_doc), hits)

    def documents(self, query: str, max_docs: int | None = 10) -> list[DocumentHit]:
        return self.find(query, max_docs).documents
