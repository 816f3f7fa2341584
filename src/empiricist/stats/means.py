"""Confidence intervals for a mean eval score, i.i.d. or clustered."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.proportion import proportion_confint

from empiricist.stats._validate import (
    StatsInputError,
    as_binary,
    as_clusters,
    as_scores,
    check_alpha,
    check_choice,
    check_positive_int,
)
from empiricist.stats.bootstrap import CI_METHODS, bootstrap_pvalue, cluster_bootstrap
from empiricist.stats.clustered import mean_se_dof, t_interval, t_pvalue
from empiricist.stats.results import Estimate

MEAN_METHODS = ("clt", "clustered", "wilson", "bootstrap", "cluster_bootstrap")
_NEEDS_CLUSTERS = ("clustered", "cluster_bootstrap")


@dataclass(frozen=True)
class _Interval:
    mean: float
    se: float
    lo: float
    hi: float
    p_value: float  # two-sided, for mean == 0 (what a paired difference needs)
    n_clusters: int


def mean_interval(
    values: np.ndarray,
    clusters: ArrayLike | None,
    method: str,
    alpha: float,
    n_boot: int,
    seed: int | None,
    ci_method: str,
) -> _Interval:
    """Shared engine for ``mean_ci`` and ``paired_difference`` (the latter runs it on a - b)."""
    if method in _NEEDS_CLUSTERS and clusters is None:
        raise StatsInputError(f"method={method!r} needs cluster ids (clusters=...)", field="clusters")
    if method not in _NEEDS_CLUSTERS and clusters is not None:
        warnings.warn(
            f"clusters given but method={method!r} ignores them; use 'clustered' or 'cluster_bootstrap' "
            "for clustered items (an i.i.d. interval is too narrow when items are correlated)",
            stacklevel=3,
        )
    codes, g = as_clusters(
        clusters if method in _NEEDS_CLUSTERS else None,
        values.size,
        min_clusters=2 if method in _NEEDS_CLUSTERS else 1,
    )
    if method in ("clt", "clustered"):
        mean, se, dof = mean_se_dof(values, codes if method == "clustered" else None, g)
        lo, hi = t_interval(mean, se, dof, alpha)
        return _Interval(mean, se, lo, hi, t_pvalue(mean, se, dof), g)
    if method == "wilson":
        k, n = int(values.sum()), values.size
        lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
        mean = k / n
        return _Interval(mean, float(np.sqrt(mean * (1 - mean) / n)), float(lo), float(hi), float("nan"), g)
    boot = cluster_bootstrap(
        values[None, :], codes, g, lambda m: m, alpha=alpha, n_boot=n_boot, seed=seed, ci_method=ci_method
    )
    mean = float(boot.estimate[0])
    return _Interval(
        mean,
        float(boot.se[0]),
        float(boot.lo[0]),
        float(boot.hi[0]),
        bootstrap_pvalue(boot.distribution[0], mean),
        g,
    )


def check_common(alpha: float, method: str, methods: tuple[str, ...], n_boot: int, ci_method: str) -> float:
    """Validate the options shared by the mean and paired-difference entry points."""
    check_choice(method, "method", methods)
    check_choice(ci_method, "ci_method", CI_METHODS)
    check_positive_int(n_boot, "n_boot", minimum=100)
    return check_alpha(alpha)


def mean_ci(
    scores: ArrayLike,
    clusters: ArrayLike | None = None,
    alpha: float = 0.05,
    method: str = "clt",
    n_boot: int = 2000,
    seed: int | None = 0,
    ci_method: str = "percentile",
) -> Estimate:
    """Mean score with a (1 - alpha) CI.

    Methods:
      - "clt": mean +/- t_{n-1} * s/sqrt(n). Right for independent items.
      - "clustered": cluster-robust SE (CR1, factor G/(G-1)) with t_{G-1}; use when items share a
        template/document (Miller 2024; Inspect AI's clustered stderr).
      - "wilson": Wilson score interval for 0/1 scores (statsmodels); good near 0 or 1 accuracy where
        the CLT interval collapses or spills past [0, 1].
      - "bootstrap" / "cluster_bootstrap": resample items / whole clusters (scipy.stats.bootstrap);
        ``ci_method`` "percentile" or "bca".
    """
    alpha = check_common(alpha, method, MEAN_METHODS, n_boot, ci_method)
    min_n = 1 if method == "wilson" else 2
    values = (
        as_binary(scores, "scores", min_n=min_n)
        if method == "wilson"
        else as_scores(scores, "scores", min_n=min_n)
    )
    res = mean_interval(values, clusters, method, alpha, n_boot, seed, ci_method)
    return Estimate(res.mean, res.se, res.lo, res.hi, values.size, res.n_clusters, method, alpha)


def t_band(values: ArrayLike, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``values`` (rows: replicates, e.g. seeds): the mean and its t-interval; one row gives
    a zero-width band. What the experiments' figures draw around a curve over seeds."""
    from scipy import stats as sps

    x = np.asarray(values, dtype=float)
    m = x.mean(0)
    if x.shape[0] < 2:
        return m, m, m
    half = sps.t.ppf(0.5 + level / 2, x.shape[0] - 1) * x.std(0, ddof=1) / np.sqrt(x.shape[0])
    return m, m - half, m + half
