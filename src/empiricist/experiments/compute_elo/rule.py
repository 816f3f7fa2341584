"""The compute–Elo study's pre-registered decision rule (its source is hashed into the lock).

Measurement. Ratings are Elo on the ladder (random = 0; maximum likelihood, games/elo.py); a network's
rating is conditional on the ladder's (its SE is from its own games), so a difference from a ladder agent
has SE sqrt(se_net² + se_agent²). Compute is training FLOPs (6 × parameters × samples) for imitation;
expert iteration (ExIt) adds its own training and 2 × parameters per network evaluation in self-play,
counted from its start network's training compute. The capped data's own generation is not counted
(the teachers' play is given, as human games are).

Cell = a cap (a ladder agent) and a condition (``cap`` or ``above_cap``). Per cap, the imitation grid is every width × checkpoint at the cap's
condition (the network asked to play at the cap's Elo) and every width's final checkpoint at the
above-cap condition (cap + ``above_cap``). Each condition's best network is re-rated on fresh games
against every ladder agent (the *confirmation*: the best of many noisy ratings is biased upward); the
tests read the confirmation, never the selection's own number.

Cell tests:
- ``exceeds_cap`` (condition ``cap`` or ``above_cap``): g = confirmed Elo − cap Elo, interval
  g ± z(0.5 + level/2) · SE. Corroborated if lo >= d; falsified if hi < d; inconclusive otherwise.
- ``saturates`` (same conditions): imitation ends at or near the cap: corroborated if hi < d; falsified if
  lo >= d; inconclusive otherwise (the mirror of ``exceeds_cap``).
- ``bends`` / ``no_bend``: the slopes in Elo per decade of compute of each method's frontier, the best
  Elo reached at or below each compute (what a user who keeps the best network so far has after spending
  it): a least-squares line of the running maximum on log10 compute, one point per network. Imitation:
  every width × checkpoint at the cap's condition. ExIt: its iterations (iteration 0 is the start network
  at its confirmed rating; the pilot's ExIt rose and fell back, and a flat one has slope 0, not none). r = ExIt slope ÷ imitation slope: compute per Elo above the cap
  ÷ below it is 1 / r where the two lines meet. Interval: percentiles of r over ``n_sims`` seeded
  parametric draws (every rating redrawn from N(elo, se), the frontier and both lines refitted).
  ``bends`` is corroborated if hi(r) < 1/k (gains above the cap cost >= k× more compute per Elo),
  falsified if lo(r) >= 1/k; ``no_bend`` the reverse; both inconclusive if the interval spans 1/k,
  or if the imitation slope's interval reaches 0 or below.

Controls (each must be corroborated for a verdict to count):
- ``ladder_reproduces``: each cap agent, rated again on fresh games as a newcomer against the rest of
  the ladder, agrees with its ladder rating: |new − ladder| <= z · sqrt(se_new² + se_ladder²) for every
  cap, z = z(1 − (1 − level) / (2 × caps)) (Bonferroni over the caps); falsified otherwise.
- ``ladder_has_headroom`` (positive): above every cap the ladder reaches far enough to see imitation or
  search go past it: the strongest ladder agent minus the cap agent, interval at ``level`` from both
  ladder SEs, has lo >= 2 × d; falsified if hi < 2 × d; inconclusive otherwise.
- ``data_elo_as_claimed``: the capped data is no stronger than it claims: no player in it is rated above
  the cap, and the strongest player's rating from the data's own games (against the other players at
  their ladder ratings) is not above its ladder rating: z = (data − ladder) / SE <= z as above
  (one-sided: data weaker than claimed makes ``exceeds_cap`` harder, not easier; the two-sided z is
  reported); falsified otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

CELL_TESTS = {
    "exceeds_cap": "the best imitation network, re-rated, is at least d Elo above the cap",
    "saturates": "the best imitation network, re-rated, is less than d Elo above the cap",
    "bends": "compute per Elo above the cap (expert iteration) is at least k times that below it (imitation)",
    "no_bend": "compute per Elo above the cap is less than k times that below it",
}
CONTROL_TESTS = {
    "ladder_reproduces": "each cap agent rated again on fresh games agrees with its ladder rating",
    "ladder_has_headroom": "the ladder's strongest agent is at least 2 d Elo above every cap",
    "data_elo_as_claimed": "no data player is above the cap, and the data's own games rate its strongest no higher "
                           "than the ladder does",
}
CONDITIONS = ("cap", "above_cap")
FLIP = {"corroborated": "falsified", "falsified": "corroborated"}


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The best Elo reached at or below each point's compute: (compute, running max), one per point."""
    out: list[tuple[float, float]] = []
    for c, e in sorted(points):
        out.append((c, max(e, out[-1][1]) if out else e))
    return out


