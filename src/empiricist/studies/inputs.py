"""What a study runs on: models pinned to a checkpoint, tasks, and the artifacts behind them.

A suite spec like ``suite:tiny/t4`` resolves to the newest suite of that name in the workspace and its
last checkpoint; a ``world:fact_qa`` task resolves to the world that suite was trained on (via its token
store), so the items match the models. Every artifact gets an *identity*: its manifest's kind, config,
inputs and the sha256 of every file. Timestamps, argv, versions and paths are not part of it, so a
re-generated, byte-identical artifact has the same identity; any change to what it holds does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.artifacts import Workspace, config_hash, is_complete, sha256_file
from empiricist.errors import ArtifactError, EmpiricistError, InputError
from empiricist.studies.lock import identity
from empiricist.studies.spec import Study


@dataclass
class Inputs:
    """Resolved inputs: pinned model specs, task sources and the artifacts (name -> record)."""

    models: dict[str, str]
    tasks: dict[str, str]
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    world: Path | None = None


def _artifact(what: str, folder: Path, **extra: Any) -> dict[str, Any]:
    return {"what": what, "path": str(folder), "identity": identity(folder), **extra}


def resolve_inputs(study: Study, workspace: Workspace | str | Path | None = None, prepare: bool = False,
                   progress: bool = False) -> Inputs:
    """Pin every model and task of the study and record the artifacts they come from."""
    from empiricist.pipeline import prepare_suite
    from empiricist.suite.config import SUITE_PRESETS
    from empiricist.suite.handles import parse_suite_spec, resolve, resolve_suite
    from empiricist.suite.suite import Suite

    s = study.sampling
    suite_dir = None
    if s.suite is not None:
        try:
            suite_dir = resolve_suite(s.suite, workspace)
        except ArtifactError:
            if not (prepare and s.suite in SUITE_PRESETS):
                hint = " (or pass --prepare to build this preset)" if s.suite in SUITE_PRESETS else ""
                raise ArtifactError(f"sampling.suite {s.suite!r}: no such suite in the workspace{hint}") from None
        if prepare and s.suite in SUITE_PRESETS and (suite_dir is None or not Suite(suite_dir).complete):
            suite_dir = prepare_suite(s.suite, workspace, progress)  # builds, or resumes an interrupted training
    inputs = Inputs(models={}, tasks={})
    if suite_dir is not None:
        suite = Suite(suite_dir)
        store = suite.store_path
        inputs.artifacts["store"] = _artifact("token store", store)
        inputs.world = suite.world_path()
        inputs.artifacts["world"] = _artifact("world", inputs.world)
    for alias, spec in s.models.items():
        parsed = parse_suite_spec(spec)
        if parsed and suite_dir is not None and parsed.suite == s.suite:
            spec = dataclasses.replace(parsed, suite=str(suite_dir)).format()
        try:
            prov = resolve(spec, workspace=workspace)
        except EmpiricistError as e:
            raise ArtifactError(f"sampling.models.{alias} ({s.models[alias]}): {e}") from None
        if prov["source"] == "suite":
            pinned = f"suite:{prov['suite']}/{prov['size']}@step{prov['step']}"
            inputs.artifacts[f"model:{alias}"] = _artifact(f"model {s.models[alias]} (step {prov['step']})",
                                                          Path(prov["path"]), spec=s.models[alias], pinned=pinned)
        elif prov["source"] == "path":
            pinned = prov["path"]
            folder = Path(pinned)
            rec = _artifact("model folder", folder) if is_complete(folder) else \
                {"what": "model folder", "path": str(folder), "identity": _folder_identity(folder)}
            inputs.artifacts[f"model:{alias}"] = rec
        else:
            pinned = spec  # a hub id: pinned only as far as the hub keeps it
            inputs.artifacts[f"model:{alias}"] = {"what": "hub model (not pinned by hash)", "path": spec,
                                                 "identity": {"hub_id": spec}}
        inputs.models[alias] = pinned
    for alias, source in s.tasks.items():
        inputs.tasks[alias] = _task_source(study, alias, source, inputs, workspace)
    return inputs


def _folder_identity(folder: Path) -> dict[str, Any]:
    return {"files": {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
                      if p.is_file()}}


def _task_source(study: Study, alias: str, source: str, inputs: Inputs, workspace: Workspace | str | Path | None) -> str:
    kind, _, rest = source.partition(":")
    if kind == "shuffled":
        return source
    if kind == "hidden":  # hidden:<folder>: the lock pins the public commitment (root), never the items
        from empiricist.studies import hidden

        folder = Path(rest)
        if not folder.is_absolute() and study.path is not None:
            folder = study.path.parent / folder
        c = hidden.read_public(folder)
        inputs.artifacts[f"task:{alias}"] = {"what": f"hidden items {rest} (commitment)", "path": str(folder),
                                             "identity": {"root": c.root, "n_items": len(c.leaves),
                                                          "metadata": c.metadata}}
        return f"hidden:{folder}"
    if kind == "world":
        path, _, name = rest.rpartition(":")
        world = Path(path) if path else inputs.world or _workspace_world(workspace)
        if not any(r["what"] == "world" and Path(r["path"]) == world for r in inputs.artifacts.values()):
            key = "world" if "world" not in inputs.artifacts else f"world:{alias}"
            inputs.artifacts[key] = _artifact("world", world)
        return f"world:{world}:{name}"
    path = Path(source)
    if not path.is_absolute() and study.path is not None:
        path = study.path.parent / path
    if not path.is_file():
        raise InputError(f"task file {source!r} not found (looked at {path})", field=f"sampling.tasks.{alias}")
    inputs.artifacts[f"task:{alias}"] = {"what": f"task file {source}", "path": str(path),
                                         "identity": {"sha256": sha256_file(path)}}
    return str(path)


def _workspace_world(workspace: Workspace | str | Path | None) -> Path:
    """The newest world in the workspace (what ``world:<eval>`` means without a suite)."""
    folder = Workspace.at(workspace).root / "worlds"
    worlds = sorted(folder.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not worlds:
        raise ArtifactError(f"no world in {folder}: name a suite (sampling.suite) or a world "
                            "path (world:<path>:<eval>)")
    return worlds[-1].parent


def load_tasks(study: Study, inputs: Inputs) -> dict[str, Any]:
    """Task objects by alias: subsampled to ``n_items`` (seeded) and derived tasks built from their base."""
    from empiricist.evals import resolve_tasks

    s = study.sampling
    out: dict[str, Any] = {}
    for alias, source in inputs.tasks.items():
        if source.startswith("shuffled:"):
            continue
        task = hidden_task(alias, source.partition(":")[2]) if source.startswith("hidden:") else \
            resolve_tasks([source], format="auto")[0]
        items = task.items
        if s.n_items is not None and len(items) > s.n_items:
            rng = np.random.default_rng(s.item_seed)
            items = tuple(items[i] for i in sorted(rng.choice(len(items), s.n_items, replace=False)))
        out[alias] = dataclasses.replace(task, name=alias, items=items)
    for alias, source in inputs.tasks.items():
        if source.startswith("shuffled:"):
            out[alias] = shuffled(out[source.partition(":")[2]], alias, s.item_seed)
    return {a: out[a] for a in inputs.tasks}


def hidden_task(alias: str, folder: str | Path) -> Any:
    """The task of a hidden item set, for its holder: the private items, checked against the commitment
    the lock pinned (one error naming every mismatch; without the private file, one saying who can run it)."""
    from empiricist.evals.tasks import task_from_records
    from empiricist.studies import hidden

    folder = Path(folder)
    if not (folder / hidden.PRIVATE).is_file():
        raise InputError(f"task {alias!r} is hidden: only the holder of its items can run it (no {hidden.PRIVATE} "
                         f"in {folder}; the public commitment is all that is published)", field=f"sampling.tasks.{alias}")
    private = hidden.read_private(folder)
    problems = hidden.verify_set(private, hidden.read_public(folder))
    if problems:
        raise ArtifactError(f"the hidden items of task {alias!r} do not match their commitment ({folder}): "
                            + "; ".join(problems))
    return task_from_records(alias, [item for item, _ in private])


def shuffled(task: Any, name: str, seed: int) -> Any:
    """The same items with a uniformly random gold choice: any model's expected accuracy is chance.

    The prompts and choices are unchanged, so the eval cache answers it without running a model.
    """
    rng = np.random.default_rng([seed, 7919])
    items = []
    for it in task.items:
        if not it.choices:
            raise InputError(f"task {task.name!r}: a shuffled-label control needs multiple-choice items")
        items.append(dataclasses.replace(it, target=int(rng.integers(len(it.choices)))))
    return dataclasses.replace(task, name=name, items=tuple(items),
                               source_hash=config_hash({"shuffled": task.source_hash, "seed": seed}))
