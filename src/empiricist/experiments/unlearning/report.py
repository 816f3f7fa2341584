"""The unlearning experiment's part of the study report: a table per method against the gold, the
validation choices, the relearning and probe figures, and links to the eval runs (every answer).

Every string that came from a model or a file is escaped (``html_table`` escapes its cells); figures are
inlined as ``data:`` PNGs so the page is one self-contained file.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

from empiricist.experiments.unlearning.plots import NAMES
from empiricist.experiments.unlearning.rule import noise_floor, t_interval
from empiricist.report.html import Html, html_table, png_figure
from empiricist.studies.experiment import finite

CAPTIONS = {
    "relearning.png": "Relearning attack: fact-QA accuracy while fine-tuning on a few forget documents, per method "
                      "and for the gold (which never saw them) learning the same; mean over seeds with a 95% t-band. "
                      "Left: the facts those documents state; right: the other test people's facts.",
    "methods.png": "Per method (95% t-intervals over seeds): accuracy on the forget facts, on other entities' facts, "
                   "and a linear probe's accuracy for the forget people's attributes (fitted on the other people).",
}


def _mean(rows: list[dict[str, Any]], key: Any, fmt: str = ".3f") -> str:
    vals = [key(r) for r in rows]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    m, lo, hi = t_interval(vals)
    return f"{m:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]" if len(vals) > 1 else f"{m:{fmt}}"


def methods_table(rows: list[dict[str, Any]], base: Path) -> str:
    body = []
    for name in NAMES:
        mine = [r for r in rows if r.get("kind") == "model" and r["method"] == name]
        runs = sorted({r["eval_run"] for r in mine} | {r["relearn_eval_run"] for r in mine})
        links = Html(" ".join(f'<a href="{escape(os.path.relpath(p, base))}">{i + 1}</a>' for i, p in enumerate(runs)))
        fq = [r["forget_quality"]["p_value"] for r in mine if r.get("forget_quality")]
        body.append([name, _mean(mine, lambda r: r["knowledge_forget"]), _mean(mine, lambda r: r["utility"]),
                     _mean(mine, lambda r: r["log_truth_ratio_forget"], "+.2f"),
                     f"{min(fq):.2g} / {sorted(fq)[len(fq) // 2]:.2g}" if fq else "–",
                     _mean(mine, lambda r: r["verbatim"]), _mean(mine, lambda r: r.get("privacy_leakage"), "+.3f"),
                     _mean(mine, lambda r: r.get("heldout_loss")), _mean(mine, lambda r: r["probe"]["mean_acc"]),
                     links])
    return html_table(["model", "forget acc", "utility (retain acc)", "mean log truth ratio",
                       "forget quality p (min / median)", "verbatim (ROUGE-L)", "PrivLeak", "held-out loss",
                       "probe acc", "eval runs"], body)


def selection_table(selection: dict[str, Any]) -> str:
    body = [[m, f"{s['lr']:g}", s["step"], f"{s['gap_share']:+.2f}", f"{s['utility_drop']:+.3f}",
             "yes" if s["qualified"] else "no (least damaging)"]
            for m, s in selection.items() if not m.startswith("_")]
    return html_table(["method", "learning rate", "steps", "gap share left (validation)", "utility drop",
                       "within the utility bound"], body)


def _interval(t: dict[str, Any], fmt: str = "+.3f") -> str:
    if t["lo"] is None or t["hi"] is None or t["n"] < 2:
        est = "–" if t["estimate"] is None else f"{t['estimate']:{fmt}}"
        return f"{est} (no interval: {t['n']} seed(s))"
    return f"{t['estimate']:{fmt}} [{t['lo']:{fmt}}, {t['hi']:{fmt}}]"


def tests_table(results: dict[str, Any]) -> str:
    body = []
    for cell in results.get("cells", []):
        mg, rf = cell["tests"]["matches_gold"], cell["tests"]["relearns_fast"]
        body.append([cell["method"], "matches_gold: gap share left", _interval(mg["forget_gap_share"]),
                     mg["forget_gap_share"]["verdict"], ""])
        body.append([cell["method"], "matches_gold: utility − gold", _interval(mg["utility_difference"]),
                     mg["utility_difference"]["verdict"], mg["verdict"]])
        extra = f" ({2 ** rf['estimate']:.1f}×)" if rf["estimate"] is not None and rf["n"] else ""
        body.append([cell["method"], "relearns_fast: log2 speed-up over the gold", _interval(rf) + extra,
                     "", rf["verdict"]])
    return html_table(["method", "statistic", "estimate [95% t-interval over seeds]", "part", "verdict"], body)


def _floor(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> str:
    """The golds' noise floor (reported, not a control: rule.py)."""
    from empiricist.experiments.unlearning.config import get_grid

    f = noise_floor(rows, get_grid("full", {k: v for k, v in cfg.items() if k != "name"}))
    return (f'<p class="note">Noise floor (each seed\'s gold against the next seed\'s, with matches_gold\'s '
            f'statistics): gap share {escape(_interval(finite(f["forget_gap_share"]), "+.2f"))}, utility '
            f'{escape(_interval(finite(f["utility_difference"])))}.</p>')


def section(results: dict[str, Any], grid: Path) -> str:
    data = json.loads((grid / "results.json").read_text()) if (grid / "results.json").is_file() else {}
    if not data:
        return ""
    cfg, rows, req = data["config"], data["rows"], data["requests"]
    note = (f'<p class="note">{len(cfg["seeds"])} seeds; test request: {req["test"]["n_docs"]} documents of '
            f'{len(req["test"]["entities"])} people ({len(req["test"]["facts"])} facts); relearning on '
            f'{len(data["relearn"]["docs"])} of them, stating {len(data["relearn"]["shown_facts"])} facts; '
            f'{cfg["relearn_steps"]} steps at lr {cfg["relearn_lr"]:g}.</p>')
    parts = ['<h2 id="methods">Each method against the retrained gold</h2>', note,
             methods_table(rows, grid.parent), '<h3>Chosen on the validation request</h3>',
             selection_table(data["selection"]),
             png_figure(grid / "relearning.png", CAPTIONS["relearning.png"]),
             png_figure(grid / "methods.png", CAPTIONS["methods.png"]),
             '<h2 id="tests">The rule\'s statistics</h2>', tests_table(results), _floor(rows, cfg),
             (f'<p class="note">grid built in {data.get("runtime_s", "?")} s '
             f'({escape(str(data.get("timings_s", {})))}).</p>')]
    return "".join(parts)
