"""empiricist.data: read corpora, find duplicates, train/load tokenizers, build and read token stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

if TYPE_CHECKING:
    from empiricist.data.dedup import DuplicateFilter, find_duplicates, text_key
    from empiricist.data.readers import Document, detect_format, iter_documents
    from empiricist.data.store import TokenStore, build_store, build_store_from_path
    from empiricist.data.tokenizer import eos_id, load_tokenizer, save_hf_tokenizer, tokenizer_hash, train_bpe

_EXPORTS = {
    "DuplicateFilter": "dedup",
    "find_duplicates": "dedup",
    "text_key": "dedup",
    "Document": "readers",
    "detect_format": "readers",
    "iter_documents": "readers",
    "TokenStore": "store",
    "build_store": "store",
    "build_store_from_path": "store",
    "eos_id": "tokenizer",
    "load_tokenizer": "tokenizer",
    "save_hf_tokenizer": "tokenizer",
    "tokenizer_hash": "tokenizer",
    "train_bpe": "tokenizer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Document",
    "DuplicateFilter",
    "TokenStore",
    "build_store",
    "build_store_from_path",
    "detect_format",
    "eos_id",
    "find_duplicates",
    "iter_documents",
    "load_tokenizer",
    "save_hf_tokenizer",
    "text_key",
    "tokenizer_hash",
    "train_bpe",
]
