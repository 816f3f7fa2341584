"""Raw model outputs into the per-item result cache: one model here (``evaluate_model``), or a whole eval
grid as units of work on any executor (``fill_cache``: models × checkpoints × tasks × item shards; issue 16).

Each unit loads one model and fills the per-item result cache (evals/cache.py, in the shared workspace)
for one shard of one task's missing items; the driver then builds the results table from the cache as
an inline run does (runner.run_eval). A unit is content-addressed by what it fills (model hash, scoring,
item hashes): only missing items are planned, so a killed grid resumes and nothing is computed twice.
Shards are whole runs of the runner's chunks, in the runner's order, and every unit runs with the same
threads, so the cache holds the same bytes whichever executor filled it (tests/test_ray.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from empiricist.artifacts import Workspace
from empiricist.errors import EmpiricistError
from empiricist.evals.cache import ResultCache

if TYPE_CHECKING:
    from empiricist.evals.scorers import Scorer
    from empiricist.evals.tasks import Item, Task
    from empiricist.execute import Executor, Job
    from empiricist.suite.handles import ModelHandle

ChunkCallback = Callable[[dict[str, Any]], None]
SHARD_CHUNKS = 4  # chunks per unit by default: long enough to amortise a model load, short enough to spread


def pending_items(task: Task, scorer: Scorer, cache: ResultCache) -> list[Item]:
    """The task's items the cache lacks, in task order (items with one prompt and choices: once)."""
    hashes = [scorer.item_key(it) for it in task.items]
    missing, queued, pending = set(cache.missing(hashes)), set(), []
    for it, h in zip(task.items, hashes, strict=True):
        if h in missing and h not in queued:
            pending.append(it)
            queued.add(h)
    return pending


def evaluate_model(handle: ModelHandle, task: Task, scorer: Scorer, *, workspace: Workspace | str | Path | None = None,
                   chunk_size: int = 64, on_chunk: ChunkCallback | None = None, progress: bool = False,
                   seed: int = 0, label: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Raw outputs for every item of ``task`` (cached ones reused, missing ones computed chunk by chunk)."""
    cache = ResultCache(handle.model_hash, scorer.cache_key(), workspace)
    hashes = [scorer.item_key(it) for it in task.items]
    pending = pending_items(task, scorer, cache)
    done = len(task.items) - len(pending)
    for start in range(0, len(pending), chunk_size):
        chunk = pending[start:start + chunk_size]
        torch.manual_seed(seed)
        raws = scorer.compute(handle, chunk, progress=progress)
        cache.add({scorer.item_key(it): r for it, r in zip(chunk, raws, strict=True)})
        done += len(chunk)
        if on_chunk is not None:
            on_chunk({"model": label or handle.name, "task": task.name, "n_new": len(chunk), "n_done": done,
                      "n_total": len(task.items)})
    have = cache.load()
    return [have[h] for h in hashes], hashes


def model_hashes(specs: Sequence[str], workspace: Workspace) -> dict[str, str]:
    """What each spec's results are cached under (a hub model is loaded to know it: done once)."""
    from empiricist.suite.handles import spec_model_hash

    return {spec: spec_model_hash(spec, workspace) for spec in specs}


def shard_jobs(tasks: Sequence[Task], specs: Sequence[str], scorer: Scorer, *, workspace: Workspace,
               chunk_size: int, seed: int, shard_items: int | None = None, threads: int = 1,
               hashes: Mapping[str, str] | None = None) -> list[Job]:
    """One job per (model, task, shard of the items not cached yet); ``hashes``: ``model_hashes(specs)``."""
    from empiricist.execute import Job

    hashes = hashes if hashes is not None else model_hashes(specs, workspace)
    size = chunk_size * max(1, -(-(shard_items or chunk_size * SHARD_CHUNKS) // chunk_size))  # whole chunks
    jobs = []
    for spec in specs:
        model_hash = hashes[spec]
        for task in tasks:
            pending = pending_items(task, scorer, ResultCache(model_hash, scorer.cache_key(), workspace))
            for a in range(0, len(pending), size):
                part = dataclasses.replace(task, items=tuple(pending[a:a + size]))
                jobs.append(Job(f"{spec} × {task.name} items {a + 1}–{a + len(part.items)}", eval_shard,
                                {"spec": spec, "task": part, "scorer": scorer, "workspace": str(workspace.root),
                                 "chunk_size": chunk_size, "seed": seed}, threads))
    return jobs


def eval_shard(spec: str, task: Task, scorer: Scorer, workspace: str, chunk_size: int, seed: int) -> int:
    """One unit, in whichever process runs it: the shard's raw outputs into the cache; how many items."""
    from empiricist.suite.handles import load_model

    handle = load_model(spec, workspace=workspace)
    evaluate_model(handle, task, scorer, workspace=workspace, chunk_size=chunk_size, seed=seed)
    return len(task.items)


def fill_cache(tasks: Sequence[Task], specs: Sequence[str], scorer: Scorer, *, executor: Executor,
               workspace: Workspace | str | Path | None, chunk_size: int, seed: int, shard_items: int | None,
               threads: int, progress: bool) -> int:
    """Compute every missing (model, task, item) on ``executor``; then check the cache holds them all (a
    unit that died after its retries is named by the executor; a chunk lost after it reported is named
    here). Returns the number of units run."""
    from empiricist.execute import run_jobs

    ws = Workspace.at(workspace)
    hashes = model_hashes(specs, ws)
    jobs = shard_jobs(tasks, specs, scorer, workspace=ws, chunk_size=chunk_size, seed=seed,
                      shard_items=shard_items, threads=threads, hashes=hashes)
    run_jobs(jobs, progress=progress, desc="eval units", executor=executor)
    for spec, model_hash in hashes.items():
        for task in tasks:
            left = pending_items(task, scorer, ResultCache(model_hash, scorer.cache_key(), ws))
            if left:
                raise EmpiricistError(f"{spec} × {task.name}: {len(left)} items missing from the result cache "
                                      "after every unit finished (is the workspace shared by every node?)")
    return len(jobs)
