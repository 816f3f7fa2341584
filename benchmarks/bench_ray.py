"""The Ray executor on this machine: a retraining set on 1 and 2 Ray nodes against the local executor,
and Ray's overhead per unit.

Run on demand (never in tests):
    python benchmarks/bench_ray.py [--jobs 8] [--steps 60]

Starts its own clusters (`ray start`, one CPU per node, own temp dirs; torn down after): first a head
alone, then a head and a worker node. Each runs the same set of tiny-suite trainings (one thread each,
the attribution validation's kind of unit); their weights are compared byte for byte with the local
executor's. The overhead per unit is the wall time of no-op tasks (submit, schedule, return) divided by
their count, on the two-node cluster.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _noop() -> int:
    return 0


def _weights(folder: Path) -> list[str]:
    from empiricist.suite.suite import Suite

    s = Suite(folder)
    return [hashlib.sha256((s.checkpoint_path(size) / "model.safetensors").read_bytes()).hexdigest() for size in s.sizes]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import ray_cluster
    from conftest import synthetic_texts

    from empiricist.data import Document, build_store, train_bpe
    from empiricist.data.store import TokenStore
    from empiricist.execute import LocalExecutor, RayExecutor
    from empiricist.suite.config import ModelSize, get_preset
    from empiricist.suite.suite import train_suite

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    texts = synthetic_texts()
    tok = train_bpe(texts, 300, work / "tok")
    store = TokenStore.open(build_store((Document(f"d{i}", t, {"i": i}) for i, t in enumerate(texts)), tok,
                                        work / "store", progress=False))
    base = get_preset("tiny")
    sizes = tuple(ModelSize(f"j{i}", 32, 2, 2) for i in range(args.jobs))  # same shape, distinct units
    cfg = dataclasses.replace(base, sizes=sizes, train=dataclasses.replace(base.train, steps=args.steps, threads=1))

    def timed(executor, name: str) -> tuple[float, list[str]]:
        t = time.perf_counter()
        out = train_suite(cfg, store, work / name, progress=False, executor=executor)
        return time.perf_counter() - t, _weights(out)

    rows = []
    local_s, local_w = timed(LocalExecutor(), "local")
    rows.append(("local executor (2 cores, reused pool)", local_s, True))
    overhead = None
    for n in (1, 2):
        address, dirs = ray_cluster.start(n, 6500 + n)
        try:
            sec, w = timed(RayExecutor(address), f"ray{n}")
            rows.append((f"Ray, {n} node(s) × 1 CPU", sec, w == local_w))
            if n == 2:
                import ray

                task = ray.remote(num_cpus=1)(_noop)
                ray.get([task.remote() for _ in range(20)])  # warm the workers
                t = time.perf_counter()
                ray.get([task.remote() for _ in range(200)])
                overhead = (time.perf_counter() - t) / 200
        finally:
            ray_cluster.stop(dirs)
    print(f"{args.jobs} tiny-suite trainings (d_model 32, 2 layers, {args.steps} steps, 1 thread each)\n")
    print("| executor | wall s | s per unit | same bytes as local |\n|---|---:|---:|---|")
    for label, sec, same in rows:
        print(f"| {label} | {sec:.1f} | {sec / args.jobs:.2f} | {same} |")
    print(f"\nRay overhead per unit (200 no-op tasks on the two-node cluster): {overhead * 1e3:.1f} ms")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
