"""One model measured after unlearning, against the gold (the model retrained without the forget set).

``evaluate(model, world, forget, gold=...)`` gives every metric of ``metrics`` that its inputs allow.
Without a gold (a user's own model and forget set, where nobody retrained), the metrics defined against
the gold are not guessed: they are None, and ``absent`` says which and why. Facts are scored by the eval
runner (every answer kept in its run folder); continuations by greedy decoding; membership by
``lookup.membership``'s Min-K% Prob.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.unlearn import metrics

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.suite.handles import ModelHandle
    from empiricist.unlearn.forget import ForgetRequest

NEEDS_GOLD = "needs the gold model (retrained without the forget set)"
NEEDS_HOLDOUT = "needs held-out documents no model trained on"


def _fact_tasks(world: Path, forget: ForgetRequest, max_retain: int, seed: int) -> dict[str, Any]:
    from empiricist.evals import world_tasks

    qa = world_tasks(world, ["fact_qa"])["fact_qa"]
    gone = set(forget.facts)
    key = lambda it: f"{it.meta['entity']}.{it.meta['relation']}"
    forget_items = tuple(it for it in qa.items if key(it) in gone)
    rest = [it for it in qa.items if key(it) not in gone]
    pick = sorted(np.random.default_rng(seed).choice(len(rest), min(max_retain, len(rest)), replace=False))
    return {"forget": dataclasses.replace(qa, name=f"unlearn_forget_{forget.name}", items=forget_items),
            "retain": dataclasses.replace(qa, name="unlearn_retain", items=tuple(rest[i] for i in pick))}


def _continuations(handle: ModelHandle, texts: Sequence[str], prefix: int, length: int) -> tuple[list[str], list[str]]:
    """Greedy continuations of each text's first ``prefix`` tokens, and the true next ``length`` tokens."""
    from empiricist.evals.generate import greedy_generate

    tok = handle.tokenizer
    prompts, refs = [], []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) > prefix:
            prompts.append(tok.decode(ids[:prefix]))
            refs.append(tok.decode(ids[prefix:prefix + length]))
    gens = greedy_generate(handle.model, tok, prompts, max_new_tokens=length, until=())
    return [g.completion for g in gens], refs


def _auc(handle: ModelHandle, members: Sequence[str], holdout: Sequence[str]) -> float:
    from empiricist.lookup.membership import membership_scores, roc_auc

    pos = [s.min_k_prob for s in membership_scores(handle, list(members))]
    neg = [s.min_k_prob for s in membership_scores(handle, list(holdout))]
    return roc_auc(pos, neg)


def evaluate(model: str, world: Path, forget: ForgetRequest, *, gold: str | None = None,
             holdout: Sequence[str] | None = None, workspace: Workspace | None = None, max_docs: int = 100,
             max_retain: int = 200, prefix_tokens: int = 32, continuation_tokens: int = 32, seed: int = 0
             ) -> dict[str, Any]:
    """Every unlearning metric of ``model`` on ``forget`` that the inputs allow (see the module doc)."""
    from empiricist.evals import LoglikScorer, run_eval
    from empiricist.suite.handles import load_model
    from empiricist.world.load import World

    tasks = _fact_tasks(world, forget, max_retain, seed)
    specs = [model] + ([gold] if gold is not None else [])
    run = run_eval(list(tasks.values()), specs, LoglikScorer(), workspace=workspace, contamination=False,
                   title=f"unlearning: {forget.name}")
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in run.results.rows():
        rows.setdefault((r["model_spec"], r["task"]), []).append(r)
    mine = {k: rows[str(model), t.name] for k, t in tasks.items()}
    docs = {d["id"]: d["text"] for d in World.open(world).iter_docs() if d["id"] in forget.doc_ids}
    texts = [docs[i] for i in sorted(docs)][:max_docs]
    handle = load_model(model, workspace=workspace)  # once: continuations and membership share it
    cont, refs = _continuations(handle, texts, prefix_tokens, continuation_tokens)
    ratios = metrics.truth_ratios(mine["forget"])
    out: dict[str, Any] = {
        "model": model, "gold": gold, "request": forget.to_json(), "eval_run": str(run.folder),
        "knowledge_forget": float(np.mean([r["acc"] for r in mine["forget"]])),
        "utility": float(np.mean([r["acc"] for r in mine["retain"]])),
        "truth_ratio_forget": float(np.mean(list(ratios.values()))),
        "verbatim": metrics.verbatim_memorisation(cont, refs), "n_docs": len(refs), "absent": {}}
    if gold is not None:
        gold_ratios = metrics.truth_ratios(rows[str(gold), tasks["forget"].name])
        out["forget_quality"] = metrics.forget_quality([ratios[k] for k in sorted(ratios)],
                                                       [gold_ratios[k] for k in sorted(ratios)])
    else:
        out["forget_quality"], out["absent"]["forget_quality"] = None, NEEDS_GOLD
    if holdout:
        out["membership_auc"] = _auc(handle, texts, holdout)
        if gold is not None:
            gold_auc = _auc(load_model(gold, workspace=workspace), texts, holdout)
            out["privacy_leakage"] = metrics.privacy_leakage(out["membership_auc"], gold_auc)
        else:
            out["privacy_leakage"], out["absent"]["privacy_leakage"] = None, NEEDS_GOLD
    else:
        out["membership_auc"] = out["privacy_leakage"] = None
        out["absent"].update(membership_auc=NEEDS_HOLDOUT, privacy_leakage=NEEDS_HOLDOUT)
    return out
