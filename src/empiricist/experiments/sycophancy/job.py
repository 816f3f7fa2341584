"""The sycophancy grid end to end: families → evals → tracing → counterfactual retraining → one grid folder.

Every stage is an artifact of its own in the workspace (worlds, stores, suites, eval caches, attribution
caches, retrained arms), so a killed job resumes where it stopped and a finished one is reused. The grid
folder (``<workspace>/sycophancy/<grid>-<config hash>/``) is written last, under a temporary name, with
``results.json`` (every row the rule decides on), the figures and the eval runs' paths (the transcripts).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    atomic_write_json,
    building,
    is_complete,
    write_manifest,
)
from empiricist.experiments.sycophancy import evalset, metric, rule
from empiricist.experiments.sycophancy.families import Family, build_families, family_label

if TYPE_CHECKING:
    from empiricist.evals.tasks import Task
    from empiricist.execute import Executor
    from empiricist.experiments.sycophancy.config import SycoConfig

GRID_KIND = "sycophancy_grid"


@dataclass
class Grid:
    path: Path
    results: dict[str, Any]
    reused: bool


def grid_path(cfg: SycoConfig, workspace: Workspace | str | Path | None = None) -> Path:
    return Workspace.at(workspace).dir("sycophancy") / f"{cfg.name}-{cfg.hash}"


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def _eval(tasks: list[Task], spec: str, workspace: Workspace, progress: bool) -> tuple[list[dict[str, Any]], str]:
    """Score one model on the tasks through the eval runner (cached per item; the run folder keeps every answer)."""
    from empiricist.evals import LoglikScorer, run_eval
    from empiricist.report import write_run_report

    run = run_eval(tasks, [spec], LoglikScorer(), workspace=workspace, contamination=False, progress=progress,
                   render=write_run_report)
    return run.results.rows(), str(run.report or run.folder)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items() if k != "per_fact"}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def fact_values(persona: list[dict[str, Any]]) -> dict[str, Any]:
    """What the rule reads of one model's persona rows: per-fact sycophancy, aligned on the facts."""
    pf = metric.per_fact(persona)
    return {"facts": list(pf["fact"]), "clusters": list(pf["cluster"]), rule.METRIC: pf["harmful"].tolist(),
            "syc_right": pf["right"].tolist(), "p_true_none": pf["p_true_none"].tolist()}


def _on_facts(facts: list[str], values: dict[str, float], what: str) -> list[float]:
    missing = [f for f in facts if f not in values]
    if missing:
        raise ValueError(f"{what} has no item for facts {missing[:3]}")
    return [values[f] for f in facts]


def model_row(fam: Family, size: str, tasks: dict[str, Task], cfg: SycoConfig, ws: Workspace, progress: bool
              ) -> dict[str, Any]:
    """One family × size: per-fact sycophancy, forum deference and fact knowledge, aligned on the same facts."""
    from empiricist.suite.suite import Suite

    rows, run = _eval(list(tasks.values()), fam.handle_spec(size), ws, progress)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    persona, forum, qa = (by_task[tasks[k].name] for k in ("persona", "forum", "fact_qa"))
    out = fact_values(persona)
    defer = {json.loads(r["meta"])["fact"]: float(p[json.loads(r["meta"])["defer_choice"]])
             for r, p in zip(forum, metric.p_choice(forum), strict=True)}
    knows = {"{entity}.{relation}".format(**json.loads(r["meta"])): float(r["acc"]) for r in qa}
    out["forum_defer"] = _on_facts(out["facts"], defer, "the forum task")
    out["fact_correct"] = _on_facts(out["facts"], knows, "the fact-QA task")
    out["chance"] = float(np.mean([1 / len(it.choices) for it in tasks["fact_qa"].items]))
    summary = metric.sycophancy(persona, n_boot=cfg.n_boot, seed=cfg.boot_seed)
    split = metric.by_knowledge(persona, qa, n_boot=cfg.n_boot, seed=cfg.boot_seed)
    man = Suite(fam.suite).model_manifest(size)
    return {"kind": "model", "dose": fam.dose, "family": family_label(fam.dose), "size": size,
            "params": man["info"]["n_params"], "non_embedding_params": man["info"]["n_non_embedding_params"],
            "final_loss": man["final_loss"], "eval_run": run, "summary": _jsonable(summary),
            "by_knowledge": _jsonable(split), "forum_defer_mean": float(np.mean(out["forum_defer"])),
            "fact_acc": float(np.mean(out["fact_correct"])), **out}


