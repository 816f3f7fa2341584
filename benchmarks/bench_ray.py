"""The Ray executor on this machine: a retraining set, an eval grid and one data-parallel training on 1
and 2 Ray nodes against the local executor, and Ray's overhead per unit.

Run on demand (never in tests):
    python benchmarks/bench_ray.py [--jobs 8] [--steps 60] [--items 192] [--dp-steps 200]

Starts its own clusters (`ray start`, one CPU per node, own temp dirs; torn down after): first a head
alone, then a head and a worker node. Each runs the same set of tiny-suite trainings (one thread each,
the attribution validation's kind of unit), whose weights are compared byte for byte with the local
executor's; then the same eval grid (those models × 2 tasks × shards of 64 items, one thread per unit,
a fresh workspace each), whose results rows are compared with the local executor's. On two nodes it
also trains one model on 2 Ray Train ranks against one process (final losses and their difference).
The overhead per unit is the wall time of no-op tasks (submit, schedule, return) divided by their
count, on the two-node cluster.
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
    ap.add_argument("--items", type=int, default=192, help="items per eval task (two tasks)")
    ap.add_argument("--dp-steps", type=int, default=200, help="steps of the data-parallel comparison")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import ray_cluster
    from conftest import synthetic_texts

    from empiricist.data import Document, build_store, train_bpe
    from empiricist.data.store import TokenStore
    from empiricist.evals import expand_models, run_eval
    from empiricist.evals.tasks import task_from_records
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

    tasks = [task_from_records(name, [{"id": f"{name}{i}", "prompt": f"{name} {i} is", "choices": [" odd", " even"],
                                       "target": i % 2} for i in range(args.items)]) for name in ("parity", "other")]

    def grid(executor, name: str) -> tuple[float, list[dict], int]:
        models = expand_models(suite=str(work / "local"), workspace=work)
        t = time.perf_counter()
        run = run_eval(tasks, models, out=work / f"eval-{name}", workspace=work / f"ws-{name}", chunk_size=32,
                       shard_items=64, executor=executor, contamination=False, progress=False)
        return time.perf_counter() - t, run.results.rows(), len(models)

    rows, evals = [], []
    local_s, local_w = timed(LocalExecutor(), "local")
    rows.append(("local executor (2 cores, reused pool)", local_s, True))
    sec, local_rows, n_models = grid(LocalExecutor(), "local")
    evals.append(("local executor (2 cores, reused pool)", sec, True))
    n_units = n_models * len(tasks) * -(-args.items // 64)
    overhead, dp = None, None
    for n in (1, 2):
        address, dirs = ray_cluster.start(n, 6500 + n)
        try:
            sec, w = timed(RayExecutor(address), f"ray{n}")
            rows.append((f"Ray, {n} node(s) × 1 CPU", sec, w == local_w))
            sec, got, _ = grid(RayExecutor(address), f"ray{n}")
            evals.append((f"Ray, {n} node(s) × 1 CPU", sec, got == local_rows))
            if n == 2:
                dp = _data_parallel(cfg, store, work, RayExecutor(address), args.dp_steps)
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
    print(f"\neval grid: {n_models} models × {len(tasks)} tasks × {args.items} items, shards of 64 items "
          f"({n_units} units, 1 thread each)\n")
    print("| executor | wall s | s per unit | same rows as local |\n|---|---:|---:|---|")
    for label, sec, same in evals:
        print(f"| {label} | {sec:.1f} | {sec / n_units:.2f} | {same} |")
    print(f"\nRay overhead per unit (200 no-op tasks on the two-node cluster): {overhead * 1e3:.1f} ms")
    if dp is not None:
        print(f"\none model ({cfg.sizes[0].name}, {args.dp_steps} steps, batch {cfg.train.batch_size}): one process "
              f"{dp['one_s']:.1f} s, final loss {dp['one_loss']:.6f}; 2 Ray Train ranks {dp['two_s']:.1f} s, "
              f"final loss {dp['two_loss']:.6f}; |difference| {abs(dp['one_loss'] - dp['two_loss']):.2e}; "
              f"same batches at every logged step: {dp['same_batches']}")
    shutil.rmtree(work, ignore_errors=True)


def _data_parallel(cfg, store, work: Path, executor, steps: int) -> dict:
    import json

    from empiricist.suite.suite import train_suite

    one_cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:1], train=dataclasses.replace(cfg.train, steps=steps))
    out = {}
    for name, kw in (("one", {}), ("two", {"executor": executor, "data_parallel": 2})):
        t = time.perf_counter()
        folder = train_suite(one_cfg, store, work / f"dp-{name}", progress=False, **kw)
        out[f"{name}_s"] = time.perf_counter() - t
        log = [json.loads(line) for line in (folder / "models" / cfg.sizes[0].name / "loss.jsonl").read_text().splitlines()]
        out[f"{name}_loss"], out[f"{name}_batches"] = log[-1]["loss"], [r["batch_sha256"] for r in log]
    out["same_batches"] = out["one_batches"] == out["two_batches"]
    return out


if __name__ == "__main__":
    main()
