"""Read documents from the corpus formats people actually have, one at a time.

Every reader is a generator so a corpus larger than memory streams through; only the set of ids seen so
far is kept (to refuse duplicate ids, which would make ``doc_index`` and attribution ambiguous). Errors
name the file, the line or row, and the field, because "bad input" with no location wastes an afternoon.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empiricist.artifacts import MANIFEST, read_manifest
from empiricist.errors import ArtifactError, InputError

FORMATS = ("auto", "txt", "jsonl", "parquet", "hf", "world")
_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True)
class Document:
    """One training document: a stable id, its text, and whatever metadata came with it."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def iter_documents(
    path: str | Path, format: str = "auto", text_field: str = "text", id_field: str = "id"
) -> Iterator[Document]:
    """Stream the documents under ``path``; same input, same ids, in the same order.

    ``format`` is one of ``FORMATS``; ``auto`` decides from the path (see ``detect_format``). Ids come from
    ``id_field`` when present, else from the location (relative file path, plus ``:line`` or ``:row``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    fmt = detect_format(path) if format == "auto" else format
    readers = {"txt": _read_txt, "jsonl": _read_jsonl, "parquet": _read_parquet, "hf": _read_hf,
               "world": _read_world}
    if fmt not in readers:
        raise InputError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}", path=path)
    seen: dict[str, str] = {}
    for doc, where in readers[fmt](path, text_field, id_field):
        if doc.id in seen:
            raise InputError(f"duplicate document id {doc.id!r}: first at {seen[doc.id]}, again at {where}",
                             path=path)
        seen[doc.id] = where
        yield doc


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its name and, for a folder, what it holds."""
    path = Path(path)
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            return "jsonl"
        if name.endswith(".parquet"):
            return "parquet"
        if name.endswith(".txt"):
            return "txt"
        raise InputError("cannot tell the format from the file name; pass format=", path=path)
    if (path / "docs.jsonl").is_file() and _is_world(path):
        return "world"
    if any((path / m).is_file() for m in _HF_MARKERS):
        return "hf"
    found = [fmt for fmt in ("parquet", "jsonl", "txt") if _files(path, fmt)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError("folder holds no .txt, .jsonl or .parquet files and is not a saved HF dataset",
                         path=path)
    raise InputError(f"folder mixes {' and '.join(found)} files; pass format= to choose", path=path)


def _is_world(path: Path) -> bool:
    if not (path / MANIFEST).is_file():
        return False
    try:
        return read_manifest(path).get("kind") == "world"
    except ArtifactError:
        return False


_SUFFIXES = {"txt": (".txt",), "jsonl": (".jsonl", ".jsonl.gz", ".ndjson"), "parquet": (".parquet",)}


def _files(path: Path, fmt: str) -> list[Path]:
    """The files of one format: ``path`` itself, or every match below the folder in sorted order."""
    if path.is_file():
        return [path]
    suffixes = _SUFFIXES[fmt]
    return sorted((p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes)),
                  key=lambda p: p.relative_to(path).as_posix())


def _rel(path: Path, file: Path) -> str:
    """A file's name relative to the corpus root: the stable part of location-derived ids."""
    return file.name if path.is_file() else file.relative_to(path).as_posix()


def _doc_id(value: Any, fallback: str, *, id_field: str, **where: Any) -> str:
    if value is None:
        return fallback
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"id must be a string or integer, got {type(value).__name__}",
                         field=id_field, **where)
    return str(value)


def _text(value: Any, *, text_field: str, **where: Any) -> str:
    if value is None:
        raise InputError("missing text", field=text_field, **where)
    if not isinstance(value, str):
        raise InputError(f"text must be a string, got {type(value).__name__}", field=text_field, **where)
    return value


def _from_record(record: dict[str, Any], fallback_id: str, text_field: str, id_field: str,
                 **where: Any) -> Document:
    """A Document from a row/record: text and id taken out, every other field kept as metadata."""
    text = _text(record.get(text_field), text_field=text_field, **where)
    doc_id = _doc_id(record.get(id_field), fallback_id, id_field=id_field, **where)
    meta = {k: v for k, v in record.items() if k not in (text_field, id_field)}
    return Document(doc_id, text, meta)


# ---------------------------------------------------------------- formats
Located = Iterator[tuple[Document, str]]


def _read_txt(path: Path, text_field: str, id_field: str) -> Located:
    for file in _files(path, "txt"):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=file) from None
        rel = _rel(path, file)
        yield Document(rel, text, {}), str(file)


