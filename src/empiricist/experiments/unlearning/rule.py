"""The unlearning study's pre-registered decision rule (its source is hashed into the lock).

Measurement. Per seed there is a base model (trained on every document but the holdout people's), a gold
model (the same recipe, seed and order, without the test request's documents either), and for each
method the base after unlearning the test request with the learning rate and step count chosen on the
validation request (first seed only; never on the test request). ``none`` is the base, unchanged.
Forget knowledge is fact QA on the test people's facts: accuracy, and TOFU's truth ratio per fact
(mean per-token probability of the wrong values over the right one's); utility is fact-QA accuracy on
other entities' facts.

Cell tests (cell = a method):
- ``matches_gold``. Per seed, the share of the gap left: d = (L_method − L_gold) / (L_none − L_gold),
  where L is the mean log truth ratio on the forget facts (0: the gold's, 1: no unlearning; negative:
  past the gold, e.g. a model that now avoids the right answers), and the utility difference u =
  utility_method − utility_gold. Seeds with L_none >= L_gold (the base knows the facts no better than
  the gold: nothing to forget) are left out. Each gets
  a 95% t-interval over seeds. Forget matches if d's interval lies inside (−gap_margin, +gap_margin) and
  fails if it lies wholly outside; utility likewise with ±utility_margin. Corroborated if both match;
  falsified if either fails; inconclusive otherwise (fewer than two seeds: inconclusive).
- ``relearns_fast``. The relearning attack fine-tunes a model on a few documents of half the test people
  and measures their facts that those documents state ("shown") at the trainer's checkpoints (0, 1, 2,
  4, …, relearn_steps). Per seed, recovered means reaching g0 + recover_frac × (b0 − g0), where g0 and
  b0 are the gold's and the base's accuracy on the shown facts before the attack (seeds with b0 <= g0
  are left out). Steps-to-recover is the first checkpoint at or above it (a model already there at step
  0 never forgot: 0); never reaching it is censored at 2 × relearn_steps. The ratio is log2((steps_gold
  + 1) / (steps_method + 1)): how many times faster the method's model relearns than the gold learns
  the same facts from the same documents. Seeds where both are censored say nothing and are left out.
  95% t-interval over the remaining seeds: corroborated if lo > log2(k), falsified if hi < log2(k),
  inconclusive otherwise (fewer than two such seeds: inconclusive).

Controls (each must be corroborated for a verdict to count):
- ``base_knows`` (positive): accuracy on the forget facts, base minus gold, 95% t-interval over seeds:
  corroborated if lo > min_gap (there is knowledge to unlearn); falsified if hi < min_gap.
- ``gold_never_saw`` (negative): read back from the token stores the models trained on, the gold's
  holds none of the test request's documents, and the base's holds every one that is not a holdout
  person's: corroborated if both hold, falsified otherwise.

Reported, not a control (``noise_floor``): the gold of each seed against the gold of the next (cyclic)
with ``matches_gold``'s statistics: how far apart two models that never saw the request are. Two golds
differ in initialisation and data order, a method and its seed's gold only in the forget documents and
the method, so this floor is looser than what the test asks (the pilot showed utility differences up to
±0.1 between golds), which is why it does not gate the verdicts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

CELL_TESTS = {
    "matches_gold": "forget truth ratios and utility within the margins of the retrained gold's",
    "relearns_fast": "relearning on a few forget documents is at least k× faster than the gold learns them",
}
CONTROL_TESTS = {
    "base_knows": "the base model knows the forget facts: accuracy above the gold's by at least min_gap",
    "gold_never_saw": "the gold's training store holds none of the test request's documents; the base's all",
}


def t_interval(values: list[float] | np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds (fewer than two values: unbounded)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, -math.inf, math.inf
    m = float(x.mean())
    if x.size < 2:
        return m, -math.inf, math.inf
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def _within(values: list[float], margin: float, what: str) -> dict[str, Any]:
    m, lo, hi = t_interval(values)
    if len(values) < 2:
        verdict = "inconclusive"
    elif -margin < lo and hi < margin:
        verdict = "corroborated"
    elif lo >= margin or hi <= -margin:
        verdict = "falsified"
    else:
        verdict = "inconclusive"
    return {"what": what, "estimate": m, "lo": lo, "hi": hi, "margin": margin, "n": len(values),
            "values": list(values), "rule": f"inside (-{margin:g}, {margin:g}); falsified if wholly outside",
            "verdict": verdict}


def _above(values: list[float], bar: float, what: str) -> dict[str, Any]:
    m, lo, hi = t_interval(values)
    verdict = ("inconclusive" if len(values) < 2 else "corroborated" if lo > bar
               else "falsified" if hi < bar else "inconclusive")
    return {"what": what, "estimate": m, "lo": lo, "hi": hi, "bar": bar, "n": len(values), "values": list(values),
            "rule": f"lo > {bar:.3f}; falsified if hi < {bar:.3f}", "verdict": verdict}


def _both(a: dict[str, Any], b: dict[str, Any]) -> str:
    if "falsified" in (a["verdict"], b["verdict"]):
        return "falsified"
    return "corroborated" if a["verdict"] == b["verdict"] == "corroborated" else "inconclusive"


def _by(rows: list[dict[str, Any]], method: str) -> dict[int, dict[str, Any]]:
    return {r["seed"]: r for r in rows if r.get("kind") == "model" and r["method"] == method}


def matches_gold(rows: list[dict[str, Any]], method: str, cfg: Any) -> dict[str, Any]:
    me, none, gold = _by(rows, method), _by(rows, "none"), _by(rows, "gold")
    d, u = [], []
    for s in sorted(me):
        gap = none[s]["log_truth_ratio_forget"] - gold[s]["log_truth_ratio_forget"]
        if gap >= 0:  # the base is no surer of the right answers than the gold: nothing to forget
            continue
        d.append((me[s]["log_truth_ratio_forget"] - gold[s]["log_truth_ratio_forget"]) / gap)
        u.append(me[s]["utility"] - gold[s]["utility"])
    forget = _within(d, cfg.gap_margin, f"share of the base–gold truth-ratio gap left, {method}")
    utility = _within(u, cfg.utility_margin, f"utility, {method} minus gold")
    return {"forget_gap_share": forget, "utility_difference": utility, "verdict": _both(forget, utility)}


def steps_to_recover(steps: list[int], acc: list[float], threshold: float, relearn_steps: int
                     ) -> tuple[int, bool]:
    """(first checkpoint at or above ``threshold``, censored?)."""
    for s, a in zip(steps, acc, strict=True):
        if a >= threshold:
            return s, False
    return 2 * relearn_steps, True


def relearns_fast(rows: list[dict[str, Any]], method: str, cfg: Any) -> dict[str, Any]:
    me, none, gold = _by(rows, method), _by(rows, "none"), _by(rows, "gold")
    ratios, per_seed = [], []
    for s in sorted(me):
        g0, b0 = gold[s]["relearn"]["shown"][0], none[s]["relearn"]["shown"][0]
        if b0 <= g0:
            per_seed.append({"seed": s, "left_out": "the base does not know the shown facts better than the gold"})
            continue
        thr = g0 + cfg.recover_frac * (b0 - g0)
        sm, cm = steps_to_recover(me[s]["relearn"]["steps"], me[s]["relearn"]["shown"], thr, cfg.relearn_steps)
        sg, cg = steps_to_recover(gold[s]["relearn"]["steps"], gold[s]["relearn"]["shown"], thr, cfg.relearn_steps)
        rec = {"seed": s, "threshold": thr, "steps_method": sm, "censored_method": cm, "steps_gold": sg,
               "censored_gold": cg}
        if cm and cg:
            rec["left_out"] = "both censored"
        else:
            rec["log2_ratio"] = math.log2((sg + 1) / (sm + 1))
            ratios.append(rec["log2_ratio"])
        per_seed.append(rec)
    out = _above(ratios, math.log2(cfg.k), f"log2 relearning speed-up, {method} over the gold")
    return {**out, "per_seed": per_seed}


def evaluate_cells(rows: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    from empiricist.experiments.unlearning.config import METHODS

    cells = []
    for m in METHODS:
        mg, rf = matches_gold(rows, m, cfg), relearns_fast(rows, m, cfg)
        cells.append({"method": m, "verdicts": {"matches_gold": mg["verdict"], "relearns_fast": rf["verdict"]},
                      "tests": {"matches_gold": mg, "relearns_fast": rf}})
    return cells


def control_checks(rows: list[dict[str, Any]], cfg: Any) -> dict[str, dict[str, Any]]:
    none, gold = _by(rows, "none"), _by(rows, "gold")
    seeds = sorted(gold)
    knows = _above([none[s]["knowledge_forget"] - gold[s]["knowledge_forget"] for s in seeds], cfg.min_gap,
                   "forget-fact accuracy, base minus gold")
    stores = next((r for r in rows if r.get("kind") == "stores"), None)
    seen = None if stores is None else stores["gold_test_docs"] + stores["test_docs"] - stores["base_test_docs"]
    saw = {"what": "test documents in the gold's store + test documents missing from the base's",
           "estimate": seen, "lo": seen, "hi": seen, "rule": "0", "counts": stores,
           "verdict": "corroborated" if seen == 0 else "falsified"}
    return {"base_knows": knows, "gold_never_saw": saw}


def noise_floor(rows: list[dict[str, Any]], cfg: Any) -> dict[str, Any]:
    """``matches_gold``'s statistics for each seed's gold against the next seed's (see the module doc)."""
    none, gold = _by(rows, "none"), _by(rows, "gold")
    seeds = sorted(gold)
    d, u = [], []
    for a, b in zip(seeds, seeds[1:] + seeds[:1], strict=True):
        gap = none[a]["log_truth_ratio_forget"] - gold[a]["log_truth_ratio_forget"]
        if gap < 0:
            d.append((gold[b]["log_truth_ratio_forget"] - gold[a]["log_truth_ratio_forget"]) / gap)
            u.append(gold[b]["utility"] - gold[a]["utility"])
    forget = _within(d, cfg.gap_margin, "gap share, the next seed's gold against this seed's")
    utility = _within(u, cfg.utility_margin, "utility, the next seed's gold minus this seed's")
    return {"forget_gap_share": forget, "utility_difference": utility, "verdict": _both(forget, utility)}
