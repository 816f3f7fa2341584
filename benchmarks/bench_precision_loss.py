"""Does a faster precision cost loss? Train one micro size at equal tokens in each precision, compare losses.

Run on demand (never in tests):
    python benchmarks/bench_precision_loss.py [--size m3] [--steps 300] [--precisions fp32 bf16 bf16-master]

Each run trains the size from the same init on the micro store in the same order (the micro preset's recipe,
``steps`` shortened, the LR schedule re-fitted to it), in a scratch workspace. Reported: the mean training
loss over the last 50 steps, and the held-out loss (fp32 eval) on 8 batches of the order that lie beyond
the trained steps in the base seed's order (the same batches for every run; unseen by the base-seed
runs, and by the other-seed run too except by chance).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from empiricist.data.order import TrainingOrder
from empiricist.data.store import TokenStore
from empiricist.pipeline import prepare_preset
from empiricist.suite.config import get_preset
from empiricist.suite.handles import load_model
from empiricist.suite.step import lm_loss
from empiricist.suite.suite import Suite, train_suite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="m3")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--precisions", nargs="*", default=["fp32", "bf16", "bf16-master"])
    ap.add_argument("--other-seed", action="store_true",
                    help="add an fp32 run with the next seed: how far apart two seeds are, the yardstick")
    ap.add_argument("--workspace", default=None, help="where the micro world/store are (default: $EMPIRICIST_HOME)")
    args = ap.parse_args()
    prep = prepare_preset("micro", args.workspace)
    store = TokenStore.open(prep.store)
    base = get_preset("micro")
    size = base.size(args.size)
    print(f"size {args.size}, {args.steps} steps × {base.train.tokens_per_step} tokens\n")
    print("| precision | wall s | train loss (last 50 steps) | held-out loss |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(p, 0) for p in args.precisions] + ([("fp32", 1)] if args.other_seed else [])
        for precision, seed_offset in runs:
            cfg = dataclasses.replace(base, sizes=(size,), train=dataclasses.replace(
                base.train, steps=args.steps, warmup_steps=max(1, args.steps // 20), precision=precision,
                compile=False, seed=base.train.seed + seed_offset))
            t0 = time.perf_counter()
            out = train_suite(cfg, store, Path(tmp) / f"{precision}-{seed_offset}", progress=False)
            wall = time.perf_counter() - t0
            suite = Suite(out)
            steps, losses = suite.loss_curve(args.size)
            train_loss = float(np.mean(losses[steps > args.steps - 50]))
            order = TrainingOrder(store, cfg.train.seq_len, cfg.train.batch_size, base.train.seed)  # one held-out set
            model = load_model(str(suite.checkpoint_path(args.size))).model.eval()
            with torch.no_grad():
                held = [float(lm_loss(model, torch.from_numpy(order.batch(args.steps + 100 + i)))) for i in range(8)]
            label = precision + (f" (seed +{seed_offset})" if seed_offset else "")
            print(f"| {label} | {wall:.0f} | {train_loss:.4f} | {np.mean(held):.4f} |", flush=True)


if __name__ == "__main__":
    main()
