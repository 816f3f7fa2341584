"""Read a token store: memory-mapped token shards, document offsets, and the docs table.

This is the contract the trainer, lookup and attribution code against. Tokens are memory-mapped (never
loaded whole); ``doc_offsets`` maps documents to global token ranges; text and metadata are read from
``docs.parquet`` one row group at a time, only when asked for.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist import artifacts
from empiricist.data.layout import DOCS_FILE, OFFSETS_FILE, STORE_KIND, TOKENIZER_FILE
from empiricist.data.tokenizer import encoding_hash, load_tokenizer, tokenizer_hash
from empiricist.errors import ArtifactError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    from empiricist.data.build import build_store, build_store_from_path

__all__ = ["STORE_KIND", "TokenStore", "build_store", "build_store_from_path"]
_SHA256 = re.compile(r"[0-9a-f]{64}")


class TokenStore:
    """A finished token store folder, opened read-only (``TokenStore.open(path)``)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        try:
            self.dtype = np.dtype(manifest["dtype"])
            self.num_tokens = int(manifest["num_tokens"])
            self.num_docs = int(manifest["num_docs"])
            self.vocab_size = int(manifest["vocab_size"])
            self.tokenizer_sha256 = str(manifest["tokenizer_sha256"])
            self.eos_id = int(manifest["eos_id"])
            self._shards = list(manifest["shards"])
            # identity of the data as tokenized (settings + tokenizer + documents), unlike config_hash
            self.fingerprint = str(manifest["fingerprint"])
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(f"{path}: token store manifest lacks or garbles {e}") from None
        self.doc_offsets: np.ndarray = np.load(path / OFFSETS_FILE).astype(np.int64, copy=False)
        if self.doc_offsets.shape != (self.num_docs + 1,) or int(self.doc_offsets[-1]) != self.num_tokens:
            raise ArtifactError(f"{path / OFFSETS_FILE} does not match the manifest "
                                f"({self.num_docs} docs, {self.num_tokens} tokens)")
        self._shard_starts = [int(s["start"]) for s in self._shards]
        self._maps: dict[int, np.ndarray] = {}
        self._row_group = lru_cache(maxsize=16)(self._read_row_group)

    @classmethod
    def open(cls, path: str | Path) -> TokenStore:
        """Open a complete store; an interrupted build or another artifact kind is an ArtifactError."""
        path = Path(path)
        manifest = artifacts.read_manifest(path, kind=STORE_KIND)
        artifacts.quick_check(path, manifest)  # cheap on every open: a damaged store never feeds a result
        return cls(path, manifest)

    def __len__(self) -> int:
        return self.num_docs

    def __repr__(self) -> str:
        return (f"TokenStore({str(self.path)!r}, docs={self.num_docs}, tokens={self.num_tokens}, "
                f"dtype={self.dtype.name})")

    # ------------------------------------------------------------ tokenizer
    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE

    def tokenizer(self) -> Tokenizer:
        """The exact tokenizer the store was built with (its own copy)."""
        return load_tokenizer(self.tokenizer_path)

    def check_tokenizer(self, tokenizer: str | Path) -> None:
        """Refuse a tokenizer (a path, a folder holding tokenizer.json, or a sha256) that encodes differently
        from ours. A file with other bytes passes when it encodes the same way (``encoding_hash``): a
        tokenizer re-saved by ``save_pretrained`` beside a model is the same tokenizer."""
        text = str(tokenizer)
        given_sha = bool(_SHA256.fullmatch(text))
        sha = text if given_sha else tokenizer_hash(tokenizer)
        if sha == self.tokenizer_sha256:
            return
        if not given_sha and encoding_hash(tokenizer) == encoding_hash(self.tokenizer_path):
            return
        got = text if given_sha else f"{text} (sha {sha[:12]}…)"
        raise ArtifactError(f"store {self.path} was built with the tokenizer {self.tokenizer_path} (sha "
                            f"{self.tokenizer_sha256[:12]}…), but got {got}, which encodes text differently: use "
                            "a model trained with the store's tokenizer, or build a store with this one "
                            "(`empiricist data store --tokenizer ...`)")

    def world_path(self) -> Path:
        """The generated world this store was built from (its ground truth); see ``store_world``."""
        return store_world(self.path, self.manifest)

    # ------------------------------------------------------------ tokens
    def _shard(self, i: int) -> np.ndarray:
        if i not in self._maps:
            info = self._shards[i]
            file = self.path / info["file"]
            expected = int(info["num_tokens"]) * self.dtype.itemsize
            if not file.is_file() or file.stat().st_size != expected:
                raise ArtifactError(f"{file} is missing or not {expected} bytes as the manifest says")
            self._maps[i] = np.memmap(file, dtype=self.dtype, mode="r")
        return self._maps[i]

    def tokens(self, start: int, end: int) -> np.ndarray:
        """Tokens at global positions [start, end): a memmap view, or a copy when it spans shards."""
        start, end = int(start), int(end)
        if not 0 <= start <= end <= self.num_tokens:
            raise IndexError(f"token range [{start}, {end}) outside [0, {self.num_tokens})")
        pieces = []
        i = max(bisect_right(self._shard_starts, start) - 1, 0)
        pos = start
        while pos < end:
            s0 = self._shard_starts[i]
            stop = min(end, s0 + int(self._shards[i]["num_tokens"]))
            pieces.append(self._shard(i)[pos - s0:stop - s0])
            pos, i = stop, i + 1
        if not pieces:
            return np.empty(0, dtype=self.dtype)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _doc(self, i: int) -> int:
        i = int(i)
        if not -self.num_docs <= i < self.num_docs:
            raise IndexError(f"document {i} outside [0, {self.num_docs})")
        return i % self.num_docs

    def doc_tokens(self, i: int) -> np.ndarray:
        """Document ``i``'s tokens including its trailing EOS (a view into one shard)."""
        i = self._doc(i)
        return self.tokens(self.doc_offsets[i], self.doc_offsets[i + 1])

    def doc_of_token(self, pos: int | np.ndarray) -> int | np.ndarray:
        """The document holding global token position(s) ``pos``."""
        arr = np.asarray(pos)
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_tokens):
            raise IndexError(f"token position outside [0, {self.num_tokens})")
        found = np.searchsorted(self.doc_offsets, arr, side="right") - 1
        return int(found) if found.ndim == 0 else found

    # ------------------------------------------------------------ documents
    @cached_property
    def _docs_file(self) -> pq.ParquetFile:
        import pyarrow.parquet as pq  # on the first document read: counts and token reads never need it

        return pq.ParquetFile(self.path / DOCS_FILE, memory_map=True)

    @cached_property
    def _rg_starts(self) -> np.ndarray:
        meta = self._docs_file.metadata
        return np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])

    @cached_property
    def _ids(self) -> pa.ChunkedArray:
        return self._docs_file.read(columns=["id"]).column("id")

    @cached_property
    def _id_index(self) -> dict[str, int]:
        return {doc_id: i for i, doc_id in enumerate(self._ids.to_pylist())}

    def doc_id(self, i: int) -> str:
        return self._ids[self._doc(i)].as_py()

    def doc_index(self, doc_id: str) -> int:
        try:
            return self._id_index[doc_id]
        except KeyError:
            raise KeyError(f"no document {doc_id!r} in store {self.path}") from None

    def _read_row_group(self, rg: int, column: str) -> pa.ChunkedArray:
        # one column at a time: metadata lookups (tracing ranks many documents) never pay for the text
        return self._docs_file.read_row_group(rg, columns=[column]).column(column)

    def _cell(self, i: int, column: str) -> Any:
        rg = int(np.searchsorted(self._rg_starts, i, side="right") - 1)
        return self._row_group(rg, column)[i - int(self._rg_starts[rg])].as_py()

    def doc_text(self, i: int) -> str:
        return self._cell(self._doc(i), "text")

    def iter_texts(self) -> Iterator[str]:
        """Every document's text in store order, a row group at a time (for whole-corpus indexes)."""
        for rg in range(self._docs_file.metadata.num_row_groups):
            yield from self._read_row_group(rg, "text").to_pylist()

    def doc_meta(self, i: int) -> dict[str, Any]:
        return json.loads(self._cell(self._doc(i), "meta"))

    def docs(self, indices: Any) -> list[dict[str, Any]]:
        """Records (id, text, meta, n_tokens) for the given document indices, in the order given."""
        out = []
        for i in np.asarray(indices, dtype=np.int64).ravel():
            i = self._doc(i)
            out.append({"id": self.doc_id(i), "text": self.doc_text(i), "meta": self.doc_meta(i),
                        "n_tokens": int(self.doc_offsets[i + 1] - self.doc_offsets[i])})
        return out

    # ------------------------------------------------------------ integrity
    def verify(self) -> None:
        """Re-hash every file against the manifest; raise ArtifactError naming any that changed."""
        bad = artifacts.verify(self.path)
        if bad:
            raise ArtifactError(f"store {self.path} is corrupted: {', '.join(bad)} no longer match "
                                "its manifest")


