"""Everything that knows infini-gram's file formats, indexer binary and engine, in one place.

infini-gram's ``indexing.py`` tokenizes JSONL with a hub tokenizer; we skip that step and write its input
files straight from a token store, then run the ``rust_indexing`` binary shipped in its wheel
(``make-part`` per slice, ``merge``, ``concat``) exactly as that script does. Files (index version 4):

* ``tokenized.0``: every document as ``[0xFF..FF separator] + its tokens (with our EOS)``, little-endian
  u16 or u32 (the store's width; the separator is the all-ones id, which no real token can have).
* ``offset.0``: u64 byte offset of each document's separator in ``tokenized.0``.
* ``table.0``: the suffix array, one ``ratio = ceil(log2(bytes) / 8)``-byte little-endian byte pointer
  per token, sorted by the bytes that follow (the engine compares bytes, the indexer sorts big-endian
  token values: the same order).

An index sharded by document range holds one such triple per shard (``tokenized.k`` ...), each built
alone; the engine answers over all of them (counts summed, ∞-gram distributions merged). It orders a
folder's shards by sorting path strings, so shard numbers are zero-padded to one width (``shard_files``).
"""

from __future__ import annotations

import math
import mmap
import os
import subprocess
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.errors import ArtifactError, EmpiricistError

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore

ENGINE_VERSION = 4  # infini-gram's forward index layout
DS_FILE, SA_FILE, OD_FILE = "tokenized.0", "table.0", "offset.0"  # one shard's files, as it is built
HACK_BYTES = 100_000  # overlap between indexer slices; infini-gram's default (must exceed any long repeat)
_CHUNK_TOKENS = 1 << 23
# rust_indexing sizes its bucket table by the largest 4-byte value (read big-endian): 2^32 u64 counters.
# Linux only hands out such an allocation (touched sparsely) when RAM is at least that large.
U32_MIN_MEMORY = 2**32 * 8 + 2 * 2**30
_WIDTHS = {np.dtype(np.uint16): ("u16", 2), np.dtype(np.uint32): ("u32", 4)}
# The C++ engine sorts a folder's files by these substrings of the *whole path*: such a path needs a detour.
_ENGINE_NAME_PARTS = ("tokenized", "table", "offset", "metadata", "metaoff", "unigram")


def package_dir() -> Path:
    """Folder of the installed infini_gram package (holds ``rust_indexing`` and the C++ engine)."""
    try:
        import infini_gram
    except ImportError:
        raise EmpiricistError("the n-gram index needs the infini-gram package: pip install infini-gram") \
            from None
    return Path(infini_gram.__file__).parent


def package_version() -> str:
    try:
        return metadata.version("infini-gram")
    except metadata.PackageNotFoundError:
        return "unknown"


def token_layout(store: TokenStore) -> tuple[str, int]:
    """infini-gram's dtype name and byte width for the store's tokens; refuses ids that hit the separator."""
    try:
        name, width = _WIDTHS[np.dtype(store.dtype)]
    except KeyError:
        raise ArtifactError(f"store {store.path} has tokens of dtype {store.dtype}; expected uint16 or "
                            "uint32") from None
    if store.vocab_size >= 256 ** width - 1:
        raise ArtifactError(f"vocab size {store.vocab_size} collides with the {name} document separator")
    if width == 4 and physical_memory() < U32_MIN_MEMORY:
        raise ArtifactError(
            f"store {store.path} has 4-byte tokens (vocab {store.vocab_size} > 65535); infini-gram's indexer "
            f"then reserves a {U32_MIN_MEMORY / 2**30:.0f} GiB bucket table, more than this machine's "
            f"{physical_memory() / 2**30:.0f} GiB of RAM. Use a tokenizer of at most 65535 tokens, or index "
            "on a larger machine")
    return name, width


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def shard_files(k: int, shards: int) -> tuple[str, str, str]:
    """The (tokenized, table, offset) names of shard ``k`` of ``shards``: ``.0`` for a lone shard as ever,
    zero-padded otherwise so that the engine's string sort is the document order."""
    tag = str(k).zfill(len(str(shards - 1)))
    return f"tokenized.{tag}", f"table.{tag}", f"offset.{tag}"


def separator_positions(store: TokenStore, first: int, last: int) -> np.ndarray:
    """Token index, inside the shard of documents [first, last), of each document's separator."""
    offsets = np.asarray(store.doc_offsets[first:last], dtype=np.int64)
    return offsets - (offsets[0] if offsets.size else 0) + np.arange(last - first, dtype=np.int64)


