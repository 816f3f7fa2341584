"""Benchmark training-data lookup: index build, n-gram counts and tracing, vs EleutherAI's tokengrams.

Run on demand (not part of the tests)::

    python benchmarks/bench_lookup.py --tokens 50_000_000          # generated world -> store -> index
    python benchmarks/bench_lookup.py --store path/to/token_store   # an existing store

Prints a markdown table. Queries are random n-grams of length 1-12, half taken from the corpus (present)
and half random ids (mostly absent); trace targets are 200-token outputs spliced from corpus snippets with
10% of tokens replaced at random. tokengrams indexes the raw token stream (no document boundaries), so
its counts can differ for n-grams that straddle documents; the table says how often they agree.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.data import TokenStore, build_store, build_store_from_path, train_bpe
from empiricist.data.readers import Document
from empiricist.lookup import NgramIndex, build_ngram_index, trace


def make_store(tokens: int, work: Path, vocab: int) -> TokenStore:
    """A store of about ``tokens`` tokens from the generated world (synthetic text if it is unavailable)."""
    store_dir = work / f"store-{tokens}"
    if (store_dir / "manifest.json").is_file():
        return TokenStore.open(store_dir)
    try:
        from empiricist.world import World, WorldConfig, generate_world

        world = generate_world(WorldConfig(target_tokens=tokens), work / f"world-{tokens}", progress=False)
        texts = [d["text"] for _, d in zip(range(20_000), World.open(world).iter_docs())]
        tok = train_bpe(texts, vocab, work / f"tokenizer-{tokens}.json")
        return TokenStore.open(build_store_from_path(world, tok, store_dir, format="world", progress=False))
    except ImportError as e:
        print(f"(world generator unavailable: {e}; using synthetic text)")
    rng = random.Random(0)
    words = [f"w{i}" for i in range(20_000)]
    weights = [1 / (i + 1) for i in range(len(words))]
    docs = [Document(f"s{i}", " ".join(rng.choices(words, weights, k=rng.randint(50, 400))))
            for i in range(tokens // 200)]
    tok = train_bpe((d.text for d in docs[:5000]), vocab, work / f"tokenizer-syn-{tokens}.json")
    return TokenStore.open(build_store(docs, tok, store_dir, progress=False))


def sample_queries(store: TokenStore, n: int, rng: random.Random) -> list[list[int]]:
    out = []
    for k in range(n):
        length = rng.randint(1, 12)
        if k % 2 == 0:
            a = rng.randrange(store.num_tokens - length)
            out.append(store.tokens(a, a + length).tolist())
        else:
            out.append([rng.randrange(1, store.vocab_size) for _ in range(length)])
    return out


def sample_outputs(store: TokenStore, n: int, rng: random.Random, length: int = 200) -> list[list[int]]:
    outs = []
    for _ in range(n):
        seq: list[int] = []
        while len(seq) < length:
            a = rng.randrange(store.num_tokens - 40)
            seq += store.tokens(a, a + rng.randint(5, 40)).tolist()
        seq = seq[:length]
        for i in rng.sample(range(length), length // 10):
            seq[i] = rng.randrange(1, store.vocab_size)
        outs.append(seq)
    return outs


def latencies(fn: Callable[[Any], Any], items: list[Any]) -> np.ndarray:
    out = np.empty(len(items))
    for k, item in enumerate(items):
        t = time.perf_counter()
        fn(item)
        out[k] = time.perf_counter() - t
    return out * 1e3


def ms(a: np.ndarray) -> str:
    return f"{np.percentile(a, 50):.3f} / {np.percentile(a, 99):.3f}"


def tokengrams_trace(idx: Any, seq: list[int], min_len: int = 5, max_freq: int = 1000
                     ) -> list[tuple[int, int]]:
    """The same maximal-span rule via doubling + binary search on tokengrams' ``count`` (spans only)."""
    spans, last = [], 0
    for i in range(len(seq)):
        lo, hi = 0, 1
        while i + hi <= len(seq) and idx.count(seq[i:i + hi]) > 0:
            lo, hi = hi, hi * 2
        hi = min(hi, len(seq) - i + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if idx.count(seq[i:i + mid]) > 0 else (lo, mid)
        if lo >= min_len and i + lo > last and idx.count(seq[i:i + lo]) <= max_freq:
            spans.append((i, i + lo))
            last = i + lo
    return spans


def bench_tokengrams(store: TokenStore, work: Path, queries: list[list[int]], outputs: list[list[int]],
                     ours: list[int]) -> dict[str, str] | None:
    try:
        from tokengrams import MemmapIndex
    except ImportError:
        print("(tokengrams not installed: pip install tokengrams)")
        return None
    data = work / "tokengrams.bin"
    with open(data, "wb") as f:
        for a in range(0, store.num_tokens, 1 << 24):
            np.asarray(store.tokens(a, min(a + (1 << 24), store.num_tokens))).tofile(f)
    vocab = 2 ** (8 * store.dtype.itemsize)
    t = time.perf_counter()
    idx = MemmapIndex.build(str(data), str(work / "tokengrams.idx"), vocab=vocab, verbose=False)
    build_s = time.perf_counter() - t
    size = (work / "tokengrams.idx").stat().st_size + data.stat().st_size
    counts = latencies(idx.count, queries)
    agree = np.mean([idx.count(q) == c for q, c in zip(queries, ours)])
    traces = latencies(lambda o: tokengrams_trace(idx, o), outputs)
    return {"build": f"{build_s:.1f} s ({store.num_tokens / build_s / 1e6:.2f} M tok/s)",
            "bytes": f"{size / store.num_tokens:.2f}", "count": ms(counts), "spans": ms(traces), "trace": "n/a",
            "notes": f"{agree:.1%} of counts equal ours (no document boundaries)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2_000_000, help="store size to generate (not with --store)")
    ap.add_argument("--store", type=Path, help="benchmark an existing token store")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temp folder, removed afterwards)")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--traces", type=int, default=50)
    ap.add_argument("--cpus", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--no-tokengrams", action="store_true")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        store = TokenStore.open(args.store) if args.store else make_store(args.tokens, work, args.vocab)
        took = time.perf_counter() - t
        print(f"store: {store.num_tokens:,} tokens, {store.num_docs:,} docs ({took:.1f} s)")
        idx_dir = work / "ngram"
        shutil.rmtree(idx_dir, ignore_errors=True)
        t = time.perf_counter()
        build_ngram_index(store, idx_dir, progress=False, cpus=args.cpus)
        build_s = time.perf_counter() - t
        index = NgramIndex.open(idx_dir, store)
        nbytes = sum(f.stat().st_size for f in idx_dir.iterdir() if f.name != "manifest.json")
        rng = random.Random(0)
        queries, outputs = sample_queries(store, args.queries, rng), sample_outputs(store, args.traces, rng)
        ours = [index.count(q) for q in queries]  # also warms the page cache, as for tokengrams below
        counts = latencies(index.count, queries)
        spans = latencies(lambda o: index.maximal_matches(o, 5, 1000), outputs)
        traces = latencies(lambda o: trace(index, o), outputs)
        n_spans = np.mean([len(trace(index, o).spans) for o in outputs[:10]])
        rows = {"empiricist (infini-gram)": {
            "build": f"{build_s:.1f} s ({store.num_tokens / build_s / 1e6:.2f} M tok/s)",
            "bytes": f"{nbytes / store.num_tokens:.2f}", "count": ms(counts), "spans": ms(spans),
            "trace": ms(traces), "notes": f"{n_spans:.1f} spans / output (min_len 5, max_freq 1000)"}}
        if not args.no_tokengrams and (tg := bench_tokengrams(store, work, queries, outputs, ours)):
            rows["tokengrams (EleutherAI)"] = tg
        print(f"\n{store.num_tokens:,} tokens, {args.cpus} cpu(s); latencies in ms, p50 / p99\n")
        print("| engine | index build | bytes/token | count | spans of a 200-tok output | full trace (docs + "
              "metadata) | notes |")
        print("|---|---|---|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {r['build']} | {r['bytes']} | {r['count']} | {r['spans']} | {r['trace']} | "
                  f"{r['notes']} |")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
