"""Power, sample size and minimum detectable effect (MDE) for eval comparisons.

Analytic answers come from ``statsmodels.stats.power`` (t-test power via the noncentral t). Clustered
items enter through the design effect (Kish 1965): n items in clusters of m with intra-cluster
correlation ICC carry the information of n / (1 + (m - 1) * ICC) independent items.
For designs the formulas do not cover, ``simulate_power`` estimates power by Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm
from scipy.stats import t as t_dist
from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from empiricist.stats._validate import StatsInputError, check_alpha, check_positive_int
from empiricist.stats.results import PowerEstimate


def design_effect(cluster_size: float = 1, icc: float = 0.0) -> float:
    """Variance inflation of a mean over clustered items: 1 + (m - 1) * ICC (Kish 1965)."""
    if not cluster_size >= 1:
        raise StatsInputError(f"cluster_size must be >= 1, got {cluster_size!r}", field="cluster_size")
    if not 0.0 <= icc <= 1.0:
        raise StatsInputError(f"icc must be in [0, 1], got {icc!r}", field="icc")
    return 1.0 + (cluster_size - 1) * icc


def sd_diff_binary(p_discordant: float, effect: float = 0.0) -> float:
    """SD of a per-item difference of two 0/1 scores: d in {-1, 0, 1}, Var(d) = P(a != b) - effect^2."""
    if not 0.0 < p_discordant <= 1.0:
        raise StatsInputError(f"p_discordant must be in (0, 1], got {p_discordant!r}", field="p_discordant")
    if abs(effect) > p_discordant:
        raise StatsInputError(
            f"|effect| = {abs(effect)} cannot exceed p_discordant = {p_discordant} for paired 0/1 scores",
            field="effect",
        )
    return math.sqrt(p_discordant - effect**2)


def _sd(sd: float | None, p_discordant: float | None, effect: float, paired: bool = True) -> float:
    """Resolve the SD of the differences from exactly one of ``sd`` or ``p_discordant``."""
    if (sd is None) == (p_discordant is None):
        raise StatsInputError("give exactly one of sd (SD of per-item differences) or p_discordant")
    if p_discordant is not None and not paired:
        raise StatsInputError(
            "p_discordant describes paired 0/1 scores; use power_two_proportions for independent groups",
            field="p_discordant",
        )
    if sd is None:
        return sd_diff_binary(p_discordant, effect)  # type: ignore[arg-type]
    if not (math.isfinite(sd) and sd > 0):
        raise StatsInputError(f"sd must be a positive number, got {sd!r}", field="sd")
    return float(sd)


def _t_power(paired: bool, **kwargs: float | None) -> float:
    """statsmodels t-test ``solve_power`` for whichever of effect_size/nobs/power is None.

    Paired: one-sample t on the differences (``TTestPower``). Unpaired: two independent groups of
    ``nobs`` each (``TTestIndPower``, which calls it ``nobs1``).
    """
    if paired:
        return float(np.squeeze(TTestPower().solve_power(**kwargs)))
    kwargs["nobs1"] = kwargs.pop("nobs")
    return float(np.squeeze(TTestIndPower().solve_power(**kwargs)))


def power_paired(
    effect: float,
    sd_diff: float | None,
    n: int,
    alpha: float = 0.05,
    *,
    p_discordant: float | None = None,
    paired: bool = True,
    icc: float = 0.0,
    cluster_size: float = 1,
) -> float:
    """Power of the two-sided t-test for a mean difference ``effect`` with n items (per group if unpaired).

    Paired binary scores: pass ``sd_diff=None, p_discordant=`` P(models disagree on an item).
    Unpaired: ``sd_diff`` is the per-group SD.
    """
    alpha = check_alpha(alpha)
    sd = _sd(sd_diff, p_discordant, effect, paired)
    n_eff = check_positive_int(n, "n", minimum=2) / design_effect(cluster_size, icc)
    return _t_power(paired, effect_size=abs(effect) / sd, nobs=n_eff, alpha=alpha, power=None)


def mde(
    n: int,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = True,
    icc: float = 0.0,
    cluster_size: float = 1,
    *,
    p_discordant: float | None = None,
) -> float:
    """Minimum detectable effect: the smallest |difference| the design detects with the given power.

    With ``p_discordant`` (paired 0/1 scores) the SD itself depends on the effect, so we root-find
    ``power_paired`` directly (brentq) instead of ``solve_power``.
    """
    alpha = check_alpha(alpha)
    _check_power(power, alpha)
    n_eff = check_positive_int(n, "n", minimum=2) / design_effect(cluster_size, icc)
    if p_discordant is None:
        return _t_power(paired, effect_size=None, nobs=n_eff, alpha=alpha, power=power) * _sd(sd, None, 0.0)
    _sd(sd, p_discordant, 0.0, paired)  # validates the pair

    def gap(e: float) -> float:
        return (
            power_paired(
                e,
                None,
                n,
                alpha,
                p_discordant=p_discordant,
                paired=paired,
                icc=icc,
                cluster_size=cluster_size,
            )
            - power
        )

    # Bracket: the MDE at the effect-0 SD sqrt(p_discordant) is an upper bound, since SD shrinks with effect.
    upper = mde(n, math.sqrt(p_discordant), alpha, power, paired, icc, cluster_size)
    if upper >= p_discordant:
        raise StatsInputError(f"no effect below p_discordant={p_discordant} reaches power {power} with n={n}")
    return float(brentq(gap, 1e-9, upper, xtol=1e-7))


def n_for_power(
    effect: float,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = True,
    icc: float = 0.0,
    cluster_size: float = 1,
    *,
    p_discordant: float | None = None,
) -> int:
    """Items needed (per group if unpaired) to detect ``effect`` with the given power; inflated by the
    design effect for clustered items."""
    alpha = check_alpha(alpha)
    _check_power(power, alpha)
    if not (math.isfinite(effect) and effect != 0):
        raise StatsInputError(f"effect must be a nonzero number, got {effect!r}", field="effect")
    es = abs(effect) / _sd(sd, p_discordant, effect, paired)
    n_eff = _t_power(paired, effect_size=es, nobs=None, alpha=alpha, power=power)
    return math.ceil(n_eff * design_effect(cluster_size, icc))


def power_two_proportions(
    p1: float, p2: float, n: int, alpha: float = 0.05, icc: float = 0.0, cluster_size: float = 1
) -> float:
    """Power to tell accuracies p1 and p2 apart with n independent items per group (two-sided z-test).

    Uses Cohen's h = 2 asin(sqrt p1) - 2 asin(sqrt p2) (statsmodels ``proportion_effectsize``), whose
    arcsine transform makes the variance independent of p. For two models on the SAME items use
    ``power_paired(p_discordant=...)`` instead: pairing is usually worth far more items.
    """
    alpha = check_alpha(alpha)
    h = abs(float(proportion_effectsize(_prob(p1, "p1"), _prob(p2, "p2"))))
    n_eff = check_positive_int(n, "n", minimum=2) / design_effect(cluster_size, icc)
    return float(NormalIndPower().power(effect_size=h, nobs1=n_eff, alpha=alpha))


def n_for_two_proportions(
    p1: float, p2: float, alpha: float = 0.05, power: float = 0.8, icc: float = 0.0, cluster_size: float = 1
) -> int:
    """Items per group for ``power_two_proportions`` to reach ``power``."""
    alpha = check_alpha(alpha)
    _check_power(power, alpha)
    h = abs(float(proportion_effectsize(_prob(p1, "p1"), _prob(p2, "p2"))))
    if h == 0:
        raise StatsInputError("p1 == p2: no sample size detects a zero difference", field="p2")
    n_eff = NormalIndPower().solve_power(effect_size=h, nobs1=None, alpha=alpha, power=power)
    return math.ceil(float(np.squeeze(n_eff)) * design_effect(cluster_size, icc))


def simulate_power(
    simulate_fn: Callable[[np.random.Generator], Any],
    test_fn: Callable[[Any], Any],
    n_sims: int = 1000,
    seed: int | None = 0,
    alpha: float = 0.05,
) -> PowerEstimate:
    """Monte Carlo power of a whole analysis pipeline (e.g. a pre-registered study design).

    ``simulate_fn(rng)`` draws one dataset; ``test_fn(data)`` analyses it and returns a bool (reject?),
    a p-value, or a result with a ``p_value`` attribute (rejects when p < alpha). Under a null
    simulation this estimates the false-positive rate instead. The interval is Wilson (MC uncertainty).
    """
    alpha = check_alpha(alpha)
    n_sims = check_positive_int(n_sims, "n_sims")
    rng = np.random.default_rng(seed)
    hits = sum(_rejects(test_fn(simulate_fn(rng)), alpha) for _ in range(n_sims))
    lo, hi = proportion_confint(hits, n_sims, alpha=0.05, method="wilson")
    power = hits / n_sims
    return PowerEstimate(power, math.sqrt(power * (1 - power) / n_sims), float(lo), float(hi), n_sims)


def _rejects(result: Any, alpha: float) -> bool:
    if isinstance(result, (bool, np.bool_)):
        return bool(result)
    p = getattr(result, "p_value", result)
    try:
        return bool(float(p) < alpha)
    except (TypeError, ValueError):
        raise StatsInputError(
            f"test_fn must return a bool, a p-value or an object with .p_value; got {type(result).__name__}"
        ) from None


def _check_power(power: float, alpha: float) -> None:
    if not alpha < power < 1:
        raise StatsInputError(f"power must be in (alpha, 1), got {power!r}", field="power")


def _prob(p: float, name: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise StatsInputError(f"{name} must be a proportion in [0, 1], got {p!r}", field=name)
    return float(p)


def interval_power(n: int, sd: float, bar: float, true_effect: float) -> dict[str, float]:
    """Power of a rule that decides a mean over ``n`` units (seeds) by its 95% t-interval against
    ``bar``: corroborated when lo > bar, falsified when hi < bar. Normal approximation with the
    planning ``sd`` of one unit: P(corroborated | mean = true_effect) and P(falsified | mean = 0)."""
    se = sd / np.sqrt(n)
    half = float(t_dist.ppf(0.975, n - 1) * se)
    return {"n_seeds": n, "se": float(se), "half_width": half,
            "corroborate": float(norm.cdf((true_effect - bar - half) / se)),
            "falsify_null": float(norm.cdf((bar - half) / se))}
