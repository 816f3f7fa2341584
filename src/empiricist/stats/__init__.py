"""empiricist.stats: honest error bars and tests for eval scores.

Pure functions on arrays of per-item scores (0/1 or continuous), possibly clustered (items sharing a
template/document share a cluster id), for models scored on the SAME items. Numpy in, small frozen
dataclasses out (see ``results``). Built on scipy.stats and statsmodels; every method is checked by
simulation in tests/test_stats*.py (coverage, false-positive rate, power).

Means (``Estimate``)
    mean_ci(scores, clusters=None, alpha=0.05, method="clt"|"clustered"|"wilson"|"bootstrap"|"cluster_bootstrap",
            n_boot=2000, seed=0, ci_method="percentile"|"bca")
Paired comparisons of two models (``Comparison``, ``McNemarResult``)
    paired_difference(a, b, clusters=None, alpha=0.05, method="clt"|"clustered"|"bootstrap"|"cluster_bootstrap", ...)
    mcnemar_exact(a, b)
Multiple comparisons
    adjust_pvalues(pvals, method="holm"|"bh"|"bonferroni"|"by", alpha=0.05) -> (adjusted, reject)
Power and design (floats / ints; ``PowerEstimate``)
    power_paired(effect, sd_diff, n, alpha=0.05, *, p_discordant=None, paired=True, icc=0, cluster_size=1)
    mde(n, sd, alpha=0.05, power=0.8, paired=True, icc=0, cluster_size=1, *, p_discordant=None)
    n_for_power(effect, sd, alpha=0.05, power=0.8, paired=True, icc=0, cluster_size=1, *, p_discordant=None)
    power_two_proportions(p1, p2, n, alpha=0.05, icc=0, cluster_size=1)
    n_for_two_proportions(p1, p2, alpha=0.05, power=0.8, icc=0, cluster_size=1)
    design_effect(cluster_size, icc), sd_diff_binary(p_discordant, effect=0)
    simulate_power(simulate_fn, test_fn, n_sims=1000, seed=0, alpha=0.05)
Scaling (``ScalingFit``, ``TrendTest``)
    scaling_fit(x, y_per_model, clusters=None, log_x=True, n_boot=1000, seed=0, grid=None, alpha=0.05,
                ci_method="percentile")
    monotonic_trend_test(x, y_per_model, clusters=None, n_boot=2000, seed=0)
Equivalence (``Equivalence``)
    tost_paired(a, b, margin, alpha=0.05, clusters=None)
    tost_mean(x, low, high, alpha=0.05, clusters=None)
Errors
    StatsInputError: a ValueError (and empiricist InputError) for empty / NaN / mismatched input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

if TYPE_CHECKING:
    from empiricist.stats._validate import StatsInputError
    from empiricist.stats.equivalence import tost_mean, tost_paired
    from empiricist.stats.means import mean_ci
    from empiricist.stats.multiple import adjust_pvalues
    from empiricist.stats.paired import mcnemar_exact, paired_difference
    from empiricist.stats.power import (
        design_effect,
        mde,
        n_for_power,
        n_for_two_proportions,
        power_paired,
        power_two_proportions,
        sd_diff_binary,
        simulate_power,
    )
    from empiricist.stats.results import (
        Comparison,
        Equivalence,
        Estimate,
        McNemarResult,
        PowerEstimate,
        ScalingFit,
        TrendTest,
    )
    from empiricist.stats.scaling import monotonic_trend_test, scaling_fit

_EXPORTS = {
    "StatsInputError": "_validate",
    "tost_mean": "equivalence",
    "tost_paired": "equivalence",
    "mean_ci": "means",
    "adjust_pvalues": "multiple",
    "mcnemar_exact": "paired",
    "paired_difference": "paired",
    "design_effect": "power",
    "mde": "power",
    "n_for_power": "power",
    "n_for_two_proportions": "power",
    "power_paired": "power",
    "power_two_proportions": "power",
    "sd_diff_binary": "power",
    "simulate_power": "power",
    "Comparison": "results",
    "Equivalence": "results",
    "Estimate": "results",
    "McNemarResult": "results",
    "PowerEstimate": "results",
    "ScalingFit": "results",
    "TrendTest": "results",
    "monotonic_trend_test": "scaling",
    "scaling_fit": "scaling",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Comparison",
    "Equivalence",
    "Estimate",
    "McNemarResult",
    "PowerEstimate",
    "ScalingFit",
    "StatsInputError",
    "TrendTest",
    "adjust_pvalues",
    "design_effect",
    "mcnemar_exact",
    "mde",
    "mean_ci",
    "monotonic_trend_test",
    "n_for_power",
    "n_for_two_proportions",
    "paired_difference",
    "power_paired",
    "power_two_proportions",
    "scaling_fit",
    "sd_diff_binary",
    "simulate_power",
    "tost_mean",
    "tost_paired",
]
