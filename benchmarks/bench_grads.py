"""Per-example gradients (TRAK, TracIn, TrackStar's engine): one forward/backward per row vs one batch.

Run on demand (not part of the tests)::

    python benchmarks/bench_grads.py --rows 256 --threads 1

Models: the micro suite's shapes (and the attribution validation's v1), random init from
``suite.model.build_model``, vocabulary 2,048; rows: random tokens with the lengths of 128-token training
documents (uniform 40–128), a third of each masked out like a query prompt. Both paths run in this
process, one after the other, on ``--threads`` threads; prints rows/s of each, the ratio and the largest
difference relative to the largest gradient entry.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from empiricist._malloc import keep_freed_memory
from empiricist.attribution.data import Rows
from empiricist.attribution.grads import per_example_grads
from empiricist.suite.config import ModelSize
from empiricist.suite.model import build_model

SIZES = [ModelSize("v1", 48, 2, 4), ModelSize("m1", 48, 2, 4), ModelSize("m2", 96, 3, 4),
         ModelSize("m3", 160, 4, 4), ModelSize("m4", 256, 4, 8)]


def rows(n: int, vocab: int, seed: int = 0) -> Rows:
    rng = np.random.default_rng(seed)
    ids, masks = [], []
    for _ in range(n):
        length = int(rng.integers(40, 129))
        ids.append(rng.integers(1, vocab, length).astype(np.int64))
        m = np.ones(length, np.float32)
        m[: length // 3] = 0
        masks.append(m)
    return Rows(ids, masks, np.arange(n), np.ones(n, np.float32))


def timed(fn) -> tuple[float, torch.Tensor]:  # noqa: ANN001
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", nargs="*", default=["v1", "m2", "m3", "m4"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as attribute() does
    data = rows(args.rows, 2048)
    print(f"threads: {args.threads}  rows: {args.rows}\n")
    print("| size | params | loop rows/s | batched rows/s | speed-up | max rel. diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in (s for s in SIZES if s.name in args.sizes):
        model = build_model(size, 2048, 128, seed=0).eval()
        per_example_grads(model, data, range(4))  # warm-up
        t_loop, ref = timed(lambda m=model: per_example_grads(m, data, range(args.rows), batched=False))
        t_batch, got = timed(lambda m=model: per_example_grads(m, data, range(args.rows)))
        diff = float((got - ref).abs().max() / ref.abs().max())
        print(f"| {size.name} | {sum(p.numel() for p in model.parameters()):,} | {args.rows / t_loop:,.0f} | "
              f"{args.rows / t_batch:,.0f} | {t_loop / t_batch:.1f}× | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
