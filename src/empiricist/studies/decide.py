"""The decision rule: every metric is a per-item linear contrast of model scores, tested one-sided.

Why contrasts: accuracy (e_m), a paired difference (e_a - e_b), the OLS slope of mean score on
log10(parameters) (centred log-params / Sxx) and each step of a monotonic trend (e_k+1 - e_k) are all
means over items of ``scores @ w``. So one engine (mean, cluster-robust SE with t_{G-1}, as in
``empiricist.stats``) decides every prediction, and it is vectorised over simulated datasets: ``study
check`` simulates exactly the rule that ``study run`` applies.

For a prediction "theta > c": corroborated iff H0 theta <= c is rejected at alpha (the (1-2 alpha) CI
lies above c), falsified iff H0 theta >= c is rejected (the CI lies below c), inconclusive when the CI
straddles c (an SE floor keeps unanimous items from faking certainty, see ``moments``).
``between``/``equivalent`` use two one-sided tests (TOST) for corroboration and the union
of the two outside tests (Bonferroni x2) for falsification; ``monotonic`` needs every step (intersection-
union test) to corroborate and any one step (Bonferroni over steps) to falsify. p-values for
corroboration and for falsification are adjusted (Holm/BH/Bonferroni) across all parties' predictions;
controls are not part of that family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from empiricist.errors import InputError
from empiricist.stats.clustered import clustered_se
from empiricist.studies.logic import CORROBORATED, FALSIFIED, INCONCLUSIVE
from empiricist.studies.spec import Prediction


@dataclass(frozen=True)
class Compiled:
    """A prediction made concrete: weights (M, K) over its models' scores and numeric bounds."""

    pred: Prediction
    weights: np.ndarray
    low: float | None  # the prediction holds above this ...
    high: float | None  # ... and/or below this

    @property
    def k(self) -> int:
        return self.weights.shape[1]

    @property
    def width(self) -> np.ndarray:
        """Range of each per-item contrast (scores lie in [0, 1]), for the SE floor in ``moments``."""
        return np.abs(self.weights).sum(axis=0)


def compile_prediction(pred: Prediction, params: dict[str, float] | None = None,
                       chance: float | None = None) -> Compiled:
    """Contrast weights and bounds; ``params`` (model -> parameter count) for slopes, ``chance`` for
    the "chance" threshold."""
    m = len(pred.models)
    if pred.metric == "accuracy":
        w = np.ones((1, 1))
    elif pred.metric == "difference":
        w = np.array([[1.0], [-1.0]])
    elif pred.metric == "slope":
        if params is None or any(params.get(x) is None for x in pred.models):
            raise InputError("slope needs every model's parameter count", field=pred.where)
        t = np.log10(np.array([params[x] for x in pred.models], dtype=float))
        tc = t - t.mean()
        if not np.any(tc):
            raise InputError("slope needs models of different sizes", field=pred.where)
        w = (tc / np.sum(tc**2))[:, None]
    else:  # monotonic: one column per successive step
        w = np.zeros((m, m - 1))
        for k in range(m - 1):
            w[k, k], w[k + 1, k] = -1.0, 1.0
        if pred.direction == "decreasing":
            w = -w
    thr = pred.threshold
    if thr == "chance":
        if chance is None:
            raise InputError(f"the chance level of task {pred.task!r} is unknown (no multiple-choice items)",
                             field=pred.where)
        thr = chance
    if pred.comparator == ">":
        low, high = float(thr), None
    elif pred.comparator == "<":
        low, high = None, float(thr)
    elif pred.comparator == "between":
        low, high = (float(v) for v in thr)
    else:
        low, high = float(thr) - float(pred.margin), float(thr) + float(pred.margin)
    return Compiled(pred, w, low, high)