def __getattr__(name: str) -> Any:
    """``build_store`` and ``build_store_from_path`` are re-exported (build and read live side by side for
    users) but imported on first use: the builder needs pyarrow, opening a store does not."""
    if name in ("build_store", "build_store_from_path"):
        from empiricist.data import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_world(store_path: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """The world a token store was made from: the one "which world made this store" rule.

    The manifest records the world's path as given when the store was built (often relative to another
    working directory) and its config hash. Candidates, in order: that path; the same folder name in the
    store's workspace (``Workspace.containing``); that relative path under each ancestor of the store. The
    first complete world artifact whose config hash matches the recorded one (when one was recorded) wins.
    """
    store_path = Path(store_path)
    manifest = manifest if manifest is not None else artifacts.read_manifest(store_path)
    source = manifest.get("source") or {}
    raw, want = source.get("world"), source.get("world_hash")
    if not raw:
        raise ArtifactError(f"store {store_path} was not built from a generated world: no ground truth")
    home = artifacts.Workspace.containing(store_path)
    cands = [Path(raw)] + ([home.root / "worlds" / Path(raw).name] if home else [])
    cands += [base / raw for base in store_path.resolve().parents] if not Path(raw).is_absolute() else []
    for cand in cands:
        if (cand / "facts.jsonl").is_file() and artifacts.is_complete(cand) \
                and (want is None or artifacts.read_manifest(cand).get("config_hash") == want):
            return cand
    raise ArtifactError(f"the world {raw} (hash {want}) that store {store_path} was built from is not there")
