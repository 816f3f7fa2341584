"""Run tasks × models (× checkpoints), computing only what the cache lacks, and write the run folder.

The run folder (an artifact: built under a temporary name, manifest last) holds ``results.parquet`` and
``results.jsonl`` (every transcript), ``lm_eval/<model>/samples_<task>_<date>.jsonl``, ``summary.json``
and whatever the caller's ``render`` hook adds (the CLI passes ``report.write_run_report``: ``report.html``).
The runner writes data only; it never imports ``report``. Raw model outputs live in the workspace cache (``evals/cache``), chunk by chunk,
so an interrupted run resumes and a second run over the same items and models computes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    Workspace,
    building,
    check_replaceable,
    config_hash,
    is_complete,
    write_manifest,
)
from empiricist.errors import ArtifactError, EmpiricistError, InputError
from empiricist.evals.compute import ChunkCallback, evaluate_model
from empiricist.evals.results import Results
from empiricist.evals.scorers import LoglikScorer, Scorer
from empiricist.evals.tasks import Item, Task, load_task, world_tasks

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.execute import Executor
    from empiricist.lookup.ngram import NgramIndex
    from empiricist.suite.handles import ModelHandle

KIND = "eval_run"
# Writes presentation files (a report) into the run folder, before its manifest: (results, folder, title).
RenderHook = Callable[[Results, Path, str], None]


@dataclass
class EvalRun:
    """What ``run_eval`` made: the results table, the run folder and its report (None when not written)."""

    results: Results
    folder: Path | None
    report: Path | None
    summary: list[dict[str, Any]]


# ---------------------------------------------------------------- what to evaluate
def resolve_tasks(specs: Sequence[str], wrapper: str | None = None, format: str = "auto",
                  workspace: Workspace | str | Path | None = None) -> list[Task]:
    """``world:<name>`` (the workspace's world) / ``world:<path>:<name>`` / a JSONL file, as tasks."""
    out = []
    for spec in specs:
        if spec.startswith("world:"):
            rest = spec[len("world:"):]
            path, _, name = rest.rpartition(":")
            world = Path(path) if path else _default_world(workspace)
            out.append(world_tasks(world, [name])[name])
        else:
            out.append(load_task(spec, format=format, wrapper=wrapper))
    return out


def _default_world(workspace: Workspace | str | Path | None = None) -> Path:
    """The newest world in the workspace."""
    folder = Workspace.at(workspace).root / "worlds"
    worlds = sorted(folder.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not worlds:
        raise ArtifactError(f"no world in {folder}: generate one (`empiricist world generate`) "
                            "or name it as world:<path>:<eval>")
    return worlds[-1].parent


def expand_models(models: Sequence[str] = (), suite: str | None = None, sizes: Sequence[str] | None = None,
                  checkpoints: Sequence[str] | None = None, workspace: Workspace | str | Path | None = None) -> list[str]:
    """Model specs: ``models`` as given, plus the suite's sizes (default all) at the chosen checkpoints.

    ``checkpoints``: step numbers, ``last`` or ``all`` (default: last).
    """
    specs = list(models)
    if suite is None:
        if sizes or checkpoints:
            raise InputError("sizes/checkpoints need a suite (--suite)")
        return specs
    from empiricist.suite.handles import resolve_suite
    from empiricist.suite.suite import Suite

    s = Suite(resolve_suite(suite, workspace))
    for size in sizes or s.sizes:
        have = s.checkpoints(size)
        if not have:
            raise ArtifactError(f"suite {s.path.name}: size {size!r} has no checkpoints yet")
        steps: list[int] = []
        for c in checkpoints or ["last"]:
            c = str(c).strip()
            if c in ("last", "all"):
                steps += have[-1:] if c == "last" else have
            elif c.isdigit() and int(c) in have:
                steps.append(int(c))
            else:
                raise InputError(f"suite {s.path.name}: size {size!r} has no checkpoint {c!r}; available: {have}",
                                 field="checkpoints")
        specs += [f"suite:{s.path}/{size}@step{step}" for step in dict.fromkeys(steps)]
    return list(dict.fromkeys(specs))


# ---------------------------------------------------------------- contamination
def suite_contamination(handle: ModelHandle, workspace: Workspace | str | Path | None = None
                        ) -> tuple[TokenStore, NgramIndex] | None:
    """(store, n-gram index) of a suite model's training corpus, when that index has been built (at its
    default place: the store's workspace, else ``workspace``)."""
    if handle.provenance.get("source") != "suite":
        return None
    try:
        from empiricist.lookup.ngram import NgramIndex
        from empiricist.lookup.ngram_build import default_ngram_index_path
        from empiricist.suite.suite import Suite

        store = Suite(handle.provenance["suite"]).store()
        path = default_ngram_index_path(store, workspace)
        return (store, NgramIndex.open(path, store)) if is_complete(path) else None
    except (ImportError, EmpiricistError):
        return None


def contaminated_ids(task: Task, store: TokenStore, index: NgramIndex) -> set[str]:
    from empiricist.lookup.contamination import split_clean_contaminated

    records = [{"id": it.id, "text": it.lookup_text or it.prompt} for it in task.items]
    return set(split_clean_contaminated(records, store, index, fields=("text",))[1])


# ---------------------------------------------------------------- the run
def metric_name(task: Task, metric: str) -> str:
    """What the mean means. For a behaviour eval (Anthropic format: the targets are the answers matching
    the behaviour) it is the rate of the behaviour, not an accuracy: ``matching_rate``."""
    if task.format != "anthropic" or not metric.startswith("acc"):
        return metric
    return "matching_rate" if metric == "acc" else f"matching_rate ({metric})"


def _rows(task: Task, handle: ModelHandle, label: str, spec: str, scorer: Scorer, raws: list[dict[str, Any]],
          hashes: list[str], contaminated: set[str] | None, seed: int) -> list[dict[str, Any]]:
    prov = handle.provenance
    scoring = json.dumps(scorer.config(), sort_keys=True)
    base = {"task": task.name, "task_hash": task.hash, "model": label, "model_spec": spec,
            "model_hash": handle.model_hash, "source": prov.get("source"), "suite": prov.get("suite"),
            "size": prov.get("size"), "step": prov.get("step"), "n_params": prov.get("n_params"),
            "tokens_seen": prov.get("tokens_seen"), "scorer": scorer.kind, "scoring": scoring,
            "scoring_hash": config_hash(scorer.cache_key()), "metric": metric_name(task, scorer.metric),
            "seed": seed}
    if base["n_params"] is None:
        base["n_params"] = sum(p.numel() for p in handle.model.parameters())
    rows = []
    for i, (it, raw, h) in enumerate(zip(task.items, raws, hashes, strict=True)):
        rows.append({**base, **raw, **scorer.grade(it, raw), "item_id": it.id, "item_index": i, "item_hash": h,
                     "cluster": it.cluster, "split": _split(it), "meta": json.dumps(it.meta, sort_keys=True),
                     "prompt": it.prompt, "choices": list(it.choices), "gold": list(it.gold), "answer": it.answer,
                     "contaminated": None if contaminated is None else it.id in contaminated})
    return rows


def _split(item: Item) -> str | None:
    value = item.meta.get("split")
    return None if value is None else str(value)


def run_eval(
    tasks: Task | Sequence[Task],
    models: Sequence[str | Any],
    scorer: Scorer | None = None,
    *,
    out: str | Path | None = None,
    workspace: Workspace | str | Path | None = None,
    chunk_size: int = 64,
    contamination: str | bool | Mapping[str, Any] = "auto",
    on_chunk: ChunkCallback | None = None,
    progress: bool = False,
    seed: int = 0,
    write: bool = True,
    title: str | None = None,
    render: RenderHook | None = None,
    overwrite: bool = False,
    executor: Executor | None = None,
    shard_items: int | None = None,
    threads: int = 1,
) -> EvalRun:
    """Evaluate every model on every task and write the run folder (``write=False``: table only).

    ``models``: specs (``suite:...``, folders, hub ids; see ``suite.handles``) or loaded ``ModelHandle``s.
    ``contamination``: ``"auto"`` (suite models whose corpus has an n-gram index), False, or
    ``{"store": TokenStore, "index": NgramIndex | path | None}`` applied to every model.
    ``render``: called with (results, run folder, title) before the manifest is written, so what it adds is
    part of the artifact (``empiricist.report.write_run_report`` adds ``report.html``).
    ``executor``: compute the grid's missing outputs as units (model × task × shard of ``shard_items``
    items, each on ``threads`` threads) on it first (evals/compute.py); models given as loaded handles,
    and everything when ``executor`` is None, are computed here, in this process.
    """
    from empiricist.suite.handles import ModelHandle, load_model

    tasks = [tasks] if isinstance(tasks, Task) else list(tasks)
    if not tasks or not models:
        raise InputError("nothing to evaluate: give at least one task and one model")
    scorer = scorer or LoglikScorer()
    if executor is not None:
        from empiricist.evals.compute import fill_cache

        fill_cache(tasks, [str(m) for m in models if not isinstance(m, ModelHandle)], scorer, executor=executor,
                   workspace=workspace, chunk_size=chunk_size, seed=seed, shard_items=shard_items,
                   threads=threads, progress=progress)
    rows, specs, names = [], [], {}
    for m in models:
        handle = m if isinstance(m, ModelHandle) else load_model(str(m), workspace=workspace)
        spec = str(m) if not isinstance(m, ModelHandle) else str(handle.provenance.get("path", handle.name))
        specs.append((spec, handle.name, handle.model_hash))
        names[handle.name] = names.get(handle.name, 0) + 1  # a unique display name per model
        label = handle.name if names[handle.name] == 1 else f"{handle.name}#{names[handle.name]}"
        found = (contamination.get("store"), contamination.get("index")) if isinstance(contamination, Mapping) \
            else suite_contamination(handle, workspace) if contamination == "auto" else None
        for task in tasks:
            raws, hashes = evaluate_model(handle, task, scorer, workspace=workspace, chunk_size=chunk_size,
                                          on_chunk=on_chunk, progress=progress, seed=seed, label=label)
            dirty = None if found is None else contaminated_ids(task, found[0], found[1])
            rows += _rows(task, handle, label, spec, scorer, raws, hashes, dirty, seed)
        del handle
    results = Results.from_rows(rows)
    from empiricist.evals.analysis import summary_rows

    summary = summary_rows(results)
    if not write:
        return EvalRun(results, None, None, summary)
    key = {"tasks": [t.hash for t in tasks], "models": [h for _, _, h in specs], "scoring": scorer.config()}
    folder = Path(out) if out else Workspace.at(workspace).evals / "runs" / \
        f"{'+'.join(t.name for t in tasks)}-{config_hash(key)}"
    check_replaceable(folder, KIND, overwrite)
    with building(folder, overwrite=True, force=overwrite) as tmp:
        results.write(tmp)
        results.write_lm_eval_samples(tmp / "lm_eval")
        from empiricist.evals import inspect_log

        wrote_inspect = inspect_log.available()  # optional dependency: pip install "empiricist[inspect]"
        if wrote_inspect:
            inspect_log.write_inspect_logs(results, tmp / inspect_log.INSPECT_DIR)
        if render is not None:
            render(results, tmp, title or f"eval: {', '.join(t.name for t in tasks)}")
        from empiricist.artifacts import atomic_write_json

        atomic_write_json(tmp / "summary.json", summary)
        write_manifest(tmp, kind=KIND, config={"scoring": scorer.config(), "seed": seed,
                                               "tasks": [t.name for t in tasks], "models": [s for s, _, _ in specs]},
                       inputs={**{f"task:{t.name}": t.hash for t in tasks}, **{f"model:{s}": h for s, _, h in specs}},
                       extra={"inspect_log": wrote_inspect})
    report = folder / "report.html"
    return EvalRun(results, folder, report if report.is_file() else None, summary)

