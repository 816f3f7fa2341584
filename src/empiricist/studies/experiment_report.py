"""The report of an experiment study: verdicts with their numbers, the experiment's own section, the rule.

Same kit as the eval study report (``studies.report``): its CSS, head, verdict marks, amendments and
footer, every string escaped, the full results as JSON in a ``<script type="application/json">`` block,
no script to run. The experiment contributes one section (its cells and figures), already escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from empiricist.report.html import html_table, script_json
from empiricist.studies.report import (
    amendments_html,
    footer_html,
    notes_html,
    status_html,
    study_head,
    verdict_html,
)


def _num(x: float | None) -> str:
    """A number as the report prints it; None (no interval could be formed) as a dash."""
    if x is None:
        return "–"
    return f"{x:+.0f}" if abs(x) >= 10 else f"{x:.3f}"


def part_text(p: dict[str, Any]) -> str:
    """One test's numbers in words: ``what: mean [lo, hi] (holds if rule) → verdict``."""
    return (f"{p['what']}: {_num(p['estimate'])} [{_num(p['lo'])}, {_num(p['hi'])}] "
            f"(holds if {p['rule']}) → {p['verdict']}")


NUMBERS = "numbers: mean [95% CI over runs, clustered by seed when seeds repeat]"


def _checks(rows: list[dict[str, Any]], party: bool, numbers: str = NUMBERS) -> str:
    head = ["id", "test", *(["cell"] if party else ["kind"]), numbers, "verdict"]
    body = [[r["id"], f"{r['test']}: {r['description']}",
             *([f"{r['cell']} ({r['n_runs']} runs)" if "n_runs" in r else r["cell"]] if party else [r["kind"]]),
             "; ".join(part_text(p) for p in r["parts"]), r["verdict"]] for r in rows]
    return html_table(head, body)


def render_experiment_report(r: dict[str, Any], section: str, numbers: str = NUMBERS) -> str:
    """The page; ``section``: the experiment's own HTML (cells, figures); ``numbers``: what its intervals are."""
    banner = f'<div class="banner">{escape(r["outcome"])}</div>' if not r["controls_passed"] else ""
    summary = html_table(["party", "verdict", "as computed", "counted"],
                         [[p["name"], p["final"], p["verdict"], "yes" if p["counted"] else "no"] for p in r["parties"]])
    parties = "".join(
        f'<h2 id="party-{escape(p["name"])}">Party {escape(p["name"])}: {verdict_html(p["final"])}</h2>'
        f"<blockquote>{escape(p['position'] or '(no position stated)')}</blockquote>"
        f"<p>Predicted: <code>{escape(p['combine'])}</code> (as computed: {verdict_html(p['verdict'])}).</p>"
        + _checks([q for q in r["predictions"] if q["party"] == p["name"]], party=True, numbers=numbers)
        for p in r["parties"])
    g = r["grid"]
    grid = (f"{g['n_runs']} runs, {'reused from' if g['reused'] else 'trained into'} <code>{escape(g['path'])}</code> "
            f"(grid runtime {g['runtime_s'] / 60:.1f} min; artifact identity {escape(g['identity_hash'])})")
    config = html_table(["key", "value"], [[k, str(v)] for k, v in r["config"].items()])
    title = f"Study {r['study']}: {r['title']}" if r["title"] else f"Study {r['study']}"
    where = (f"experiment <code>{escape(r['experiment'])}</code>, grid <code>{escape(r['grid_name'])}</code>, "
             f"config hash <code>{escape(r['config_hash'])}</code>")
    return f"""{study_head(r, title)}
{status_html(r, where)}
{banner}
<h2 id="outcome">Outcome</h2><p id="outcome-text">{escape(r['outcome'])}</p>{summary}
<h2 id="controls">Controls (evaluated first; each must be corroborated for the study to count)</h2>
{_checks(r['controls'], party=False, numbers=numbers)}
{parties}
{section}
<h2 id="rule">Decision rule (locked with the spec)</h2>
<pre>{escape(r.get('decision_rule', ''))}</pre>
{amendments_html(r['amendments'])}
{notes_html(r)}
<h2 id="inputs">Grid and configuration</h2><p>{grid}</p>{config}
{footer_html(r)}
<script type="application/json" id="study-data">{script_json(r)}</script>
</body></html>
"""
