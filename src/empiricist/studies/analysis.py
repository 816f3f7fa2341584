"""From an eval results table to verdicts: controls first, then every party's predictions.

``analyse`` needs only the results table and which model label is which alias, so a replication can
re-run it on bundled transcripts (``study replicate --fast``) as well as on fresh evaluations.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from empiricist.evals.results import Results
from empiricist.stats import StatsInputError, mcnemar_exact, monotonic_trend_test, scaling_fit
from empiricist.studies import decide
from empiricist.studies.logic import CORROBORATED, verdict_name
from empiricist.studies.protocol import decide_parties
from empiricist.studies.spec import RANGE, Prediction, Study

N_EXAMPLES = 8


def score_matrix(results: Results, task: str, labels: list[str]) -> tuple[list[str], np.ndarray, list[Any]]:
    """(item ids, scores (n, M), clusters): each model's score per item, averaged over seeds."""
    cols, ids, clusters = [], None, None
    for label in labels:
        by_item: dict[str, list[float]] = {}
        cl: dict[str, Any] = {}
        for r in results.select(task, label):
            by_item.setdefault(r["item_id"], []).append(r["score"])
            cl[r["item_id"]] = r["cluster"]
        if not by_item:
            raise StatsInputError(f"no results for model {label!r} on task {task!r}")
        if ids is None:
            ids, clusters = list(by_item), [cl[i] for i in by_item]
        elif list(by_item) != ids:
            raise StatsInputError(f"models were scored on different items of task {task!r}")
        cols.append([float(np.mean(by_item[i])) for i in ids])
    return ids or [], np.array(cols, dtype=float).T, clusters or []


def chance_level(results: Results, task: str, label: str) -> float | None:
    """Mean over items of (gold choices / choices): the score of guessing."""
    rows = [r for r in results.select(task, label) if r["choices"]]
    return float(np.mean([len(r["gold"]) / len(r["choices"]) for r in rows])) if rows else None


def _codes(clusters: list[Any], interval: str) -> tuple[np.ndarray | None, int, str | None]:
    """Cluster codes for the interval method; a note when "clustered" was planned but is impossible."""
    usable = clusters and all(c is not None for c in clusters) and len(set(clusters)) >= 2
    if interval == "clt" or (interval == "auto" and not usable):
        return None, len(clusters), None
    if not usable:
        return None, len(clusters), "the plan says clustered intervals but the items carry no clusters: used CLT"
    uniq = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    return np.array([uniq[c] for c in clusters]), len(uniq), None


def _extra(pred: Prediction, scores: np.ndarray, params: dict[str, float], clusters: Any) -> dict[str, Any]:
    """Descriptive numbers from ``empiricist.stats`` shown beside the decision (they do not decide)."""
    binary = bool(np.isin(scores, (0.0, 1.0)).all())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if pred.metric == "difference" and binary:
                return {"mcnemar_p": mcnemar_exact(scores[:, 0], scores[:, 1]).p_value}
            if pred.metric == "monotonic":
                cols = [scores[:, j] for j in range(scores.shape[1])]
                t = monotonic_trend_test(np.arange(len(cols)), cols, clusters=clusters, n_boot=1000)
                return {"page_p": t.page_p, "prob_all_increasing": t.prob_all_increasing}
            if pred.metric == "slope":
                fit = scaling_fit([params[m] for m in pred.models], [scores[:, j] for j in range(scores.shape[1])],
                                  clusters=clusters, n_boot=1000)
                return {"bootstrap_slope_ci": list(fit.slope_ci)}
    except (StatsInputError, ValueError):
        pass
    return {}


