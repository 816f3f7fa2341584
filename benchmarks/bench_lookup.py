"""Benchmark training-data lookup: index build, n-gram counts and tracing, vs EleutherAI's tokengrams.

Run on demand (not part of the tests)::

    python benchmarks/bench_lookup.py --tokens 50_000_000          # generated world -> store -> index
    python benchmarks/bench_lookup.py --store path/to/token_store   # an existing store
    python benchmarks/bench_lookup.py --suite micro --threads 2     # whole lookup setup of a suite + semantic latency

Prints a markdown table. Queries are random n-grams of length 1-12, half taken from the corpus (present)
and half random ids (mostly absent); trace targets are 200-token outputs spliced from corpus snippets with
10% of tokens replaced at random. tokengrams indexes the raw token stream (no document boundaries), so
its counts can differ for n-grams that straddle documents; the table says how often they agree.

``--suite`` times the whole lookup setup of a trained suite (n-gram, BM25, MiniLM FAISS and the largest
model's FAISS index, built from scratch into the scratch folder), compares embedding speed of the previous
embedding loop (float32, 64 texts padded together, 32 windows per pass) with the current one on a sample
(``--embed-sample``), and measures semantic query latency: embedding one query, the FAISS search, and
``SearchIndex.search`` end to end (with document metadata). Queries are the first sentence of random
documents. Torch runs on ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
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


# ---------------------------------------------------------------- suite setup + semantic search
def legacy_embed(embedder: Any, texts: list[str], batch_texts: int = 64, batch_windows: int = 32) -> np.ndarray:
    """The embedding loop before the speed-up (float32; texts padded together in groups of 64), for comparison."""
    import torch

    model = embedder.model.base_model
    out = []
    with torch.inference_mode():
        for a in range(0, len(texts), batch_texts):
            enc = embedder.tokenizer(texts[a:a + batch_texts], add_special_tokens=embedder.add_special_tokens,
                                     truncation=True, max_length=embedder.max_length,
                                     return_overflowing_tokens=True, padding=True, return_tensors="pt")
            owner, ids, mask = enc["overflow_to_sample_mapping"], enc["input_ids"], enc["attention_mask"]
            sums = torch.zeros((len(texts[a:a + batch_texts]), embedder.dim), dtype=torch.float64)
            counts = torch.zeros(len(sums), dtype=torch.float64)
            for b in range(0, ids.shape[0], batch_windows):
                m = mask[b:b + batch_windows]
                width = max(int(m.sum(1).max()), 1)
                hidden = model(input_ids=ids[b:b + batch_windows, :width], attention_mask=m[:, :width]).last_hidden_state
                sums.index_add_(0, owner[b:b + batch_windows], (hidden.double() * m[:, :width, None]).sum(1))
                counts.index_add_(0, owner[b:b + batch_windows], m.sum(1).double())
            vecs = (sums / counts.clamp(min=1)[:, None]).numpy()
            out.append(vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12))
    return np.concatenate(out).astype(np.float32)


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def embed_speeds(embedders: dict[str, Callable[[str], Any]], texts: list[str]) -> list[str]:
    """Rows: embeddings/s of the previous loop and of ``Embedder.embed`` per precision (texts in length order)."""
    texts = sorted(texts, key=len)  # as build_vectors orders them
    rows = []
    for name, make in embedders.items():
        base = make("float32")
        legacy_embed(base, texts[:32])  # warm-up
        cpu = cpu_seconds()
        ref, t_old = timed(legacy_embed, base, texts)
        cpu = cpu_seconds() - cpu
        rows.append(f"| {name} | previous loop, float32 | {len(texts) / t_old:.1f} | {len(texts) / cpu:.1f} | 1 |")
        for precision in ("float32", "bfloat16"):
            emb = make(precision)
            emb.embed(texts[:32])
            cpu = cpu_seconds()
            vecs, took = timed(emb.embed, texts)
            cpu = cpu_seconds() - cpu
            cos = float((vecs * ref).sum(1).min())
            rows.append(f"| {name} | sorted + token-budget batches, {precision} | {len(texts) / took:.1f} | "
                        f"{len(texts) / cpu:.1f} | {cos:.5f} |")
    return rows


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the n-gram indexer runs as a subprocess)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def first_sentence(text: str) -> str:
    line = next((x for x in text.splitlines() if x.strip()), text)
    return line.split(". ")[0][:200]


def existing_index(store: Any, kind: str, handle: Any) -> Path:
    """The workspace's complete default index of ``kind`` for ``store`` (built by ``empiricist index build``)."""
    from empiricist.artifacts import is_complete
    from empiricist.lookup.bm25 import bm25_settings
    from empiricist.lookup.search import default_search_index_path
    from empiricist.lookup.semantic import minilm_embedder, model_embedder

    identity = ({"embedder": "bm25", **bm25_settings("en")} if kind == "bm25" else
                minilm_embedder().identity if kind == "minilm" else model_embedder(handle).identity)
    path = default_search_index_path(store, kind, None, identity)
    if not is_complete(path):
        raise SystemExit(f"--reuse: no complete {kind} index at {path}; build it with `empiricist index build`")
    return path


