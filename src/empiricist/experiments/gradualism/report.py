"""The gradualism experiment's part of the study report: every forecast against its measurement, the
declared scatter against what was observed, per-item predictability, the figures and the eval runs.

Every string from a model or file is escaped (``html_table`` escapes its cells); figures are inlined.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.experiments.gradualism import rule
from empiricist.experiments.gradualism.config import GradualismConfig
from empiricist.report.html import Html, html_table, png_figure
from empiricist.stats.forecast import item_predictability

CAPTIONS = {
    "forecasts.png": "Every forecast's interval (the line of earlier sizes or checkpoints, declared scatter) and the "
                     "value measured when the model arrived. Blue: covered; orange: outside at the nominal level; "
                     "red: a jump (outside the Bonferroni-widened interval).",
    "trajectories.png": "The measured trajectories the forecasts were made from (first task's accuracy, every "
                        "evaluated checkpoint).",
}


def config_of(d: dict[str, Any]) -> GradualismConfig:
    return GradualismConfig(**{**d, "doses": tuple(d["doses"]), "tasks": tuple(d["tasks"])})


def forecast_rows(rows: list[dict[str, Any]], cfg: GradualismConfig) -> list[dict[str, Any]]:
    fs = rule.forecasts(rows, cfg)
    bar = rule.jump_bar(len(rule.decided(fs, cfg)), cfg.alpha)
    return [{**f, "state": "covered" if f["covered"] else "jump" if abs(f["z"]) > bar else "outside"} for f in fs]


def forecasts_table(fs: list[dict[str, Any]]) -> str:
    body = [[f["what"], f["task"], f["kind"], ", ".join(f"{p:.3f}" for p in f["points"]),
             f"{f['mean']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}]", f"{f['actual']:.3f}", f"{f['z']:+.2f}", f["state"]]
            for f in fs]
    return html_table(["forecast", "task", "metric", "earlier points", "forecast [interval]", "measured", "z", ""],
                      body)


def scatter_table(fs: list[dict[str, Any]], cfg: GradualismConfig) -> str:
    body = []
    for key, declared in cfg.scatter.items():
        task, rest = key.split(":")
        kind_f, kind = rest.rsplit("_", 1)
        z = [f["z"] for f in fs if f["task"] == task and f["forecast"] == kind_f and f["kind"] == kind]
        if z:
            rms = float(np.sqrt(np.mean(np.square(z))))
            body.append([task, kind_f, kind, f"{declared:g}", len(z), f"{rms:.2f}", f"{rms * declared:.3g}"])
    return html_table(["task", "forecast", "metric", "declared scatter", "forecasts", "RMS z (1 if as declared)",
                       "implied scatter"], body)


def items_table(rows: list[dict[str, Any]]) -> str:
    pts = [r for r in rows if r.get("kind") == "point" and "scores" in r]
    body = []
    for sweep in sorted({r["sweep"] for r in pts}):
        for task in sorted({r["task"] for r in pts if r["sweep"] == sweep}):
            mine = [r for r in pts if r["sweep"] == sweep and r["task"] == task]
            finals = sorted((r for r in mine if r["final"]), key=lambda r: r["n_params"])
            pairs = [(finals[0], finals[-1])] + [
                (e, f) for f in finals for e in mine if e["size"] == f["size"] and e["eighth"] and e is not f]
            for a, b in pairs:
                p = item_predictability(a["scores"], b["scores"])
                body.append([sweep, task, f"{a['size']}@{a['step']} → {b['size']}@{b['step']}", p["n_items"],
                             *(_est(p[k]) for k in ("precision", "recall", "base_rate"))])
    return html_table(["sweep", "task", "small/early → large/late", "items", "precision", "recall", "base rate"], body)


def _est(d: dict[str, Any]) -> str:
    return "–" if d["estimate"] is None else f"{d['estimate']:.2f} [{d['lo']:.2f}, {d['hi']:.2f}]"


def section(results: dict[str, Any], grid: Path) -> str:
    data = json.loads((grid / "results.json").read_text()) if (grid / "results.json").is_file() else {}
    if not data:
        return ""
    cfg = config_of(data["config"])
    fs = forecast_rows(data["rows"], cfg)
    links = Html(" ".join(f'<a href="{escape(os.path.relpath(p, grid.parent))}">{escape(k)}</a>'
                          for k, p in data["eval_runs"].items()))
    return "".join([
        '<h2 id="forecasts">Every forecast against its measurement</h2>',
        (f'<p class="note">{len(fs)} forecasts; a jump is |z| &gt; {rule.jump_bar(len(rule.decided(fs, cfg)), cfg.alpha):.2f} '
        f'(Bonferroni over all of them at family-wise {cfg.alpha:g}); eval runs (every answer): {links}</p>'),
        png_figure(grid / "forecasts.png", CAPTIONS["forecasts.png"]), forecasts_table(fs),
        '<h2 id="scatter">Declared scatter against what was observed</h2>', scatter_table(fs, cfg),
        '<h2 id="items">Per-item predictability</h2>',
        ('<p class="note">Of the items the small (or early) model gets right, the share the large (or late) one gets '
        'right (precision), of those the large one gets right, the share the small one did (recall), and the large '
        "one's base rate; Wilson 95% intervals. Reported, not decided on.</p>"), items_table(data["rows"]),
        png_figure(grid / "trajectories.png", CAPTIONS["trajectories.png"]),
        f'<p class="note">grid built in {data.get("runtime_s", "?")} s ({escape(str(data.get("timings", {})))}).</p>'])
