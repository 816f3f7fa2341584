"""A token store's file names and kind: shared by the builder and the reader without importing either
(opening a store for a count must not pay for pyarrow, which only the docs table needs)."""

from __future__ import annotations

STORE_KIND = "token_store"
DOCS_FILE = "docs.parquet"
OFFSETS_FILE = "doc_offsets.npy"
TOKENIZER_FILE = "tokenizer.json"
