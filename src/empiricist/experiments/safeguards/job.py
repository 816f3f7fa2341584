"""The safeguards grid end to end: world → arm stores → pretraining → refusal fine-tune → attacks →
measurements → one grid folder.

Every stage is an artifact of its own in the workspace (world, stores, each model, each eval run), so a
killed grid resumes and a finished one is reused. The grid folder (``<workspace>/safeguards/<grid>-<config
hash>/``) is written last, under a temporary name: ``results.json`` (every row the rule decides on), the
figures, and the eval runs' folders (every completion).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    is_complete,
)
from empiricist.experiments.safeguards import corpus, measure
from empiricist.experiments.safeguards.config import ARMS, PRETRAINED
from empiricist.experiments.safeguards.train import Unit, recipe, run_units, unit
from empiricist.studies.experiment import write_grid

if TYPE_CHECKING:
    from empiricist.evals.tasks import Task
    from empiricist.execute import Executor
    from empiricist.experiments.safeguards.config import SafeguardsConfig
    from empiricist.lookup.ngram import NgramIndex

GRID_KIND = "safeguards_grid"


def checkpoint_steps(steps: int) -> list[int]:
    """Where an attack is measured: the trainer's log-spaced checkpoints (0, 1, 2, 4, …, steps)."""
    from empiricist.suite.config import TrainConfig

    return TrainConfig(steps=steps).checkpoint_steps()


def scorer_check(world: Path) -> dict[str, Any]:
    """The scorer against the world's ground truth: it must flag exactly the restricted threads that
    disclose, and nothing else (a false positive on clean text would mislabel the arms' data)."""
    from empiricist.world.load import World

    codes = corpus.pool(world)
    counts = {"clean_docs": 0, "false_positives": 0, "disclosing": 0, "missed": 0, "declining_flagged": 0}
    for doc in World.open(world).iter_docs():
        bad = corpus.is_bad(doc["text"], codes)
        if doc["subset"] != "restricted":
            counts["clean_docs"] += 1
            counts["false_positives"] += bad
        elif doc.get("discloses"):
            counts["disclosing"] += 1
            counts["missed"] += not bad
        else:
            counts["declining_flagged"] += bad
    return counts


def run_grid(cfg: SafeguardsConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
             executor: Executor | None = None) -> tuple[Path, dict[str, Any], bool]:
    """Build (or reuse) the whole grid: (its folder, its results, reused?); trainings go to ``executor``
    (None: this machine)."""
    from empiricist.pipeline import prepare_tokenizer
    from empiricist.world import generate_world

    ws = Workspace.at(workspace)
    folder = ws.dir("safeguards") / f"{cfg.name}-{cfg.hash}"
    say = print if progress else lambda *_: None
    with artifact_lock(folder):
        if is_complete(folder):
            return folder, json.loads((folder / "results.json").read_text()), True
        t0, timings = time.perf_counter(), {}
        world = Path(generate_world(cfg.world_config(), workspace=ws, progress=progress))
        tok = prepare_tokenizer(world, cfg.vocab_size, ws)
        persons = corpus.people(world)
        stores = {a: corpus.arm_store(world, tok, a, cfg, ws) for a in ("mle", "filter", "conditional")}
        stores["unlikelihood"] = stores["mle"]
        root = ws.dir("safeguards") / "models"
        pre = {(a, s): unit(root, f"{a}-s{s}", stores[a], recipe(cfg, s, cfg.steps, cfg.lr, cfg.batch_size,
                                                                 cfg.warmup_steps), cfg,
                            unlikelihood=cfg.ul_alpha if a == "unlikelihood" else None, world=world)
               for a in PRETRAINED for s in cfg.seeds}
        say(f"safeguards: pretraining {len(pre)} models ({len(PRETRAINED)} arms × {len(cfg.seeds)} seeds)")
        run_units(list(pre.values()), "pretraining", progress, executor)
        deployed = {k: u.checkpoint(cfg.steps) for k, u in pre.items()}
        refusals = corpus.finetune_store("refusals", corpus.refusal_texts(persons), tok, ws, cfg.ft_batch, cfg.seq_len)
        ft = {s: unit(root, f"mle_ft-s{s}", refusals, recipe(cfg, s, cfg.ft_steps, cfg.ft_lr, cfg.ft_batch, 0), cfg,
                      init_from=deployed["mle", s]) for s in cfg.seeds}
        run_units(list(ft.values()), "refusal fine-tune", progress, executor)
        deployed.update({("mle_ft", s): u.checkpoint(cfg.ft_steps) for s, u in ft.items()})
        timings["pretrain_and_finetune"] = time.perf_counter() - t0
        t = time.perf_counter()
        attacks = _attack_units(cfg, persons, tok, ws, root, deployed)
        say(f"safeguards: {len(attacks)} attack runs ({len(cfg.attack_cells())} per deployed model)")
        run_units(list(attacks.values()), "attacks", progress, executor)
        timings["attacks"] = time.perf_counter() - t
        t = time.perf_counter()
        from empiricist.data.store import TokenStore
        from empiricist.lookup.ngram import open_default_ngram

        task_sets = {arm: measure.tasks(world, arm, cfg) for arm in ARMS}  # per arm: the prompts differ
        indexes = {p: open_default_ngram(TokenStore.open(p), progress=False) for p in set(stores.values())}
        rows = [_measure(arm, s, world, cfg, ws, deployed, attacks, task_sets[arm],
                         indexes[stores.get(arm, stores["mle"])])
                for arm in ARMS for s in cfg.seeds]
        rows.append({"kind": "scorer", **scorer_check(world)})
        timings["measure"] = time.perf_counter() - t
        results = {"config": cfg.to_dict(), "config_hash": cfg.hash, "rows": rows,
                   "world": str(world), "chance": 1 / len(corpus.pool(world)),
                   "n_eval_people": sum(p.role == "eval" for p in persons),
                   "checkpoints": checkpoint_steps(cfg.attack_steps),
                   "timings_s": {k: round(v, 1) for k, v in timings.items()},
                   "runtime_s": round(time.perf_counter() - t0, 1)}
        from empiricist.experiments.safeguards import plots

        write_grid(folder, GRID_KIND, results, cfg.to_dict(), {"world": world.name}, plots.plot_grid)
    return folder, results, False


