"""The Ray executor on a real two-node cluster on this machine: the same bytes as the local executor, a
failing unit named while the rest finish, and a worker node killed mid-job losing nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
import ray_cluster

from empiricist.data.store import TokenStore
from empiricist.errors import EmpiricistError
from empiricist.execute import Job, LocalExecutor, RayExecutor, executor_from, run_jobs
from empiricist.suite.config import get_preset
from empiricist.suite.suite import Suite, train_suite

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the units below: workers cannot import tests/


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node (one CPU each, own temp dirs and object stores), torn down after."""
    address, dirs = ray_cluster.start(2, 6300 + os.getpid() % 600)
    try:
        yield address, dirs  # dirs[-1]: the live worker node (a test that kills it starts another)
    finally:
        ray_cluster.stop(dirs)


def _config():
    cfg = get_preset("tiny")
    return dataclasses.replace(cfg, sizes=cfg.sizes[:2], train=dataclasses.replace(cfg.train, steps=8, threads=1))


def test_a_suite_trained_on_ray_has_the_local_bytes(cluster, small_store, tmp_path):
    address, _ = cluster
    store = TokenStore.open(small_store)
    local = train_suite(_config(), store, tmp_path / "local", progress=False, executor=LocalExecutor())
    remote = train_suite(_config(), store, tmp_path / "ray", progress=False, executor=RayExecutor(address))
    for size in ("t1", "t2"):
        a = (Suite(local).checkpoint_path(size) / "model.safetensors").read_bytes()
        b = (Suite(remote).checkpoint_path(size) / "model.safetensors").read_bytes()
        assert a == b, size
    assert Suite(remote).complete


def _write_after(path: str, name: str, seconds: float) -> str:
    """A unit that records where it started, works ``seconds``, then writes its artifact atomically."""
    Path(path, f"{name}.started").write_text(ray.get_runtime_context().get_node_id())
    time.sleep(seconds)
    tmp = Path(path, f".{name}.tmp")
    tmp.write_text(name)
    tmp.rename(Path(path, f"{name}.done"))
    return name


def _fail() -> None:
    raise ValueError("boom")


def test_a_failing_unit_is_named_and_the_rest_finish(cluster, tmp_path):
    address, _ = cluster
    jobs = [Job("broken-unit", _fail, {}, 1), Job("fine", _write_after, {"path": str(tmp_path), "name": "a",
                                                                          "seconds": 0.1}, 1)]
    with pytest.raises(EmpiricistError, match="broken-unit.*ValueError.*boom"):
        run_jobs(jobs, progress=False, executor=RayExecutor(address))
    assert (tmp_path / "a.done").read_text() == "a"


def test_killing_the_worker_node_mid_job_loses_nothing(cluster, tmp_path):
    address, dirs = cluster
    worker_dir = dirs[-1]
    ex = RayExecutor(address)
    ray_ = ex.connect()
    worker_node = next(n["NodeID"] for n in ray_.nodes() if n["Alive"] and worker_dir in json.dumps(n))
    names = [f"u{i}" for i in range(4)]
    jobs = [Job(n, _write_after, {"path": str(tmp_path), "name": n, "seconds": 3.0}, 1) for n in names]
    out: dict[str, object] = {}
    runner = threading.Thread(target=lambda: out.update(result=run_jobs(jobs, progress=False, executor=ex)))
    runner.start()
    deadline = time.time() + 120
    while time.time() < deadline and not any(
            p.read_text() == worker_node for p in tmp_path.glob("*.started")):
        time.sleep(0.1)
    killed = ray_cluster.node_pids(worker_dir)
    assert killed, "the worker node never started a unit"
    ray_cluster.kill(killed)  # the node dies mid-unit: its unit is retried on the head
    runner.join(timeout=300)
    assert not runner.is_alive() and out["result"] == names
    assert sorted(p.name for p in tmp_path.glob("*.done")) == [f"{n}.done" for n in names]
    ray_cluster.join(address, dirs)  # two nodes again for the tests after this one
    deadline = time.time() + 60
    while time.time() < deadline and ray_.cluster_resources().get("CPU", 0) < 2:
        time.sleep(0.2)


