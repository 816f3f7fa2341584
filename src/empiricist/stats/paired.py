"""Comparing two models on the SAME items.

Pairing matters: item difficulty is shared, so the variance of the per-item difference is usually far
smaller than the sum of the two variances (Miller 2024, "Adding Error Bars to Evals"). Always test the
mean of a - b.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.contingency_tables import mcnemar

from empiricist.stats._validate import as_binary, as_paired
from empiricist.stats.means import check_common, mean_interval
from empiricist.stats.results import Comparison, McNemarResult

PAIRED_METHODS = ("clt", "clustered", "bootstrap", "cluster_bootstrap")


def paired_difference(
    a: ArrayLike,
    b: ArrayLike,
    clusters: ArrayLike | None = None,
    alpha: float = 0.05,
    method: str = "clt",
    n_boot: int = 2000,
    seed: int | None = 0,
    ci_method: str = "percentile",
) -> Comparison:
    """Mean of a - b over paired items, with (1 - alpha) CI and two-sided p-value for no difference.

    "clt" is the paired t-test (same as ``scipy.stats.ttest_rel``); "clustered" uses the cluster-robust
    SE with t_{G-1}; the bootstrap methods resample items / whole clusters for both models at once and
    get p from the recentred bootstrap distribution.
    """
    alpha = check_common(alpha, method, PAIRED_METHODS, n_boot, ci_method)
    xa, xb = as_paired(a, b)
    res = mean_interval(xa - xb, clusters, method, alpha, n_boot, seed, ci_method)
    return Comparison(
        diff=res.mean,
        se=res.se,
        lo=res.lo,
        hi=res.hi,
        p_value=res.p_value,
        n=xa.size,
        n_clusters=res.n_clusters,
        method=method,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        alpha=alpha,
    )


def mcnemar_exact(a: ArrayLike, b: ArrayLike) -> McNemarResult:
    """Exact McNemar test for paired 0/1 scores (statsmodels; binomial test on the discordant items).

    Exact (conditional) McNemar is conservative but valid for any number of discordant pairs. It assumes
    independent items: for clustered items use ``paired_difference(method="clustered")`` instead.
    """
    xa, xb = as_paired(as_binary(a, "a"), as_binary(b, "b"), min_n=1)
    b10 = int(np.sum((xa == 1) & (xb == 0)))
    b01 = int(np.sum((xa == 0) & (xb == 1)))
    both = int(np.sum((xa == 1) & (xb == 1)))
    table = [[both, b10], [b01, xa.size - both - b10 - b01]]
    p = 1.0 if b01 + b10 == 0 else float(mcnemar(table, exact=True).pvalue)
    return McNemarResult(b01=b01, b10=b10, n=xa.size, diff=(b10 - b01) / xa.size, p_value=p)
