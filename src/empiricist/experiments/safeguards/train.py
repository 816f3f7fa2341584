"""The arms' trainings as units of work: pretraining from scratch, the refusal fine-tune, the attacks.

All go through the shared trainer (``suite.train.train_model``): the same loop, checkpoints, resume and
determinism as every suite model; the unlikelihood arm only passes its objective, the fine-tunes their
starting checkpoint. Each unit writes one model folder named by a hash of everything it is made from
(store, recipe, objective, starting weights), so a unit is never computed twice and a killed grid
resumes; the driver submits the missing ones to the executor.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from empiricist.artifacts import config_hash
from empiricist.suite.units import Unit, make_unit, run_units

__all__ = ["Unit", "recipe", "run_units", "size", "unit", "unlikelihood_objective"]

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.experiments.safeguards.config import SafeguardsConfig
    from empiricist.suite.config import ModelSize, TrainConfig
    from empiricist.suite.objective import Unlikelihood


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
    objective = None if unlikelihood is None else (f"{__name__}:unlikelihood_objective",
                                                   {"world": str(world), "alpha": unlikelihood})
    return make_unit(name, root / f"{name}-{key}", store, train.__dict__, size(cfg).__dict__, init_from=init_from,
                     objective=objective, info={"experiment": "safeguards"})


def unlikelihood_objective(store: TokenStore, train: TrainConfig, world: str, alpha: float) -> Unlikelihood:
    """The unlikelihood arm's objective over ``store``: its documents that disclose a code are the bad ones."""
    import numpy as np

    from empiricist.experiments.safeguards.corpus import is_bad, pool
    from empiricist.suite.objective import Unlikelihood

    codes = pool(Path(world))
    return Unlikelihood(np.array([is_bad(store.doc_text(i), codes) for i in range(store.num_docs)]), alpha)
