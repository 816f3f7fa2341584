"""World generation speed: wall time and peak memory to generate worlds of several sizes.

Run on demand:  python benchmarks/bench_world.py [--tokens 1000000 10000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from empiricist.artifacts import read_manifest
from empiricist.world import WorldConfig, generate_world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", nargs="+", type=int, default=[1_000_000, 10_000_000])
    ap.add_argument("--preset", default="micro")
    args = ap.parse_args()
    print("| target tokens | documents | est. tokens | seconds | est. tokens/s |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.tokens:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            path = generate_world(WorldConfig.preset(args.preset, target_tokens=n), workspace=tmp, progress=False)
            sec = time.perf_counter() - t
            stats = read_manifest(path)["stats"]
            est = stats.get("est_tokens", n)
            print(f"| {n:,} | {stats.get('n_docs', 0):,} | {est:,} | {sec:.1f} | {est / sec:,.0f} |", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the whole run: {peak:.0f} MB")


if __name__ == "__main__":
    main()