def family_comparisons(rows: list[dict[str, Any]], cfg: SycoConfig) -> list[dict[str, Any]]:
    """Every dose against rate 0 at every size, paired on the same facts (``metric.paired_difference``)."""
    models = {(r["dose"], r["size"]): r for r in rows if r.get("kind") == "model"}
    out = []
    for (dose, size), r in models.items():
        if dose == cfg.doses[0]:
            continue
        base = models[cfg.doses[0], size]
        d = metric.paired_difference(metric.from_grid_row(r), metric.from_grid_row(base), n_boot=cfg.n_boot, seed=cfg.boot_seed)
        out.append({"size": size, "family": r["family"], "against": base["family"], **_jsonable(d)})
    return out


def tasks_for(world: Path, cfg: SycoConfig) -> dict[str, Task]:
    """The persona items, the forum control and fact QA on the same held-out facts (from the rate-0 world:
    held-out entities are identical in every family, so every family answers the same items)."""
    import dataclasses

    from empiricist.evals import world_tasks

    persona = evalset.persona_task(world, scoring=cfg.scoring, max_facts=cfg.max_facts, seed=cfg.eval_seed)
    forum = evalset.forum_task(world, max_facts=cfg.max_facts, seed=cfg.eval_seed)
    facts = {it.meta["fact"] for it in persona.items}
    qa = world_tasks(world, ["fact_qa"])["fact_qa"]
    qa = dataclasses.replace(qa, name="sycophancy_fact_qa", items=tuple(
        it for it in qa.items if f"{it.meta['entity']}.{it.meta['relation']}" in facts))
    return {"persona": persona, "forum": forum, "fact_qa": qa}


def run_grid(cfg: SycoConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
             executor: Executor | None = None) -> Grid:
    """Build (or reuse) the whole grid and return its results; trainings go to ``executor`` (None: here)."""
    ws = Workspace.at(workspace)
    folder = grid_path(cfg, ws)
    with artifact_lock(folder):
        if is_complete(folder):
            return Grid(folder, json.loads((folder / "results.json").read_text()), True)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        families = build_families(cfg, ws, progress, executor)
        timings["families"] = time.perf_counter() - t0
        tasks = tasks_for(families[0].world, cfg)
        from empiricist.suite.config import get_preset

        sizes = [s.name for s in get_preset(cfg.suite).sizes]
        rows = []
        t = time.perf_counter()
        for fam in families:
            for size in sizes:
                _say(progress, f"eval: {family_label(fam.dose)} {size}")
                rows.append(model_row(fam, size, tasks, cfg, ws, progress))
        timings["evals"] = time.perf_counter() - t
        t = time.perf_counter()
        trace, arms = counterfactual_rows(families[-1], sizes[-1], tasks, cfg, ws, progress, executor)
        rows += arms
        timings["trace_and_retrain"] = time.perf_counter() - t
        results = {"config": cfg.to_dict(), "config_hash": cfg.hash, "rows": rows, "trace": trace,
                   "families": [{"dose": f.dose, "world": str(f.world), "store": str(f.store), "suite": str(f.suite)}
                                for f in families],
                   "tasks": {k: {"name": v.name, "hash": v.hash, "n_items": len(v.items)} for k, v in tasks.items()},
                   "timings_s": {k: round(v, 1) for k, v in timings.items()},
                   "runtime_s": round(time.perf_counter() - t0, 1)}
        with building(folder, overwrite=True, kind=GRID_KIND) as tmp:
            from empiricist.experiments.sycophancy import plots

            table = plots.grid_table(rows, cfg.n_boot, cfg.boot_seed)
            results["trends"] = _jsonable({"size": table["size_trends"], "dose": table["dose_trends"]})
            results["comparisons"] = family_comparisons(rows, cfg)
            plots.plot_grid(table, tmp / "sycophancy.png")
            plots.plot_counterfactual(trace["effects"], tmp / "counterfactual.png")
            atomic_write_json(tmp / "results.json", results)
            write_manifest(tmp, kind=GRID_KIND, config=cfg.to_dict(),
                           inputs={f"suite:{family_label(f.dose)}": str(f.suite.name) for f in families})
    return Grid(folder, results, False)


