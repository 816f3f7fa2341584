"""Embedding throughput for semantic indexes, against the bf16 matmul peak measured in the same run.

Run on demand (never in tests):
    python benchmarks/bench_embed.py [--sample 1000] [--threads 2] [--workspace DIR]

Embeds a random sample of the micro store's documents with MiniLM (``Embedder.embed``: windows sorted by
length, token-budget batches) in float32 and bfloat16, with SDPA and with eager attention, and reports
windows/s, wordpieces/s, model GFLOP/s and MFU (best of ``--repeats`` interleaved passes). Model FLOPs count real (unpadded) wordpieces only:
2·N per token for the N non-embedding weights plus 4·layers·d·L per token for attention over a window of
L tokens, so padding waste shows up as lost MFU. The last column extrapolates to the whole store.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
from bench_train import matmul_peak  # run as a script: benchmarks/ is on sys.path

from empiricist.data.store import TokenStore
from empiricist.pipeline import prepare_preset


def main() -> None:
    from empiricist.lookup.semantic import minilm_embedder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--repeats", type=int, default=3, help="passes over the configurations; best time is kept")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = TokenStore.open(prepare_preset("micro", args.workspace).store)
    rng = random.Random(0)
    texts = [store.doc_text(i) for i in rng.sample(range(store.num_docs), args.sample)]
    peak = matmul_peak(torch.bfloat16)
    print(f"{store.num_docs:,} documents; sample {args.sample}; torch {args.threads} threads; "
          f"bf16 matmul peak {peak / 1e9:.0f} GFLOP/s (2048×2048)\n")
    print("| precision | attention | windows/s | wordpieces/s | model GFLOP/s | MFU (bf16 peak) | whole store |")
    print("|---|---|---:|---:|---:|---:|---:|")
    probe = minilm_embedder("float32")
    ids, _ = probe.windows(texts)
    lengths = np.array([len(w) for w in ids], dtype=np.int64)
    cfg = probe.model.config
    d, layers = cfg.hidden_size, cfg.num_hidden_layers
    n_weights = sum(p.numel() for n, p in probe.model.base_model.named_parameters()
                    if p.dim() >= 2 and "embeddings" not in n)
    flops = float(np.sum(lengths * (2 * n_weights + 4 * layers * d * lengths)))  # per token, times tokens
    configs = [(p, a) for p in ("float32", "bfloat16") for a in ("sdpa", "eager")]
    embedders = {}
    for precision, attn in configs:
        emb = minilm_embedder(precision)
        emb.runner.config._attn_implementation = attn
        emb.embed(texts[:64])  # warm-up
        embedders[precision, attn] = emb
    best = dict.fromkeys(configs, float("inf"))
    for _ in range(args.repeats):  # interleaved passes: a noisy neighbour hits every configuration alike
        for key, emb in embedders.items():
            t = time.perf_counter()
            emb.embed(texts)
            best[key] = min(best[key], time.perf_counter() - t)
    for (precision, attn), sec in best.items():
        whole = sec * store.num_docs / len(texts) / 60
        print(f"| {precision} | {attn} | {len(ids) / sec:,.0f} | {lengths.sum() / sec:,.0f} | "
              f"{flops / sec / 1e9:.1f} | {flops / sec / peak:.1%} | {whole:.1f} min |", flush=True)

if __name__ == "__main__":
    main()
