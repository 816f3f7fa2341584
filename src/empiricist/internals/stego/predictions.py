"""The two predictions, the rule that decides between them, and the hook for a pre-registered study.

The rule is fixed before looking at results and lives in code so a study can lock it: a future
``empiricist.studies`` takes ``study_spec(config)`` (hypotheses, outcomes, rule, config hash) at lock
time, runs ``run_stego_grid(config, ...)``, and applies ``evaluate_predictions`` to the rows — nothing in
this module depends on that package.

Per variant and λ > 0, runs are paired with their λ = 0 twin (same seed, same training split, same
initialisation). With chance = the majority-class share of S:
- *evades* the linear probe: the 95% CI upper bound of a FRESH linear probe's accuracy on S at the probe
  layer (k-fold, after training) is below chance + ``evasion_margin``;
- *substantial cost*: the paired increase in generalisation step has a CI above 0 and a mean of at least
  ``cost_rel`` × the twins' mean, or the paired change in final held-out accuracy has a CI below 0 and a
  mean of at most −``cost_acc``.
P1 is supported when both hold; not-P1 otherwise, with the failing part named. Intervals are over runs,
clustered by seed when a seed appears at several training fractions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from empiricist.artifacts import config_hash
from empiricist.internals.stego.config import StegoConfig

PREDICTIONS = {
    "P1": "The network evades the linear probe for S (a fresh linear probe after training is near chance at the "
          "probe layer), at a substantial cost in training time and/or generalisation.",
    "not-P1": "The negation: S stays linearly decodable by a fresh probe (only the probe used in training is "
              "fooled), or the network evades the probe at no substantial cost.",
}


def study_spec(cfg: StegoConfig) -> dict[str, Any]:
    """What a pre-registration would lock: hypotheses, primary outcomes, decision rule, config and its hash."""
    return {
        "title": "Can a network hide a sufficient statistic from a linear probe, and at what cost?",
        "hypotheses": PREDICTIONS,
        "primary_outcomes": [f"lin_{cfg.probe_layer}", "gen_step", "final_test_acc"],
        "secondary_outcomes": [f"mlp_{layer}" for layer in cfg.mlp_probe_layers] + ["pen_probe_acc", "lin_h2"],
        "decision_rule": __doc__,
        "analysis": "empiricist.internals.stego.predictions.evaluate_predictions",
        "config": cfg.to_dict(),
        "config_hash": config_hash(cfg.to_dict()),
    }


def _interval(values: np.ndarray, clusters: np.ndarray) -> tuple[float, float, float]:
    from empiricist.stats import mean_ci

    if len(values) < 2 or np.ptp(values) == 0:
        m = float(np.mean(values))
        return m, m, m
    clustered = len(np.unique(clusters)) < len(clusters) and len(np.unique(clusters)) >= 2
    e = mean_ci(values, clusters=clusters if clustered else None, method="clustered" if clustered else "clt")
    return e.mean, e.lo, e.hi


def evaluate_predictions(rows: list[dict[str, Any]], cfg: StegoConfig) -> list[dict[str, Any]]:
    """One verdict per (variant, λ > 0): the evasion and cost tests and which prediction they support."""
    twins = {(r["seed"], r["frac"]): r for r in rows if r["lam"] == 0}
    out = []
    for variant in cfg.variants:
        for lam in sorted({r["lam"] for r in rows if r["lam"] > 0}):
            runs = [r for r in rows if r["variant"] == variant and r["lam"] == lam and (r["seed"], r["frac"]) in twins]
            if not runs:
                continue
            base = [twins[(r["seed"], r["frac"])] for r in runs]
            seeds = np.array([r["seed"] for r in runs])

            def col(rs: list[dict], key: str) -> np.ndarray:
                return np.array([float(r[key]) for r in rs])

            chance = float(np.mean(col(runs, "chance")))
            probe = _interval(col(runs, f"lin_{cfg.probe_layer}"), seeds)
            d_gen = _interval(col(runs, "gen_step") - col(base, "gen_step"), seeds)
            d_acc = _interval(col(runs, "final_test_acc") - col(base, "final_test_acc"), seeds)
            base_gen = float(np.mean(col(base, "gen_step")))
            evades = probe[2] < chance + cfg.evasion_margin
            slower = d_gen[1] > 0 and d_gen[0] >= cfg.cost_rel * base_gen
            worse = d_acc[2] < 0 and d_acc[0] <= -cfg.cost_acc
            cost = slower or worse
            why = ("evades the fresh probe at a substantial cost" if evades and cost else
                   "evades the fresh probe at no substantial cost" if evades else
                   "evasion not shown: the fresh probe's CI reaches chance + margin")
            out.append({
                "variant": variant, "lam": lam, "n_runs": len(runs), "chance": chance,
                "fresh_probe": probe, "delta_gen_step": d_gen, "baseline_gen_step": base_gen,
                "delta_test_acc": d_acc, "evades": bool(evades), "cost": bool(cost),
                "supports": "P1" if evades and cost else "not-P1", "why": why,
            })
    return out
