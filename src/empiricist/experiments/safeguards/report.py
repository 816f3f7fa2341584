"""The safeguards experiment's part of the study report: per arm before/after the attack, the recovery
table, the figures, and links to the eval runs (every prompt and completion).

Every string that came from a model or a file is escaped (``html_table`` escapes its cells); figures are
inlined as ``data:`` PNGs so the page is one self-contained file.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.experiments.safeguards import rule
from empiricist.experiments.safeguards.config import ARMS, SafeguardsConfig
from empiricist.report.html import Html, html_table, png_figure

CAPTIONS = {
    "attacks.png": "Disclosure rate of the eval people along each attack (fine-tuning on N disclosing examples of "
                   "other people), per arm: mean over seeds with a 95% t-band; dotted: the 'recovered' rate; "
                   "dashed: chance (a random code).",
    "arms.png": "Left: fact-QA accuracy per arm (capability, 95% t-interval over seeds). Right: a linear probe for "
                "the code's class at the question's last token, before and after the strongest attack (chance 0.5).",
}


def _mean(rows: list[dict[str, Any]], key: Any) -> str:
    vals = [key(r) for r in rows]
    m, lo, hi = rule.t_interval(vals)
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if len(vals) > 1 else f"{m:.3f}"


def arms_table(rows: list[dict[str, Any]], cfg: SafeguardsConfig, base: Path) -> str:
    body = []
    for arm in ARMS:
        mine = [r for r in rows if r.get("kind") == "model" and r["arm"] == arm]
        rec = [x for r in mine for x in rule.recovery(r, cfg)]
        steps = np.array([x["steps_to_recover"] for x in rec])
        censored = sum(x["censored"] for x in rec)
        runs = sorted({run for r in mine for run in r.get("eval_runs", [])})
        links = Html(" ".join(f'<a href="{escape(os.path.relpath(p, base))}">{i + 1}</a>' for i, p in enumerate(runs)))
        body.append([arm, _mean(mine, lambda r: r["capability"]), _mean(mine, lambda r: r["disclosure"]),
                     _mean(mine, lambda r: r["knowledge"]), f"{np.median(steps):g}" if steps.size else "–",
                     f"{censored}/{len(rec)}", _mean(mine, lambda r: r["attacks"][-1]["knowledge"][-1]),
                     _mean(mine, lambda r: r["probe_before"]["acc"]), _mean(mine, lambda r: r["probe_after"]["acc"]),
                     (f"{sum(r['trace']['in_pretraining_data'] for r in mine)}/"
                      f"{sum(r['trace']['disclosed'] for r in mine)}"), links])
    return html_table(["arm", "fact-QA acc", "disclosure before", "knowledge before (prefilled)",
                       "median steps to recover", "attacks censored", "knowledge after strongest attack",
                       "probe before", "probe after", "disclosures stated in own pretraining data",
                       "eval runs"], body)


def tests_table(results: dict[str, Any]) -> str:
    body = []
    for cell in results.get("cells", []):
        for test, t in cell["tests"].items():
            if t["lo"] is None:  # fewer than two informative seeds: no interval
                est = "–" if t["estimate"] is None else f"{t['estimate']:+.3f}"
                body.append([cell["arm"], test, f"{est} (no interval: {t['n']} informative seed(s))", t["rule"],
                             t["verdict"]])
                continue
            extra = f" ({2 ** t['estimate']:.2f}×)" if test == "outlasts_finetuning" else ""
            body.append([cell["arm"], test, f"{t['estimate']:+.3f} [{t['lo']:+.3f}, {t['hi']:+.3f}]{extra}",
                         t["rule"], t["verdict"]])
    return html_table(["arm", "test", "estimate [95% t-interval over seeds]", "rule", "verdict"], body)


def section(results: dict[str, Any], grid: Path) -> str:
    data = json.loads((grid / "results.json").read_text()) if (grid / "results.json").is_file() else {}
    if not data:
        return ""
    cfg = SafeguardsConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["config"].items()})
    rows = data["rows"]
    scorer = next((r for r in rows if r.get("kind") == "scorer"), {})
    note = (f'<p class="note">{len(cfg.seeds)} seeds × {len(ARMS)} arms; {data.get("n_eval_people")} eval people, '
            f"chance {data.get('chance', 0):.3f}; recovered = disclosure ≥ {cfg.recovered:g}; attacks "
            f"{escape(str(cfg.attack_cells()))} (examples, learning rate), {cfg.attack_steps} steps. Scorer against "
            f"the world: {scorer.get('false_positives')} false positives in {scorer.get('clean_docs')} clean "
            f"documents, {scorer.get('missed')} missed of {scorer.get('disclosing')} disclosing threads.</p>")
    parts = ['<h2 id="arms">Arms before and after the attack</h2>', note, arms_table(rows, cfg, grid.parent),
             png_figure(grid / "attacks.png", CAPTIONS["attacks.png"]),
             png_figure(grid / "arms.png", CAPTIONS["arms.png"]),
             '<h2 id="tests">Each arm against the fine-tuned safeguard</h2>', tests_table(results)]
    parts.append(f'<p class="note">grid built in {data.get("runtime_s", "?")} s '
                 f'({escape(str(data.get("timings_s", {})))}).</p>')
    return "".join(parts)
