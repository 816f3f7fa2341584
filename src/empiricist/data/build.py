"""Build a token store: tokenize a stream of documents into memory-mappable shards plus a docs table.

Streaming throughout: documents are tokenized in batches (``Tokenizer.encode_batch_fast``), tokens are
appended to raw shard files, and text/metadata go to ``docs.parquet`` one row group per batch, so the
corpus never has to fit in memory. The folder is built under a temporary name (``artifacts.building``)
and only appears, with its manifest, once complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from empiricist.artifacts import building, config_hash, read_manifest, sha256_file, write_manifest
from empiricist.data.dedup import DuplicateFilter
from empiricist.data.layout import DOCS_FILE, OFFSETS_FILE, STORE_KIND, TOKENIZER_FILE
from empiricist.data.readers import Document, detect_format, iter_documents
from empiricist.data.tokenizer import eos_id, load_tokenizer, resolve_tokenizer_path
from empiricist.errors import ArtifactError, InputError

DOCS_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("meta", pa.string()),
                         ("n_tokens", pa.int64())])


def store_dtype(vocab_size: int) -> np.dtype:
    """Smallest unsigned dtype holding every token id: halves disk and page cache for small vocabs."""
    return np.dtype(np.uint16 if vocab_size <= 65535 else np.uint32)


def shard_name(i: int) -> str:
    return f"shards/tokens-{i:05d}.bin"


class _ShardWriter:
    """Appends documents' tokens to numbered shards; a document never straddles two shards."""

    def __init__(self, folder: Path, dtype: np.dtype, shard_tokens: int) -> None:
        self.folder, self.dtype, self.shard_tokens = folder, dtype, shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._file: BinaryIO | None = None
        self._pending: list[np.ndarray] = []

    def append(self, tokens: np.ndarray) -> None:
        current = self.shards[-1]["num_tokens"] if self.shards else None
        if current is None or (current > 0 and current + len(tokens) > self.shard_tokens):
            self._open_next()
        self._pending.append(tokens)
        self.shards[-1]["num_tokens"] += len(tokens)

    def flush(self) -> None:
        if self._pending and self._file is not None:
            np.concatenate(self._pending).tofile(self._file)
        self._pending = []

    def _open_next(self) -> None:
        self.close()
        start = sum(s["num_tokens"] for s in self.shards)
        name = shard_name(len(self.shards))
        (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.folder / name, "wb")  # noqa: SIM115 - outlives this call; close() shuts it
        self.shards.append({"file": name, "start": start, "num_tokens": 0})

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class _Tally:
    """What the build saw: counts for the manifest and a digest of the source documents."""

    docs_read: int = 0
    dropped: dict[str, str] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    source: Any = field(default_factory=hashlib.sha256)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _as_document(doc: Document | Mapping[str, Any], n: int) -> Document:
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, Mapping) and isinstance(doc.get("text"), str) and doc.get("id") is not None:
        return Document(str(doc["id"]), doc["text"], dict(doc.get("meta") or {}))
    raise InputError(f"document #{n} is not a Document or a mapping with 'id' and string 'text'")


def _meta_json(meta: Mapping[str, Any]) -> str:
    # default=str keeps odd Parquet/HF values (timestamps, decimals) rather than failing the whole build
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)


