"""Equivalence testing (TOST): positive evidence that an effect is negligible, not just 'not significant'.

Schuirmann (1987): declare equivalence at level alpha iff both one-sided tests H0: effect <= low and
H0: effect >= high reject at alpha, i.e. iff the (1 - 2*alpha) CI lies inside (low, high).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

from empiricist.stats._validate import StatsInputError, as_clusters, as_paired, as_scores, check_alpha
from empiricist.stats.clustered import mean_se_dof, t_interval
from empiricist.stats.results import Equivalence


def _margin(margin: float | tuple[float, float]) -> tuple[float, float]:
    """A symmetric margin m means (-m, m); a pair is (low, high) with low < high."""
    low, high = (-float(margin), float(margin)) if np.isscalar(margin) else map(float, margin)  # type: ignore[arg-type]
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise StatsInputError(
            f"equivalence margin must satisfy low < high, got ({low}, {high})", field="margin"
        )
    return low, high


def _tost(
    values: np.ndarray,
    low: float,
    high: float,
    alpha: float,
    clusters: ArrayLike | None,
    iid_pvalue: Callable[[], float],
) -> Equivalence:
    """TOST on the mean of ``values``; ``iid_pvalue()`` is the statsmodels TOST p-value for the i.i.d. case."""
    alpha = check_alpha(alpha)
    codes, g = as_clusters(clusters, values.size, min_clusters=2)
    mean, se, dof = mean_se_dof(values, None if clusters is None else codes, g)
    if se == 0.0:
        p = 0.0 if low < mean < high else 1.0
    elif clusters is None:
        p = float(iid_pvalue())
    else:
        # statsmodels has no cluster-robust TOST; same two one-sided t-tests with the clustered SE, t_{G-1}.
        p = float(max(sps.t.sf((mean - low) / se, dof), sps.t.cdf((mean - high) / se, dof)))
    ci = t_interval(mean, se, dof, 2 * alpha)
    return Equivalence(
        p_value=p,
        equivalent=bool(p < alpha),
        estimate=mean,
        ci=ci,
        margin=(low, high),
        alpha=alpha,
        n=values.size,
        n_clusters=g,
        method="tost" if clusters is None else "tost_clustered",
    )


def tost_paired(
    a: ArrayLike,
    b: ArrayLike,
    margin: float | tuple[float, float],
    alpha: float = 0.05,
    clusters: ArrayLike | None = None,
) -> Equivalence:
    """Is mean(a - b) within ``margin`` (e.g. 0.02 accuracy)? statsmodels ``ttost_paired`` for i.i.d. items."""
    xa, xb = as_paired(a, b)
    low, high = _margin(margin)
    return _tost(xa - xb, low, high, alpha, clusters, lambda: ttost_paired(xa, xb, low, high)[0])


def tost_mean(
    x: ArrayLike,
    low: float,
    high: float,
    alpha: float = 0.05,
    clusters: ArrayLike | None = None,
) -> Equivalence:
    """Is mean(x) within (low, high)? statsmodels ``DescrStatsW.ttost_mean`` for i.i.d. items."""
    values = as_scores(x, "x", min_n=2)
    lo, hi = _margin((low, high))
    return _tost(values, lo, hi, alpha, clusters, lambda: DescrStatsW(values).ttost_mean(lo, hi)[0])