def _measure(pred: Prediction, results: Results, labels: dict[str, str], study: Study,
             notes: list[str]) -> tuple[dict[str, Any], decide.Compiled]:
    _ids, scores, clusters = score_matrix(results, pred.task, [labels[m] for m in pred.models])
    info = results.model_info()
    params = {m: float(info[labels[m]]["n_params"] or 0) or None for m in pred.models}
    comp = decide.compile_prediction(pred, params, chance_level(results, pred.task, labels[pred.models[0]]))
    codes, g, note = _codes(clusters, study.analysis.interval)
    if note and note not in notes:
        notes.append(note)
    nums = decide.analyse(comp, scores, codes, g, study.analysis.alpha)
    possible = RANGE[pred.metric]
    if possible is not None:  # the interval shown stays within what the metric can be (the tests are unchanged)
        nums["lo"], nums["hi"] = max(nums["lo"], possible[0]), min(nums["hi"], possible[1])
    nums["extra"] = _extra(pred, scores, params, clusters if codes is not None else None)
    nums["means"] = {m: float(scores[:, j].mean()) for j, m in enumerate(pred.models)}
    return nums, comp


def _record(pred: Prediction, nums: dict[str, Any], comp: decide.Compiled, party: str | None) -> dict[str, Any]:
    return {"party": party, "id": pred.id, "kind": pred.kind, "metric": pred.metric, "task": pred.task,
            "models": list(pred.models), "comparator": pred.comparator, "threshold": pred.threshold,
            "margin": pred.margin, "direction": pred.direction, "description": pred.description,
            "test": decide.describe_test(comp), **nums}


def analyse(study: Study, results: Results, labels: dict[str, str]) -> dict[str, Any]:
    """Decide controls and predictions; ``labels``: model alias -> model label in ``results``."""
    a = study.analysis
    notes: list[str] = []
    controls = []
    for c in study.controls:
        nums, comp = _measure(c, results, labels, study, notes)
        code = int(decide.verdict_codes(np.array(nums["p_hold"]), np.array(nums["p_fail"]), a.alpha))
        controls.append({**_record(c, nums, comp, None), "verdict": verdict_name(code),
                         "passed": code == CORROBORATED})
    preds = []
    for party in study.parties:
        for p in party.predictions:
            nums, comp = _measure(p, results, labels, study, notes)
            preds.append(_record(p, nums, comp, party.name))
    codes, adj_hold, adj_fail = decide.decide_family(np.array([p["p_hold"] for p in preds]),
                                                     np.array([p["p_fail"] for p in preds]), a.alpha, a.correction)
    for p, code, h, f in zip(preds, codes, adj_hold, adj_fail, strict=True):
        p.update(p_hold_adj=float(h), p_fail_adj=float(f), verdict=verdict_name(code), code=int(code))
    return {**decide_parties(study, controls, preds), "notes": notes, "examples": examples(study, results, labels)}


def examples(study: Study, results: Results, labels: dict[str, str], limit: int = N_EXAMPLES) -> list[dict[str, Any]]:
    """Items on which the first and last model of a comparison disagree: transcripts for the report."""
    out, seen = [], set()
    for party in study.parties:
        for p in party.predictions:
            if len(p.models) < 2 or p.task in seen:
                continue
            seen.add(p.task)
            first, last = labels[p.models[0]], labels[p.models[-1]]
            rows = {m: {r["item_id"]: r for r in results.select(p.task, labels[m])} for m in p.models}
            for item_id, r0 in rows[p.models[0]].items():
                r1 = rows[p.models[-1]].get(item_id)
                if r1 is None or r0["score"] == r1["score"]:
                    continue
                out.append({"task": p.task, "item_id": item_id, "prompt": r0["prompt"], "answer": r0["answer"],
                            "outputs": {m: _output(rows[m].get(item_id)) for m in p.models},
                            "pair": [first, last]})
                if sum(e["task"] == p.task for e in out) >= limit:
                    break
    return out


def _output(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the model answered: its chosen choice (multiple choice) or its completion, with the score."""
    if row is None:
        return None
    chosen = row["completion"] if row["completion"] is not None else \
        row["choices"][row["pred"]] if row["pred"] is not None and row["choices"] else None
    return {"output": chosen, "score": row["score"]}
