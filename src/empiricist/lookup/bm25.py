"""Lexical retrieval: BM25 (Lucene variant) with the ``bm25s`` package, saved as its own index files.

Text is tokenised by bm25s's own simple tokenizer (lower-cased words of 2+ word characters), English
stopwords removed, no stemming by default: exact words matter in a synthetic world whose names are
invented (a stemmer would merge unrelated invented names). The settings are recorded in the manifest
and reused for queries, so a query is tokenised exactly as the corpus was.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.errors import EmpiricistError

BM25_DIR = "bm25"


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise EmpiricistError("kind='bm25' needs the bm25s package: pip install bm25s") from None
    return bm25s


def _stemmer(name: str | None) -> Any:
    if name is None:
        return None
    try:
        import Stemmer
    except ImportError:
        raise EmpiricistError("stemming needs PyStemmer: pip install PyStemmer (or stemmer=None)") from None
    return Stemmer.Stemmer(name).stemWord


def bm25_settings(stopwords: str | None = "en", stemmer: str | None = None, k1: float = 1.5,
                  b: float = 0.75) -> dict[str, Any]:
    """The settings that define a BM25 index (hashed into its manifest config)."""
    return {"stopwords": stopwords, "stemmer": stemmer, "k1": float(k1), "b": float(b), "method": "lucene"}


def _tokenize(texts: Sequence[str], settings: dict[str, Any], as_ids: bool) -> Any:
    return _bm25s().tokenize(list(texts), stopwords=settings["stopwords"] or [], return_ids=as_ids,
                             stemmer=_stemmer(settings["stemmer"]), show_progress=False)


def build_bm25(texts: Sequence[str], folder: Path, settings: dict[str, Any],
               progress: bool = True) -> dict[str, Any]:
    """Index ``texts`` (one per chunk, in chunk order) and save bm25s's files under ``folder/bm25``."""
    bm25s = _bm25s()
    retriever = bm25s.BM25(k1=settings["k1"], b=settings["b"], method=settings["method"])
    retriever.index(_tokenize(texts, settings, as_ids=True), show_progress=progress)
    retriever.save(str(folder / BM25_DIR), show_progress=False)
    return {"vocab_size": len(retriever.vocab_dict)}


class BM25Backend:
    """A loaded bm25s index; queries are tokenised with the settings the index was built with."""

    def __init__(self, folder: Path, settings: dict[str, Any], n_chunks: int) -> None:
        self.retriever = _bm25s().BM25.load(str(folder / BM25_DIR), show_progress=False)
        self.settings = settings
        self.n = n_chunks

    def __len__(self) -> int:
        return self.n

    def query(self, texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores), each (len(texts), k); rows of chunks sharing no word with the query are -1."""
        tokens = _tokenize(texts, self.settings, as_ids=False)
        rows, scores = self.retriever.retrieve(tokens, k=min(k, self.n), show_progress=False, n_threads=1)
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        rows[scores <= 0] = -1  # bm25s pads with arbitrary zero-score chunks: those were not retrieved
        return rows, scores
