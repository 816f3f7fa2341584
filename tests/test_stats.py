"""Unit tests for empiricist.stats: known values, agreement with scipy/statsmodels, input validation.

Simulation checks of coverage, error rates and power live in test_stats_simulation.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from empiricist.errors import InputError
from empiricist.stats import (
    StatsInputError,
    adjust_pvalues,
    design_effect,
    mcnemar_exact,
    mde,
    mean_ci,
    monotonic_trend_test,
    n_for_power,
    n_for_two_proportions,
    paired_difference,
    power_paired,
    power_two_proportions,
    scaling_fit,
    sd_diff_binary,
    simulate_power,
    tost_mean,
    tost_paired,
)
from empiricist.stats.clustered import clustered_se

RNG = np.random.default_rng(20240601)
CLUSTERS = np.repeat(np.arange(30), 4)
Y = RNG.integers(0, 2, CLUSTERS.size).astype(float)
Y2 = np.where(RNG.random(CLUSTERS.size) < 0.3, 1 - Y, Y)


# --- known values -------------------------------------------------------------------------------------


def test_wilson_8_of_10_matches_formula() -> None:
    est = mean_ci([1] * 8 + [0] * 2, method="wilson")
    z, n, p = sps.norm.ppf(0.975), 10, 0.8
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert est.mean == 0.8
    assert est.lo == pytest.approx(centre - half, abs=1e-12) and est.lo == pytest.approx(0.4902, abs=1e-4)
    assert est.hi == pytest.approx(centre + half, abs=1e-12) and est.hi == pytest.approx(0.9433, abs=1e-4)


def test_mcnemar_exact_small_table() -> None:
    # 7 items only a gets right, 1 only b gets right: p = 2 * P(Binom(8, 1/2) <= 1) = 18/256.
    a = np.array([1] * 7 + [0] * 1 + [1] * 5 + [0] * 3)
    b = np.array([0] * 7 + [1] * 1 + [1] * 5 + [0] * 3)
    res = mcnemar_exact(a, b)
    assert (res.b10, res.b01, res.n) == (7, 1, 16)
    assert res.p_value == pytest.approx(18 / 256)
    assert res.diff == pytest.approx(6 / 16)
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]).p_value == 1.0


def test_adjust_pvalues_known_values() -> None:
    p = [0.01, 0.04, 0.03]
    holm, rej = adjust_pvalues(p, "holm")
    np.testing.assert_allclose(holm, [0.03, 0.06, 0.06])
    assert rej.tolist() == [True, False, False]
    rng = np.random.default_rng(0)
    for q in (rng.random(15) ** 3, np.array([0.01, 0.01, 0.5, 0.0125]), rng.random(1)):
        ref_rej, ref_adj, _, _ = multipletests(q, alpha=0.05, method="holm")
        adj, rej = adjust_pvalues(q, "holm")
        np.testing.assert_allclose(adj, ref_adj, rtol=1e-12)
        np.testing.assert_array_equal(rej, ref_rej)
    bh, rej = adjust_pvalues(p, "bh")
    np.testing.assert_allclose(bh, [0.03, 0.04, 0.04])
    assert rej.all()


def test_power_known_sample_sizes() -> None:
    assert n_for_power(0.5, 1.0) == 34  # paired t, d = 0.5, 80% power: the textbook (G*Power) answer
    assert n_for_power(0.5, 1.0, paired=False) == 64  # per group, two-sample t
    # Cohen's h = 0.2013; n = 2 (z_.975 + z_.8)^2 / h^2 = 387.3 per group (Cohen 1988 table: ~392 for h = .2)
    assert n_for_two_proportions(0.5, 0.6) == 388
    assert design_effect(5, 0.25) == 2.0
    assert n_for_power(0.5, 1.0, icc=0.25, cluster_size=5) == math.ceil(2 * 33.367)


def test_power_roundtrips() -> None:
    n = n_for_power(0.05, None, p_discordant=0.3)
    assert (
        power_paired(0.05, None, n, p_discordant=0.3)
        >= 0.8
        > power_paired(0.05, None, n - 2, p_discordant=0.3)
    )
    e = mde(500, 0.4, icc=0.1, cluster_size=4)
    assert power_paired(e, 0.4, 500, icc=0.1, cluster_size=4) == pytest.approx(0.8, abs=1e-5)
    e_bin = mde(500, None, p_discordant=0.3)
    assert power_paired(e_bin, None, 500, p_discordant=0.3) == pytest.approx(0.8, abs=1e-5)
    assert e_bin < mde(500, math.sqrt(0.3))  # the effect-0 SD is a conservative bound
    assert sd_diff_binary(0.3, 0.1) == pytest.approx(math.sqrt(0.29))
    assert power_two_proportions(0.5, 0.6, 388) == pytest.approx(0.8, abs=0.005)


# --- agreement with the reference implementations -----------------------------------------------------


def test_clustered_se_matches_statsmodels_cluster_robust_ols() -> None:
    fit = sm.OLS(Y, np.ones_like(Y)).fit(cov_type="cluster", cov_kwds={"groups": CLUSTERS}, use_t=True)
    est = mean_ci(Y, CLUSTERS, method="clustered")
    assert est.se == pytest.approx(float(fit.bse[0]), rel=1e-10)
    # statsmodels uses t with G-1 dof for cluster-robust inference too
    lo, hi = fit.conf_int()[0]
    assert (est.lo, est.hi) == (pytest.approx(lo), pytest.approx(hi))
    assert est.n_clusters == 30 and est.n == 120


def test_clustered_se_singletons_equal_clt_and_batch_matches() -> None:
    singletons = mean_ci(Y, np.arange(Y.size), method="clustered")
    assert singletons.se == pytest.approx(mean_ci(Y).se, rel=1e-12)
    batch = np.stack([Y, Y2, 1 - Y])
    expected = [mean_ci(row, CLUSTERS, method="clustered").se for row in batch]
    np.testing.assert_allclose(clustered_se(batch, CLUSTERS, 30), expected, rtol=1e-12)


def test_paired_clt_is_the_paired_t_test() -> None:
    res = paired_difference(Y, Y2)
    ref = sps.ttest_rel(Y, Y2)
    assert res.p_value == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (res.lo, res.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert res.diff == pytest.approx(Y.mean() - Y2.mean())
    assert (res.mean_a, res.mean_b) == (pytest.approx(Y.mean()), pytest.approx(Y2.mean()))


def test_tost_matches_statsmodels_and_ci_rule() -> None:
    res = tost_paired(Y, Y2, 0.15)
    assert res.p_value == pytest.approx(ttost_paired(Y, Y2, -0.15, 0.15)[0])
    assert res.equivalent == (-0.15 < res.ci[0] and res.ci[1] < 0.15)  # TOST <=> (1-2a) CI inside margin
    clustered = tost_paired(Y, Y2, 0.15, clusters=CLUSTERS)
    assert clustered.method == "tost_clustered" and clustered.n_clusters == 30
    m = tost_mean(Y, 0.3, 0.7)
    assert m.margin == (0.3, 0.7) and m.ci[0] < Y.mean() < m.ci[1]
    assert tost_paired(Y, Y, (-0.01, 0.02)).equivalent  # identical models: zero SE, inside the margin


def test_bootstrap_methods_agree_with_analytic_roughly() -> None:
    clt, boot = mean_ci(Y2), mean_ci(Y2, method="bootstrap", n_boot=4000)
    assert boot.se == pytest.approx(clt.se, rel=0.1)
    assert boot.lo == pytest.approx(clt.lo, abs=0.02) and boot.hi == pytest.approx(clt.hi, abs=0.02)
    cl, cb = (
        mean_ci(Y2, CLUSTERS, method="clustered"),
        mean_ci(Y2, CLUSTERS, method="cluster_bootstrap", ci_method="bca", n_boot=4000),
    )
    assert cb.se == pytest.approx(cl.se, rel=0.15)
    cmp = paired_difference(Y, Y2, CLUSTERS, method="cluster_bootstrap")
    ref = paired_difference(Y, Y2, CLUSTERS, method="clustered")
    assert cmp.diff == ref.diff and abs(cmp.p_value - ref.p_value) < 0.1
    assert mean_ci(Y2, method="bootstrap", seed=3) == mean_ci(Y2, method="bootstrap", seed=3)  # deterministic


def test_degenerate_scores() -> None:
    ones = np.ones(20)
    assert mean_ci(ones, method="bootstrap", ci_method="bca").ci == (1.0, 1.0)
    w = mean_ci(ones, method="wilson")
    assert w.hi == pytest.approx(1.0) and w.lo < 1.0  # Wilson stays honest at 20/20
    same = paired_difference(Y, Y)
    assert same.p_value == 1.0 and same.se == 0.0


# --- scaling ---------------------------------------------------------------------------------------------


def test_scaling_fit_exact_line_and_band() -> None:
    x = np.array([1e7, 1e8, 1e9, 1e10])
    item_effect = RNG.normal(0, 0.1, 200)  # shared by all models: the slope is exact in every resample
    ys = [0.2 + 0.05 * np.log10(xi) + item_effect for xi in x]
    fit = scaling_fit(x, ys, grid=[1e7, 1e12])
    assert fit.slope == pytest.approx(0.05) and fit.slope_ci == (pytest.approx(0.05), pytest.approx(0.05))
    np.testing.assert_allclose(
        fit.band_fit, [0.2 + 0.35 + item_effect.mean(), 0.2 + 0.6 + item_effect.mean()]
    )
    assert fit.method == "item_bootstrap" and fit.n_items == 200
    lin = scaling_fit([1, 2, 3], ys[:3], log_x=False)
    assert lin.band_x[0] == 1 and lin.band_x[-1] == 3


def test_scaling_fit_sorts_models_and_uses_clusters() -> None:
    x = [1e9, 1e7, 1e8]
    ys = [RNG.binomial(1, p, 120) for p in (0.7, 0.3, 0.5)]
    fit = scaling_fit(x, ys, clusters=CLUSTERS, n_boot=200)
    np.testing.assert_array_equal(fit.x, [1e7, 1e8, 1e9])
    assert fit.means[0] < fit.means[-1] and fit.slope > 0 and fit.method == "cluster_bootstrap"
    assert np.all(fit.band_lo <= fit.band_fit) and np.all(fit.band_fit <= fit.band_hi)


def test_monotonic_trend_test_directions() -> None:
    x = [1, 2, 3, 4]
    rising = [RNG.binomial(1, p, 400) for p in (0.2, 0.4, 0.6, 0.8)]
    up = monotonic_trend_test(x, rising)
    assert up.p_monotone < 0.01 and up.page_p < 0.01 and up.prob_all_increasing > 0.95
    down = monotonic_trend_test(x, rising[::-1], clusters=np.repeat(np.arange(100), 4))
    assert down.p_monotone > 0.99 and down.page_p > 0.5 and down.prob_all_increasing == 0.0
    two = monotonic_trend_test([1, 2], rising[:2])
    assert math.isnan(two.page_p) and two.step_p.shape == (1,)


def test_simulate_power_accepts_bool_pvalue_and_result() -> None:
    draw = lambda rng: rng.normal(0.5, 1, 40)
    by_bool = simulate_power(draw, lambda d: mean_ci(d).lo > 0, n_sims=200, seed=1)
    by_result = simulate_power(draw, lambda d: tost_mean(d, -10, 10), n_sims=200, seed=1)
    by_p = simulate_power(draw, lambda d: sps.ttest_1samp(d, 0).pvalue, n_sims=200, seed=1)
    assert by_bool.power == by_p.power > 0.8 and by_result.power == 1.0
    assert by_bool.lo < by_bool.power < by_bool.hi and by_bool.n_sims == 200
    with pytest.raises(ValueError, match="test_fn must return"):
        simulate_power(draw, lambda d: "yes", n_sims=2)


# --- input validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mean_ci([]), "empty"),
        (lambda: mean_ci([0.5, np.nan, 1]), "NaN"),
        (lambda: mean_ci([[1, 0], [0, 1]]), "1-D"),
        (lambda: mean_ci(["a", "b"]), "numeric"),
        (lambda: mean_ci([0, 1, 2], method="wilson"), "0/1"),
        (lambda: mean_ci([0, 1, 1], method="nope"), "method must be one of"),
        (lambda: mean_ci([0, 1, 1], alpha=1.5), "alpha"),
        (lambda: mean_ci([0, 1, 1], method="clustered"), "needs cluster ids"),
        (lambda: mean_ci([0, 1, 1], [1, 1], method="clustered"), "one id per item"),
        (lambda: mean_ci([0, 1, 1], [1, 1, 1], method="clustered"), "at least 2 clusters"),
        (lambda: mean_ci([0, 1, 1], method="bootstrap", n_boot=10), "n_boot"),
        (lambda: paired_difference([1, 0, 1], [1, 0]), "len\\(a\\)=3, len\\(b\\)=2"),
        (lambda: paired_difference([1, 0, 1], [1, np.inf, 0]), "NaN/inf"),
        (lambda: mcnemar_exact([1, 0], [1, 0.5]), "0/1"),
        (lambda: adjust_pvalues([0.1, 1.2]), "\\[0, 1\\]"),
        (lambda: adjust_pvalues([0.1], "fdr"), "method"),
        (lambda: tost_paired([1, 0, 1], [1, 0, 0], (0.1, -0.1)), "low < high"),
        (lambda: power_paired(0.1, 1.0, 100, p_discordant=0.3), "exactly one"),
        (lambda: power_paired(0.5, None, 100, p_discordant=0.3), "cannot exceed"),
        (lambda: n_for_power(0.0, 1.0), "nonzero"),
        (lambda: n_for_power(0.05, None, p_discordant=0.3, paired=False), "power_two_proportions"),
        (lambda: mde(100, 1.0, icc=1.5), "icc"),
        (lambda: mde(100, 1.0, power=0.01), "power"),
        (lambda: power_two_proportions(1.2, 0.5, 100), "p1"),
        (lambda: scaling_fit([1, 2], [[1, 0, 1], [1, 0]]), "same items"),
        (lambda: scaling_fit([1, 2, 3], [[1, 0], [1, 0]]), "one per model"),
        (lambda: scaling_fit([0, 2], [[1, 0], [1, 0]]), "positive"),
        (lambda: scaling_fit([2, 2], [[1, 0], [1, 0]]), "distinct"),
    ],
)
def test_bad_input_raises_clear_value_error(call, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert isinstance(info.value, StatsInputError) and isinstance(info.value, InputError)


def test_iid_method_with_clusters_warns() -> None:
    with pytest.warns(UserWarning, match="ignores them"):
        est = mean_ci(Y, CLUSTERS, method="clt")
    assert est.n_clusters == Y.size
