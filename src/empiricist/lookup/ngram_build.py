"""Build the n-gram index artifact over a token store, offline, with infini-gram's own indexer.

The files and how they are made are in ``infinigram``; this module makes them an artifact: a folder with
a ``manifest.json`` naming the store's manifest hash and tokenizer sha256 (so ``NgramIndex.open`` can
refuse any other store), built under a temporary name so an interrupted build never looks complete.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from empiricist.artifacts import (
    MANIFEST,
    Workspace,
    artifact_lock,
    building,
    config_hash,
    is_complete,
    read_manifest,
    sha256_file,
    write_manifest,
)
from empiricist.errors import ArtifactError
from empiricist.lookup import infinigram as ig

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore

KIND = "ngram_index"
FORMAT = 1


def store_content(store: TokenStore) -> str:
    """The store's identity from content only: its fingerprint (settings, tokenizer, documents) and the
    sha256 of each of its files; not the manifest's bytes, which hold a timestamp and the argv."""
    manifest = getattr(store, "manifest", None) or {}
    return config_hash({"fingerprint": getattr(store, "fingerprint", None), "files": manifest.get("files", {})}, 64)


def store_inputs(store: TokenStore) -> dict[str, str]:
    """What an index depends on: the store's content and its tokenizer."""
    return {"store": store_content(store), "tokenizer": str(store.tokenizer_sha256)}


def legacy_store_inputs(store: TokenStore) -> dict[str, str]:
    """What indexes built before content naming recorded (the store manifest's sha256): still accepted."""
    return {"store": sha256_file(Path(store.path) / MANIFEST), "tokenizer": str(store.tokenizer_sha256)}


def default_ngram_index_path(store: TokenStore, workspace: Workspace | str | Path | None = None) -> Path:
    """Default home: the indexes of the store's own workspace (else ``workspace``), not inside the store,
    whose manifest lists every file it holds; named by content, so identical stores built at different
    times share one index."""
    return Workspace.of(store.path, workspace).indexes / f"ngram-{store_inputs(store)['store'][:16]}"


def build_ngram_index(store: TokenStore, out_dir: str | Path | None = None, progress: bool = True, *,
                      cpus: int | None = None, mem_gib: float = 4.0, overwrite: bool = False,
                      workspace: Workspace | str | Path | None = None) -> Path:
    """Index ``store`` for n-gram queries; returns the artifact folder.

    An existing complete index of this very store is reused (pass ``overwrite=True`` to rebuild); one of
    another store is refused. ``cpus`` parallel indexer jobs (default: all cores), each within about
    ``mem_gib`` GiB, as infini-gram's script does.
    """
    out = Path(out_dir) if out_dir is not None else default_ngram_index_path(store, workspace)
    with artifact_lock(out):  # a second builder waits, then reuses the first one's index
        return _build_locked(store, out, progress, cpus, mem_gib, overwrite)


def _build_locked(store: TokenStore, out: Path, progress: bool, cpus: int | None, mem_gib: float, overwrite: bool) -> Path:
    inputs = store_inputs(store)
    if is_complete(out) and not overwrite:
        found = read_manifest(out, kind=KIND)
        if found.get("inputs") in (inputs, legacy_store_inputs(store)):
            return out
        raise ArtifactError(f"{out} holds an n-gram index of another store; pass overwrite=True or choose "
                            "another folder")
    binary = ig.package_dir() / "rust_indexing"
    dtype_name, width = ig.token_layout(store)
    say = _reporter(progress)
    t0 = time.perf_counter()
    with building(out, overwrite=overwrite, kind=KIND, force=overwrite) as tmp:
        say(f"writing {store.num_tokens:,} tokens of {store.num_docs:,} documents for the indexer")
        ig.write_datastore(store, tmp, width)
        ratio = ig.build_suffix_array(binary, tmp, width, cpus or os.cpu_count() or 1, mem_gib, say)
        seconds = time.perf_counter() - t0
        nbytes = sum(f.stat().st_size for f in tmp.iterdir() if f.is_file())
        extra = {
            "num_tokens": int(store.num_tokens), "num_docs": int(store.num_docs),
            "vocab_size": int(store.vocab_size), "eos_id": int(store.eos_id),
            "engine": {"package": "infini-gram", "package_version": ig.package_version(),
                       "index_version": ig.ENGINE_VERSION, "token_dtype": dtype_name, "token_width": width,
                       "pointer_bytes": ratio, "doc_separator": 256 ** width - 1},
            "stats": {"build_seconds": round(seconds, 3), "bytes": nbytes,
                      "bytes_per_token": round(nbytes / max(store.num_tokens, 1), 3),
                      "tokens_per_second": round(store.num_tokens / max(seconds, 1e-9))},
        }
        write_manifest(tmp, KIND, {"format": FORMAT, "token_dtype": dtype_name}, inputs=inputs, extra=extra)
    say(f"n-gram index ready at {out} ({seconds:.1f} s)")
    return out


def _reporter(progress: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if progress:
            print(f"[ngram-index] {message}", file=sys.stderr, flush=True)
    return say
