"""Scaling trends: how mean eval score moves with model/data scale, with honest item-level uncertainty.

The uncertainty in a scaling curve fitted to a handful of models comes mostly from the finite item set,
and it is shared: every model answers the same items. So we do not use the regression's own SE (which
treats the M model means as independent noisy points); we bootstrap ITEMS (or whole clusters of items),
applying the same resample to every model, and refit the line on each resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from empiricist.stats._validate import (
    StatsInputError,
    as_clusters,
    as_scores,
    check_alpha,
    check_choice,
    check_positive_int,
)
from empiricist.stats.bootstrap import CI_METHODS, cluster_bootstrap
from empiricist.stats.clustered import cluster_totals, mean_se_dof
from empiricist.stats.results import ScalingFit, TrendTest


def _models(
    x: ArrayLike, y_per_model: Sequence[ArrayLike], log_x: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (x, regressor t, scores (M, n)), models sorted by increasing x."""
    xs = as_scores(x, "x", min_n=2)
    if len(y_per_model) != xs.size:
        raise StatsInputError(
            f"got {xs.size} x values but {len(y_per_model)} score arrays (one per model)", field="y_per_model"
        )
    rows = [as_scores(y, f"y_per_model[{i}]") for i, y in enumerate(y_per_model)]
    if len({r.size for r in rows}) != 1:
        raise StatsInputError(
            "every model must be scored on the same items: score arrays differ in length "
            f"({[r.size for r in rows]})",
            field="y_per_model",
        )
    if log_x and (xs <= 0).any():
        raise StatsInputError("x must be positive when log_x=True", field="x")
    if np.unique(xs).size != xs.size:
        raise StatsInputError("x values must be distinct (one model per scale)", field="x")
    order = np.argsort(xs)
    xs, scores = xs[order], np.stack(rows)[order]
    return xs, (np.log10(xs) if log_x else xs), scores


def _line(t: np.ndarray, grid_t: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised OLS of means (M, *batch) on t: returns [slope, intercept, fit at grid_t...] (2+K, *batch)."""
    tc = t - t.mean()
    sxx = float(np.sum(tc**2))

    def stat(means: np.ndarray) -> np.ndarray:
        slope = np.tensordot(tc, means, axes=(0, 0)) / sxx
        intercept = means.mean(axis=0) - slope * t.mean()
        band = intercept[None, ...] + grid_t.reshape((-1,) + (1,) * slope.ndim) * slope[None, ...]
        return np.concatenate([slope[None, ...], intercept[None, ...], band])

    return stat


def scaling_fit(
    x: ArrayLike,
    y_per_model: Sequence[ArrayLike],
    clusters: ArrayLike | None = None,
    log_x: bool = True,
    n_boot: int = 1000,
    seed: int | None = 0,
    grid: ArrayLike | None = None,
    alpha: float = 0.05,
    ci_method: str = "percentile",
) -> ScalingFit:
    """Fit mean score = intercept + slope * log10(x) across models, with an item/cluster bootstrap.

    ``x``: scale per model (parameters, tokens, FLOPs); ``y_per_model``: per-item scores of each model on
    the same items (same order). ``slope`` is per decade of x when ``log_x``. ``grid`` (original units)
    is where the pointwise band is evaluated; default 50 points spanning x.
    """
    alpha = check_alpha(alpha)
    check_choice(ci_method, "ci_method", CI_METHODS)
    n_boot = check_positive_int(n_boot, "n_boot", minimum=100)
    xs, t, scores = _models(x, y_per_model, log_x)
    codes, g = as_clusters(clusters, scores.shape[1], min_clusters=2)
    if grid is None:
        band_x = np.geomspace(xs[0], xs[-1], 50) if log_x else np.linspace(xs[0], xs[-1], 50)
    else:
        band_x = as_scores(grid, "grid")
        if log_x and (band_x <= 0).any():
            raise StatsInputError("grid must be positive when log_x=True", field="grid")
    grid_t = np.log10(band_x) if log_x else band_x
    fit = sps.linregress(t, scores.mean(axis=1))  # the point estimate, from the standard routine
    boot = cluster_bootstrap(
        scores, codes, g, _line(t, grid_t), alpha=alpha, n_boot=n_boot, seed=seed, ci_method=ci_method
    )
    return ScalingFit(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        slope_se=float(boot.se[0]),
        slope_ci=(float(boot.lo[0]), float(boot.hi[0])),
        x=xs,
        means=scores.mean(axis=1),
        band_x=band_x,
        band_fit=boot.estimate[2:],
        band_lo=boot.lo[2:],
        band_hi=boot.hi[2:],
        log_x=log_x,
        n_items=scores.shape[1],
        n_clusters=g,
        method="item_bootstrap" if clusters is None else "cluster_bootstrap",
        alpha=alpha,
    )


def monotonic_trend_test(
    x: ArrayLike,
    y_per_model: Sequence[ArrayLike],
    clusters: ArrayLike | None = None,
    n_boot: int = 2000,
    seed: int | None = 0,
) -> TrendTest:
    """Test "score rises monotonically with scale" (models are ordered by ``x``).

    - ``p_monotone``: intersection-union test (Berger 1982): claim every successive step increases iff
      each one-sided paired t-test (clustered SE if ``clusters``) rejects; p = max step p-value. Needs
      no multiplicity correction because ALL steps must reject.
    - ``page_p``: Page's L trend test (scipy; the paired-data analogue of Jonckheere-Terpstra), blocked
      by item, or by cluster means when clustered so blocks are independent. Needs >= 3 models;
      conservative with the many ties of 0/1 scores. Detects an overall trend, not monotonicity.
    - ``prob_all_increasing``: bootstrap share of resamples with all steps > 0 (descriptive).
    """
    n_boot = check_positive_int(n_boot, "n_boot", minimum=100)
    _, _, scores = _models(x, y_per_model, log_x=False)
    codes, g = as_clusters(clusters, scores.shape[1], min_clusters=2)
    steps = np.diff(scores, axis=0)  # (M-1, n) per-item paired differences
    step_p = []
    for d in steps:
        mean, se, dof = mean_se_dof(d, None if clusters is None else codes, g)
        step_p.append(float(mean <= 0) if se == 0 else float(sps.t.sf(mean / se, dof)))
    if scores.shape[0] >= 3:
        blocks = (
            scores.T
            if clusters is None
            else (cluster_totals(scores, codes, g) / np.bincount(codes, minlength=g)).T
        )
        page = sps.page_trend_test(blocks, method="asymptotic")
        page_l, page_p = float(page.statistic), float(page.pvalue)
    else:
        page_l = page_p = float("nan")
    boot = cluster_bootstrap(scores, codes, g, lambda m: np.diff(m, axis=0), n_boot=n_boot, seed=seed)
    return TrendTest(
        step_diffs=steps.mean(axis=1),
        step_p=np.array(step_p),
        p_monotone=max(step_p),
        page_l=page_l,
        page_p=page_p,
        prob_all_increasing=float(np.mean(np.all(boot.distribution > 0, axis=0))),
        n_items=scores.shape[1],
        n_clusters=g,
        method="iut_clustered" if clusters is not None else "iut",
    )
