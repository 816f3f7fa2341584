"""The report of an experiment study: verdicts with their numbers, every cell, and the phase diagrams.

Same conventions as the eval study report (``studies.report``): the eval report's CSS and table helper,
every string escaped, the full results as JSON in a ``<script type="application/json">`` block, no
script to run. The grid's figures are embedded as ``data:`` PNGs, so the page stands alone.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_text
from empiricist.report.html import html_table, script_json
from empiricist.studies.report import _amendments, _verdict, study_head

CAPTIONS = {
    "phase.png": "Phase diagrams over λ × training fraction (rows: variants): steps to generalise, fresh probes, "
                 "the training-time probe, final held-out accuracy; mean ± half the 95% CI over seeds.",
    "curves.png": "Held-out accuracy and the accuracy of the probe in the loss over training (middle fraction).",
    "layers.png": "Fresh linear probe for S (solid) and its control (dashed) at each layer, by λ.",
}


def _num(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 10 else f"{x:.3f}"


def _part(p: dict[str, Any]) -> str:
    return (f"{p['what']}: {_num(p['estimate'])} [{_num(p['lo'])}, {_num(p['hi'])}] "
            f"(holds if {p['rule']}) → {p['verdict']}")


def _checks(rows: list[dict[str, Any]], party: bool) -> str:
    head = ["id", "test", *(["cell"] if party else ["kind"]),
            "numbers: mean [95% CI over runs, clustered by seed when seeds repeat]", "verdict"]
    body = [[r["id"], f"{r['test']}: {r['description']}",
             *([f"{r['variant']}, λ = {r['lam']:g} ({r['n_runs']} runs)"] if party else [r["kind"]]),
             "; ".join(_part(p) for p in r["parts"]), r["verdict"]] for r in rows]
    return html_table(head, body)


def _cells(cells: list[dict[str, Any]]) -> str:
    def ci(t: tuple | list) -> str:
        return f"{_num(t[0])} [{_num(t[1])}, {_num(t[2])}]"

    body = [[c["variant"], f"{c['lam']:g}", c["n_runs"], ci(c["fresh_probe"]), f"{c['chance']:.3f}",
             ci(c["delta_gen_step"]), ci(c["delta_test_acc"]), c["verdicts"]["evades"], c["verdicts"]["cost"],
             c["verdicts"]["P1"]] for c in cells]
    return html_table(["variant", "λ", "runs", "fresh linear probe", "chance", "Δ gen. step", "Δ held-out acc", "evades",
                   "cost", "P1"], body)


def _figures(folder: Path) -> str:
    out = []
    for name, caption in CAPTIONS.items():
        if (folder / name).is_file():
            data = base64.b64encode((folder / name).read_bytes()).decode()
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(name)}" '
                       f'style="max-width:100%"><figcaption class="note">{escape(caption)}</figcaption></figure>')
    return "".join(out) or "<p>No figures.</p>"


def render_experiment_report(r: dict[str, Any], figures: Path) -> str:
    lock = r.get("lock") or {}
    signoffs = ", ".join(f"{s['party']} ({s['signer']}, {s['time']})" for s in lock.get("signoffs", [])) or "none"
    banner = f'<div class="banner">{escape(r["outcome"])}</div>' if not r["controls_passed"] else ""
    summary = html_table(["party", "verdict", "as computed", "counted"],
                     [[p["name"], p["final"], p["verdict"], "yes" if p["counted"] else "no"] for p in r["parties"]])
    parties = "".join(
        f'<h2 id="party-{escape(p["name"])}">Party {escape(p["name"])}: {_verdict(p["final"])}</h2>'
        f"<blockquote>{escape(p['position'] or '(no position stated)')}</blockquote>"
        f"<p>Predicted: <code>{escape(p['combine'])}</code> (as computed: {_verdict(p['verdict'])}).</p>"
        + _checks([q for q in r["predictions"] if q["party"] == p["name"]], party=True) for p in r["parties"])
    g = r["grid"]
    grid = (f"{g['n_runs']} runs, {'reused from' if g['reused'] else 'trained into'} <code>{escape(g['path'])}</code> "
            f"(grid runtime {g['runtime_s'] / 60:.1f} min; artifact identity {escape(g['identity_hash'])})")
    config = html_table(["key", "value"], [[k, str(v)] for k, v in r["config"].items()])
    notes = r["deviations"] + r["notes"] + r["warnings"]
    env = r["environment"]
    title = f"Study {r['study']}: {r['title']}" if r["title"] else f"Study {r['study']}"
    return f"""{study_head(r, title)}
<div class="status" id="status"><b>Status:</b> {escape(r['status'])} · spec sha256
<code>{escape(r['spec_sha256'][:16])}</code> · experiment <code>{escape(r['experiment'])}</code>, grid
<code>{escape(r['grid_name'])}</code>, config hash <code>{escape(r['config_hash'])}</code> · sign-offs:
{escape(signoffs)}</div>
{banner}
<h2 id="outcome">Outcome</h2><p id="outcome-text">{escape(r['outcome'])}</p>{summary}
<h2 id="controls">Controls (evaluated first; each must be corroborated for the study to count)</h2>
{_checks(r['controls'], party=False)}
{parties}
<h2 id="cells">Every cell (secondary: the rule applied to each variant and λ)</h2>{_cells(r['cells'])}
<h2 id="figures">Phase diagrams</h2>{_figures(figures)}
<h2 id="rule">Decision rule (locked with the spec)</h2>
<pre>{escape(r.get('decision_rule', ''))}</pre>
{_amendments(r['amendments'])}
<h2 id="deviations">Deviations and notes</h2>
{html_table(['note'], [[n] for n in notes]) if notes else '<p>None.</p>'}
<h2 id="inputs">Grid and configuration</h2><p>{grid}</p>{config}
<p class="note">empiricist {escape(str(r['code'].get('empiricist')))} · git {escape(str(r['code'].get('git_commit')))} ·
Python {escape(env['python'].split()[0])} · {escape(env['platform'])} · {escape(r['created'])}</p>
<script type="application/json" id="study-data">{script_json(r)}</script>
</body></html>
"""


def write_experiment_report(results: dict[str, Any], path: str | Path, figures: str | Path) -> Path:
    return atomic_write_text(path, render_experiment_report(results, Path(figures)))
