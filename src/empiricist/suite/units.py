"""Trainings as content-addressed units of work: what an experiment's grid is made of.

A unit is one ``train_model`` run (from scratch or from a checkpoint, MLE or an objective) that writes
one model folder named by the caller's hash of everything it is made from, so a unit is never computed
twice and a killed grid resumes; ``run_units`` submits the missing ones to the executor. The unit's
arguments are plain data (they cross process and machine boundaries): an objective travels as the
dotted name of a module-level factory and its keyword arguments, and is built in the process that
trains (``factory(store, train, **kwargs)``), never pickled.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import is_complete

if TYPE_CHECKING:
    from empiricist.execute import Executor


@dataclass(frozen=True)
class Unit:
    """One training: its name, where it writes, and the keyword arguments of ``train_unit``."""

    name: str
    out: Path
    kwargs: dict[str, Any]

    def checkpoint(self, step: int) -> Path:
        return self.out / "checkpoints" / f"step{step}"


def make_unit(name: str, out: Path, store: Path, train: dict[str, Any], size: dict[str, Any], *,
              init_from: Path | None = None, objective: tuple[str, dict[str, Any]] | None = None,
              info: dict[str, Any] | None = None) -> Unit:
    """A unit writing ``out`` (the caller names it by a hash of its inputs)."""
    return Unit(name, out, {"store": str(store), "out": str(out), "train": train, "size": size,
                            "init_from": None if init_from is None else str(init_from),
                            "objective": None if objective is None else list(objective), "info": info or {}})


def _factory(dotted: str) -> Any:
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


def train_unit(store: str, out: str, train: dict[str, Any], size: dict[str, Any], init_from: str | None,
               objective: list[Any] | None, info: dict[str, Any]) -> str:
    """One unit, in whichever process runs it (a module-level function: executors send it by name)."""
    from empiricist.data.order import TrainingOrder
    from empiricist.data.store import TokenStore
    from empiricist.suite.config import ModelSize, TrainConfig
    from empiricist.suite.train import train_model

    s = TokenStore.open(store)
    tc = TrainConfig(**train)
    obj = None if objective is None else _factory(objective[0])(s, tc, **objective[1])
    train_model(out, ModelSize(**size), tc, TrainingOrder(s, tc.seq_len, tc.batch_size, tc.seed), s.vocab_size,
                tokenizer_path=Path(s.tokenizer_path), progress=False,
                init_from=None if init_from is None else Path(init_from), objective=obj, info=info)
    return out


def run_units(units: list[Unit], desc: str, progress: bool, executor: Executor | None) -> None:
    """Train every unit whose model folder is not complete (on ``executor``; None: this machine)."""
    from empiricist.execute import Job, run_jobs

    todo = [u for u in units if not is_complete(u.out)]
    jobs = [Job(u.name, train_unit, u.kwargs, threads=1, artifact=str(u.out)) for u in todo]
    if jobs:
        run_jobs(jobs, progress=progress, desc=desc, executor=executor)