def counterfactual_rows(fam: Family, size: str, tasks: dict[str, Task], cfg: SycoConfig, ws: Workspace,
                        progress: bool, executor: Executor | None = None
                        ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Attribute the sycophantic answers of ``fam``'s ``size`` model, retrain without each removal set, and
    score every arm on the persona items (the reference arm removes nothing)."""
    from empiricist.data.store import TokenStore
    from empiricist.experiments.sycophancy import counterfactual, trace
    from empiricist.suite.config import get_preset
    from empiricist.suite.handles import load_model

    store = TokenStore.open(fam.store)
    handle = load_model(fam.handle_spec(size), workspace=ws)
    items = [it for it in tasks["persona"].items if it.meta["condition"] == "wrong"]
    rng = np.random.default_rng(cfg.eval_seed)
    pick = sorted(rng.choice(len(items), min(cfg.max_queries, len(items)), replace=False))
    queries = trace.contrast_queries([{"id": items[i].id, "prompt": items[i].prompt, "choices": list(items[i].choices),
                                       "meta": {"wrong_index": items[i].meta["wrong_choice"],
                                                "true_index": items[i].meta["true_choice"]}} for i in pick])
    pool = trace.candidate_pool(store, fam.world, n_other=cfg.n_other, seed=cfg.eval_seed)
    _say(progress, f"attribution: {len(queries)} contrast queries × {len(pool)} documents, {', '.join(cfg.methods)}")
    traced = trace.trace(handle, queries, pool, methods=cfg.methods, k=cfg.k, workspace=ws, progress=progress)
    removals = counterfactual.removal_sets(traced, pool, cfg.k, cfg.retrain_seed)
    suite_cfg = get_preset(cfg.suite)
    _say(progress, f"counterfactual: retraining {size} ({family_label(fam.dose)}) × {1 + len(removals)} arms")
    arms = counterfactual.retrain_arms(store, suite_cfg.size(size), suite_cfg.train, store.vocab_size, removals,
                                       seed=cfg.retrain_seed, workspace=ws, progress=progress,
                                       executor=executor)
    out = []
    for arm, path in arms.items():
        rows, run = _eval([tasks["persona"]], str(path), ws, progress)
        out.append({"kind": "arm", "arm": arm, "removed": len(removals.get(arm, [])), "model": str(path),
                    "eval_run": run, "summary": _jsonable(metric.sycophancy(rows, n_boot=cfg.n_boot,
                                                                           seed=cfg.boot_seed)),
                    **fact_values(rows)})
    ref = next(r for r in out if r["arm"] == counterfactual.REFERENCE)
    values = {Path(r["model"]): r[rule.METRIC] for r in out}
    effects = counterfactual.counterfactual_effects(values.__getitem__, arms, clusters=ref["clusters"],
                                                    n_boot=cfg.n_boot, seed=cfg.boot_seed)
    methods = {m: {k: v for k, v in r.items() if k != "scores"} for m, r in traced["methods"].items()}
    return _jsonable({**traced, "methods": methods, "best_method": trace.best_method(traced),
                      "effects": effects}), out