def bench_suite(suite_name: str, work: Path, threads: int, n_queries: int, sample: int,
                kinds: list[str], reuse: bool = False) -> None:
    import faiss
    import torch

    from empiricist.lookup import SearchIndex, build_search_index
    from empiricist.lookup.semantic import minilm_embedder, model_embedder
    from empiricist.suite.handles import load_model, resolve_suite
    from empiricist.suite.suite import Suite

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    suite = Suite(resolve_suite(suite_name))
    store = suite.store()
    handle = load_model(f"suite:{suite.path}/{suite.sizes[-1]}")
    print(f"suite {suite.path.name}: {store.num_docs:,} docs, {store.num_tokens:,} tokens; model "
          f"{suite.sizes[-1]}; torch {threads} thread(s), bf16 native: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    rng = random.Random(0)
    docs = [store.doc_text(i) for i in rng.sample(range(store.num_docs), max(sample, n_queries))]
    makers = {"minilm": minilm_embedder, f"model ({suite.sizes[-1]})": lambda p: model_embedder(handle, p)}
    if sample:
        print(f"\nembedding speed on {sample:,} random documents (cos: min cosine to the previous loop)\n")
        print("| embedder | loop | embeddings/s (wall) | per CPU-second | min cos |\n|---|---|---|---|---|")
        print("\n".join(embed_speeds(makers, docs[:sample])))

    load0 = os.getloadavg()
    paths: dict[str, Path] = {}
    rows = []
    total = total_cpu = 0.0
    for kind in kinds if reuse else []:
        if kind != "ngram":
            paths[kind] = existing_index(store, kind, handle)
    for kind in [] if reuse else kinds:
        cpu0 = cpu_seconds()
        out = work / f"setup-{kind}"
        shutil.rmtree(out, ignore_errors=True)
        if kind == "ngram":
            _, took = timed(build_ngram_index, store, out, progress=False, cpus=threads)
            rows.append(f"| n-gram (infini-gram) | {took:.1f} s | {cpu_seconds() - cpu0:.1f} s | — |")
        else:
            model = handle if kind == "model" else None
            paths[kind], took = timed(build_search_index, store, kind, out, model=model, progress=False)
            stats = SearchIndex.open(paths[kind], store, model=model).manifest.get("stats", {})
            speed = stats.get("embeddings_per_s")
            rate = f"{speed:,.1f} docs/s ({stats.get('precision')})" if speed else "—"
            rows.append(f"| {kind} | {took:.1f} s | {cpu_seconds() - cpu0:.1f} s | {rate} |")
        total += took
        total_cpu += cpu_seconds() - cpu0
        print(f"  built {kind} in {took:.1f} s", flush=True)
    if reuse:
        print("\n(--reuse: indexes taken from the workspace, setup not timed)")
    elif kinds:
        print(f"\nwhole lookup setup, {threads} torch thread(s) / n-gram jobs\n")
        print(f"load average before: {load0}; after: {os.getloadavg()}")
        print("| index | build (wall) | CPU time (all threads) | embedding speed |\n|---|---|---|---|")
        print("\n".join(rows) + f"\n| **total** | **{total:.1f} s** | {total_cpu:.1f} s | |")

    queries = [first_sentence(t) for t in docs[:n_queries]]
    print(f"\nsearch latency, {n_queries} queries (first sentence of random documents), ms p50 / p99\n")
    print("| index | embed query | FAISS search (k=10) | SearchIndex.search end to end |\n|---|---|---|---|")
    for kind, path in paths.items():
        index = SearchIndex.open(path, store, model=handle if kind == "model" else None)
        index.search(queries[0])  # loads the embedder
        full = latencies(index.search, queries)  # k=10
        if kind == "bm25":
            print(f"| bm25 | — | — | {ms(full)} |")
            continue
        emb = index.backend.embedder
        vecs = np.concatenate([emb.embed([q]) for q in queries])
        t_embed = latencies(emb.embed, [[q] for q in queries])
        t_faiss = latencies(partial(index.backend.index.search, k=10), [v[None, :] for v in vecs])
        print(f"| {kind} ({emb.precision}, {len(index):,} vectors of {emb.dim}) | {ms(t_embed)} | {ms(t_faiss)} | "
              f"{ms(full)} |")


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
    ap.add_argument("--suite", help="time the lookup setup of this suite (name or folder) and semantic search")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (with --suite)")
    ap.add_argument("--embed-sample", type=int, default=1000, help="documents for the embedding-speed table")
    ap.add_argument("--kinds", default="ngram,bm25,minilm,model", help="indexes to build (with --suite)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --suite: search the workspace's existing indexes instead of timing new builds")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.suite:
            bench_suite(args.suite, work, args.threads, min(args.queries, 500), args.embed_sample,
                        [k for k in args.kinds.split(",") if k], args.reuse)
            return
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
