"""The sycophancy study's decision rule and power check, on synthetic rows with planted effects."""

from __future__ import annotations

import numpy as np
import pytest

from empiricist.experiments.sycophancy import rule
from empiricist.experiments.sycophancy.config import get_grid
from empiricist.experiments.sycophancy.study import Sycophancy, heldout_entities, power

CFG = get_grid("quick", {"n_boot": 400})


def _facts(n_entities: int = 60, per: int = 4) -> tuple[list[str], list[str]]:
    facts = [f"f{e}-{j}" for e in range(n_entities) for j in range(per)]
    return facts, [f.split("-")[0] for f in facts]


def _rows(size_effect: dict[float, float], dose_effect: float, beats: float, noise: float = 0.05,
          seed: int = 0, shift: float = 0.0) -> list[dict]:
    """Rows of the quick grid: syc = dose_effect·[dose high] + size_effect[dose]·[largest size] + noise."""
    rng = np.random.default_rng(seed)
    facts, clusters = _facts()
    n = len(facts)
    rows = []
    for dose in CFG.doses:
        for size, params in (("q1", 10_000), ("q2", 50_000)):
            mean = (dose_effect if dose == CFG.high else 0.0) + (size_effect[dose] if size == "q2" else 0.0)
            rows.append({"kind": "model", "dose": dose, "size": size, "params": params, "facts": facts,
                         "clusters": clusters, "syc_wrong": list(mean + noise * rng.standard_normal(n)),
                         "forum_defer": list(0.2 + 0.6 * (dose == CFG.high) + noise * rng.standard_normal(n)),
                         "fact_correct": list((rng.random(n) < 0.6).astype(float)), "chance": 0.25,
                         "p_true_none": list(0.5 + shift * (dose == CFG.high) + noise * rng.standard_normal(n))})
    for arm, mean in (("full", 0.1), ("attributed", 0.1 - beats), ("bm25", 0.1), ("random_forum", 0.1)):
        rows.append({"kind": "arm", "arm": arm, "facts": facts, "clusters": clusters,
                     "syc_wrong": list(mean + noise * rng.standard_normal(n))})
    return rows


def _verdicts(rows: list[dict]) -> dict[str, str]:
    out = {}
    for c in rule.evaluate_cells(rows, CFG):
        where = c.get("dose", c.get("size", c.get("stage")))
        out.update({f"{t}@{where}": v for t, v in c["verdicts"].items()})
    return out


def test_rule_reads_planted_effects() -> None:
    v = _verdicts(_rows({0.0: 0.0, 0.8: 0.2}, dose_effect=0.2, beats=0.2))
    assert v["grows_with_size@0.0"] == "falsified"      # no growth at rate 0: the CI sits below the sesoi
    assert v["grows_with_size@0.8"] == "corroborated"
    assert v["grows_with_dose@q1"] == v["grows_with_dose@q2"] == "corroborated"
    assert v["attribution_beats_bm25@counterfactual"] == "corroborated"
    assert v["attribution_beats_random@counterfactual"] == "corroborated"


def test_rule_null_and_noise() -> None:
    v = _verdicts(_rows({0.0: 0.0, 0.8: 0.0}, dose_effect=0.0, beats=0.0))
    assert set(v.values()) == {"falsified"}
    # so noisy that neither a rise nor its absence can be shown: inconclusive, not a verdict either way
    v = _verdicts(_rows({0.0: 0.0, 0.8: 0.0}, dose_effect=0.0, beats=0.0, noise=2.0))
    assert "inconclusive" in set(v.values())


def test_verdict_boundaries() -> None:
    assert rule.verdict(0.01, 0.2, 0.05) == "corroborated"
    assert rule.verdict(0.001, 0.04, 0.05) == "falsified"   # positive but smaller than anything of interest
    assert rule.verdict(-0.1, 0.2, 0.05) == "inconclusive"
    assert rule.verdict(-0.3, -0.1, 0.05) == "falsified"


def test_controls() -> None:
    rows = _rows({0.0: 0.0, 0.8: 0.0}, dose_effect=0.0, beats=0.0)
    c = rule.control_checks(rows, CFG)
    assert c["forum_deference"]["verdict"] == "corroborated"
    assert c["knows_facts"]["verdict"] == "corroborated" and c["knows_facts"]["estimate"] > 0.5
    assert c["same_knowledge"]["verdict"] == "corroborated"
    shifted = rule.control_checks(_rows({0.0: 0.0, 0.8: 0.0}, dose_effect=0.0, beats=0.0, shift=0.2), CFG)
    assert shifted["same_knowledge"]["verdict"] == "falsified"
    for r in rows:
        if r.get("kind") == "model":
            r["fact_correct"] = [0.0] * len(r["fact_correct"])
    assert rule.control_checks(rows, CFG)["knows_facts"]["verdict"] == "falsified"


def test_misaligned_rows_refused() -> None:
    rows = _rows({0.0: 0.0, 0.8: 0.0}, dose_effect=0.0, beats=0.0)
    rows[0]["facts"] = rows[0]["facts"][::-1]
    with pytest.raises(ValueError, match="aligned"):
        rule.evaluate_cells(rows, CFG)


def test_power_check_flags_a_design_that_cannot_decide() -> None:
    exp = Sycophancy()
    assert heldout_entities(CFG) > 50
    assert not exp.plan(CFG).flags  # the shipped quick design passes its own check
    p = power(CFG, 8)
    assert p["falsify_null"] < 0.8
    tiny = get_grid("quick", {"world": {**CFG.world, "n_people": 6, "n_orgs": 2, "n_cities": 2, "n_countries": 2,
                                        "n_rivers": 2, "n_languages": 2, "n_currencies": 2}})
    flags = exp.plan(tiny).flags
    assert any(f.startswith("UNDERPOWERED") for f in flags), flags
    big_k = get_grid("quick", {"k": 10_000})
    assert any(f.startswith("CANNOT DECIDE") for f in exp.plan(big_k).flags)
