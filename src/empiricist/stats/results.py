"""Small frozen result records: every stats function returns one of these instead of a bare tuple.

Each record carries the method and the sample sizes (items *and* clusters) so a number in a report
can always be traced back to how it was computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean score with a (1 - alpha) confidence interval."""

    mean: float
    se: float
    lo: float
    hi: float
    n: int
    n_clusters: int
    method: str
    alpha: float = 0.05

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class Comparison:
    """Mean paired difference ``a - b`` over the same items, with CI and two-sided p-value for diff = 0."""

    diff: float
    se: float
    lo: float
    hi: float
    p_value: float
    n: int
    n_clusters: int
    method: str
    mean_a: float
    mean_b: float
    alpha: float = 0.05

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired binary scores.

    ``b01``: items that ``a`` got wrong and ``b`` right; ``b10``: ``a`` right and ``b`` wrong. Only these
    discordant items carry information about the difference ``diff = (b10 - b01) / n``.
    """

    b01: int
    b10: int
    n: int
    diff: float
    p_value: float
    method: str = "mcnemar_exact"


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests (TOST): ``equivalent`` means the effect lies inside ``margin`` at level alpha.

    ``ci`` is the (1 - 2*alpha) interval: equivalence at level alpha <=> this interval lies inside margin.
    """

    p_value: float
    equivalent: bool
    estimate: float
    ci: tuple[float, float]
    margin: tuple[float, float]
    alpha: float
    n: int
    n_clusters: int
    method: str


@dataclass(frozen=True, eq=False)
class ScalingFit:
    """Least-squares line of per-model mean score against (log10) scale, with item-bootstrap uncertainty.

    ``band_*`` is a pointwise (1 - alpha) band for the fitted line evaluated at ``band_x`` (original units).
    """

    slope: float
    intercept: float
    slope_se: float
    slope_ci: tuple[float, float]
    x: np.ndarray
    means: np.ndarray
    band_x: np.ndarray
    band_fit: np.ndarray
    band_lo: np.ndarray
    band_hi: np.ndarray
    log_x: bool
    n_items: int
    n_clusters: int
    method: str
    alpha: float = 0.05


@dataclass(frozen=True, eq=False)
class TrendTest:
    """Evidence that mean score rises with scale (models given in increasing-scale order).

    ``p_monotone``: intersection-union test p-value for "every successive step is an increase"
    (max of the one-sided step p-values). ``page_p``: Page's L test for an increasing trend across the
    ordered models, blocked by item (or by cluster). ``prob_all_increasing``: share of item-bootstrap
    resamples in which every successive difference is > 0 (descriptive, not a p-value).
    """

    step_diffs: np.ndarray
    step_p: np.ndarray
    p_monotone: float
    page_l: float
    page_p: float
    prob_all_increasing: float
    n_items: int
    n_clusters: int
    method: str


@dataclass(frozen=True)
class PowerEstimate:
    """Monte Carlo power: share of simulated studies whose test rejected, with a Wilson interval."""

    power: float
    se: float
    lo: float
    hi: float
    n_sims: int
