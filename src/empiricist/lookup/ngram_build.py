"""Build the n-gram index artifact over a token store, offline, with infini-gram's own indexer.

The files and how they are made are in ``infinigram``; this module makes them an artifact: a folder with
a ``manifest.json`` naming the store's manifest hash and tokenizer sha256 (so ``NgramIndex.open`` can
refuse any other store), built under a temporary name so an interrupted build never looks complete.

``shards=N`` splits the store into N document ranges of about equal tokens, each indexed as one unit of
work on the executor (a Ray node can index one while another indexes the next). Each unit is an artifact
of its own (``.ngram-….shards/docs-A-B``, named by its range and checked against the store's content), so a
killed build resumes with the shards already done; the driver verifies them and links them into one index
that the engine reads as a multi-shard datastore. Every exact answer is the same as a one-shard index's
(tests/test_ngram_shards.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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
from empiricist.errors import ArtifactError, InputError
from empiricist.lookup import infinigram as ig

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.execute import Executor

KIND = "ngram_index"
SHARD_KIND = "ngram_shard"
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
                      workspace: Workspace | str | Path | None = None, shards: int = 1,
                      executor: Executor | None = None) -> Path:
    """Index ``store`` for n-gram queries; returns the artifact folder.

    An existing complete index of this very store is reused, whatever its shard count (pass
    ``overwrite=True`` to rebuild); one of another store is refused. ``cpus`` parallel indexer jobs
    (default: all cores; per shard unit with ``shards`` > 1), each within about ``mem_gib`` GiB, as
    infini-gram's script does. ``shards``/``executor``: see the module docstring.
    """
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise InputError(f"shards must be a positive integer, got {shards!r} (CLI: --ngram-shards)")
    out = Path(out_dir) if out_dir is not None else default_ngram_index_path(store, workspace)
    with artifact_lock(out):  # a second builder waits, then reuses the first one's index
        return _build_locked(store, out, progress, cpus, mem_gib, overwrite, shards, executor)


def shard_ranges(store: TokenStore, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, non-empty document ranges [first, last) of about equal token counts."""
    n = int(store.num_docs)
    shards = max(1, min(shards, n))
    offsets = np.asarray(store.doc_offsets, dtype=np.int64)
    cuts = [0]
    for k in range(1, shards):
        at = int(np.searchsorted(offsets, offsets[-1] * k / shards, side="left"))
        cuts.append(min(max(at, cuts[-1] + 1), n - (shards - k)))
    return list(zip(cuts, [*cuts[1:], n]))


def _build_locked(store: TokenStore, out: Path, progress: bool, cpus: int | None, mem_gib: float, overwrite: bool,
                  shards: int, executor: Executor | None) -> Path:
    inputs = store_inputs(store)
    if is_complete(out) and not overwrite:
        found = read_manifest(out, kind=KIND)
        if found.get("inputs") in (inputs, legacy_store_inputs(store)):
            return out
        raise ArtifactError(f"{out} holds an n-gram index of another store; pass overwrite=True or choose "
                            "another folder")
    dtype_name, width = ig.token_layout(store)
    say = _reporter(progress)
    t0 = time.perf_counter()
    ranges = shard_ranges(store, shards)
    with building(out, overwrite=overwrite, kind=KIND, force=overwrite) as tmp:
        if len(ranges) == 1:
            say(f"writing {store.num_tokens:,} tokens of {store.num_docs:,} documents for the indexer")
            ig.write_datastore(store, tmp, width)
            ratios = [ig.build_suffix_array(ig.package_dir() / "rust_indexing", tmp, width,
                                            cpus or os.cpu_count() or 1, mem_gib, say)]
        else:
            say(f"{len(ranges)} shards of {store.num_docs:,} documents, one unit of work each")
            ratios = _build_shards(store, out, ranges, tmp, cpus or 1, mem_gib, progress, executor)
        ratio = ratios[0]
        seconds = time.perf_counter() - t0
        nbytes = sum(f.stat().st_size for f in tmp.iterdir() if f.is_file())
        extra = {
            "num_tokens": int(store.num_tokens), "num_docs": int(store.num_docs),
            "vocab_size": int(store.vocab_size), "eos_id": int(store.eos_id),
            "engine": {"package": "infini-gram", "package_version": ig.package_version(),
                       "index_version": ig.ENGINE_VERSION, "token_dtype": dtype_name, "token_width": width,
                       "pointer_bytes": ratio, "doc_separator": 256 ** width - 1,
                       "shards": [{"docs": [a, b], "pointer_bytes": r} for (a, b), r in zip(ranges, ratios)]},
            "stats": {"build_seconds": round(seconds, 3), "bytes": nbytes,
                      "bytes_per_token": round(nbytes / max(store.num_tokens, 1), 3),
                      "tokens_per_second": round(store.num_tokens / max(seconds, 1e-9))},
        }
        write_manifest(tmp, KIND, {"format": FORMAT, "token_dtype": dtype_name}, inputs=inputs, extra=extra)
    shutil.rmtree(_parts_dir(out), ignore_errors=True)  # the shards now live in the index (hard links)
    say(f"n-gram index ready at {out} ({seconds:.1f} s)")
    return out


