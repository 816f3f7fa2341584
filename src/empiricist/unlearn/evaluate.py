"""One model measured after unlearning, against the gold (the model retrained without the forget set).

``evaluate(model, world, forget, gold=...)`` gives every metric of ``metrics`` that its inputs allow.
Without a gold (a user's own model and forget set, where nobody retrained), the metrics defined against
the gold are not guessed: they are None, and ``absent`` says which and why. Facts are scored by the eval
runner (every answer kept in its run folder); continuations by greedy decoding; membership by
``lookup.membership``'s Min-K% Prob.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.errors import InputError
from empiricist.unlearn import metrics

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.evals.tasks import Task
    from empiricist.suite.handles import ModelHandle
    from empiricist.unlearn.forget import ForgetRequest

NEEDS_GOLD = "needs the gold model (retrained without the forget set)"
NEEDS_HOLDOUT = "needs held-out documents no model trained on"
NEEDS_FACTS = "needs fact questions whose answers the forget set states (a generated world's ledger)"


def fact_key(item: Any) -> str:
    """The world's fact id of a fact-QA item ("person-00003.birthplace")."""
    return f"{item.meta['entity']}.{item.meta['relation']}"


def facts_task(world: Path, name: str, keys: Iterable[str]) -> Task:
    """The world's fact-QA items of the facts ``keys``, as one task named ``name``."""
    from empiricist.evals import world_tasks

    qa = world_tasks(world, ["fact_qa"])["fact_qa"]
    wanted = set(keys)
    return dataclasses.replace(qa, name=name, items=tuple(it for it in qa.items if fact_key(it) in wanted))


def _fact_tasks(world: Path, forget: ForgetRequest, max_retain: int, seed: int,
                exclude: Sequence[ForgetRequest] = ()) -> dict[str, Task]:
    from empiricist.unlearn.forget import retain_facts

    return {"forget": facts_task(world, f"unlearn_forget_{forget.name}", forget.facts),
            "retain": facts_task(world, "unlearn_retain", retain_facts(world, (forget, *exclude), max_retain, seed))}


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


def heldout_loss(handle: ModelHandle, texts: Sequence[str]) -> float:
    """Mean negative log-likelihood per token (nats) of ``texts``: utility on text no model trained on."""
    from empiricist.lookup.membership import token_logprobs

    lps = token_logprobs(handle.model, handle.tokenizer, list(texts), truncate=True)
    return float(-np.concatenate(lps).mean())


def _auc(handle: ModelHandle, members: Sequence[str], holdout: Sequence[str]) -> float:
    from empiricist.lookup.membership import membership_scores, roc_auc

    pos = [s.min_k_prob for s in membership_scores(handle, list(members))]
    neg = [s.min_k_prob for s in membership_scores(handle, list(holdout))]
    return roc_auc(pos, neg)


def evaluate(model: str, world: Path, forget: ForgetRequest, *, gold: str | None = None,
             holdout: Sequence[str] | None = None, workspace: Workspace | None = None, max_docs: int = 100,
             max_retain: int = 200, prefix_tokens: int = 32, continuation_tokens: int = 32, seed: int = 0,
             exclude: Sequence[ForgetRequest] = ()) -> dict[str, Any]:
    """Every unlearning metric of ``model`` on ``forget`` that the inputs allow (see the module doc).
    ``exclude``: other requests whose facts count neither as forget nor as retain (e.g. a holdout)."""
    from empiricist.evals import LoglikScorer, run_eval
    from empiricist.world.load import World

    tasks = _fact_tasks(world, forget, max_retain, seed, exclude)
    specs = [model] + ([gold] if gold is not None else [])
    run = run_eval(list(tasks.values()), specs, LoglikScorer(), workspace=workspace, contamination=False,
                   title=f"unlearning: {forget.name}")
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in run.results.rows():
        rows.setdefault((r["model_spec"], r["task"]), []).append(r)
    mine = {k: rows[str(model), t.name] for k, t in tasks.items()}
    docs = {d["id"]: d["text"] for d in World.open(world).iter_docs() if d["id"] in forget.doc_ids}
    ratios = metrics.truth_ratios(mine["forget"])
    out: dict[str, Any] = {
        "model": model, "gold": gold, "request": forget.to_json(), "eval_run": str(run.folder),
        "knowledge_forget": float(np.mean([r["acc"] for r in mine["forget"]])),
        "utility": float(np.mean([r["acc"] for r in mine["retain"]])),
        "truth_ratio_forget": float(np.mean(list(ratios.values()))),
        "log_truth_ratio_forget": float(np.mean(np.log(list(ratios.values())))),
        "truth_ratios": {k: ratios[k] for k in sorted(ratios)}}
    if gold is not None:
        gold_ratios = metrics.truth_ratios(rows[str(gold), tasks["forget"].name])
        out["forget_quality"] = metrics.forget_quality([ratios[k] for k in sorted(ratios)],
                                                       [gold_ratios[k] for k in sorted(ratios)])
    else:
        out["forget_quality"] = None
    text = evaluate_texts(model, [docs[i] for i in sorted(docs)][:max_docs], gold=gold, holdout=holdout,
                          workspace=workspace, prefix_tokens=prefix_tokens, continuation_tokens=continuation_tokens)
    out.update({k: v for k, v in text.items() if k != "absent"})
    out["absent"] = {**({} if gold is not None else {"forget_quality": NEEDS_GOLD}), **text["absent"]}
    return out


