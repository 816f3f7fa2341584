"""Item / cluster bootstrap of any statistic of per-model mean scores, on top of ``scipy.stats.bootstrap``.

Why a wrapper: eval items are paired across models (all models answer the same items) and may be
clustered. The right resampling unit is the cluster (Field & Welsh 2007; Cameron, Gelbach & Miller 2008),
and every model must see the SAME resampled clusters. We reduce items to per-cluster score totals per
model plus cluster sizes and hand those columns to ``scipy.stats.bootstrap(paired=True)``, which then
resamples whole clusters jointly; a resampled model mean is sum(totals) / sum(sizes) (the item-level
mean of the resampled data). Singleton clusters make this the ordinary item bootstrap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from empiricist.stats.clustered import cluster_totals

CI_METHODS = ("percentile", "bca")
_MAX_CELLS = 4_000_000


@dataclass(frozen=True, eq=False)
class BootResult:
    """Point estimate, bootstrap SE, CI bounds and the bootstrap distribution, one entry per statistic."""

    estimate: np.ndarray
    se: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    distribution: np.ndarray  # shape (n_stats, n_boot)


def cluster_bootstrap(
    rows: np.ndarray,
    codes: np.ndarray,
    n_clusters: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int | None = 0,
    ci_method: str = "percentile",
) -> BootResult:
    """Bootstrap ``statistic(means)`` where ``means`` has shape (k, ...) = per-row (model) mean scores.

    ``rows``: (k, n) item scores, one row per model on the same n items; ``codes``: cluster code per item.
    ``statistic`` maps means of shape (k, *batch) to shape (p, *batch); it must be vectorised.
    ``ci_method``: "percentile" or "bca" (BCa uses the delete-one-cluster jackknife, via scipy).
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    totals = cluster_totals(rows, codes, n_clusters)  # (k, G)
    sizes = np.bincount(codes, minlength=n_clusters).astype(float)
    # scipy materialises batch x G resampled values per column (and G x (G-1) for the BCa jackknife):
    # cap the batch so memory stays ~ _MAX_CELLS floats however many items there are.
    batch = max(1, _MAX_CELLS // (n_clusters * (rows.shape[0] + 1)))

    def _stat(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
        size = cols[-1].sum(axis=axis)
        means = np.stack([c.sum(axis=axis) / size for c in cols[:-1]])
        return np.asarray(statistic(means))

    with warnings.catch_warnings():
        # Constant data (e.g. a model right on every item) makes BCa undefined; handled below.
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.bootstrap(
            (*totals, sizes),
            _stat,
            n_resamples=n_boot,
            batch=batch,
            paired=True,
            vectorized=True,
            confidence_level=1 - alpha,
            method="BCa" if ci_method == "bca" else "percentile",
            rng=np.random.default_rng(seed),
        )
    estimate = np.atleast_1d(_stat(*totals, sizes))
    dist = np.atleast_2d(res.bootstrap_distribution)
    lo = np.atleast_1d(np.asarray(res.confidence_interval.low, dtype=float))
    hi = np.atleast_1d(np.asarray(res.confidence_interval.high, dtype=float))
    flat = np.ptp(dist, axis=-1) == 0
    lo = np.where(flat, estimate, lo)
    hi = np.where(flat, estimate, hi)
    return BootResult(estimate, np.atleast_1d(res.standard_error), lo, hi, dist)


def bootstrap_pvalue(distribution: np.ndarray, estimate: float, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value for estimate == null by recentring the bootstrap distribution at null.

    p = share of |theta* - theta_hat| >= |theta_hat - null| (Hall & Wilson 1991, guideline 1: resample
    the pivot's null distribution). Add-one smoothing so p is never exactly 0 with finite resamples.
    """
    dev = np.abs(np.asarray(distribution) - estimate)
    return float((1 + np.sum(dev >= abs(estimate - null))) / (1 + dev.size))
