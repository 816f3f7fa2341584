"""The unlearning grid end to end: world → requests → stores → base and gold → validation sweep →
test runs → evaluation against the gold → relearning → probes → one grid folder.

Every training is a content-addressed unit (``suite.units``) on the executor and every measurement an
eval run in the workspace, so a killed grid resumes and a finished one is reused. The grid folder
(``<workspace>/unlearning/<grid>-<config hash>/``) is written last, under a temporary name:
``results.json`` (every row the rule decides on), the figures, and pointers to the eval runs.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    config_hash,
    is_complete,
    read_manifest,
    sha256_file,
)
from empiricist.data.small import cached_store, finetune_store
from empiricist.experiments.unlearning import measure
from empiricist.experiments.unlearning.config import METHODS, RETAIN_METHODS
from empiricist.studies.experiment import write_grid
from empiricist.suite.units import Unit, make_unit, run_units
from empiricist.unlearn.forget import draw_requests, retain_documents

if TYPE_CHECKING:
    from empiricist.evals.tasks import Task
    from empiricist.execute import Executor
    from empiricist.experiments.unlearning.config import UnlearningConfig
    from empiricist.suite.config import TrainConfig
    from empiricist.unlearn.forget import ForgetRequest

GRID_KIND = "unlearning_grid"


def recipe(cfg: UnlearningConfig, seed: int, steps: int, lr: float, batch: int, warmup: int) -> TrainConfig:
    """The shared recipe: one thread per unit (two side by side on two cores; the same bytes anywhere)."""
    from empiricist.suite.config import TrainConfig

    return TrainConfig(seq_len=cfg.seq_len, batch_size=batch, steps=steps, lr=lr, warmup_steps=warmup, seed=seed,
                       threads=1, resume_every=max(50, steps // 4), log_every=max(1, min(10, steps // 8)))


def _size(cfg: UnlearningConfig) -> dict[str, Any]:
    return {"name": "u", "d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads}


def _unit(root: Path, name: str, store: Path, train: TrainConfig, cfg: UnlearningConfig, *,
          init_from: Path | None = None, objective: tuple[str, dict[str, Any]] | None = None) -> Unit:
    """A unit named by everything it is made from: the store's content, recipe, size, objective, start."""
    key = config_hash({"store": read_manifest(store).get("files", {}), "train": train.__dict__, "size": _size(cfg),
                       "objective": objective and [objective[0], {k: v for k, v in objective[1].items()
                                                                  if k not in ("retain", "start")}],
                       "retain": objective and objective[1].get("retain") and
                       read_manifest(objective[1]["retain"]).get("files", {}),
                       "init_from": None if init_from is None else read_manifest(init_from).get("files", {})})
    return make_unit(name, root / f"{name}-{key}", store, train.__dict__, _size(cfg), init_from=init_from,
                     objective=objective, info={"experiment": "unlearning"})


def _store(world: Path, tok: Path, ws: Workspace, name: str, keep: Any, ids: list[str]) -> Path:
    from empiricist.data.readers import Document

    key = config_hash({"world": read_manifest(world, kind="world")["config_hash"], "tokenizer": sha256_file(tok),
                       "docs": ids})
    return cached_store((Document(d["id"], d["text"], {}) for d in keep), tok, ws.stores / f"unlearning-{name}-{key}",
                        {"world": world.name, "set": name})


def _docs_store(world: Path, tok: Path, ws: Workspace, name: str, drop: tuple[ForgetRequest, ...] = (),
                only: frozenset[str] | None = None) -> Path:
    """The world's documents minus ``drop``'s (or only ``only``), in the world's order."""
    docs = [d for d in retain_documents(world, *drop) if only is None or d["id"] in only]
    return _store(world, tok, ws, name, docs, [d["id"] for d in docs])


