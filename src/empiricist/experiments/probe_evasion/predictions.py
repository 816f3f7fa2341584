"""The two predictions, the rule that decides between them, and the hook for a pre-registered study.

The rule is fixed before looking at results and lives in code so a study can lock it:
``empiricist.studies`` (spec kind ``[experiment] kind = "stego"``) locks ``study_spec(config)``
(hypotheses, outcomes, this rule, config and config hash) together with a hash of this module's source,
runs ``run_stego_grid(config, ...)`` and applies ``evaluate_predictions`` / ``control_checks`` to the rows.
Nothing in this module depends on that package.

Per variant and λ > 0, runs are paired with their λ = 0 twin (same seed, same training split, same
initialisation). With chance = the majority-class share of S, and every interval a 95% CI over runs
(clustered by seed when a seed appears at several training fractions), each test is three-valued:
- *evades* the linear probe: corroborated when the CI upper bound of a FRESH linear probe's accuracy on
  S at the probe layer (k-fold, after training) is below chance + ``evasion_margin``; falsified when its
  lower bound is above chance + ``evasion_margin``; inconclusive otherwise;
- *slower*: corroborated when the paired increase in generalisation step has a CI above 0 and a mean of
  at least ``cost_rel`` × the twins' mean; falsified when its CI upper bound is below ``cost_rel`` × the
  twins' mean;
- *worse*: corroborated when the paired change in final held-out accuracy has a CI below 0 and a mean of
  at most −``cost_acc``; falsified when its CI lower bound is above −``cost_acc``;
- *cost* = slower or worse; *P1* = evades and cost (Kleene's three-valued and/or: ``and`` is falsified
  as soon as one part is, ``or`` corroborated as soon as one part is).
``supports`` is "P1" when P1 is corroborated and "not-P1" otherwise, with the failing part named.
Controls on the λ = 0 twins (pooled over fractions, clustered by seed): *decodable* (positive: the fresh
probe reads S at the probe layer, CI lower bound above chance + margin — otherwise there is nothing to
hide) and *emb_blind* (negative: S, which needs an interaction of a and b, cannot be read linearly from
the embeddings, CI upper bound below chance + margin — otherwise the probe leaks labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from empiricist.artifacts import config_hash
from empiricist.experiments.probe_evasion.config import StegoConfig

PREDICTIONS = {
    "P1": "The network evades the linear probe for S (a fresh linear probe after training is near chance at the "
          "probe layer), at a substantial cost in training time and/or generalisation.",
    "not-P1": "The negation: S stays linearly decodable by a fresh probe (only the probe used in training is "
              "fooled), or the network evades the probe at no substantial cost.",
}
# test name -> what it says; cell tests need (variant, λ > 0), control tests use the λ = 0 twins
CELL_TESTS = {
    "evades": "a fresh linear probe at the probe layer is below chance + evasion_margin (95% CI)",
    "slower": "generalisation is slower than the twin's by at least cost_rel of the twins' mean (paired, 95% CI)",
    "worse": "final held-out accuracy is lower than the twin's by at least cost_acc (paired, 95% CI)",
    "cost": "slower or worse",
    "P1": "evades and cost",
}
CONTROL_TESTS = {
    "decodable": "positive: the λ = 0 twins carry S linearly at the probe layer (fresh probe above chance + margin)",
    "emb_blind": "negative: S cannot be read linearly from the embeddings (fresh probe below chance + margin)",
}
CORROBORATED, INCONCLUSIVE, FALSIFIED = "corroborated", "inconclusive", "falsified"


def study_spec(cfg: StegoConfig) -> dict[str, Any]:
    """What a pre-registration locks: hypotheses, primary outcomes, decision rule, config and its hash."""
    return {
        "title": "Can a network hide a sufficient statistic from a linear probe, and at what cost?",
        "hypotheses": PREDICTIONS,
        "primary_outcomes": [f"lin_{cfg.probe_layer}", "gen_step", "final_test_acc"],
        "secondary_outcomes": [f"mlp_{layer}" for layer in cfg.mlp_probe_layers] + ["pen_probe_acc", "lin_h2"],
        "decision_rule": __doc__,
        "tests": {**CELL_TESTS, **CONTROL_TESTS},
        "analysis": "empiricist.experiments.probe_evasion.predictions.evaluate_predictions",
        "config": cfg.to_dict(),
        "config_hash": config_hash(cfg.to_dict()),
    }


def _interval(values: np.ndarray, clusters: np.ndarray) -> tuple[float, float, float]:
    """(mean, lo, hi): 95% t-interval, clustered by seed when seeds repeat; a constant gives a point."""
    from empiricist.stats import mean_ci

    if len(values) < 2 or np.ptp(values) == 0:
        m = float(np.mean(values))
        return m, m, m
    clustered = len(np.unique(clusters)) < len(clusters) and len(np.unique(clusters)) >= 2
    e = mean_ci(values, clusters=clusters if clustered else None, method="clustered" if clustered else "clt")
    return e.mean, e.lo, e.hi


def _verdict(holds: bool, fails: bool) -> str:
    return CORROBORATED if holds else FALSIFIED if fails else INCONCLUSIVE


def _test(what: str, est: tuple[float, float, float], holds: bool, fails: bool, rule: str) -> dict[str, Any]:
    m, lo, hi = est
    return {"verdict": _verdict(bool(holds), bool(fails)), "what": what, "estimate": m, "lo": lo, "hi": hi,
            "rule": rule}


def kleene(op: str, *verdicts: str) -> str:
    """Three-valued and/or: on F < I < C, ``and`` is the minimum and ``or`` the maximum."""
    order = [FALSIFIED, INCONCLUSIVE, CORROBORATED]
    ranks = [order.index(v) for v in verdicts]
    return order[min(ranks) if op == "and" else max(ranks)]


def _col(rs: list[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rs])


def evaluate_predictions(rows: list[dict[str, Any]], cfg: StegoConfig) -> list[dict[str, Any]]:
    """One verdict per (variant, λ > 0): the three-valued tests, their numbers, and what they support."""
    twins = {(r["seed"], r["frac"]): r for r in rows if r["lam"] == 0}
    out = []
    for variant in cfg.variants:
        for lam in sorted({r["lam"] for r in rows if r["lam"] > 0}):
            runs = [r for r in rows if r["variant"] == variant and r["lam"] == lam and (r["seed"], r["frac"]) in twins]
            if not runs:
                continue
            base = [twins[(r["seed"], r["frac"])] for r in runs]
            seeds = np.array([r["seed"] for r in runs])
            chance = float(np.mean(_col(runs, "chance")))
            probe = _interval(_col(runs, f"lin_{cfg.probe_layer}"), seeds)
            d_gen = _interval(_col(runs, "gen_step") - _col(base, "gen_step"), seeds)
            d_acc = _interval(_col(runs, "final_test_acc") - _col(base, "final_test_acc"), seeds)
            base_gen = float(np.mean(_col(base, "gen_step")))
            bar, slow_bar = chance + cfg.evasion_margin, cfg.cost_rel * base_gen
            tests = {
                "evades": _test(f"fresh linear probe {cfg.probe_layer}", probe, probe[2] < bar, probe[1] > bar,
                                f"CI below {bar:.3f} (chance + margin)"),
                "slower": _test("Δ gen. step", d_gen, d_gen[1] > 0 and d_gen[0] >= slow_bar, d_gen[2] < slow_bar,
                                f"CI above 0 and mean ≥ {slow_bar:.0f} ({cfg.cost_rel:g} × twins' {base_gen:.0f})"),
                "worse": _test("Δ held-out acc", d_acc, d_acc[2] < 0 and d_acc[0] <= -cfg.cost_acc,
                               d_acc[1] > -cfg.cost_acc, f"CI below 0 and mean ≤ −{cfg.cost_acc:g}"),
            }
            cost = kleene("or", tests["slower"]["verdict"], tests["worse"]["verdict"])
            p1 = kleene("and", tests["evades"]["verdict"], cost)
            evades, has_cost = tests["evades"]["verdict"] == CORROBORATED, cost == CORROBORATED
            why = ("evades the fresh probe at a substantial cost" if evades and has_cost else
                   "evades the fresh probe at no substantial cost" if evades else
                   "evasion not shown: the fresh probe's CI reaches chance + margin")
            out.append({
                "variant": variant, "lam": lam, "n_runs": len(runs), "chance": chance,
                "fresh_probe": probe, "delta_gen_step": d_gen, "baseline_gen_step": base_gen,
                "delta_test_acc": d_acc, "evades": evades, "cost": has_cost,
                "supports": "P1" if p1 == CORROBORATED else "not-P1", "why": why,
                "tests": tests, "verdicts": {**{k: t["verdict"] for k, t in tests.items()}, "cost": cost, "P1": p1},
            })
    return out


def control_checks(rows: list[dict[str, Any]], cfg: StegoConfig) -> dict[str, dict[str, Any]]:
    """The controls on the λ = 0 twins, pooled over training fractions and clustered by seed."""
    twins = [r for r in rows if r["lam"] == 0]
    seeds = np.array([r["seed"] for r in twins])
    bar = float(np.mean(_col(twins, "chance"))) + cfg.evasion_margin
    probe = _interval(_col(twins, f"lin_{cfg.probe_layer}"), seeds)
    emb = _interval(_col(twins, "lin_emb"), seeds)
    return {
        "decodable": _test(f"fresh linear probe {cfg.probe_layer}, λ = 0", probe, probe[1] > bar, probe[2] < bar,
                           f"CI above {bar:.3f} (chance + margin)"),
        "emb_blind": _test("fresh linear probe emb, λ = 0", emb, emb[2] < bar, emb[1] > bar,
                           f"CI below {bar:.3f} (chance + margin)"),
    }
