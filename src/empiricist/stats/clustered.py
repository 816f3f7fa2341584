"""Analytic standard errors of a mean: plain CLT and cluster-robust.

Eval items generated from the same template/document are correlated, so the i.i.d. SE understates
uncertainty by sqrt(design effect) = sqrt(1 + (m - 1) * ICC). The cluster-robust (sandwich) SE fixes this.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def cluster_totals(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster sums along the last axis: (..., n) -> (..., G). Works for a batch of score vectors."""
    values = np.asarray(values, dtype=float)
    lead = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])
    # One bincount over offset codes sums every row at once (no Python loop over rows or clusters).
    offsets = (np.arange(flat.shape[0]) * n_clusters)[:, None]
    out = np.bincount(
        (codes[None, :] + offsets).ravel(), weights=flat.ravel(), minlength=flat.shape[0] * n_clusters
    )
    return out.reshape(*lead, n_clusters)


def clustered_se(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cluster-robust SE of the mean along the last axis (vectorised over leading axes).

    Hand-written rather than statsmodels ``OLS(y, 1).fit(cov_type="cluster")`` because it is a one-line
    sandwich for an intercept-only model and we need it for thousands of simulated datasets at once.
    Formula (Liang-Zeger sandwich for a mean as in Miller 2024, "Adding Error Bars to Evals", with the
    CR1 small-sample factor G/(G-1) used by Stata and by statsmodels' default):
        Var(mean) = G/(G-1) * sum_g (sum_{i in g} (y_i - mean))^2 / n^2
    With singleton clusters this equals the CLT variance s^2 / n exactly.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    resid = values - values.mean(axis=-1, keepdims=True)
    totals = cluster_totals(resid, codes, n_clusters)
    var = n_clusters / (n_clusters - 1) * np.sum(totals**2, axis=-1) / n**2
    return np.sqrt(var)


def mean_se_dof(values: np.ndarray, codes: np.ndarray | None, n_clusters: int) -> tuple[float, float, float]:
    """(mean, se, t degrees of freedom): CLT with n-1 dof if ``codes`` is None, else clustered with G-1 dof.

    G-1 dof for the clustered t follows Cameron & Miller (2015, "A Practitioner's Guide to
    Cluster-Robust Inference"): with few clusters the normal quantile under-covers.
    """
    mean = float(np.mean(values))
    if codes is None:
        n = values.size
        return mean, float(np.std(values, ddof=1) / np.sqrt(n)), float(n - 1)
    return mean, float(clustered_se(values, codes, n_clusters)), float(n_clusters - 1)


def t_interval(mean: float, se: float, dof: float, alpha: float) -> tuple[float, float]:
    """Symmetric mean +/- t_{1-alpha/2, dof} * se."""
    half = float(sps.t.ppf(1 - alpha / 2, dof)) * se
    return mean - half, mean + half


def t_pvalue(estimate: float, se: float, dof: float, null: float = 0.0) -> float:
    """Two-sided t-test p-value for estimate == null; a zero SE gives p = 1 (no difference) or 0."""
    if se == 0.0:
        return 1.0 if estimate == null else 0.0
    return float(2 * sps.t.sf(abs((estimate - null) / se), dof))
