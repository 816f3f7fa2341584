"""The numbers behind every eval summary and report, computed from a results table with ``empiricist.stats``.

Statistics, not presentation: the runner's summary uses them and ``empiricist.report`` renders them.

Choices made here, once, for every report:
- a mean's interval is cluster-robust when items carry clusters (items about one entity or from one
  template are correlated, so an i.i.d. interval would be too narrow); otherwise Wilson for 0/1 scores
  (sane near 0 or 1) and the t interval for continuous ones;
- models are compared on the same items with the paired difference (clustered likewise) and, for 0/1
  scores, the exact McNemar test; p-values are Holm-adjusted over all pairs of a task;
- the scaling fit uses each size's last evaluated checkpoint, with an item (cluster) bootstrap band.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.evals.results import Results
from empiricist.stats import (
    StatsInputError,
    adjust_pvalues,
    mcnemar_exact,
    mean_ci,
    paired_difference,
    scaling_fit,
)

MAX_ALL_PAIRS = 12  # more models than this: compare neighbours in run order only


def _clusters(clusters: Sequence[str | None]) -> list[str] | None:
    """Cluster ids when every item has one and they group at least two clusters, else None."""
    if not clusters or any(c is None for c in clusters):
        return None
    return list(clusters) if len(set(clusters)) >= 2 else None


def _binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def estimate(scores: np.ndarray, clusters: Sequence[str | None] = (), alpha: float = 0.05) -> dict[str, Any]:
    """Mean with CI as a plain dict (``None`` bounds when there are too few items for an interval)."""
    scores = np.asarray(scores, dtype=float)
    cl = _clusters(clusters)
    method = "clustered" if cl is not None else "wilson" if _binary(scores) else "clt"
    out: dict[str, Any] = {"n": int(scores.size), "mean": float(scores.mean()) if scores.size else None,
                           "lo": None, "hi": None, "se": None, "method": method,
                           "n_clusters": len(set(cl)) if cl else int(scores.size)}
    if scores.size < 2:
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            est = mean_ci(scores, clusters=cl, alpha=alpha, method=method)
    except StatsInputError:
        return out
    if est.se == 0 and method != "wilson" and _binary(scores):
        # all items alike (all right or all wrong): a zero-width interval would claim certainty
        est = mean_ci(scores, alpha=alpha, method="wilson")
        out["method"] = "wilson (no variation)"
    lo, hi = est.lo, est.hi
    if ((scores >= 0) & (scores <= 1)).all():  # a t interval from few clusters can spill past what is possible
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    out.update(mean=est.mean, lo=lo, hi=hi, se=est.se, n_clusters=est.n_clusters)
    return out


def summary_rows(results: Results, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per task and model: mean score with CI, plus the model's size, step and parameter count."""
    info = results.model_info()
    out = []
    for task, model, rows in results.groups(model_first=False):
        scores = np.array([r["score"] for r in rows], dtype=float)
        est = estimate(scores, [r["cluster"] for r in rows], alpha)
        out.append({"task": task, "model": model, "metric": rows[0]["metric"], **est,
                    "truncated_items": sum(1 for r in rows if r["truncated"]),
                    **{k: info[model][k] for k in ("size", "step", "n_params", "model_hash")}})
    return out


def breakdown(results: Results, task: str, key: str, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per model and value of ``key`` (``split`` or ``contaminated``): mean with CI on that subset."""
    out = []
    for model in results.models():
        rows = results.select(task, model)
        values = [r[key] for r in rows]
        if all(v is None for v in values):
            continue
        for value in sorted({v for v in values if v is not None}, key=str):
            sub = [r for r in rows if r[key] == value]
            est = estimate(np.array([r["score"] for r in sub], dtype=float), [r["cluster"] for r in sub], alpha)
            out.append({"model": model, key: value, **est})
    return out


def comparisons(results: Results, task: str, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Paired differences between models on ``task`` (+ McNemar for 0/1 scores), Holm-adjusted."""
    models = results.models()
    if len(models) < 2:
        return []
    pairs = list(itertools.combinations(models, 2)) if len(models) <= MAX_ALL_PAIRS else \
        list(itertools.pairwise(models))
    data = {m: results.scores(task, m) for m in models}
    out = []
    for a, b in pairs:
        ids_a, xa, cl = data[a]
        ids_b, xb, _ = data[b]
        if ids_a != ids_b or xa.size < 2:
            continue
        clusters = _clusters(cl)
        try:
            cmp = paired_difference(xa, xb, clusters=clusters, alpha=alpha,
                                    method="clustered" if clusters else "clt")
        except StatsInputError:
            continue
        row = {"a": a, "b": b, "diff": cmp.diff, "lo": cmp.lo, "hi": cmp.hi, "p": cmp.p_value, "method": cmp.method,
               "n": cmp.n, "mcnemar_p": None, "b10": None, "b01": None}
        if _binary(xa) and _binary(xb):
            mc = mcnemar_exact(xa, xb)
            row.update(mcnemar_p=mc.p_value, b10=mc.b10, b01=mc.b01)
        out.append(row)
    for key in ("p", "mcnemar_p"):
        idx = [i for i, r in enumerate(out) if r[key] is not None and np.isfinite(r[key])]
        if idx:
            adj, rej = adjust_pvalues([out[i][key] for i in idx], method="holm", alpha=alpha)
            for i, p, r in zip(idx, adj, rej, strict=True):
                out[i][f"{key}_holm"], out[i][f"{key}_reject"] = float(p), bool(r)
    return out


def scaling(results: Results, task: str, alpha: float = 0.05) -> dict[str, Any] | None:
    """``scaling_fit`` of score vs log10(parameters) over sizes (each at its last evaluated step)."""
    info = results.model_info()
    best: dict[int, str] = {}
    for model in results.models():
        n, step = info[model]["n_params"], info[model]["step"]
        if n and (n not in best or (step or 0) >= (info[best[n]]["step"] or 0)):
            best[n] = model
    if len(best) < 2:
        return None
    chosen = [best[n] for n in sorted(best)]
    ys = [results.scores(task, m)[1] for m in chosen]
    if len({y.size for y in ys}) != 1:
        return None
    clusters = _clusters(results.scores(task, chosen[0])[2])
    try:
        fit = scaling_fit(sorted(best), ys, clusters=clusters, alpha=alpha, n_boot=1000, seed=0)
    except StatsInputError:
        return None
    points = [{"model": m, "n_params": n, **estimate(y, clusters or (), alpha)}
              for m, n, y in zip(chosen, sorted(best), ys, strict=True)]
    return {"fit": fit, "points": points}


def checkpoint_curves(results: Results, task: str, alpha: float = 0.05) -> dict[str, list[dict[str, Any]]]:
    """Per size with more than one evaluated step: score (with CI) by training step."""
    info = results.model_info()
    by_size: dict[str, list[str]] = {}
    for model in results.models():
        if info[model]["size"] is not None and info[model]["step"] is not None:
            suite = Path(info[model]["suite"]).name if info[model]["suite"] else ""
            by_size.setdefault(f"{suite}/{info[model]['size']}".lstrip("/"), []).append(model)
    curves = {}
    for size, models in by_size.items():
        if len(models) < 2:
            continue
        pts = []
        for m in sorted(models, key=lambda m: info[m]["step"]):
            _, y, cl = results.scores(task, m)
            pts.append({"model": m, "step": info[m]["step"], **estimate(y, cl, alpha)})
        curves[size] = pts
    return curves
