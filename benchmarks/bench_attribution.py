"""Benchmark attribution: wall time and peak memory for Q queries × N documents, per method, cold and warm.

Run on demand (not part of the tests)::

    python benchmarks/bench_attribution.py --suite micro --size m1 --docs 20000 --queries 100

Each method runs in its own process (so peak RSS is that method's): first with an empty cache ("cold"),
then with a *different* query set of the same size against the same documents and cache ("warm": what a
second question costs). Documents are a seeded random sample of the suite's store; queries are fact_qa
cloze prompts with the true value. Torch runs on ``--threads`` threads. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from empiricist.attribution import Documents, attribute, fact_queries
    from empiricist.suite.handles import load_model, resolve_suite
    from empiricist.suite.suite import Suite
    from empiricist.world.load import World

    torch.set_num_threads(args.threads)
    suite = Suite(resolve_suite(args.suite))
    store = suite.store()
    world = World.open(store.world_path())
    items = world.eval_items("fact_qa")
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(items))
    part = pick[:args.queries] if args.part == "cold" else pick[args.queries:2 * args.queries]
    queries = fact_queries([items[i] for i in part])
    idx = np.sort(rng.choice(len(store), min(args.docs, len(store)), replace=False))
    t0 = time.perf_counter()
    docs = Documents.from_store(store, idx)
    handle = load_model(f"suite:{suite.path}/{args.size}")
    load_s = time.perf_counter() - t0
    res = attribute(handle, queries, docs, args.method, cache=args.cache, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(res.seconds, 1), "load_s": round(load_s, 1), "peak_rss_mb": round(peak)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="micro")
    ap.add_argument("--size", default="m1")
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--methods", default="bm25,minilm,trackstar,tracin,trak,ekfac")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for m in args.methods.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-attr-{m}-") as cache:
            row = {"method": m}
            for part in ("cold", "warm"):
                cmd = [sys.executable, __file__, "--child", "--method", m, "--part", part, "--cache", cache,
                       "--suite", args.suite, "--size", args.size, "--docs", str(args.docs),
                       "--queries", str(args.queries), "--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "TQDM_DISABLE": "1"})
                if out.returncode:
                    raise SystemExit(f"{m} {part} failed:\n{out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                row[part] = r
                print(m, part, r, flush=True)
            rows.append(row)
    print(f"\n{args.queries} queries × {args.docs:,} documents, suite {args.suite} size {args.size}, "
          f"{args.threads} torch thread(s)\n")
    print("| method | cold: time (s) | cold: peak RSS (MB) | warm: time (s) | warm: peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['cold']['seconds']} | {r['cold']['peak_rss_mb']} | {r['warm']['seconds']} | "
              f"{r['warm']['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