def slope(points: list[tuple[float, float]]) -> float:
    """Elo per decade of compute: least squares of elo on log10 compute (nan with < 2 distinct x)."""
    x = np.log10([c for c, _ in points])
    if len(points) < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, [e for _, e in points], 1)[0])


def _interval(g: float, se: float, level: float) -> tuple[float, float]:
    h = _z(level) * se
    return g - h, g + h


def _gap(rows: list[dict[str, Any]], cap: str, cond: str, cfg: Any) -> dict[str, Any]:
    data = next(r for r in rows if r["kind"] == "data" and r["cap"] == cap)
    conf = next((r for r in rows if r["kind"] == "confirm" and r["cap"] == cap and r["condition"] == cond), None)
    if conf is None:
        return {"what": f"no confirmed network at {cond}", "estimate": None, "lo": None, "hi": None}
    se = math.hypot(conf["se"], data["cap_se"])
    g = conf["elo"] - data["cap_elo"]
    lo, hi = _interval(g, se, cfg.level)
    return {"what": f"confirmed Elo − cap Elo (w{conf['width']}@{conf['step']}, {cond})", "estimate": g, "lo": lo,
            "hi": hi, "se": se, "elo": conf["elo"], "cap_elo": data["cap_elo"], "selected_elo": conf["selected_elo"]}