def evaluate_texts(model: str, texts: Sequence[str], *, gold: str | None = None,
                   holdout: Sequence[str] | None = None, workspace: Workspace | None = None,
                   prefix_tokens: int = 32, continuation_tokens: int = 32) -> dict[str, Any]:
    """The metrics that need only documents: verbatim memorisation of ``texts`` (the forget documents),
    held-out loss, membership AUC against ``holdout`` and, with a gold, privacy leakage."""
    from empiricist.suite.handles import load_model

    handle = load_model(model, workspace=workspace)  # once: continuations and membership share it
    cont, refs = _continuations(handle, texts, prefix_tokens, continuation_tokens)
    if not refs:
        raise InputError(f"no forget document is longer than {prefix_tokens} tokens: nothing to continue",
                         field="forget")
    out: dict[str, Any] = {"verbatim": metrics.verbatim_memorisation(cont, refs), "n_docs": len(refs), "absent": {}}
    if holdout:
        out["heldout_loss"] = heldout_loss(handle, holdout)
        out["membership_auc"] = _auc(handle, texts, holdout)
        if gold is not None:
            gold_auc = _auc(load_model(gold, workspace=workspace), texts, holdout)
            out["privacy_leakage"] = metrics.privacy_leakage(out["membership_auc"], gold_auc)
        else:
            out["privacy_leakage"], out["absent"]["privacy_leakage"] = None, NEEDS_GOLD
    else:
        out["membership_auc"] = out["privacy_leakage"] = out["heldout_loss"] = None
        out["absent"].update(membership_auc=NEEDS_HOLDOUT, privacy_leakage=NEEDS_HOLDOUT, heldout_loss=NEEDS_HOLDOUT)
    return out


def read_documents(path: Path, what: str) -> list[str]:
    """The ``text`` of every line of a JSONL file of documents; a bad line is one error naming it."""
    import json

    if not path.is_file():
        raise InputError(f"{path} does not exist (--{what})", field=what)
    texts = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not JSON ({e.msg}); each line must be an object with a 'text' "
                             f"(--{what})", field=what) from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError(f"{path}:{n}: each line must be an object with a string 'text' (--{what})", field=what)
        texts.append(row["text"])
    if not texts:
        raise InputError(f"{path} holds no documents (--{what})", field=what)
    return texts


def evaluate_own(model: str, forget: Path, *, holdout: Path | None = None, gold: str | None = None,
                 workspace: Workspace | None = None, max_docs: int = 100) -> dict[str, Any]:
    """A user's own model (any HF causal LM) and forget set (a JSONL of documents): the metrics that
    need only documents, and the fact-based ones named in ``absent`` (they need questions whose answers
    the forget set holds: the world's ledger)."""
    out = evaluate_texts(model, read_documents(forget, "forget")[:max_docs], gold=gold,
                         holdout=None if holdout is None else read_documents(holdout, "holdout"), workspace=workspace)
    out.update(model=model, gold=gold, forget=str(forget))
    for name in ("knowledge_forget", "utility", "truth_ratio_forget", "forget_quality"):
        out[name] = None
        out["absent"][name] = NEEDS_FACTS
    return out