def test_the_executor_is_chosen_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv("EMPIRICIST_EXECUTOR", raising=False)
    monkeypatch.delenv("EMPIRICIST_RAY_ADDRESS", raising=False)
    assert executor_from().name == "local"
    assert executor_from("ray", "10.0.0.1:6379").address == "10.0.0.1:6379"
    monkeypatch.setenv("EMPIRICIST_RAY_ADDRESS", "10.0.0.2:6379")
    ex = executor_from()
    assert ex.name == "ray" and ex.address == "10.0.0.2:6379"
    with pytest.raises(EmpiricistError, match="unknown executor 'dask'.*--executor"):
        executor_from("dask")


def test_an_experiment_grid_split_on_ray_trains_the_bytes_of_one_batch(cluster, monkeypatch):
    import numpy as np
    import torch
    from test_experiment_probe_evasion import tiny

    from empiricist.experiments.probe_evasion.run import _train_split
    from empiricist.experiments.probe_evasion.train import RunSpec, train_runs

    address, _ = cluster
    cfg = tiny(steps=60, freeze_step=30, eval_every=30)
    runs = [RunSpec(0, 0.5, 1.0, "adversarial", 3), RunSpec(1, 0.6, 0.0, "none"), RunSpec(0, 0.4, 1.0, "frozen", 2),
            RunSpec(1, 0.5, 0.0, "none")]
    whole = train_runs(cfg, runs, progress=False)
    monkeypatch.setattr("empiricist.execute.available_cores", lambda: 2)  # two parts, one per node
    got = _train_split(cfg, runs, progress=False, desc="t", executor=RayExecutor(address))
    assert got.runs == runs
    assert all(np.array_equal(whole.curves[k], got.curves[k]) for k in whole.curves)
    assert all(torch.equal(whole.reps[k], got.reps[k]) for k in whole.reps)


def test_an_experiment_study_run_on_ray_gives_the_local_results(cluster, tmp_path):
    from test_studies import EXAMPLES

    from empiricist.studies import run_study, sign

    address, _ = cluster
    out = {}
    for name, executor in (("local", LocalExecutor()), ("ray", RayExecutor(address))):
        spec = tmp_path / name / "probe_evasion_ci.toml"
        spec.parent.mkdir()
        shutil.copy(EXAMPLES / "probe_evasion_ci.toml", spec)
        ws = tmp_path / name / "ws"
        sign(spec, "P1", "Ada", workspace=ws)
        sign(spec, "not-P1", "Bob", workspace=ws)
        out[name] = run_study(spec, workspace=ws, executor=executor)
    local, remote = (out[k].results for k in ("local", "ray"))
    assert remote["predictions"] == local["predictions"] and remote["cells"] == local["cells"]
    grids = [Path(r["grid"]["path"]) for r in (local, remote)]
    assert (grids[0] / "curves.npz").read_bytes() == (grids[1] / "curves.npz").read_bytes()


def test_data_parallel_training_on_two_nodes_sees_the_single_process_batches(cluster, small_store, tmp_path):
    """Ray Train, two ranks (one per node, gloo): every logged step trained on the global batch of one
    process (its hash), and the final loss is within the stated tolerance."""
    from empiricist.suite.distributed import LOSS_TOLERANCE

    address, _ = cluster
    store = TokenStore.open(small_store)
    cfg = _config()
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:1], train=dataclasses.replace(cfg.train, steps=20))
    one = train_suite(cfg, store, tmp_path / "one", progress=False)
    two = train_suite(cfg, store, tmp_path / "two", progress=False, executor=RayExecutor(address), data_parallel=2)
    logs = [[json.loads(line) for line in (p / "models" / "t1" / "loss.jsonl").read_text().splitlines()]
            for p in (one, two)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]] == [5, 10, 15, 20]
    assert [r["batch_sha256"] for r in logs[0]] == [r["batch_sha256"] for r in logs[1]]
    assert abs(logs[0][-1]["loss"] - logs[1][-1]["loss"]) <= LOSS_TOLERANCE
    model = Suite(two).model_dir("t1")
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["info"]["data_parallel"] == 2 and Suite(two).complete
    assert not any(p.name.startswith(".ray-train") for p in model.iterdir())  # Ray Train's state is gone
    with pytest.raises(EmpiricistError, match="does not split over 3 workers"):
        train_suite(cfg, store, tmp_path / "three", progress=False,
                    executor=RayExecutor(address), data_parallel=3)