def moments(values: np.ndarray, codes: np.ndarray | None, n_clusters: int, width: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, se, dof) along the last axis: clustered (CR1, G-1 dof) when ``codes`` is given, else CLT.

    With ``width`` (the contrast's range), the SE is floored at (width / 2) / sqrt(n (n + 1)): what one
    item of n + 1 half the range away would give. Items that all agree are not certainty: two models
    that agree on all of 20 items must not be "proven" equivalent within 0.02.
    """
    n = values.shape[-1]
    mean = values.mean(axis=-1)
    if codes is None:
        se, dof = values.std(axis=-1, ddof=1) / np.sqrt(n), float(n - 1)
    else:
        se, dof = clustered_se(values, codes, n_clusters), float(n_clusters - 1)
    if width is not None:
        se = np.maximum(se, np.asarray(width) / 2 / np.sqrt(n * (n + 1)))
    return mean, se, dof


def _p_above(est: np.ndarray, se: np.ndarray, dof: float, c: float) -> np.ndarray:
    """One-sided p for H0 theta <= c (small when the data say theta > c); a zero SE gives 0 or 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sps.t.sf((est - c) / se, dof)
    return np.where(se > 0, p, np.where(est > c, 0.0, 1.0))


def _p_below(est: np.ndarray, se: np.ndarray, dof: float, c: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sps.t.cdf((est - c) / se, dof)
    return np.where(se > 0, p, np.where(est < c, 0.0, 1.0))


def p_values(comp: Compiled, est: np.ndarray, se: np.ndarray, dof: float) -> tuple[np.ndarray, np.ndarray]:
    """(p_hold, p_fail), each (...,): evidence that the prediction holds / fails, over its K contrasts."""
    k = comp.k
    if comp.high is None:  # theta > low
        return _p_above(est, se, dof, comp.low).max(-1), np.minimum(1.0, k * _p_below(est, se, dof, comp.low).min(-1))
    if comp.low is None:  # theta < high
        return _p_below(est, se, dof, comp.high).max(-1), np.minimum(1.0, k * _p_above(est, se, dof, comp.high).min(-1))
    hold = np.maximum(_p_above(est, se, dof, comp.low), _p_below(est, se, dof, comp.high)).max(-1)
    outside = np.minimum(_p_below(est, se, dof, comp.low), _p_above(est, se, dof, comp.high)).min(-1)
    return hold, np.minimum(1.0, 2 * k * outside)


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values along the last axis (vectorised ``stats.adjust_pvalues``; "none" returns p)."""
    p = np.asarray(p, dtype=float)
    m = p.shape[-1]
    if method == "none" or m <= 1:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    if method == "holm":
        adj = np.minimum(1.0, np.maximum.accumulate(ps * np.arange(m, 0, -1), axis=-1))
    elif method == "bh":
        adj = np.minimum(1.0, np.flip(np.minimum.accumulate(np.flip(ps * m / np.arange(1, m + 1), -1), -1), -1))
    else:
        raise ValueError(f"unknown correction {method!r}")
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


def verdict_codes(p_hold: np.ndarray, p_fail: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(p_hold < alpha, CORROBORATED, np.where(p_fail < alpha, FALSIFIED, INCONCLUSIVE))


def decide_family(p_hold: np.ndarray, p_fail: np.ndarray, alpha: float, correction: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verdicts for a family of predictions (last axis), with the adjusted p-values."""
    adj_hold, adj_fail = adjust(p_hold, correction), adjust(p_fail, correction)
    return verdict_codes(adj_hold, adj_fail, alpha), adj_hold, adj_fail


def contrast_values(scores: np.ndarray, comp: Compiled) -> np.ndarray:
    """Per-item contrast values: scores (..., n, M) -> (..., K, n)."""
    return np.swapaxes(scores @ comp.weights, -1, -2)


def analyse(comp: Compiled, scores: np.ndarray, codes: np.ndarray | None, n_clusters: int,
            alpha: float) -> dict[str, Any]:
    """The numbers behind one prediction on real data (scores: (n, M) in the prediction's model order)."""
    values = contrast_values(scores, comp)
    est, se, dof = moments(values, codes, n_clusters, comp.width)
    p_hold, p_fail = p_values(comp, est, se, dof)
    half = sps.t.ppf(1 - alpha, dof) * se  # the (1 - 2 alpha) interval: the one the decision reads
    steps = [{"estimate": float(e), "se": float(s), "lo": float(e - h), "hi": float(e + h)}
             for e, s, h in zip(est, se, half, strict=True)]
    worst = int(np.argmin(est)) if comp.high is None else int(np.argmax(est)) if comp.low is None else \
        int(np.argmax(np.abs(est - (comp.low + comp.high) / 2)))
    out = {"estimate": steps[worst]["estimate"], "se": steps[worst]["se"], "lo": steps[worst]["lo"],
           "hi": steps[worst]["hi"], "ci_level": 1 - 2 * alpha, "dof": dof, "n": int(scores.shape[0]),
           "n_clusters": int(n_clusters if codes is not None else scores.shape[0]),
           "method": "clustered" if codes is not None else "clt", "p_hold": float(p_hold), "p_fail": float(p_fail),
           "low": comp.low, "high": comp.high}
    if comp.k > 1:
        out["steps"] = steps
    return out


def describe_test(comp: Compiled) -> str:
    """The hypotheses tested, in words, for the report."""
    name = {"accuracy": "mean score", "difference": "mean paired difference", "slope": "slope per decade of "
            "parameters", "monotonic": "every step"}[comp.pred.metric]
    if comp.high is None:
        return f"{name} > {comp.low:.4g} (one-sided t; falsified if < {comp.low:.4g})"
    if comp.low is None:
        return f"{name} < {comp.high:.4g} (one-sided t; falsified if > {comp.high:.4g})"
    return f"{name} within ({comp.low:.4g}, {comp.high:.4g}) (TOST; falsified if outside)"
