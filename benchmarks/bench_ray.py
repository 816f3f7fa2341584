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
count, on the two-node cluster. Last, an n-gram index over a larger store (``--ngram-docs`` documents):
one shard built inline with both cores against 4 document-range shards as units (1 indexer CPU each) on
the local executor and on 1 and 2 Ray nodes; the sharded builds' files are compared by sha256, and
counts of 200 sampled n-grams with the one-shard index.
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
    ap.add_argument("--ngram-docs", type=int, default=100_000, help="documents of the n-gram index store")
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

    big = TokenStore.open(build_store((Document(f"b{i}", t, {}) for i, t in
                                       enumerate(synthetic_texts(args.ngram_docs, seed=1))), tok, work / "big",
                                      progress=False))
    ngram = _ngram_builds(big, work, LocalExecutor(), "local executor (2 cores)", "local", None)
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
            ngram += _ngram_builds(big, work, RayExecutor(address), f"Ray, {n} node(s) × 1 CPU", f"ray{n}", ngram)
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
    print(f"\nn-gram index: {big.num_docs:,} documents, {big.num_tokens:,} tokens\n")
    print("| build | wall s | same files as local shards | same counts as one shard |\n|---|---:|---|---|")
    for label, sec, same_files, same_counts in (r[:4] for r in ngram):
        print(f"| {label} | {sec:.1f} | {same_files} | {same_counts} |")
    shutil.rmtree(work, ignore_errors=True)


def _ngram_builds(store, work: Path, executor, label: str, tag: str, before: list | None) -> list[tuple]:
    """Build times (and checks against the first builds) of the n-gram index: one shard, then 4 units."""
    import json
    import random

    from empiricist.lookup.ngram import NgramIndex
    from empiricist.lookup.ngram_build import build_ngram_index

    def files(path: Path) -> dict:
        return json.loads((path / "manifest.json").read_text())["files"]

    def counts(path: Path) -> list[int]:
        rng = random.Random(0)
        with NgramIndex.open(path, store) as idx:
            starts = [rng.randrange(store.num_tokens - 4) for _ in range(200)]
            return [idx.count([int(t) for t in store.tokens(a, a + rng.randint(1, 4))]) for a in starts]

    out = []
    if before is None:
        t = time.perf_counter()
        one = build_ngram_index(store, work / "ngram-one", progress=False, cpus=2)
        out.append(("one shard, inline (2 indexer CPUs)", time.perf_counter() - t, "-", "-", counts(one)))
    t = time.perf_counter()
    path = build_ngram_index(store, work / f"ngram-4-{tag}", progress=False, shards=4, executor=executor)
    sec = time.perf_counter() - t
    reference = (before or out)[0][4]
    local_files = files(work / "ngram-4-local") if before else files(path)
    out.append((f"4 shards, {label}", sec,
                files(path) == local_files, counts(path) == reference, None))
    return out


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