def test_an_eval_grid_on_ray_gives_the_local_executors_table(cluster, small_store, tmp_path):
    """Models × checkpoints × tasks × item shards as units: the Ray table equals the local one, row for
    row, and a second run finds every output cached (no unit planned)."""
    from empiricist.artifacts import Workspace
    from empiricist.evals import LoglikScorer, expand_models, run_eval
    from empiricist.evals.compute import shard_jobs
    from empiricist.evals.tasks import task_from_records

    address, _ = cluster
    suite = train_suite(_config(), TokenStore.open(small_store), tmp_path / "suite", progress=False)
    models = expand_models(suite=str(suite), checkpoints=["4", "8"])
    tasks = [task_from_records(name, [{"id": f"{name}{i}", "prompt": f"{name} {i} is", "choices": [" odd", " even"],
                                       "target": i % 2} for i in range(24)]) for name in ("parity", "other")]
    runs = {}
    for name, executor in (("local", LocalExecutor()), ("ray", RayExecutor(address))):
        ws = tmp_path / f"ws-{name}"
        plan = shard_jobs(tasks, models, LoglikScorer(), workspace=Workspace.at(ws), chunk_size=8, seed=0,
                          shard_items=16)
        assert len(plan) == len(models) * len(tasks) * 2  # 24 items: shards of 16 and 8
        runs[name] = run_eval(tasks, models, out=tmp_path / f"run-{name}", workspace=ws, chunk_size=8,
                              shard_items=16, executor=executor, contamination=False)
        assert not shard_jobs(tasks, models, LoglikScorer(), workspace=Workspace.at(ws), chunk_size=8, seed=0)
    local, remote = (runs[k].results.rows() for k in ("local", "ray"))
    assert len(local) == len(models) * 2 * 24 and remote == local
    assert (tmp_path / "run-local" / "results.jsonl").read_bytes() == (tmp_path / "run-ray" / "results.jsonl").read_bytes()


def test_an_embedding_built_in_units_on_ray_has_the_local_vectors(cluster, small_store, tmp_path):
    import faiss
    import numpy as np

    from empiricist.lookup.search import chunk_store
    from empiricist.lookup.semantic import build_vectors, minilm_embedder

    address, _ = cluster
    _, texts = chunk_store(TokenStore.open(small_store), None)
    got = {}
    for name, executor in (("local", LocalExecutor()), ("ray", RayExecutor(address))):
        (tmp_path / name).mkdir()
        build_vectors(texts[:24], minilm_embedder(), tmp_path / name, progress=False, batch_texts=6,
                      executor=executor, threads=1)
        index = faiss.read_index(str(tmp_path / name / "vectors.faiss"))
        got[name] = index.reconstruct_n(0, index.ntotal)
    assert got["local"].shape[0] == 24 and np.array_equal(got["local"], got["ray"])


def test_an_ngram_index_built_in_shards_on_ray_has_the_local_files(cluster, small_store, tmp_path):
    """Document-range shards as units on two nodes: the merged index is the local build's, file for file."""
    from empiricist.lookup.ngram import NgramIndex
    from empiricist.lookup.ngram_build import build_ngram_index

    address, _ = cluster
    store = TokenStore.open(small_store)
    paths = {name: build_ngram_index(store, tmp_path / name, progress=False, shards=3, executor=executor)
             for name, executor in (("local", LocalExecutor()), ("ray", RayExecutor(address)))}
    files = {name: json.loads((p / "manifest.json").read_text())["files"] for name, p in paths.items()}
    assert len(files["local"]) == 9 and files["ray"] == files["local"]  # 3 shards x 3 files, same sha256
    with NgramIndex.open(paths["ray"], store) as idx:
        assert idx.count("alpha beta") > 0 and len(idx.manifest["engine"]["shards"]) == 3
