"""The arms' trainings as units of work: pretraining from scratch, the refusal fine-tune, the attacks.

All go through the shared trainer (``suite.train.train_model``): the same loop, checkpoints, resume and
determinism as every suite model; the unlikelihood arm only passes its objective, the fine-tunes their
starting checkpoint. Each unit writes one model folder named by a hash of everything it is made from
(store, recipe, objective, starting weights), so a unit is never computed twice and a killed grid
resumes; the driver submits the missing ones to the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import config_hash, is_complete

if TYPE_CHECKING:
    from empiricist.execute import Executor
    from empiricist.experiments.safeguards.config import SafeguardsConfig
    from empiricist.suite.config import ModelSize, TrainConfig


@dataclass(frozen=True)
class Unit:
    """One training: where it writes, and the keyword arguments of ``train_unit``."""

    name: str
    out: Path
    kwargs: dict[str, Any]

    def checkpoint(self, step: int) -> Path:
        return self.out / "checkpoints" / f"step{step}"


def size(cfg: SafeguardsConfig) -> ModelSize:
    from empiricist.suite.config import ModelSize

    return ModelSize("g", cfg.d_model, cfg.n_layers, cfg.n_heads)


def recipe(cfg: SafeguardsConfig, seed: int, steps: int, lr: float, batch: int, warmup: int) -> TrainConfig:
    """The shared recipe: one thread per unit (two units side by side on two cores; the same bytes on
    any executor), the trainer's precision rule for the size."""
    from empiricist.suite.config import TrainConfig

    return TrainConfig(seq_len=cfg.seq_len, batch_size=batch, steps=steps, lr=lr, warmup_steps=warmup, seed=seed,
                       threads=1, resume_every=max(50, steps // 4), log_every=max(1, min(10, steps // 8)))


def unit(root: Path, name: str, store: Path, train: TrainConfig, cfg: SafeguardsConfig, *,
         init_from: Path | None = None, unlikelihood: float | None = None, world: Path | None = None) -> Unit:
    """A unit named by its inputs: the store's content, the recipe, the size, the objective, the start."""
    from empiricist.artifacts import read_manifest

    store_files = read_manifest(store).get("files", {})
    start = read_manifest(init_from).get("files", {}) if init_from is not None else None
    key = config_hash({"store": store_files, "train": train.__dict__, "size": size(cfg).__dict__,
                       "unlikelihood": unlikelihood, "init_from": start})
    return Unit(name, root / f"{name}-{key}", {
        "store": str(store), "out": str(root / f"{name}-{key}"), "train": train.__dict__, "size": size(cfg).__dict__,
        "init_from": None if init_from is None else str(init_from), "unlikelihood": unlikelihood,
        "world": None if world is None else str(world)})


def train_unit(store: str, out: str, train: dict[str, Any], size: dict[str, Any], init_from: str | None,
               unlikelihood: float | None, world: str | None) -> str:
    """One unit, in whichever process runs it (a module-level function: executors pickle it by name)."""
    import numpy as np

    from empiricist.data.order import TrainingOrder
    from empiricist.data.store import TokenStore
    from empiricist.experiments.safeguards.corpus import is_bad, pool
    from empiricist.suite.config import ModelSize, TrainConfig
    from empiricist.suite.objective import Unlikelihood
    from empiricist.suite.train import train_model

    s = TokenStore.open(store)
    tc = TrainConfig(**train)
    objective = None
    if unlikelihood is not None:
        assert world is not None
        codes = pool(Path(world))
        objective = Unlikelihood(np.array([is_bad(s.doc_text(i), codes) for i in range(s.num_docs)]), unlikelihood)
    train_model(out, ModelSize(**size), tc, TrainingOrder(s, tc.seq_len, tc.batch_size, tc.seed), s.vocab_size,
                tokenizer_path=Path(s.tokenizer_path), progress=False,
                init_from=None if init_from is None else Path(init_from), objective=objective,
                info={"experiment": "safeguards"})
    return out


def run_units(units: list[Unit], desc: str, progress: bool, executor: Executor | None) -> None:
    """Train every unit whose model folder is not complete (on ``executor``; None: this machine)."""
    from empiricist.execute import Job, run_jobs

    todo = [u for u in units if not is_complete(u.out)]
    jobs = [Job(u.name, train_unit, u.kwargs, threads=1, artifact=str(u.out)) for u in todo]
    if jobs:
        run_jobs(jobs, progress=progress, desc=desc, executor=executor)
