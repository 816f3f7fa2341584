"""The gradualism study's pre-registered decision rule (its source is hashed into the lock).

Measurement. A sweep is one suite: the size sweep (m1–m4) or one sycophancy family (s1–s3). Every
checkpoint the rule reads is evaluated on a seeded sample of each world task (the same items for every
model); a metric is a task's accuracy (``acc``) or its mean log probability of the right answer
(``logp``, the continuous metric from the same answers).

Forecasts. A line of measured means against log10 x, fitted by least squares, forecasts a new model:
- *size*: per sweep, the largest size's final checkpoint from the smaller sizes' final checkpoints,
  x = parameters (the size sweep: m4 from m1–m3; a family: s3 from s1–s2);
- *checkpoint*: per sweep and size, its final checkpoint from the ``n_early`` checkpoints before it
  (step >= 1), x = step.
The prediction interval uses a *declared* SD of a measured mean about its line (``scatter``, per task,
forecast kind and metric kind, set from the pilot before the lock): se = scatter × sqrt(1 + h), h the new point's
leverage; the interval is forecast ± z(0.5 + level/2) × se, and z = (measured − forecast) / se. Three or
four models leave a fitted line one or two residual degrees of freedom (t = 12.7 or 4.3): an interval
from them is too wide to put anything at risk, so the tolerance is declared instead, and the report
shows the observed RMS of z beside it (≈ 1 when the declared scatter was right).

Cell tests (cell = a metric of ``metrics``, a task and a kind; its forecasts pooled over every sweep;
the other metrics' forecasts are reported and plotted, not decided on or counted in N):
- ``covers_nominal`` (the forecasts cover at their nominal rate). m = forecasts whose interval misses
  the measured value, n = forecasts; p = P(Binomial(n, 1 − level) >= m). Falsified if p < alpha or if
  any of the cell's forecasts jumps (below); corroborated otherwise (no forecasts: inconclusive).
- ``jumps`` (at least one forecast jumps outside). A jump is |z| > z(1 − alpha / (2N)), N = every
  forecast of the study (Bonferroni: a family-wise false-jump rate of alpha when the scatter is as
  declared). Corroborated if any forecast of the cell jumps; falsified if none does (the plan's power
  check says how large a jump that rules out); no forecasts: inconclusive. Each accuracy jump is labelled
  ``artefact`` when the same forecast of the log probability lands inside its interval (a discontinuous
  metric, not a discontinuous model) and ``real`` otherwise; the label is reported, not decided on.

Controls (each must be corroborated for a verdict to count):
- ``interpolation_holds`` (negative: no jump where the line has data on both sides): per sweep, task, size
  and metric, the line of the early checkpoints without the second-to-last one forecasts that one, with
  the checkpoint scatter; corroborated if no such forecast has |z| > z(1 − alpha / (2M)), M = their count
  (the declared scatter and the line hold where nothing new happens); falsified otherwise.
- ``trend_exists`` (positive): in every sweep there is something to forecast: on the first task, the
  largest size's final accuracy minus the smallest's, paired over items, normal 95% interval; corroborated
  if every sweep's lo > min_spread, falsified if any sweep's hi < min_spread, inconclusive otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

CELL_TESTS = {
    "covers_nominal": "the metric's forecasts cover the measured values at their nominal rate, and none jumps",
    "jumps": "at least one of the metric's forecasts lands outside its Bonferroni-widened interval",
}
CONTROL_TESTS = {
    "interpolation_holds": "an early checkpoint left out of its line lands inside the line's interval",
    "trend_exists": "in every sweep the largest size beats the smallest on the first task by at least min_spread",
}
KINDS = ("acc", "logp")


def line_forecast(x: list[float], y: list[float], x_new: float, scatter: float, level: float) -> dict[str, float]:
    """The forecast at ``x_new`` of a least-squares line of ``y`` against log10 ``x``, with the declared scatter."""
    t = np.log10(np.asarray(x, dtype=float))
    design = np.column_stack([np.ones_like(t), t])
    coef = np.linalg.lstsq(design, np.asarray(y, dtype=float), rcond=None)[0]
    row = np.array([1.0, math.log10(x_new)])
    leverage = float(row @ np.linalg.inv(design.T @ design) @ row)
    se = scatter * math.sqrt(1.0 + leverage)
    q = float(stats.norm.ppf(0.5 + level / 2))
    mean = float(row @ coef)
    return {"mean": mean, "se": se, "lo": mean - q * se, "hi": mean + q * se, "leverage": leverage,
            "slope": float(coef[1]), "n_points": len(x)}


def _entry(base: dict[str, Any], kind: str, x: list[float], pts: list[dict[str, Any]], x_new: float,
           actual: dict[str, Any], cfg: Any) -> dict[str, Any]:
    f = line_forecast(x, [p[kind] for p in pts], x_new, cfg.scatter[f"{base['task']}:{base['forecast']}_{kind}"], cfg.level)
    a = float(actual[kind])
    return {**base, "kind": kind, **f, "actual": a, "z": (a - f["mean"]) / f["se"], "covered": f["lo"] <= a <= f["hi"],
            "points": [float(p[kind]) for p in pts], "x": [float(v) for v in x], "x_new": float(x_new)}


def forecasts(rows: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    """Every forecast of the study, in a fixed order (sweep, task, forecast, size, kind)."""
    pts = [r for r in rows if r.get("kind") == "point"]
    out = []
    for sweep in sorted({r["sweep"] for r in pts}):
        for task in sorted({r["task"] for r in pts if r["sweep"] == sweep}):
            mine = [r for r in pts if r["sweep"] == sweep and r["task"] == task]
            finals = sorted((r for r in mine if r["final"]), key=lambda r: r["n_params"])
            if len(finals) >= 3:
                big = finals[-1]
                base = {"sweep": sweep, "task": task, "forecast": "size", "size": big["size"],
                        "what": f"{sweep}: {big['size']} from {', '.join(r['size'] for r in finals[:-1])}"}
                for kind in KINDS:
                    out.append(_entry(base, kind, [r["n_params"] for r in finals[:-1]], finals[:-1],
                                      big["n_params"], big, cfg))
            for last in finals:
                early = sorted((r for r in mine if r["size"] == last["size"] and r["early"]), key=lambda r: r["step"])
                if len(early) < 2:
                    continue
                base = {"sweep": sweep, "task": task, "forecast": "checkpoint", "size": last["size"],
                        "what": f"{sweep}: {last['size']}@step{last['step']} from steps "
                                f"{', '.join(str(r['step']) for r in early)}"}
                for kind in KINDS:
                    out.append(_entry(base, kind, [r["step"] for r in early], early, last["step"], last, cfg))
    return out


def decided(fs: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    """The forecasts of the metrics the rule decides on."""
    return [f for f in fs if f"{f['task']}:{f['kind']}" in cfg.metrics]


def jump_bar(n_forecasts: int, alpha: float) -> float:
    """|z| beyond which a forecast jumps: Bonferroni over every forecast of the study."""
    return float(stats.norm.ppf(1 - alpha / (2 * max(n_forecasts, 1))))


def _label(f: dict[str, Any], all_f: list[dict[str, Any]]) -> str | None:
    if f["kind"] != "acc":
        return None
    twin = next(g for g in all_f if g["kind"] == "logp" and g["what"] == f["what"] and g["task"] == f["task"])
    return "artefact" if twin["covered"] else "real"


def evaluate_cells(rows: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    fs = forecasts(rows, cfg)
    bar = jump_bar(len(decided(fs, cfg)), cfg.alpha)
    cells = []
    for metric in cfg.metrics:
        task, kind = metric.split(":")
        mine = [f for f in fs if f["task"] == task and f["kind"] == kind]
        n, misses = len(mine), sum(not f["covered"] for f in mine)
        jumped = [{"what": f["what"], "z": f["z"], "label": _label(f, fs)} for f in mine if abs(f["z"]) > bar]
        p = float(stats.binom.sf(misses - 1, n, 1 - cfg.level)) if n else math.nan
        cover = {"what": f"coverage of {n} forecasts at {cfg.level:g}", "estimate": 1 - misses / n if n else None,
                 "lo": None, "hi": None, "misses": misses, "n": n, "p_too_many_misses": p,
                 "rule": f"P(>= {misses} misses) >= {cfg.alpha:g} and no |z| > {bar:.2f}",
                 "verdict": "inconclusive" if not n else "falsified" if p < cfg.alpha or jumped else "corroborated"}
        zs = np.array([f["z"] for f in mine]) if mine else np.array([math.nan])
        biggest = max(mine, key=lambda f: abs(f["z"]), default=None)
        jump = {"what": f"largest |z| of {n} ({biggest['what'] if biggest else '–'})",
                "estimate": float(np.max(np.abs(zs))) if mine else None, "lo": None, "hi": None, "bar": bar,
                "jumped": jumped, "rms_z": float(np.sqrt(np.mean(zs ** 2))) if mine else None,
                "rule": f"some |z| > {bar:.2f}; falsified if none",
                "verdict": "inconclusive" if not n else "corroborated" if jumped else "falsified"}
        cells.append({"task": task, "metric": kind, "verdicts": {"covers_nominal": cover["verdict"],
                                                                 "jumps": jump["verdict"]},
                      "tests": {"covers_nominal": cover, "jumps": jump}})
    return cells


def interpolations(rows: list[dict[str, Any]], cfg: Any) -> list[dict[str, Any]]:
    """Each size's second-to-last early checkpoint, forecast from the other early ones."""
    pts = [r for r in rows if r.get("kind") == "point" and r["early"]]
    out = []
    for sweep, task, size in sorted({(r["sweep"], r["task"], r["size"]) for r in pts}):
        early = sorted((r for r in pts if (r["sweep"], r["task"], r["size"]) == (sweep, task, size)),
                       key=lambda r: r["step"])
        if len(early) < 3:
            continue
        held, fit = early[-2], early[:-2] + early[-1:]
        base = {"sweep": sweep, "task": task, "forecast": "checkpoint", "size": size,
                "what": f"{sweep}: {size}@step{held['step']} from steps {', '.join(str(r['step']) for r in fit)}"}
        for kind in KINDS:
            out.append(_entry(base, kind, [r["step"] for r in fit], fit, held["step"], held, cfg))
    return out