def build_store(
    docs: Iterable[Document],
    tokenizer_path: str | Path,
    out_dir: str | Path,
    *,
    shard_tokens: int = 50_000_000,
    batch_docs: int = 1000,
    dedupe: bool = False,
    normalize_whitespace: bool = False,
    source: Mapping[str, Any] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Tokenize ``docs`` into a token store at ``out_dir``; returns its path.

    Each document's tokens are followed by one EOS (part of its span in ``doc_offsets``). Literal special
    strings inside texts are tokenized as text, so EOS only ever marks a document boundary. With
    ``dedupe`` later exact copies (``normalize_whitespace``: up to whitespace) are dropped and listed in
    the manifest under ``duplicates``. ``overwrite`` replaces whatever is at ``out_dir`` (otherwise only
    an absent or empty folder, or a finished store, is written). ``source`` describes where the docs came from (recorded as is).
    """
    if shard_tokens < 1 or batch_docs < 1:
        raise InputError(f"shard_tokens and batch_docs must be positive (got {shard_tokens}, {batch_docs})")
    tok_file = resolve_tokenizer_path(tokenizer_path)
    tok = load_tokenizer(tok_file)
    tok.encode_special_tokens = True
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = store_dtype(vocab_size)
    eos = eos_id(tok)
    tok_sha = sha256_file(tok_file)
    config = {"shard_tokens": shard_tokens, "batch_docs": batch_docs, "dedupe": dedupe,
              "normalize_whitespace": normalize_whitespace, "separator": "eos_after_each_doc",
              "special_strings_in_text": "tokenized_as_text"}
    out_dir = Path(out_dir)
    with building(out_dir, overwrite=overwrite, kind=STORE_KIND, force=overwrite) as tmp:
        shutil.copyfile(tok_file, tmp / TOKENIZER_FILE)
        shards = _ShardWriter(tmp, dtype, shard_tokens)
        offsets = array("q", [0])
        tally = _Tally()
        filt = DuplicateFilter(normalize_whitespace) if dedupe else None
        from tqdm.auto import tqdm

        with pq.ParquetWriter(tmp / DOCS_FILE, DOCS_SCHEMA) as writer, \
                tqdm(desc=f"tokenizing into {out_dir.name}", unit="doc", disable=not progress) as bar:
            for batch in _batches(docs, batch_docs):
                keep = _screen(batch, tally, filt)
                if keep:
                    _write_batch(keep, tok, eos, dtype, shards, offsets, writer)
                bar.update(len(batch))
        shards.close()
        num_docs = len(offsets) - 1
        if num_docs == 0:
            raise InputError(f"no documents to store in {out_dir}")
        np.save(tmp / OFFSETS_FILE, np.frombuffer(offsets, dtype=np.int64))
        dupes = {"dropped": len(tally.dropped), "kept_copy_of": tally.dropped} if dedupe else None
        extra = {"num_tokens": int(offsets[-1]), "num_docs": num_docs, "dtype": dtype.name,
                 "vocab_size": vocab_size, "eos_id": eos, "shards": shards.shards,
                 "tokenizer_sha256": tok_sha, "source": dict(source) if source is not None else None,
                 "source_docs": tally.docs_read, "duplicates": dupes}
        inputs = {"tokenizer": tok_sha, "source": tally.source.hexdigest()}
        # config_hash covers only the build settings; the fingerprint also covers tokenizer and data
        extra["fingerprint"] = config_hash({"config": config, "inputs": inputs})
        write_manifest(tmp, STORE_KIND, config, inputs=inputs, extra=extra)
    return out_dir


def _screen(batch: list[Any], tally: _Tally, filt: DuplicateFilter | None) -> list[Document]:
    """Check ids, digest the source, and drop duplicates; returns the documents to store."""
    keep = []
    for raw in batch:
        doc = _as_document(raw, tally.docs_read)
        tally.docs_read += 1
        if doc.id in tally.ids:
            raise InputError(f"duplicate document id {doc.id!r} (again at document #{tally.docs_read - 1})")
        tally.ids.add(doc.id)
        tally.source.update(json.dumps([doc.id, doc.text, _meta_json(doc.meta)], ensure_ascii=False)
                            .encode("utf-8") + b"\n")
        first = filt.first_copy(doc) if filt is not None else None
        if first is not None:
            tally.dropped[doc.id] = first
        else:
            keep.append(doc)
    return keep


# Tokenizing costs about 100 bytes of memory per character in flight (tokenizers keeps offsets and
# pre-tokenized pieces), so one 30 MB document used to take several GB. Texts are cut into pieces of at
# most PIECE_CHARS and encoded at most ENCODE_CHARS at a time: peak memory stays near
# ENCODE_CHARS * ~100 B (~100 MB) whatever the document sizes. The cuts fall before a single space that
# follows a non-space and precedes one, where a byte-level BPE pre-tokenizer splits anyway, so the ids
# are the same as for the whole text (a text with no such place in a piece's window is cut at the window).
PIECE_CHARS = 1 << 18
ENCODE_CHARS = 1 << 20


def split_text(text: str, piece: int = PIECE_CHARS) -> list[str]:
    """``text`` in pieces of at most ``piece`` characters, cut at pre-tokenizer boundaries."""
    if len(text) <= piece:
        return [text]
    out, start = [], 0
    while len(text) - start > piece:
        end = start + piece
        cut = end
        while cut > start + 1 and not (text[cut] == " " and not text[cut - 1].isspace()
                                       and cut + 1 < len(text) and not text[cut + 1].isspace()):
            cut -= 1
        cut = cut if cut > start + 1 else end
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def encode_bounded(tok: Any, texts: list[str], dtype: np.dtype) -> list[np.ndarray]:
    """Token ids of each text (no special tokens) as ``dtype`` arrays, in bounded memory (``PIECE_CHARS``)."""
    pieces = [(i, p) for i, t in enumerate(texts) for p in split_text(t)]
    ids: list[list[np.ndarray]] = [[] for _ in texts]
    group: list[tuple[int, str]] = []
    size = 0
    for item in [*pieces, None]:
        if item is None or (group and size + len(item[1]) > ENCODE_CHARS):
            for (i, _), enc in zip(group, tok.encode_batch_fast([p for _, p in group], add_special_tokens=False),
                                   strict=True):
                ids[i].append(np.asarray(enc.ids, dtype=dtype))
            group, size = [], 0
        if item is not None:
            group.append(item)
            size += len(item[1])
    return [np.concatenate(parts) if parts else np.empty(0, dtype=dtype) for parts in ids]


def _write_batch(keep: list[Document], tok: Any, eos: int, dtype: np.dtype, shards: _ShardWriter,
                 offsets: array, writer: pq.ParquetWriter) -> None:
    n_tokens = []
    for doc_ids in encode_bounded(tok, [d.text for d in keep], dtype):
        ids = np.empty(len(doc_ids) + 1, dtype=dtype)
        ids[:-1] = doc_ids
        ids[-1] = eos
        shards.append(ids)
        n_tokens.append(len(ids))
        offsets.append(offsets[-1] + len(ids))
    shards.flush()
    table = pa.table({"id": [d.id for d in keep], "text": [d.text for d in keep],
                      "meta": [_meta_json(d.meta) for d in keep], "n_tokens": n_tokens}, schema=DOCS_SCHEMA)
    writer.write_table(table, row_group_size=len(keep))


def build_store_from_path(
    path: str | Path,
    tokenizer_path: str | Path,
    out_dir: str | Path,
    format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    **kwargs: Any,
) -> Path:
    """Read a corpus with ``iter_documents`` and build its store, recording where it came from."""
    path = Path(path)
    fmt = detect_format(path) if format == "auto" and path.exists() else format
    source: dict[str, Any] = {"path": str(path), "format": fmt, "text_field": text_field,
                              "id_field": id_field}
    if fmt == "world":
        try:
            world = read_manifest(path, kind="world")
            source["world_config_hash"] = world.get("config_hash")
        except ArtifactError:
            pass
    docs = iter_documents(path, format=fmt, text_field=text_field, id_field=id_field)
    return build_store(docs, tokenizer_path, out_dir, source=source, **kwargs)
