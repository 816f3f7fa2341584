"""Simulation checks of empiricist.stats: do the intervals cover, do the tests keep their size, is the power
what the formulas say? This is the acceptance criterion for the package.

Monte Carlo tolerances: a rate r estimated from S simulations has SE sqrt(r (1 - r) / S); each test states
it, and the accepted band is at least ~2.9 MC SE wide on each side, so a correct method fails with
probability < 0.5% per check (and the seeds are fixed, so the outcome is deterministic anyway).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import expit

from empiricist.stats import (
    adjust_pvalues,
    mcnemar_exact,
    mde,
    mean_ci,
    monotonic_trend_test,
    paired_difference,
    power_paired,
    power_two_proportions,
    scaling_fit,
    simulate_power,
    tost_paired,
)


def beta_binomial_clusters(rng: np.random.Generator, n_clusters: int, mu: float = 0.7, icc: float = 0.3):
    """Clustered 0/1 scores: cluster accuracy p_g ~ Beta with mean mu and ICC = 1/(a+b+1); sizes 5-10."""
    sizes = rng.integers(5, 11, n_clusters)
    ab = 1 / icc - 1
    p = rng.beta(mu * ab, (1 - mu) * ab, n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    return (rng.random(clusters.size) < p[clusters]).astype(float), clusters


def coverage(method: str, n_sims: int, n_clusters: int, seed: int, **kw) -> float:
    rng, mu, hits = np.random.default_rng(seed), 0.7, 0
    for i in range(n_sims):
        y, cl = beta_binomial_clusters(rng, n_clusters, mu)
        est = mean_ci(y, None if method == "clt" else cl, method=method, seed=i, **kw)
        hits += est.lo <= mu <= est.hi
    return hits / n_sims


# --- coverage of 95% intervals ---------------------------------------------------------------------------


def test_clustered_ci_covers_and_naive_clt_does_not() -> None:
    # 2000 sims: MC SE at 0.95 is 0.0049, so [0.93, 0.97] is +/- 4 SE. ICC 0.3, mean cluster size 7.5:
    # design effect ~ 2.95, so the naive interval is ~1.7x too narrow (expected coverage ~0.75).
    clustered = coverage("clustered", 2000, 60, seed=1)
    naive = coverage("clt", 2000, 60, seed=1)
    print(f"\ncoverage clustered={clustered:.4f} naive_clt={naive:.4f}")
    assert 0.93 <= clustered <= 0.97
    assert naive < 0.90


def test_cluster_bootstrap_ci_covers() -> None:
    # 1000 sims x 999 resamples, 80 clusters: MC SE 0.0069, band [0.93, 0.97] is +/- 2.9 SE.
    cov = coverage("cluster_bootstrap", 1000, 80, seed=2, n_boot=999)
    print(f"\ncoverage cluster_bootstrap={cov:.4f}")
    assert 0.93 <= cov <= 0.97


def test_wilson_covers_on_independent_binary_and_beats_clt_near_one() -> None:
    # The interval depends only on the count k, so compute it once per k and look it up per simulation.
    rng, n, n_sims = np.random.default_rng(3), 100, 4000
    table = np.array([mean_ci(np.r_[np.ones(k), np.zeros(n - k)], method="wilson").ci for k in range(n + 1)])
    p = rng.uniform(0.05, 0.95, n_sims)  # averaging over p smooths Wilson's discreteness oscillation
    k = rng.binomial(n, p)
    cov = np.mean((table[k, 0] <= p) & (p <= table[k, 1]))  # MC SE 0.0034
    # Near-perfect accuracy (p = 0.97, n = 50): the CLT interval collapses, Wilson does not.
    n2, p2 = 50, 0.97
    k2 = rng.binomial(n2, p2, n_sims)
    cis = {
        m: np.array([mean_ci(np.r_[np.ones(j), np.zeros(n2 - j)], method=m).ci for j in range(n2 + 1)])
        for m in ("wilson", "clt")
    }
    edge = {m: np.mean((t[k2, 0] <= p2) & (p2 <= t[k2, 1])) for m, t in cis.items()}
    print(f"\ncoverage wilson={cov:.4f} at p=.97,n=50: wilson={edge['wilson']:.4f} clt={edge['clt']:.4f}")
    assert 0.93 <= cov <= 0.97
    assert edge["wilson"] >= 0.93 and edge["clt"] < 0.90


# --- paired comparisons ---------------------------------------------------------------------------------


def paired_clustered(rng: np.random.Generator, shift: float, n_clusters: int = 60, m: int = 5):
    """Two models on the same clustered items. Each cluster has a difficulty and a model-specific twist
    u_g (which model the template happens to favour): symmetric, so mean(a) = mean(b) when shift = 0,
    but it correlates a - b within a cluster, which the naive paired test ignores."""
    clusters = np.repeat(np.arange(n_clusters), m)
    theta = rng.normal(0.5, 1.0, n_clusters)[clusters] + rng.normal(0, 0.5, clusters.size)
    u = rng.normal(0, 0.6, n_clusters)[clusters]
    a = (rng.random(clusters.size) < expit(theta + u + shift)).astype(float)
    b = (rng.random(clusters.size) < expit(theta - u)).astype(float)
    return a, b, clusters


def rejection_rate(shift: float, method: str, n_sims: int, seed: int, **kw) -> float:
    rng, hits = np.random.default_rng(seed), 0
    for i in range(n_sims):
        a, b, cl = paired_clustered(rng, shift)
        res = paired_difference(a, b, None if method == "clt" else cl, method=method, seed=i, **kw)
        hits += res.p_value < 0.05
    return hits / n_sims


def test_clustered_paired_test_size_and_power() -> None:
    # 2000 sims: MC SE at 0.05 is 0.0049; [0.03, 0.07] is +/- 4 SE.
    size = rejection_rate(0.0, "clustered", 2000, seed=4)
    naive = rejection_rate(0.0, "clt", 2000, seed=4)
    power = rejection_rate(0.8, "clustered", 1000, seed=5)
    print(f"\npaired clustered: size={size:.4f} naive_size={naive:.4f} power={power:.4f}")
    assert 0.03 <= size <= 0.07
    assert naive > 0.08  # ignoring clusters inflates false positives
    assert power > 0.8


def test_cluster_bootstrap_paired_test_size() -> None:
    # 1000 sims x 499 resamples: MC SE 0.0069, [0.03, 0.07] is +/- 2.9 SE.
    size = rejection_rate(0.0, "cluster_bootstrap", 1000, seed=6, n_boot=499)
    print(f"\npaired cluster_bootstrap size={size:.4f}")
    assert 0.03 <= size <= 0.07


def test_mcnemar_size_and_power() -> None:
    rng, n, n_sims = np.random.default_rng(7), 300, 2000

    def rate(p_a_only: float, p_b_only: float) -> float:
        # discordant-cell probabilities; the rest split between both-right and both-wrong
        cells = rng.multinomial(n, [p_a_only, p_b_only, 0.5, 0.5 - p_a_only - p_b_only], size=n_sims)
        hits = 0
        for c in cells:
            a = np.repeat([1, 0, 1, 0], c)
            b = np.repeat([0, 1, 1, 0], c)
            hits += mcnemar_exact(a, b).p_value < 0.05
        return hits / n_sims

    size, power = rate(0.12, 0.12), rate(0.16, 0.06)
    print(f"\nmcnemar size={size:.4f} power={power:.4f}")
    # Exact (conditional) McNemar is conservative by construction; MC SE 0.0049 at 0.05.
    assert 0.025 <= size <= 0.06
    assert power > 0.8


def test_holm_controls_fwer_and_bh_controls_fdr() -> None:
    # 20 equicorrelated (rho = 0.3, positively dependent: BH's PRDS condition holds) one-sided z-tests,
    # 5 real effects. 2000 sims: MC SE of FWER/FDR near 0.05 is <= 0.0049.
    rng, n_sims, m, m1, rho = np.random.default_rng(8), 2000, 20, 5, 0.3
    z = np.sqrt(rho) * rng.normal(size=(n_sims, 1)) + np.sqrt(1 - rho) * rng.normal(size=(n_sims, m))
    z[:, :m1] += 3.0
    p = sps.norm.sf(z)
    null = np.arange(m) >= m1
    holm = np.array([adjust_pvalues(row, "holm")[1] for row in p])
    bh = np.array([adjust_pvalues(row, "bh")[1] for row in p])
    fwer_holm = np.mean(holm[:, null].any(axis=1))
    fwer_raw = np.mean((p[:, null] < 0.05).any(axis=1))
    fdr_bh = np.mean(bh[:, null].sum(axis=1) / np.maximum(bh.sum(axis=1), 1))
    print(f"\nFWER holm={fwer_holm:.4f} unadjusted={fwer_raw:.4f}; FDR bh={fdr_bh:.4f}")
    assert fwer_holm <= 0.05 + 0.015
    assert fwer_raw > 0.2  # without adjustment the family-wise error is far above 5%
    assert fdr_bh <= 0.05 + 0.015
    assert bh[:, :m1].mean() > holm[:, :m1].mean()  # BH buys power for the FDR trade


# --- power ----------------------------------------------------------------------------------------------


def test_analytic_power_matches_simulation() -> None:
    # Each simulated power from 2000 sims has MC SE <= 0.011; we accept |analytic - simulated| <= 0.035.
    sims = 2000
    cont = simulate_power(
        lambda r: (r.normal(0.3, 1, 60), np.zeros(60)), lambda d: paired_difference(*d), n_sims=sims, seed=9
    )
    cont_analytic = power_paired(0.3, 1.0, 60)

    probs = [0.175, 0.125, 0.35, 0.35]  # a-only, b-only, both right, both wrong: effect .05, P(disagree) .3

    def binary(r: np.random.Generator):
        c = r.multinomial(500, probs)
        return np.repeat([1, 0, 1, 0], c), np.repeat([0, 1, 1, 0], c)

    bin_sim = simulate_power(binary, lambda d: paired_difference(*d), n_sims=sims, seed=10)
    bin_analytic = power_paired(0.05, None, 500, p_discordant=0.3)

    # Clustered differences: ICC 0.2, clusters of 5, analysed with the clustered test (design effect 1.8).
    cl = np.repeat(np.arange(60), 5)

    def clustered(r: np.random.Generator):
        d = 0.25 + np.sqrt(0.2) * r.normal(size=60)[cl] + np.sqrt(0.8) * r.normal(size=cl.size)
        return d, np.zeros_like(d)

    cl_sim = simulate_power(
        clustered, lambda d: paired_difference(*d, cl, method="clustered"), n_sims=sims, seed=11
    )
    cl_analytic = power_paired(0.25, 1.0, 300, icc=0.2, cluster_size=5)

    # Two independent proportions, pooled two-sample z-test, vectorised.
    r = np.random.default_rng(12)
    n, p1, p2 = 300, 0.6, 0.7
    k1, k2 = r.binomial(n, p1, 20000), r.binomial(n, p2, 20000)
    pool = (k1 + k2) / (2 * n)
    zstat = (k2 - k1) / n / np.sqrt(pool * (1 - pool) * 2 / n)
    prop_sim = np.mean(2 * sps.norm.sf(np.abs(zstat)) < 0.05)
    prop_analytic = power_two_proportions(p1, p2, n)

    # At the MDE the simulated power should be ~80%.
    e = mde(80, 1.0)
    mde_sim = simulate_power(
        lambda r: (r.normal(e, 1, 80), np.zeros(80)), lambda d: paired_difference(*d), n_sims=sims, seed=13
    )

    pairs = {
        "continuous": (cont_analytic, cont.power),
        "paired binary": (bin_analytic, bin_sim.power),
        "clustered": (cl_analytic, cl_sim.power),
        "two proportions": (prop_analytic, prop_sim),
        "at MDE": (0.8, mde_sim.power),
    }
    print("\n" + "; ".join(f"{k}: analytic={a:.3f} sim={s:.3f}" for k, (a, s) in pairs.items()))
    for name, (analytic, simulated) in pairs.items():
        assert abs(analytic - simulated) <= 0.035, name


# --- equivalence ----------------------------------------------------------------------------------------


def test_tost_declares_equivalence_and_keeps_size_at_margin() -> None:
    rng, margin, n = np.random.default_rng(14), 0.05, 400

    def rate(true_diff: float, n_items: int, n_sims: int, clustered: bool = False) -> float:
        hits = 0
        for _ in range(n_sims):
            if clustered:
                cl = np.repeat(np.arange(n_items // 5), 5)
                noise = 0.2 * rng.normal(size=n_items // 5)[cl] + 0.25 * rng.normal(size=n_items)
            else:
                cl, noise = None, 0.3 * rng.normal(size=n_items)
            base = rng.normal(size=n_items)
            hits += tost_paired(base + true_diff + noise, base, margin, clusters=cl).equivalent
        return hits / n_sims

    at_margin = rate(margin, n, 2000)  # MC SE 0.0049 at 0.05
    at_margin_cl = rate(-margin, n, 1000, clustered=True)  # MC SE 0.0069
    truly_equal = rate(0.0, 4 * n, 300)
    print(
        f"\nTOST false-equivalence at margin={at_margin:.4f} (clustered {at_margin_cl:.4f}); "
        f"equivalence declared when equal={truly_equal:.4f}"
    )
    assert at_margin <= 0.05 + 0.015
    assert at_margin_cl <= 0.05 + 0.02
    assert truly_equal > 0.95


# --- scaling --------------------------------------------------------------------------------------------


def scaling_data(
    rng: np.random.Generator, x: np.ndarray, true_acc: np.ndarray, n_clusters: int = 60, m: int = 5
):
    """Items answered by all models: a Gaussian-copula latent shared by cluster and item (and partly by
    models) decides correctness, so each model's accuracy is exactly true_acc but scores are paired and
    clustered."""
    cl = np.repeat(np.arange(n_clusters), m)
    shared = 0.5 * rng.normal(size=n_clusters)[cl] + 0.6 * rng.normal(size=cl.size)
    latent = shared + np.sqrt(1 - 0.25 - 0.36) * rng.normal(size=(x.size, cl.size))
    return list((sps.norm.cdf(latent) < true_acc[:, None]).astype(float)), cl


def test_scaling_fit_recovers_slope_and_band_covers() -> None:
    # 300 fits x 499 cluster-bootstrap resamples; MC SE of a 95% coverage rate ~0.013.
    rng = np.random.default_rng(15)
    x = np.logspace(7, 11, 5)
    true = 0.3 + 0.1 * (np.log10(x) - 7)  # +10 points accuracy per decade of parameters
    grid = np.logspace(7, 11, 9)
    true_grid = 0.3 + 0.1 * (np.log10(grid) - 7)
    slopes, slope_cov, band_cov = [], [], []
    for i in range(300):
        ys, cl = scaling_data(rng, x, true)
        fit = scaling_fit(x, ys, clusters=cl, n_boot=499, seed=i, grid=grid)
        slopes.append(fit.slope)
        slope_cov.append(fit.slope_ci[0] <= 0.1 <= fit.slope_ci[1])
        band_cov.append(np.mean((fit.band_lo <= true_grid) & (true_grid <= fit.band_hi)))
    mean_slope, slope_cov, band_cov = np.mean(slopes), np.mean(slope_cov), np.mean(band_cov)
    print(
        f"\nscaling: mean slope={mean_slope:.4f} (true 0.1) slope CI coverage={slope_cov:.3f} "
        f"pointwise band coverage={band_cov:.3f}"
    )
    assert mean_slope == pytest.approx(0.1, abs=0.005)
    assert 0.91 <= slope_cov <= 0.99
    assert band_cov >= 0.9


def test_monotonic_trend_iut_keeps_size_and_has_power() -> None:
    # Least-favourable null for "every step increases": one step flat, the other clearly up.
    rng = np.random.default_rng(16)
    x = np.array([1.0, 2.0, 3.0])

    def rate(acc: list[float], n_sims: int) -> float:
        hits = 0
        for _ in range(n_sims):
            ys, cl = scaling_data(rng, x, np.array(acc))
            hits += monotonic_trend_test(x, ys, clusters=cl, n_boot=100).p_monotone < 0.05
        return hits / n_sims

    size = rate([0.4, 0.6, 0.6], 1000)  # MC SE 0.0069 at 0.05
    power = rate([0.3, 0.45, 0.6], 300)
    print(f"\nmonotone IUT: size at boundary={size:.4f} power={power:.4f}")
    assert size <= 0.05 + 0.02
    assert power > 0.8