def _parts_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.shards"


def _build_shards(store: TokenStore, out: Path, ranges: list[tuple[int, int]], tmp: Path, cpus: int,
                  mem_gib: float, progress: bool, executor: Executor | None) -> list[int]:
    """Index each missing shard as a unit of work, verify all of them, link their files into ``tmp``."""
    from empiricist.execute import Job, run_jobs

    parts, content = _parts_dir(out), store_content(store)
    folders = [parts / f"docs-{a}-{b}" for a, b in ranges]
    jobs = [Job(f"n-gram shard docs {a}-{b}", build_shard,
                {"store_path": str(store.path), "first": a, "last": b, "out": str(folder), "content": content,
                 "cpus": cpus, "mem_gib": mem_gib}, threads=cpus, artifact=str(folder))
            for (a, b), folder in zip(ranges, folders) if not _shard_done(folder, content, a, b)]
    parts.mkdir(parents=True, exist_ok=True)
    run_jobs(jobs, progress=progress, desc="n-gram shards", executor=executor)
    ratios = []
    for k, folder in enumerate(folders):
        manifest = read_manifest(folder, kind=SHARD_KIND)
        for name, new in zip((ig.DS_FILE, ig.SA_FILE, ig.OD_FILE), ig.shard_files(k, len(folders))):
            _link(folder / name, tmp / new)
        ratios.append(int(manifest["pointer_bytes"]))
    return ratios


def _shard_done(folder: Path, content: str, first: int, last: int) -> bool:
    if not is_complete(folder):
        return False
    m = read_manifest(folder, kind=SHARD_KIND)
    return m.get("inputs", {}).get("store") == content and m.get("config", {}).get("docs") == [first, last]


def build_shard(store_path: str, first: int, last: int, out: str, content: str, cpus: int, mem_gib: float) -> str:
    """One unit: the single-shard index of documents [first, last) of the store at ``store_path`` (which
    must still hold ``content``: a node seeing another copy of the workspace fails here, not later)."""
    from empiricist.data.store import TokenStore

    store = TokenStore.open(store_path)
    if store_content(store) != content:
        raise ArtifactError(f"the store at {store_path} is not the one being indexed (content "
                            f"{store_content(store)[:12]}… ≠ {content[:12]}…): is the workspace shared?")
    _, width = ig.token_layout(store)
    with building(out, overwrite=True, kind=SHARD_KIND, force=True) as tmp:
        ig.write_datastore(store, tmp, width, first, last)
        ratio = ig.build_suffix_array(ig.package_dir() / "rust_indexing", tmp, width, cpus, mem_gib, lambda m: None)
        write_manifest(tmp, SHARD_KIND, {"docs": [first, last]}, inputs=store_inputs(store),
                       extra={"pointer_bytes": ratio})
    return out


def _link(src: Path, dst: Path) -> None:
    """A hard link (no copy of a large file) where the filesystem allows one, else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _reporter(progress: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if progress:
            print(f"[ngram-index] {message}", file=sys.stderr, flush=True)
    return say