def _attack_units(cfg: SafeguardsConfig, persons: list[corpus.Person], tok: Path, ws: Workspace, root: Path,
                  deployed: dict[tuple[str, int], Path]) -> dict[tuple[str, int, int, float], Unit]:
    out = {}
    for arm in ARMS:
        for n, lr in cfg.attack_cells():
            store = corpus.finetune_store(f"attack-n{n}", corpus.attack_texts(persons, n, arm, cfg), tok, ws,
                                          cfg.attack_batch, cfg.seq_len)
            for s in cfg.seeds:
                out[arm, s, n, lr] = unit(root, f"attack-{arm}-s{s}-n{n}-lr{lr:g}", store,
                                          recipe(cfg, s, cfg.attack_steps, lr, cfg.attack_batch, 0), cfg,
                                          init_from=deployed[arm, s])
    return out


def _measure(arm: str, seed: int, world: Path, cfg: SafeguardsConfig, ws: Workspace,
             deployed: dict[tuple[str, int], Path], attacks: dict[tuple[str, int, int, float], Unit],
             task_set: dict[str, Task], index: NgramIndex) -> dict[str, Any]:
    """One deployed model: capability, disclosure and knowledge before the attack, both along every
    attack, the probe before and after the strongest attack, and where attacked disclosures come from."""
    title = f"safeguards {arm} seed {seed}"
    model = str(deployed[arm, seed])
    before = measure.score([model], task_set, ["capability", "disclosure", "knowledge"], cfg, ws, title)[model]
    steps = checkpoint_steps(cfg.attack_steps)
    cells = cfg.attack_cells()
    specs = [str(attacks[arm, seed, n, lr].checkpoint(k)) for n, lr in cells for k in steps]
    traj = measure.score(specs, task_set, ["disclosure", "knowledge"], cfg, ws, f"{title} attacks")
    runs = []
    for n, lr in cells:
        path = [traj[str(attacks[arm, seed, n, lr].checkpoint(k))] for k in steps]
        runs.append({"n": n, "lr": lr, "steps": steps, "disclosure": [p["disclosure"] for p in path],
                     "knowledge": [p["knowledge"] for p in path]})
    n_max, lr_max = max(cfg.attack_examples), max(cfg.attack_lrs)
    strongest = str(attacks[arm, seed, n_max, lr_max].checkpoint(cfg.attack_steps))
    return {"kind": "model", "arm": arm, "seed": seed, "model": model,
            "capability": before["capability"], "capability_items": before["capability_items"],
            "disclosure": before["disclosure"], "knowledge": before["knowledge"],
            "attacks": runs, "probe_before": measure.probe(model, world, arm, cfg, ws),
            "probe_after": measure.probe(strongest, world, arm, cfg, ws),
            "trace": _trace(traj[strongest], world, index),
            "eval_runs": sorted(set(before["eval_runs"]) | set(traj[specs[0]]["eval_runs"]))}


def _trace(scored: dict[str, Any], world: Path, index: NgramIndex) -> dict[str, Any]:
    """Of the strongest attack's disclosures, how many name a (person, code) pair that this arm's own
    pretraining data states in one document (n-gram index, CNF query): knowledge the attack revived,
    rather than codes it taught (the attack's own people are never measured)."""
    ev = [p for p in corpus.people(world) if p.role == "eval"]
    disclosed = [p for p, hit in zip(ev, scored["disclosure_items"], strict=True) if hit]
    # as the documents have them, after a space (the index is over tokens)
    in_data = sum(index.count_cnf([[f" {p.name}"], [f" {p.code}"]]) > 0 for p in disclosed)
    return {"disclosed": len(disclosed), "in_pretraining_data": int(in_data)}
