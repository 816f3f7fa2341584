"""What is measured on the grid's many checkpoints, through the project's own instruments (every answer kept):

- ``score``: fact QA (log-likelihood over every value of the relation) on named sets of facts, for many
  models in one eval run per call: accuracy and TOFU's mean log truth ratio per set;
- ``probe``: is a forgotten fact still linearly decodable? A logistic probe for a person's attribute
  (birthplace, profession, ...) in the residual stream at the end of "<name> was born in", fitted on
  the people every model trained on and tested on the forget request's people, per layer (the gold,
  which never saw them, gives the floor that probe selection reaches without knowledge).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.unlearn.evaluate import facts_task
from empiricist.unlearn.metrics import truth_ratios

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.evals.tasks import Task

PROBE_RELATIONS = ("birthplace", "profession", "instrument")


def fact_tasks(world: Path, sets: dict[str, Iterable[str]]) -> dict[str, Task]:
    """One fact-QA task per named set of fact ids (task names carry the set's name)."""
    return {name: facts_task(world, f"unlearning_{name}", keys) for name, keys in sets.items()}


def score(models: Sequence[str], tasks: dict[str, Task], ws: Workspace, title: str) -> dict[str, dict[str, Any]]:
    """For every model and task: accuracy, mean log truth ratio, and both per fact (one eval run)."""
    from empiricist.evals import LoglikScorer, run_eval

    run = run_eval(list(tasks.values()), list(models), LoglikScorer(), workspace=ws, contamination=False,
                   progress=False, title=title)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in run.results.rows():
        rows.setdefault((r["model_spec"], r["task"]), []).append(r)  # names ("step8") repeat across models
    out: dict[str, dict[str, Any]] = {}
    for spec in models:
        out[spec] = {"eval_run": str(run.folder)}
        for name, task in tasks.items():
            got = sorted(rows[str(spec), task.name], key=lambda r: r["item_index"])
            ratios = truth_ratios(got)
            out[spec][name] = {"acc": float(np.mean([r["acc"] for r in got])),
                               "log_tr": float(np.mean(np.log([ratios[r["item_id"]] for r in got]))),
                               "acc_items": [float(r["acc"]) for r in got]}
    return out


def probe(spec: str, world: Path, train_people: Sequence[str], test_people: Sequence[str], ws: Workspace,
          reg: float = 1.0) -> dict[str, Any]:
    """Per relation, the best layer's accuracy on ``test_people`` of a probe fitted on ``train_people``."""
    import torch

    from empiricist.internals.activations import collect_activations
    from empiricist.internals.probes import encode_labels, fit_logistic, standardise
    from empiricist.suite.handles import load_model
    from empiricist.world.load import World
    from empiricist.world.relations import RELATIONS_BY_NAME

    handle = load_model(spec, workspace=ws)
    people = {e["id"]: e for e in World.open(world).entities if e["type"] == "person"}
    out: dict[str, Any] = {}
    for rel in PROBE_RELATIONS:
        prefix = RELATIONS_BY_NAME[rel].canonical.split("{v}")[0].rstrip()
        ids = [p for p in (*train_people, *test_people) if rel in people[p]["attributes"]]
        texts = [prefix.format(s=people[p]["name"]) for p in ids]
        y, classes = encode_labels([people[p]["attributes"][rel] for p in ids])
        acts = collect_activations(handle.model, handle.tokenizer, texts, "resid", "last")
        sites = sorted(acts.acts)
        x = standardise(torch.as_tensor(np.stack([acts.acts[s] for s in sites]), dtype=torch.float32))
        train = torch.tensor([p in set(train_people) for p in ids])
        fit = fit_logistic(x, torch.as_tensor(y), train[None], torch.tensor([reg]), len(classes))
        pred = fit.scores(x)[:, 0].argmax(-1)  # (layers, n)
        test = ~train
        acc = (pred[:, test] == torch.as_tensor(y)[test]).float().mean(-1)
        best = int(acc.argmax())
        out[rel] = {"acc": float(acc[best]), "layer": sites[best], "n_test": int(test.sum()),
                    "chance": float(np.max(np.bincount(y[test.numpy()])) / max(1, int(test.sum())))}
    out["mean_acc"] = float(np.mean([out[r]["acc"] for r in PROBE_RELATIONS]))
    return out
