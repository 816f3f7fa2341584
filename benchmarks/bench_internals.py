"""Internals benchmarks: streaming capture (throughput, peak RSS, hook overhead), probe CV, the reduced stego grid.

Run on demand (never in tests), under ``nice`` on a shared machine:
    python benchmarks/bench_internals.py [--model SPEC] [--tokens 1000000] [--site resid.1] [--threads 1]

Capture: every token of ``--tokens`` tokens of text through a micro-sized GPT-NeoX (micro preset size
``--size``, random weights unless ``--model`` is given), one site, streamed to chunked .npy files. Peak
RSS is read from the kernel (``ru_maxrss``) after the capture, against the RSS before it and against
what holding every row in memory would take. Hook overhead: the same batches through a plain forward
(no hooks, full depth) vs capture with early stop at the site.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from empiricist.internals.activations import ActivationSet, capture_activations, iter_activations

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "born", "in", "the", "city", "of", "river", "lisbon", "paris",
         "works", "as", "a", "teacher", "and", "plays", "violin", "near", "harbour", "company", "was", "founded",
         "by", "people", "who", "lived", "on", "its", "banks")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_texts(n_tokens: int, words_per_text: int, seed: int = 0):
    rng = random.Random(seed)
    n = 0
    while n < n_tokens:
        yield " ".join(rng.choice(WORDS) for _ in range(words_per_text))
        n += words_per_text  # ≈ one token per word for these words with a small BPE


def micro_handle(size_name: str, workdir: Path):
    """A randomly initialised micro-preset model with a small byte-level BPE, as a ModelHandle."""
    from empiricist.data import train_bpe
    from empiricist.data.tokenizer import save_hf_tokenizer
    from empiricist.suite.config import get_preset
    from empiricist.suite.handles import load_model
    from empiricist.suite.model import build_model

    cfg = get_preset("micro")
    tok = train_bpe(list(synthetic_texts(200_000, 50, seed=1)), 512, workdir / "tok")
    folder = workdir / "model"
    build_model(cfg.size(size_name), cfg.vocab_size, 256, seed=0).save_pretrained(folder)
    save_hf_tokenizer(tok, folder)
    return load_model(str(folder))


def bench_capture(handle, args, workdir: Path) -> dict:
    texts = synthetic_texts(args.tokens, args.words)
    before = rss_mb()
    t = time.perf_counter()
    path = capture_activations(handle, texts, workdir / "acts", [args.site], "all", batch_size=args.batch,
                               chunk_rows=args.chunk_rows)
    wall = time.perf_counter() - t
    acts = ActivationSet(path)
    d = acts.dim(args.site)
    disk = sum(f.stat().st_size for f in (path / "acts").rglob("*.npy"))
    return {"tokens": acts.n_rows, "chunks": len(acts.chunks), "dim": d, "wall_s": round(wall, 1),
            "tokens_per_s": round(acts.n_rows / wall), "rss_before_mb": round(before), "peak_rss_mb": round(rss_mb()),
            "all_rows_in_ram_mb": round(acts.n_rows * d * 4 / 2**20), "disk_mb": round(disk / 2**20)}


def bench_overhead(handle, args) -> dict:
    texts = list(synthetic_texts(args.overhead_tokens, args.words, seed=2))
    tok, model = handle.tokenizer, handle.model
    tok.padding_side = "right"

    def plain() -> None:
        with torch.inference_mode():
            for i in range(0, len(texts), args.batch):
                enc = tok(texts[i:i + args.batch], return_tensors="pt", padding=True)
                model(**enc, use_cache=False)

    def hooked() -> None:
        for _ in iter_activations(model, tok, texts, [args.site], "all", batch_size=args.batch):
            pass

    out = {}
    for name, fn in (("plain_forward_s", plain), ("capture_s", hooked)):
        fn()  # warm-up
        t = time.perf_counter()
        fn()
        out[name] = round(time.perf_counter() - t, 2)
    return out


def bench_probe() -> dict:
    from empiricist.internals.probes import cross_validate

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 2000, 256)).astype(np.float32)
    y = rng.integers(0, 20, 2000)
    X[:, :, 0] += y
    t = time.perf_counter()
    cv = cross_validate(X, y, k=5)
    return {"probe_cv_5layers_2000x256_20cls_s": round(time.perf_counter() - t, 1), "acc": cv.acc.round(3).tolist()}


def bench_stego_reduced(workdir: Path, threads: int) -> dict:
    from empiricist.internals.stego import get_grid, run_stego_grid

    res = run_stego_grid(get_grid("reduced", threads=threads), workdir / "stego", progress=False)
    return {"stego_reduced_s": round(res.runtime_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model spec (default: a random micro model of --size)")
    ap.add_argument("--size", default="m2")
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--words", type=int, default=120, help="words per text (≈ tokens)")
    ap.add_argument("--site", default="resid.1")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--chunk-rows", type=int, default=65536)
    ap.add_argument("--overhead-tokens", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip", nargs="*", default=[], choices=["capture", "overhead", "probe", "stego"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="bench-internals-"))
    try:
        from empiricist.suite.handles import load_model

        handle = load_model(args.model) if args.model else micro_handle(args.size, workdir)
        out = {"model": handle.name, "threads": args.threads}
        if "capture" not in args.skip:
            out["capture"] = bench_capture(handle, args, workdir)
        if "overhead" not in args.skip:
            out["overhead"] = bench_overhead(handle, args)
        if "probe" not in args.skip:
            out["probe"] = bench_probe()
        if "stego" not in args.skip:
            out["stego"] = bench_stego_reduced(workdir, args.threads)
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
