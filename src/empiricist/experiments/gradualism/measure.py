"""What the gradualism rule decides on: every checkpoint it needs, evaluated once through the eval runner.

A sweep is one suite (the size sweep, or one family). Per size the rule needs the final checkpoint, the
``n_early`` checkpoints before it (step >= 1) and the latest at or below an eighth of training (per-item
predictability); each is evaluated on a seeded sample of each world task, and a row per (task, size,
step) keeps the accuracy, the mean log probability of the right answer, the parameter count and, where
the per-item tables need them, every item's score. The eval runs keep every answer.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.evals.tasks import Task
    from empiricist.experiments.gradualism.config import GradualismConfig


def sample_tasks(world: Path, cfg: GradualismConfig) -> list[Task]:
    """The world's tasks, each cut to a seeded sample of ``max_items`` items (the same for every model)."""
    from dataclasses import replace

    from empiricist.evals.tasks import world_tasks

    out = []
    for name, task in world_tasks(world, cfg.tasks).items():
        if len(task) > cfg.max_items:
            keep = sorted(random.Random(f"{cfg.item_seed}:{name}").sample(range(len(task)), cfg.max_items))
            task = replace(task, items=tuple(task.items[i] for i in keep))
        out.append(task)
    return out


def needed_steps(steps: list[int], n_early: int) -> dict[str, Any]:
    """Which of a size's checkpoints the rule reads: the final, the early ones before it, the eighth."""
    final = max(steps)
    early = [s for s in sorted(steps) if 1 <= s < final][-n_early:]
    eighth = [s for s in sorted(steps) if 1 <= s <= final / 8]
    return {"final": final, "early": early, "eighth": eighth[-1] if eighth else None}


def evaluate_sweep(sweep: str, suite: Path, world: Path, cfg: GradualismConfig, ws: Workspace,
                   progress: bool) -> tuple[list[dict[str, Any]], str]:
    """(rows, eval run folder) for one sweep."""
    from empiricist.evals import run_eval
    from empiricist.monitor.watch import checkpoints

    by_size: dict[str, list[int]] = {}
    for size, step, _ in checkpoints(suite):
        by_size.setdefault(size, []).append(step)
    plan = {size: needed_steps(steps, cfg.n_early) for size, steps in by_size.items()}
    wanted = {(size, s): s in (p["final"], p["eighth"]) for size, p in plan.items()
              for s in {p["final"], *p["early"], *([p["eighth"]] if p["eighth"] else [])}}
    specs = {key: f"suite:{suite}/{key[0]}@step{key[1]}" for key in sorted(wanted)}
    tasks = sample_tasks(world, cfg)
    run = run_eval(tasks, list(specs.values()), workspace=ws, contamination=False, progress=progress,
                   title=f"gradualism {sweep}")
    info = run.results.model_info()
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in run.results.rows():
        grouped.setdefault((r["model_spec"], r["task"]), []).append(r)
    rows = []
    for (size, step), spec in specs.items():
        for task in tasks:
            got = sorted(grouped[spec, task.name], key=lambda r: r["item_index"])
            p = np.clip(np.array([r["p_gold"] for r in got], dtype=float), 1e-12, 1.0)
            row = {"kind": "point", "sweep": sweep, "task": task.name, "size": size, "step": step,
                   "n_params": int(info[got[0]["model"]]["n_params"]), "n_items": len(got),
                   "acc": float(np.mean([r["score"] for r in got])), "logp": float(np.mean(np.log(p))),
                   "final": step == plan[size]["final"], "early": step in plan[size]["early"],
                   "eighth": step == plan[size]["eighth"]}
            if wanted[size, step]:
                row["scores"] = [float(r["score"]) for r in got]
            rows.append(row)
    return rows, str(run.folder)