def control_checks(rows: list[dict[str, Any]], cfg: Any) -> dict[str, dict[str, Any]]:
    inter = decided(interpolations(rows, cfg), cfg)
    ibar = jump_bar(len(inter), cfg.alpha)
    worst_i = max(inter, key=lambda f: abs(f["z"]), default=None)
    out = {"interpolation_holds": {
        "what": f"largest |z| of {len(inter)} interpolations ({worst_i['what'] + ', ' + worst_i['kind'] if worst_i else '–'})",
        "estimate": abs(worst_i["z"]) if worst_i else None, "lo": None, "hi": None, "bar": ibar,
        "jumped": [{"what": f["what"], "task": f["task"], "kind": f["kind"], "z": f["z"]} for f in inter
                   if abs(f["z"]) > ibar],
        "rule": f"no |z| > {ibar:.2f}",
        "verdict": "inconclusive" if not inter else "falsified" if any(abs(f["z"]) > ibar for f in inter)
        else "corroborated"}}
    task = cfg.tasks[0]
    per = []
    for sweep in sorted({r["sweep"] for r in rows if r.get("kind") == "point"}):
        finals = sorted((r for r in rows if r.get("kind") == "point" and r["sweep"] == sweep and r["task"] == task
                         and r["final"]), key=lambda r: r["n_params"])
        d = np.asarray(finals[-1]["scores"]) - np.asarray(finals[0]["scores"])
        half = 1.96 * float(d.std(ddof=1)) / math.sqrt(d.size)
        per.append({"sweep": sweep, "estimate": float(d.mean()), "lo": float(d.mean()) - half,
                    "hi": float(d.mean()) + half, "n_items": int(d.size)})
    lo, hi = min(p["lo"] for p in per), min(p["hi"] for p in per)
    verdict = "corroborated" if lo > cfg.min_spread else "falsified" if hi < cfg.min_spread else "inconclusive"
    worst = min(per, key=lambda p: p["lo"])
    out["trend_exists"] = {"what": f"{task} accuracy, largest minus smallest size (weakest sweep: {worst['sweep']})",
                             "estimate": worst["estimate"], "lo": worst["lo"], "hi": worst["hi"], "per_sweep": per,
                             "rule": f"every sweep's lo > {cfg.min_spread:g}; falsified if any hi < {cfg.min_spread:g}",
                             "verdict": verdict}
    return out
