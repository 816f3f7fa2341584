"""magic on the validation's micro setting: cost per query against one training run, and metasmoothness.

    python benchmarks/bench_magic.py --suite micro --out /tmp/magic-micro [--queries 4] [-w WORKSPACE] [--lr 1e-3]

It builds (or reuses) the validation's base model in ``--out`` (the same corpus, queries and recipe as
``empiricist attribute-validate --suite micro``), then for the first ``--queries`` fact and text queries:
the replay of the recorded run (checked against the model), the metagradients (seconds per query ÷
seconds of one training run), and ``magic.metasmoothness`` at ε = 0.01, 0.1, 1 on 4 random halves.
Results: ``<out>/bench_magic.json``. Timings are on whatever else shares the machine: compare ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from empiricist.artifacts import atomic_write_json
    from empiricist.attribution.data import query_rows
    from empiricist.attribution.magic import Replay, check_replay, metagradients, metasmoothness, read_run
    from empiricist.attribution.validate import VALIDATION_PRESETS, Validation, _hf_tokenizer
    from empiricist.suite.handles import resolve_suite
    from empiricist.suite.suite import Suite
    from empiricist.world.load import World

    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="micro")
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=4, help="of each kind")
    ap.add_argument("-w", "--workspace", default=None)
    ap.add_argument("--lr", type=float, default=None, help="the preset's recipe with this peak learning rate")
    args = ap.parse_args()
    store = Suite(resolve_suite(args.suite, args.workspace)).store()
    cfg = VALIDATION_PRESETS[args.preset]
    if args.lr is not None:
        cfg = dataclasses.replace(cfg, name=f"{cfg.name}-lr{args.lr:g}", train=dataclasses.replace(cfg.train, lr=args.lr))
    v = Validation(World.open(store.world_path()), store, cfg, args.out, progress=False)
    handle = v.base_model()
    pick = [*np.flatnonzero(v.kind == "fact")[:args.queries], *np.flatnonzero(v.kind == "text")[:args.queries]]
    queries = [v.queries[i] for i in pick]
    rows = query_rows(queries, _hf_tokenizer(store), cfg.train.seq_len)
    replay = Replay(v.docs.tokens, **read_run(Path(v.checkpoints[-1][0]), v.docs))
    t0 = time.perf_counter()
    final, _ = replay.trainer(replay.start(), 0, cfg.train.steps)
    train_s = time.perf_counter() - t0
    diff = check_replay(final[0], handle.model, environment=replay.environment)
    t0 = time.perf_counter()
    mg, _ = metagradients(replay, rows, len(queries), chunk=len(queries))
    magic_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    smooth = metasmoothness(replay, rows, len(queries), mg, scales=(0.01, 0.1, 1.0), fraction=cfg.fraction)
    smooth_s = time.perf_counter() - t0
    out = {"queries": [q.id for q in queries], "n_docs": len(v.docs), "steps": cfg.train.steps, "lr": cfg.train.lr,
           "threads": torch.get_num_threads(), "replay_max_weight_diff": diff, "train_s": round(train_s, 2),
           "magic_s": round(magic_s, 1), "magic_s_per_query": round(magic_s / len(queries), 1),
           "magic_per_query_over_training": round(magic_s / len(queries) / train_s, 1),
           "metasmoothness": smooth, "metasmoothness_s": round(smooth_s, 1),
           "mean_abs_score_nats": float(np.abs(mg).mean()), "max_abs_score_nats": float(np.abs(mg).max())}
    atomic_write_json(args.out / "bench_magic.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