def slopes(rows: list[dict[str, Any]], cap: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    imit = [r for r in rows if r["kind"] == "imitation" and r["cap"] == cap and r["condition"] == "cap"]
    ex = sorted((r for r in rows if r["kind"] == "exit" and r["cap"] == cap), key=lambda r: r["iteration"])
    return imit, ex


def ratio(rows: list[dict[str, Any]], cap: str, cfg: Any) -> dict[str, Any]:
    """r = ExIt slope ÷ imitation-frontier slope, with its parametric interval."""
    imit, ex = slopes(rows, cap)
    pts = [(r["compute"], r["elo"]) for r in imit]
    s_imit, s_exit = slope(frontier(pts)), slope(frontier([(r["compute"], r["elo"]) for r in ex]))
    rng = np.random.default_rng(cfg.seed)
    ie, ise = np.array([r["elo"] for r in imit]), np.array([r["se"] for r in imit])
    ee, ese = np.array([r["elo"] for r in ex]), np.array([r["se"] for r in ex])
    draws_i, draws_r = [], []
    for _ in range(cfg.n_sims):
        di = ie + rng.standard_normal(len(ie)) * ise
        de = ee + rng.standard_normal(len(ee)) * ese
        si = slope(frontier([(r["compute"], e) for r, e in zip(imit, di)]))
        se_ = slope(frontier([(r["compute"], e) for r, e in zip(ex, de)]))
        draws_i.append(si)
        draws_r.append(se_ / si if si > 0 else math.nan)
    a = (1 - cfg.level) / 2
    di_arr, dr = np.array(draws_i), np.array(draws_r)
    imit_lo = float(np.nanquantile(di_arr, a)) if np.isfinite(di_arr).any() else math.nan
    ok = np.isfinite(dr)
    lo, hi = (float(np.quantile(dr[ok], a)), float(np.quantile(dr[ok], 1 - a))) if ok.mean() > 0.99 else (None, None)
    r = s_exit / s_imit if s_imit > 0 else math.nan
    return {"what": "ExIt slope ÷ imitation slope (Elo per decade)", "estimate": r if math.isfinite(r) else None,
            "lo": lo, "hi": hi, "imitation_slope": s_imit, "imitation_slope_lo": imit_lo, "exit_slope": s_exit,
            "cost_ratio": 1 / r if r and math.isfinite(r) and r > 0 else None, "networks": len(pts),
            "iterations": len(ex), "decidable": len(pts) >= 2 and lo is not None and imit_lo > 0}


def evaluate_cells(rows: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    """One cell per (cap, condition); the slope tests are the cap's (expert iteration starts from the
    cap condition's best network), so both of a cap's cells carry the same ``bends``/``no_bend``."""
    cells = []
    for cap in cfg.caps:
        q = ratio(rows, cap, cfg)
        bar = 1 / cfg.k
        if not q["decidable"]:
            bend = "inconclusive"
        else:
            bend = "corroborated" if q["hi"] < bar else "falsified" if q["lo"] >= bar else "inconclusive"
        nob = FLIP.get(bend, "inconclusive")
        slope_tests = {"bends": {**q, "rule": f"hi(r) < 1/k = {bar:.3g}; falsified if lo(r) >= {bar:.3g}",
                                 "verdict": bend},
                       "no_bend": {**q, "rule": f"lo(r) >= 1/k = {bar:.3g}; falsified if hi(r) < {bar:.3g}",
                                   "verdict": nob}}
        for cond in CONDITIONS:
            g = _gap(rows, cap, cond, cfg)
            ex = "inconclusive" if g["lo"] is None else "corroborated" if g["lo"] >= cfg.d else \
                "falsified" if g["hi"] < cfg.d else "inconclusive"
            tests = {"exceeds_cap": {**g, "rule": f"lo >= {cfg.d:g}; falsified if hi < {cfg.d:g}", "verdict": ex},
                     "saturates": {**g, "rule": f"hi < {cfg.d:g}; falsified if lo >= {cfg.d:g}",
                                   "verdict": FLIP.get(ex, "inconclusive")}, **slope_tests}
            cells.append({"cap": cap, "condition": cond, "verdicts": {k: t["verdict"] for k, t in tests.items()},
                          "tests": tests})
    return cells


def _agrees(new: float, se_new: float, old: float, se_old: float, z: float) -> dict[str, Any]:
    diff, se = new - old, math.hypot(se_new, se_old)
    return {"new": new, "ladder": old, "diff": diff, "se": se, "z": diff / se if se else math.inf,
            "agrees": abs(diff) <= z * se}


def control_checks(rows: list[dict[str, Any]], cfg: Any) -> dict[str, dict[str, Any]]:
    z = _z(1 - (1 - cfg.level) / max(len(cfg.caps), 1))  # Bonferroni over the caps
    re = [{"agent": r["agent"], **_agrees(r["elo"], r["se"], r["ladder_elo"], r["ladder_se"], z)}
          for r in rows if r["kind"] == "rerate"]
    worst = max(re, key=lambda c: abs(c["z"]), default=None)
    out = {"ladder_reproduces": {
        "what": f"largest |z| of {len(re)} re-ratings ({worst['agent'] if worst else '–'})",
        "estimate": abs(worst["z"]) if worst else None, "lo": None, "hi": None, "per_cap": re,
        "rule": f"every |z| <= {z:.2f}", "verdict": "inconclusive" if not re else
        "corroborated" if all(c["agrees"] for c in re) else "falsified"}}
    ladder = {r["agent"]: r for r in rows if r["kind"] == "ladder"}
    top = max(ladder.values(), key=lambda r: r["elo"])
    room = []
    for d in (r for r in rows if r["kind"] == "data"):
        g = top["elo"] - d["cap_elo"]
        lo, hi = _interval(g, math.hypot(top["se"], d["cap_se"]), cfg.level)
        room.append({"cap": d["cap"], "top": top["agent"], "estimate": g, "lo": lo, "hi": hi})
    least = min(room, key=lambda r: r["lo"], default=None)
    out["ladder_has_headroom"] = {
        "what": f"strongest ladder agent ({top['agent']}) − cap, least headroom ({least['cap'] if least else '–'})",
        "estimate": least["estimate"] if least else None, "lo": least["lo"] if least else None,
        "hi": least["hi"] if least else None, "per_cap": room, "rule": f"lo >= 2d = {2 * cfg.d:g}",
        "verdict": "inconclusive" if not room else "corroborated" if all(r["lo"] >= 2 * cfg.d for r in room)
        else "falsified" if any(r["hi"] < 2 * cfg.d for r in room) else "inconclusive"}
    per = []
    for d in (r for r in rows if r["kind"] == "data"):
        above = [p for p, e in d["players"].items() if e > d["cap_elo"]]
        own = d["top_in_data"]
        check = _agrees(own["elo"], own["se"], ladder[d["top"]]["elo"], ladder[d["top"]]["se"], z) if own else None
        per.append({"cap": d["cap"], "top": d["top"], "above_cap": above, **(check or {}),
                    "ok": not above and (check is None or check["z"] <= z)})
    worst_d = max((p for p in per if "z" in p), key=lambda p: abs(p["z"]), default=None)
    out["data_elo_as_claimed"] = {
        "what": f"players above the cap, and the top player's rating from the data's games ({len(per)} caps)",
        "estimate": abs(worst_d["z"]) if worst_d else None, "lo": None, "hi": None, "per_cap": per,
        "rule": f"no player above the cap and every z <= {z:.2f} (one-sided)",
        "verdict": "inconclusive" if not per else "corroborated" if all(p["ok"] for p in per) else "falsified"}
    return out
