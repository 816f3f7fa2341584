"""empiricist.data: read corpora, find duplicates, train/load tokenizers, build and read token stores."""

from empiricist.data.dedup import DuplicateFilter, find_duplicates, text_key
from empiricist.data.readers import Document, detect_format, iter_documents
from empiricist.data.store import TokenStore, build_store, build_store_from_path
from empiricist.data.tokenizer import (
    eos_id,
    load_tokenizer,
    save_hf_tokenizer,
    tokenizer_hash,
    train_bpe,
)

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
