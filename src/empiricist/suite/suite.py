"""A suite on disk: several sizes trained on one token store in one recorded order.

Layout (``workspace/suites/<name>-<hash>/``)::

    suite.json                 config, store path and manifest hash
    order/                     order.json + permutation-epoch*.npy (the data order)
    models/<size>/             loss.jsonl, checkpoints/step<N>/ (HF folders), resume/, manifest.json
    manifest.json              written last, once every size is done
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    Workspace,
    atomic_write_json,
    config_hash,
    is_complete,
    portable_path,
    read_manifest,
    resolve_recorded,
    write_manifest,
)
from empiricist.data.order import TrainingOrder
from empiricist.errors import ArtifactError, EmpiricistError, InputError
from empiricist.suite.config import ModelSize, SuiteConfig
from empiricist.suite.train import StepCallback, read_loss_curve, train_model

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.execute import Executor, RayExecutor


def _open_store(path: str | Path) -> TokenStore:
    from empiricist.data.store import TokenStore

    return TokenStore.open(path)


def suite_path(config: SuiteConfig, store: TokenStore, workspace: Workspace | str | Path | None = None) -> Path:
    key = config_hash({"suite": config.to_dict(), "store": store.fingerprint})
    return Workspace.at(workspace).suites / f"{config.name}-{key}"


def train_suite(
    config: SuiteConfig,
    store: TokenStore,
    out_dir: str | Path | None = None,
    *,
    sizes: Iterable[str] | None = None,
    workspace: Workspace | str | Path | None = None,
    progress: bool = True,
    on_step: StepCallback | None = None,
    executor: Executor | None = None,
    data_parallel: int = 1,
) -> Path:
    """Train every size (or the named ones) on the same order; resumes and skips finished models.
    ``executor``: where the sizes train (default: this machine; ``RayExecutor``: a Ray cluster).
    ``data_parallel``: train each size on that many Ray Train ranks, one size after another (needs a
    ``RayExecutor``; suite/distributed.py, ``train_data_parallel``)."""
    out = Path(out_dir) if out_dir else suite_path(config, store, workspace)
    out.mkdir(parents=True, exist_ok=True)
    # "store": relative to the workspace (what Suite.store_path reads, so a moved workspace still works);
    # "store_path": absolute, kept only for readers not yet on Suite.store_path (studies/inputs.py)
    meta = {"config": config.to_dict(), "store": portable_path(store.path, out),
            "store_path": str(Path(store.path).resolve()),
            "store_hash": store.fingerprint, "vocab_size": store.vocab_size}
    existing = out / "suite.json"
    if existing.exists():
        old = json.loads(existing.read_text())
        if old["config"] != json.loads(json.dumps(meta["config"])) or old["store_hash"] != meta["store_hash"]:
            raise EmpiricistError(f"{out} holds a suite with another config or store; choose another folder")
    else:
        atomic_write_json(existing, meta)
    t = config.train
    order = TrainingOrder(store, t.seq_len, t.batch_size, t.seed)
    order.save(out / "order", epochs=1 + (t.steps * t.batch_size - 1) // order.seqs_per_epoch)
    wanted = [config.size(s) for s in sizes] if sizes else list(config.sizes)
    info = {"suite": config.name, "suite_dir": portable_path(out, out), "store_hash": meta["store_hash"]}
    todo = [s for s in wanted if not is_complete(out / "models" / s.name)]
    if data_parallel > 1:
        from empiricist.execute import RayExecutor

        if not isinstance(executor, RayExecutor):
            raise InputError("data-parallel training runs on Ray Train: choose the Ray executor (--executor ray)",
                             field="--data-parallel")
        for size in todo:
            train_data_parallel(out, size.name, store.path, info, workers=data_parallel, executor=executor)
    elif on_step is not None or len(todo) < 2:  # a callback cannot cross processes; one model needs no pool
        for size in todo:
            train_model(out / "models" / size.name, size, t, order, store.vocab_size,
                        tokenizer_path=Path(store.tokenizer_path), progress=progress, on_step=on_step, info=info)
    else:
        from empiricist.execute import Job, available_cores, run_jobs

        def alone(size: ModelSize) -> bool:
            return t.threads_for(size) in (0, available_cores())

        jobs = [Job(size.name, _train_size_job, {"suite_dir": str(out), "size": size.name, "store": str(store.path),
                                                 "info": info, "progress": progress and alone(size)},
                    t.threads_for(size), artifact=str(out / "models" / size.name))
                for size in todo]  # models that may share the machine report through the job bar only
        run_jobs(jobs, progress=progress, desc=f"train {config.name}", executor=executor)
    if all(is_complete(out / "models" / s.name) for s in config.sizes):
        write_manifest(out, kind="suite", config=config.to_dict(), inputs={"store": meta["store_hash"]},
                       extra={"sizes": [s.name for s in config.sizes]})
    return out


def _train_size_job(suite_dir: str, size: str, store: str, info: dict[str, Any], progress: bool) -> str:
    """One size of a suite, in a scheduler worker: everything is re-read from disk (picklable arguments)."""
    suite = Suite(suite_dir)
    tstore = _open_store(store)
    order = TrainingOrder.load(suite.path / "order", tstore)
    spec = suite.config.size(size)
    train_model(suite.path / "models" / size, spec, suite.config.train, order, tstore.vocab_size,
                tokenizer_path=Path(tstore.tokenizer_path), progress=progress, info=info)
    return size


def train_data_parallel(suite_dir: str | Path, size: str, store: str | Path, info: dict[str, Any], *,
                        workers: int, executor: RayExecutor) -> Path:
    """Train one size of a suite on ``workers`` Ray Train ranks, each with the recipe's threads as CPUs;
    returns the model folder. A dead worker restarts the group, which resumes from the last snapshot
    (``RETRIES`` times). CPU only, like the trainer itself (gloo); a GPU rank would need the trainer to
    place its model and batches on the device first."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from empiricist.execute import Job
    from empiricist.execute.jobs import verify_artifacts
    from empiricist.suite.distributed import RETRIES

    ray = executor.connect()
    suite = Suite(suite_dir)
    cfg = suite.config.train
    threads = cfg.threads_for(suite.config.size(size)) or 1
    if cfg.batch_size % workers:
        raise InputError(f"batch size {cfg.batch_size} does not split over {workers} workers: choose a divisor "
                         "(--data-parallel)", field="--data-parallel")
    have = ray.cluster_resources().get("CPU", 0)
    if have < workers * threads:  # Ray Train would wait for them for ever
        raise InputError(f"{workers} data-parallel workers need {workers * threads} CPUs ({threads} each); the "
                         f"cluster at {executor.address} has {have:g}: lower --data-parallel or add nodes",
                         field="--data-parallel")
    folder = suite.path / "models" / size
    folder.mkdir(parents=True, exist_ok=True)
    storage = folder / ".ray-train.tmp"  # Ray Train's run state: a temp name, never part of the manifest
    trainer = TorchTrainer(
        _rank_loop,
        train_loop_config={"suite_dir": str(suite.path), "size": size, "store": str(store), "info": info,
                           "threads": threads},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": threads}),
        run_config=RunConfig(name=f"{suite.path.name}-{size}", storage_path=str(storage.resolve()),
                             failure_config=FailureConfig(max_failures=RETRIES)),
    )
    try:
        trainer.fit()
    except Exception as e:  # Ray Train wraps the rank's own error
        raise EmpiricistError(f"data-parallel training of {size} failed: {type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    verify_artifacts([Job(size, _rank_loop, artifact=str(folder))])  # as run_jobs does for its units
    return folder


def _rank_loop(config: dict[str, Any]) -> None:
    """One rank, in a Ray Train worker: everything re-read from the shared workspace."""
    import torch

    from empiricist.suite.distributed import DataParallel

    torch.set_num_threads(config["threads"])
    suite = Suite(config["suite_dir"])
    store = _open_store(config["store"])
    order = TrainingOrder.load(suite.path / "order", store)
    parallel = DataParallel.current()
    train_model(suite.path / "models" / config["size"], suite.config.size(config["size"]), suite.config.train,
                order, store.vocab_size, tokenizer_path=Path(store.tokenizer_path), info=config["info"],
                progress=False, parallel=parallel)


class Suite:
    """Read access to a trained (or partly trained) suite folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / "suite.json"
        if not meta_path.exists():
            raise ArtifactError(f"{self.path} is not a suite folder (no suite.json)")
        self.meta = json.loads(meta_path.read_text())
        self.config = SuiteConfig.from_dict(self.meta["config"])

    @property
    def complete(self) -> bool:
        return is_complete(self.path)

    @property
    def sizes(self) -> list[str]:
        return [s.name for s in self.config.sizes]

    @property
    def store_path(self) -> Path:
        """The suite's token store (recorded relative to the workspace; old suites hold absolute paths)."""
        return resolve_recorded(self.meta.get("store") or self.meta["store_path"], self.path)

    def store(self) -> TokenStore:
        store = _open_store(self.store_path)
        if store.fingerprint != self.meta["store_hash"]:
            raise ArtifactError(f"the token store at {self.meta['store_path']} changed since suite {self.path} was trained")
        return store

    def world_path(self) -> Path:
        """The world the suite's store was made from (without opening the store; see ``store_world``)."""
        from empiricist.data.store import store_world

        return store_world(self.meta["store_path"])

    def order(self) -> TrainingOrder:
        return TrainingOrder.load(self.path / "order", self.store())

    def model_dir(self, size: str) -> Path:
        self.config.size(size)
        return self.path / "models" / size

    def checkpoints(self, size: str) -> list[int]:
        folder = self.model_dir(size) / "checkpoints"
        if not folder.exists():
            return []
        steps = [int(p.name[4:]) for p in folder.iterdir() if p.name.startswith("step") and is_complete(p)]
        return sorted(steps)

    def checkpoint_path(self, size: str, step: int | None = None) -> Path:
        """Folder of a checkpoint (default: the last); a missing one names the ones that exist."""
        steps = self.checkpoints(size)
        if not steps:
            raise ArtifactError(f"suite {self.path.name}: size {size!r} has no checkpoints yet (not trained?)")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ArtifactError(f"suite {self.path.name}: size {size!r} has no checkpoint at step {step}; "
                                f"available steps: {steps}")
        return self.model_dir(size) / "checkpoints" / f"step{step}"

    def model_manifest(self, size: str) -> dict[str, Any]:
        return read_manifest(self.model_dir(size), kind="suite_model")

    def loss_curve(self, size: str) -> Any:
        return read_loss_curve(self.model_dir(size))


def find_suites(workspace: Workspace | str | Path | None = None) -> list[Path]:
    folder = Workspace.at(workspace).root / "suites"
    return sorted(p for p in folder.iterdir() if (p / "suite.json").exists()) if folder.exists() else []