def text_lines(file: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file, gzip-compressed when named ``.gz``.

    Read as bytes and decoded line by line, so a bad byte is reported on its own line (a text-mode reader
    decodes ahead in blocks and reports a later line); a file that is not gzip, or is cut short, is one
    InputError naming it.
    """
    import zlib

    gz = file.name.lower().endswith(".gz")
    lineno = 0
    try:
        with (gzip.open(file, "rb") if gz else open(file, "rb")) as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"not UTF-8 text ({e.reason} at byte {e.start} of the line); re-save the "
                                     "file as UTF-8", path=file, line=lineno) from None
    except gzip.BadGzipFile:
        raise InputError("named .gz but not gzip-compressed; rename it (drop .gz) or compress it", path=file) from None
    except (EOFError, zlib.error) as e:
        raise InputError(f"gzip data is truncated or corrupt after line {lineno} ({e or 'unexpected end'}); "
                         "re-download or re-compress it", path=file) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as data; not UTF-8 (with the line of the first bad byte), malformed or nested too
    deeply (tomllib recurses) is one InputError naming the file and line."""
    import tomllib

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text ({e.reason}); re-save the file as UTF-8", path=path,
                         line=raw.count(b"\n", 0, e.start) + 1) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise InputError(f"malformed TOML: {str(e).split(' (at ')[0]}", path=path,
                         line=int(m[1]) if m else None) from None
    except RecursionError:
        raise InputError("TOML nested too deeply to read", path=path) from None


def _read_jsonl(path: Path, text_field: str, id_field: str) -> Located:
    for file in _files(path, "jsonl"):
        rel = _rel(path, file)
        for lineno, line in text_lines(file):
            if not line.strip():
                continue
            yield _jsonl_doc(line, file, lineno, rel, text_field, id_field), f"{file}:{lineno}"


def parse_json_line(line: str, file: Path, lineno: int) -> dict[str, Any]:
    """One JSONL line as an object; anything else is an InputError naming the file and line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path=file, line=lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path=file, line=lineno) from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}", path=file, line=lineno)
    if _SURROGATE.search(line) and _has_surrogate(record):
        raise InputError("JSON string holds a lone surrogate escape (e.g. \\ud800), which is not valid "
                         "Unicode text; fix or drop that string", path=file, line=lineno)
    return record


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_surrogate(value: Any) -> bool:
    """Whether a parsed JSON value holds a lone surrogate anywhere (it cannot be encoded as UTF-8)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def iter_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file: eval items, configs, logs."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    for lineno, line in text_lines(path):
        if line.strip():
            yield lineno, parse_json_line(line, path, lineno)


def _jsonl_doc(line: str, file: Path, lineno: int, rel: str, text_field: str, id_field: str) -> Document:
    record = parse_json_line(line, file, lineno)
    return _from_record(record, f"{rel}:{lineno}", text_field, id_field, path=file, line=lineno)


def _read_parquet(path: Path, text_field: str, id_field: str) -> Located:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for file in _files(path, "parquet"):
        rel = _rel(path, file)
        try:
            pf = pq.ParquetFile(file)
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"not a readable Parquet file ({e})", path=file) from None
        if text_field not in pf.schema_arrow.names:
            raise InputError(f"no such column (columns: {', '.join(pf.schema_arrow.names)})",
                             path=file, field=text_field)
        row = 0
        for batch in _parquet_batches(pf, file):
            for record in batch.to_pylist():
                doc = _from_record(record, f"{rel}:{row}", text_field, id_field, path=file, row=row)
                yield doc, f"{file}:row {row}"
                row += 1


def _parquet_batches(pf: Any, file: Path) -> Iterator[Any]:
    """Record batches of a Parquet file; a corrupt page is one InputError, not an Arrow traceback."""
    import pyarrow as pa

    it = pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as e:
            raise InputError(f"corrupt Parquet data ({str(e).splitlines()[0][:200]}); re-export the file",
                             path=file) from None
        yield batch


def _read_hf(path: Path, text_field: str, id_field: str) -> Located:
    """A ``save_to_disk`` dataset (memory-mapped Arrow, so iterating streams); a DatasetDict by split."""
    try:
        import datasets
    except ImportError:
        raise InputError("reading a saved HF dataset needs the `datasets` package "
                         "(pip install 'empiricist[hf]')", path=path) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError, KeyError) as e:  # what datasets raises for partial or foreign folders
        raise InputError(f"not a loadable HF dataset ({e})", path=path) from None
    splits = sorted(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    for split, ds in splits:
        where = path if split is None else path / split
        if text_field not in ds.column_names:
            raise InputError(f"no such column (columns: {', '.join(ds.column_names)})",
                             path=where, field=text_field)
        for row, record in enumerate(ds):
            fallback = str(row) if split is None else f"{split}:{row}"
            doc = _from_record(record, fallback, text_field, id_field, path=where, row=row)
            yield doc, f"{where}:row {row}"


def _read_world(path: Path, text_field: str, id_field: str) -> Located:
    """A generated world: its docs.jsonl carries each document's metadata (genre, subset, facts, ...)."""
    yield from _read_jsonl(path / "docs.jsonl", text_field, id_field)
