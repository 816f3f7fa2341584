"""The scheduler: small models side by side (one thread each) against one after another.

Run on demand (never in tests):  python benchmarks/bench_schedule.py [--steps 60]

Trains micro's m1 and m2 and the attribution-validation model shape (v1) on the same random-token
documents for ``--steps`` steps each, with the micro recipe's precision rule, three ways in one run:
(a) one after another with all cores each (how they trained before), (b) one after another with one
thread each, (c) side by side through ``run_jobs`` with one thread each. It reports wall time and
aggregate tokens/s, and checks that (c)'s weights are byte-identical to (b)'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import time

import numpy as np

from empiricist.attribution.validate import ValidationConfig
from empiricist.execute import Job, run_jobs
from empiricist.suite.config import ModelSize, TrainConfig, get_preset


def train_job(size: ModelSize, cfg: TrainConfig, n_docs: int) -> str:
    """Train one model on seeded random documents; the sha256 of its weights."""
    import torch

    from empiricist.attribution.retrain import train_on_docs

    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 2048, 300) for _ in range(n_docs)]
    model = train_on_docs(docs, size, cfg, 2048, seed=0)
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode() + t.detach().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    micro = get_preset("micro")
    val = ValidationConfig()
    models = [(micro.size("m1"), micro.train), (micro.size("m2"), micro.train),
              (val.size, dataclasses.replace(val.train, precision=micro.train.precision))]
    cores = len(os.sched_getaffinity(0))
    tokens = sum(cfg.tokens_per_step * args.steps for _, cfg in models)

    def jobs(threads: int) -> list[Job]:
        return [Job(size.name, train_job, {"size": size, "cfg": dataclasses.replace(cfg, steps=args.steps,
                                                                                        threads=threads),
                                           "n_docs": 400}, threads) for size, cfg in models]

    print(f"{cores} cores; models {', '.join(s.name for s, _ in models)}; {args.steps} steps each; "
          f"{tokens:,} tokens in all\n")
    print("| mode | wall s | aggregate tokens/s | vs (a) |\n|---|---:|---:|---:|")
    rows, shas = {}, {}
    for label, threads, workers in [("(a) one after another, all cores each", 0, "1"),
                                    ("(b) one after another, 1 thread each", 1, "1"),
                                    ("(c) side by side, 1 thread each", 1, str(cores))]:
        os.environ["EMPIRICIST_MAX_WORKERS"] = workers
        t = time.perf_counter()
        shas[label] = run_jobs(jobs(threads), cores=cores, progress=False)
        rows[label] = time.perf_counter() - t
        base = rows["(a) one after another, all cores each"]
        print(f"| {label} | {rows[label]:.1f} | {tokens / rows[label]:,.0f} | {base / rows[label]:.2f}× |", flush=True)
    same = shas["(b) one after another, 1 thread each"] == shas["(c) side by side, 1 thread each"]
    print(f"\n(c) weights byte-identical to (b): {same}")


if __name__ == "__main__":
    main()