def write_datastore(store: TokenStore, folder: Path, width: int, first: int = 0, last: int | None = None) -> None:
    """Write ``tokenized.0`` (separator + tokens per doc) and ``offset.0`` for the store's documents
    [first, last) (default: all), chunk by chunk."""
    dtype = np.dtype(f"<u{width}")
    sep = 256 ** width - 1
    last = int(store.num_docs) if last is None else last
    offsets = np.asarray(store.doc_offsets, dtype=np.int64)
    starts = separator_positions(store, first, last)  # indexed by document - first
    (starts * width).astype("<u8").tofile(folder / OD_FILE)
    with open(folder / DS_FILE, "wb") as f:
        a, n_docs = first, last
        while a < n_docs:
            b = int(np.searchsorted(offsets, offsets[a] + _CHUNK_TOKENS, side="right")) - 1
            b = min(max(b, a + 1), n_docs)
            tokens = np.asarray(store.tokens(offsets[a], offsets[b]))
            if tokens.size and int(tokens.max()) >= store.vocab_size:
                raise ArtifactError(f"store {store.path} holds token id {int(tokens.max())} >= its vocab "
                                    f"size {store.vocab_size} (corrupted?)")
            out = np.empty(tokens.size + (b - a), dtype=dtype)
            is_sep = np.zeros(out.size, dtype=bool)
            is_sep[starts[a - first:b - first] - starts[a - first]] = True
            out[is_sep] = sep
            out[~is_sep] = tokens
            out.tofile(f)
            a = b


def build_suffix_array(binary: Path, folder: Path, width: int, cpus: int, mem_gib: float,
                        say: Callable[[str], None]) -> int:
    """Run infini-gram's indexer (make-part x N, merge, concat) as its script does; returns pointer bytes."""
    ds = folder / DS_FILE
    size = ds.stat().st_size
    ratio = max(1, math.ceil(math.log2(size) / 8))
    batches = 1
    while batches * (int(mem_gib * 1024 ** 3) // 8) < size:
        batches *= 2
    # Each slice overlaps the next by HACK_BYTES; keep slices several overlaps long so the last is whole.
    jobs = max(1, min(cpus * batches, size // (4 * HACK_BYTES)))
    step = -(-size // jobs)
    step += -step % width
    parts, merged = folder / "parts", folder / "merged"
    parts.mkdir()
    merged.mkdir()
    common = ["--data-file", str(ds), "--ratio", str(ratio), "--token-width", str(width)]
    slices = [(s, min(s + step + HACK_BYTES, size)) for s in range(0, size, step)]
    say(f"suffix array: {len(slices)} slice(s), {ratio}-byte pointers")
    for k in range(0, len(slices), cpus):
        run_all([[str(binary), "make-part", *common, "--parts-dir", str(parts), "--start-byte", str(s),
                   "--end-byte", str(e)] for s, e in slices[k:k + cpus]])
    run_all([[str(binary), "merge", *common, "--parts-dir", str(parts), "--merged-dir", str(merged),
               "--num-threads", str(cpus), "--hacksize", str(HACK_BYTES)]])
    threads = len(list(merged.iterdir()))  # merge may use fewer threads than asked on small data
    run_all([[str(binary), "concat", *common, "--merged-dir", str(merged), "--merged-file",
               str(folder / SA_FILE), "--num-threads", str(threads)]])
    for d in (parts, merged):
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    expected = size // width * ratio
    if (folder / SA_FILE).stat().st_size != expected:
        raise ArtifactError(f"infini-gram's indexer wrote a suffix array of the wrong size "
                            f"({(folder / SA_FILE).stat().st_size} bytes, expected {expected})")
    return ratio


def run_all(commands: list[list[str]]) -> None:
    """Run indexer commands in parallel; any failure (or our interruption) stops them all."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    try:
        results = [(p, *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (p, out, err), cmd in zip(results, commands):
        if p.returncode != 0:
            tail = (err or out or "").strip()[-800:]
            raise ArtifactError(f"infini-gram indexer step {cmd[1]!r} failed (exit {p.returncode}): {tail}")


def map_file(path: Path) -> mmap.mmap:
    """A read-only memory map (slices are plain bytes: cheaper than numpy memmap views per lookup)."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def load_engine(path: Path, eos_id: int, vocab_size: int, token_dtype: str) -> Any:
    """infini-gram's engine over ``path`` (through a neutral symlink if the path would confuse it)."""
    package_dir()
    from infini_gram.engine import InfiniGramEngine

    # No madvise prefetching: a syscall per search step costs more than it saves once pages are cached.
    options = {"eos_token_id": eos_id, "vocab_size": vocab_size, "version": ENGINE_VERSION,
               "token_dtype": token_dtype,
               "ds_prefetch_depth": 0, "sa_prefetch_depth": 0, "od_prefetch_depth": 0}
    path = path.resolve()
    if not any(part in str(path) for part in _ENGINE_NAME_PARTS):
        return InfiniGramEngine(index_dir=str(path), **options)
    with tempfile.TemporaryDirectory(prefix="empiricist-ngram-") as tmp:
        link = Path(tmp) / "index"
        if any(part in str(link) for part in _ENGINE_NAME_PARTS):
            raise ArtifactError(f"cannot open {path}: its path and the temp folder both contain one of "
                                f"{_ENGINE_NAME_PARTS}, which infini-gram's engine reads as file names")
        os.symlink(path, link, target_is_directory=True)
        # The engine mmaps the files in its constructor, so the link can go right after.
        return InfiniGramEngine(index_dir=str(link), **options)