def relearn_split(world: Path, test: ForgetRequest, n_docs: int, exclude: frozenset[str]
                  ) -> tuple[list[str], list[str], list[str]]:
    """(relearning documents, facts they state, facts of the other half of the test people): a few
    documents of the first half of the test people, none of which states a fact of the other half."""
    from empiricist.world.load import World

    half = set(test.entities[: len(test.entities) // 2])
    facts = [f for f in World.open(world).facts if f["id"] in set(test.facts)]
    others = set().union(*(set(f["doc_ids"]) for f in facts if f["entity"] not in half))
    pool = sorted(set().union(*(set(f["doc_ids"]) for f in facts if f["entity"] in half)) - others - exclude)
    docs = sorted(random.Random(0).sample(pool, min(n_docs, len(pool))))
    shown = [f["id"] for f in facts if f["entity"] in half and set(f["doc_ids"]) & set(docs)]
    unseen = [f["id"] for f in facts if f["entity"] not in half]
    return docs, shown, unseen


def run_grid(cfg: UnlearningConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
             executor: Executor | None = None) -> tuple[Path, dict[str, Any], bool]:
    """Build (or reuse) the whole grid: (its folder, its results, reused?)."""
    from empiricist.pipeline import prepare_tokenizer
    from empiricist.world import generate_world
    from empiricist.world.load import World

    ws = Workspace.at(workspace)
    folder = ws.dir("unlearning") / f"{cfg.name}-{cfg.hash}"
    say = print if progress else lambda *_: None
    with artifact_lock(folder):
        if is_complete(folder):
            return folder, json.loads((folder / "results.json").read_text()), True
        t0, timings = time.perf_counter(), {}
        world = Path(generate_world(cfg.world_config(), workspace=ws, progress=progress))
        tok = prepare_tokenizer(world, cfg.vocab_size, ws)
        val, test, hold = draw_requests(world, ("validation", "test", "holdout"), cfg.n_entities, seed=0)
        stores = {"base": _docs_store(world, tok, ws, "base", (hold,)),
                  "gold_val": _docs_store(world, tok, ws, "gold_val", (hold, val)),
                  "gold": _docs_store(world, tok, ws, "gold", (hold, test)),
                  "forget_val": _docs_store(world, tok, ws, "forget_val", (hold,), only=val.doc_ids),
                  "forget": _docs_store(world, tok, ws, "forget", (hold,), only=test.doc_ids)}
        root = ws.dir("unlearning") / "models"
        pre = {(m, s): _unit(root, f"{m}-s{s}", stores[m], recipe(cfg, s, cfg.steps, cfg.lr, cfg.batch_size,
                                                                    cfg.warmup_steps), cfg)
               for s in cfg.seeds for m in ("base", "gold")}
        s0 = cfg.seeds[0]
        pre["gold_val", s0] = _unit(root, f"gold_val-s{s0}", stores["gold_val"],
                                    recipe(cfg, s0, cfg.steps, cfg.lr, cfg.batch_size, cfg.warmup_steps), cfg)
        say(f"unlearning: pretraining {len(pre)} models (base and gold × {len(cfg.seeds)} seeds, one validation gold)")
        run_units(list(pre.values()), "pretraining", progress, executor)
        final = {k: u.checkpoint(cfg.steps) for k, u in pre.items()}
        timings["pretrain"] = time.perf_counter() - t0

        t = time.perf_counter()
        sweep = {(m, lr): _method_unit(cfg, root, m, s0, lr, final["base", s0], stores["forget_val"],
                                       stores["gold_val"]) for m in METHODS for lr in cfg.unlearn_lrs}
        say(f"unlearning: validation sweep, {len(sweep)} runs ({len(METHODS)} methods × {len(cfg.unlearn_lrs)} lrs)")
        run_units(list(sweep.values()), "validation sweep", progress, executor)
        selection = _select(cfg, world, val, (test, hold), final, sweep, ws)
        timings["validation"] = time.perf_counter() - t

        t = time.perf_counter()
        runs = {(m, s): _method_unit(cfg, root, m, s, selection[m]["lr"], final["base", s], stores["forget"],
                                     stores["gold"]) for m in METHODS for s in cfg.seeds}
        say(f"unlearning: {len(runs)} test runs ({len(METHODS)} methods × {len(cfg.seeds)} seeds)")
        run_units(list(runs.values()), "unlearning", progress, executor)
        models = {("none", s): final["base", s] for s in cfg.seeds}
        models.update({(m, s): runs[m, s].checkpoint(selection[m]["step"]) for m, s in runs})
        models.update({("gold", s): final["gold", s] for s in cfg.seeds})
        timings["unlearn"] = time.perf_counter() - t

        t = time.perf_counter()
        docs, shown, unseen = relearn_split(world, test, cfg.relearn_docs, hold.doc_ids | val.doc_ids)
        by_id = {d["id"]: d["text"] for d in World.open(world).iter_docs() if d["id"] in set(docs)}
        relearn_store = finetune_store(ws.stores / "unlearning-relearn", "relearn", [by_id[i] for i in docs], tok,
                                       cfg.relearn_batch, cfg.seq_len)
        relearn = {k: _unit(root, f"relearn-{k[0]}-s{k[1]}", relearn_store,
                            recipe(cfg, k[1], cfg.relearn_steps, cfg.relearn_lr, cfg.relearn_batch, 0), cfg,
                            init_from=v) for k, v in models.items()}
        say(f"unlearning: relearning attack, {len(relearn)} runs on {len(docs)} forget documents")
        run_units(list(relearn.values()), "relearning", progress, executor)
        timings["relearn"] = time.perf_counter() - t

        t = time.perf_counter()
        holdout_texts = [d["text"] for d in World.open(world).iter_docs() if d["id"] in hold.doc_ids]
        relearn_tasks = measure.fact_tasks(world, {"shown": shown, "unseen": unseen})  # the same for every seed
        train_people = sorted({e["id"] for e in _people(world)} - set(test.entities) - set(val.entities)
                              - set(hold.entities))  # the probe's: people every model trained on
        rows = [r for s in cfg.seeds
                for r in _measure(cfg, world, test, (val, hold), models, relearn, relearn_tasks, train_people,
                                  holdout_texts, ws, s)]
        rows.append(_store_check(stores, test, hold))
        timings["measure"] = time.perf_counter() - t
        results = {"config": cfg.to_dict(), "config_hash": cfg.hash, "rows": rows,
                   "world": str(world), "requests": {r.name: r.to_json() for r in (val, test, hold)},
                   "selection": selection, "relearn": {"docs": docs, "shown_facts": shown, "unseen_facts": unseen},
                   "checkpoints": _steps(cfg.relearn_steps),
                   "timings_s": {k: round(v, 1) for k, v in timings.items()},
                   "runtime_s": round(time.perf_counter() - t0, 1)}
        from empiricist.experiments.unlearning import plots

        write_grid(folder, GRID_KIND, results, cfg.to_dict(), {"world": world.name}, plots.plot_grid)
    return folder, results, False


def _store_check(stores: dict[str, Path], test: ForgetRequest, hold: ForgetRequest) -> dict[str, Any]:
    """What the base and the gold trained on, read back from their stores: the test request's documents."""
    from empiricist.data.store import TokenStore

    want = test.doc_ids - hold.doc_ids
    held = {}
    for name in ("base", "gold"):
        s = TokenStore.open(stores[name])
        held[name] = sum(s.doc_id(i) in want for i in range(s.num_docs))
    return {"kind": "stores", "test_docs": len(want), "base_test_docs": held["base"], "gold_test_docs": held["gold"]}


def _steps(steps: int) -> list[int]:
    from empiricist.suite.config import TrainConfig

    return TrainConfig(steps=steps).checkpoint_steps()


def _method_unit(cfg: UnlearningConfig, root: Path, method: str, seed: int, lr: float, start: Path, forget: Path,
                 retain: Path) -> Unit:
    options = {"method": method, "start": str(start), **cfg.options(method)}
    if method in RETAIN_METHODS:
        options["retain"] = str(retain)
    return _unit(root, f"{method}-s{seed}-lr{lr:g}", forget,
                 recipe(cfg, seed, cfg.unlearn_steps, lr, cfg.unlearn_batch, 0), cfg, init_from=start,
                 objective=("empiricist.unlearn.run:method_objective", options))


def _select(cfg: UnlearningConfig, world: Path, val: ForgetRequest, exclude: tuple[ForgetRequest, ...],
            final: dict[tuple[str, int], Path], sweep: dict[tuple[str, float], Unit], ws: Workspace
            ) -> dict[str, dict[str, Any]]:
    """Per method, the (learning rate, checkpoint) of the validation sweep that leaves the smallest share
    of the base–gold truth-ratio gap on the validation facts, among those that keep retain accuracy
    within ``select_utility_drop`` of the base's (none qualifying: the least damaging one)."""
    from empiricist.unlearn.forget import retain_facts

    s0 = cfg.seeds[0]
    tasks = measure.fact_tasks(world, {"forget": val.facts,
                                       "retain": retain_facts(world, (val, *exclude), cfg.max_retain, seed=0)})
    steps = _steps(cfg.unlearn_steps)[1:]
    specs = [str(final["base", s0]), str(final["gold_val", s0])]
    specs += [str(u.checkpoint(k)) for u in sweep.values() for k in steps]
    got = measure.score(specs, tasks, ws, "unlearning: validation sweep")
    base, gold = got[specs[0]], got[specs[1]]
    gap = base["forget"]["log_tr"] - gold["forget"]["log_tr"]
    out: dict[str, dict[str, Any]] = {}
    for m in METHODS:
        cands = []
        for (mm, lr), u in sweep.items():
            if mm != m:
                continue
            for k in steps:
                g = got[str(u.checkpoint(k))]
                share = (g["forget"]["log_tr"] - gold["forget"]["log_tr"]) / gap if gap else float("nan")
                drop = base["retain"]["acc"] - g["retain"]["acc"]
                cands.append({"lr": lr, "step": k, "gap_share": share, "utility_drop": drop,
                              "forget_acc": g["forget"]["acc"], "retain_acc": g["retain"]["acc"]})
        ok = [c for c in cands if c["utility_drop"] <= cfg.select_utility_drop]
        best = (min(ok, key=lambda c: (abs(c["gap_share"]), c["step"], c["lr"])) if ok
                else min(cands, key=lambda c: (c["utility_drop"], c["step"], c["lr"])))
        out[m] = {**best, "qualified": bool(ok), "candidates": cands}
    out["_reference"] = {"base": {k: v["acc"] for k, v in base.items() if isinstance(v, dict)},
                         "gold": {k: v["acc"] for k, v in gold.items() if isinstance(v, dict)},
                         "log_tr_gap": gap}
    return out


def _measure(cfg: UnlearningConfig, world: Path, test: ForgetRequest, exclude: tuple[ForgetRequest, ...],
             models: dict[tuple[str, int], Path], relearn: dict[tuple[str, int], Unit], tasks: dict[str, Task],
             train_people: list[str], holdout: list[str], ws: Workspace, seed: int) -> list[dict[str, Any]]:
    """One seed: every model (none, the methods, the gold) against this seed's gold, its relearning
    trajectory on the shown and the unseen facts, and its probe."""
    from empiricist.unlearn.evaluate import evaluate

    gold = str(models["gold", seed])
    names = ("none", *METHODS, "gold")
    steps = _steps(cfg.relearn_steps)
    specs = [str(relearn[n, seed].checkpoint(k)) for n in names for k in steps]
    traj = measure.score(specs, tasks, ws, f"unlearning seed {seed}: relearning")
    rows = []
    for name in names:
        spec = str(models[name, seed])
        ev = evaluate(spec, world, test, gold=gold, holdout=holdout, workspace=ws, max_docs=cfg.max_docs,
                      max_retain=cfg.max_retain, exclude=exclude)
        path = [traj[str(relearn[name, seed].checkpoint(k))] for k in steps]
        rows.append({"kind": "model", "method": name, "seed": seed, "model": spec, **ev,
                     "relearn": {"steps": steps, "shown": [p["shown"]["acc"] for p in path],
                                 "unseen": [p["unseen"]["acc"] for p in path]},
                     "relearn_eval_run": path[0]["eval_run"],
                     "probe": measure.probe(spec, world, train_people, list(test.entities), ws)})
    return rows


def _people(world: Path) -> list[dict[str, Any]]:
    from empiricist.world.load import World

    return [e for e in World.open(world).entities if e["type"] == "person"]
