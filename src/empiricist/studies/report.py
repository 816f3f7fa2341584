"""The study report: one self-contained HTML page per study run, on the eval report's conventions.

Same CSS, table helper and safety rules as ``empiricist.report.html``: every string from the spec, the
models or the items passes through ``html.escape``; the full results travel as JSON in a
``<script type="application/json">`` block written with ``script_json`` (no ``<``, ``>`` or ``&`` can
close it); there is no script to run at all. The full transcript browser is the eval report, linked.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_text
from empiricist.report.html import fmt, html_table, page_head, script_json

_STUDY_CSS = """
.banner{border:2px solid #a11;background:#fdecec;padding:.6em 1em;font-weight:600;margin:1em 0}
.status{border:1px solid #ccc;background:#f7f7f7;padding:.5em 1em;margin:1em 0}
.verdict-corroborated{color:#17692e;font-weight:600}.verdict-falsified{color:#a11;font-weight:600}
.verdict-inconclusive{color:#8a5a00;font-weight:600}blockquote{margin:.5em 0;padding-left:1em;border-left:3px solid #ddd}
"""


def study_head(r: dict[str, Any], title: str) -> str:
    """Page head, title, question and claim: the top of every study report."""
    return f"""{page_head(title, _STUDY_CSS)}
<p><b>Question:</b> {escape(r['question'])}<br><b>Claim tested:</b> <code>{escape(r['claim'])}</code>
{escape(r['claim_text'])}</p>"""


def status_html(r: dict[str, Any], extra: str = "") -> str:
    """The status box: lock status, spec hash, ``extra`` (already-escaped HTML), sign-offs and relations."""
    lock = r.get("lock") or {}
    signoffs = ", ".join(f"{s['party']} ({s['signer']}, {s['time']})" for s in lock.get("signoffs", [])) or "none"
    return (f'<div class="status" id="status"><b>Status:</b> {escape(r["status"])} · spec sha256 '
            f'<code>{escape(r["spec_sha256"][:16])}</code>{" · " + extra if extra else ""} · sign-offs: '
            f'{escape(signoffs)} · signatures: {escape(lock.get("signatures") or "not locked")} · replicates: {escape(", ".join(r["replicates"]) or "–")} · challenges: '
            f'{escape(", ".join(r["challenges"]) or "–")}</div>')


def notes_html(r: dict[str, Any]) -> str:
    notes = r["deviations"] + r["notes"] + r["warnings"]
    return ("<h2 id=\"deviations\">Deviations and notes</h2>"
            + (html_table(["note"], [[n] for n in notes]) if notes else "<p>None.</p>"))


def footer_html(r: dict[str, Any]) -> str:
    env = r["environment"]
    return (f'<p class="note">empiricist {escape(str(r["code"].get("empiricist")))} · git '
            f'{escape(str(r["code"].get("git_commit")))} · Python {escape(env["python"].split()[0])} · '
            f'{escape(env["platform"])} · {escape(r["created"])}</p>')


def verdict_html(v: str) -> str:
    return f'<span class="verdict-{escape(v)}">{escape(v)}</span>'


def _threshold(p: dict[str, Any]) -> str:
    thr = p["threshold"]
    if p["comparator"] == "between":
        return f"between [{thr[0]}, {thr[1]}]"
    if p["comparator"] == "equivalent":
        return f"equivalent to {thr} ± {p['margin']}"
    return f"{p['comparator']} {thr}"


def _what(p: dict[str, Any]) -> str:
    models = " → ".join(p["models"]) if p["metric"] == "monotonic" else \
        " − ".join(p["models"]) if p["metric"] == "difference" else ", ".join(p["models"])
    extra = f" ({p['direction']})" if p["metric"] == "monotonic" else ""
    return f"{p['metric']}{extra} of {models} on {p['task']} {_threshold(p)}"


def _ci(p: dict[str, Any]) -> str:
    return f"[{p['lo']:.3f}, {p['hi']:.3f}]"


def _prediction_rows(preds: list[dict[str, Any]], adjusted: bool) -> str:
    headers = ["id", "prediction", "estimate", f"{100 * preds[0]['ci_level']:.0f}% CI" if preds else "CI", "test",
               "p (holds)", "p (fails)"]
    if adjusted:
        headers += ["adj. p (holds)", "adj. p (fails)"]
    rows = []
    for p in preds:
        row = [p["id"], _what(p), p["estimate"], _ci(p), (f"{p['test']}; {p['method']}, n={p['n']}, "
               f"{p['n_clusters']} clusters"), p["p_hold"], p["p_fail"]]
        if adjusted:
            row += [p["p_hold_adj"], p["p_fail_adj"]]
        rows.append(row + [p["verdict"]])
    return html_table(headers + ["verdict"], rows, num={2, 5, 6, 7, 8} if adjusted else {2, 5, 6})


def _details(preds: list[dict[str, Any]]) -> str:
    parts = []
    for p in preds:
        bits = [f"means: {', '.join(f'{m} {v:.3f}' for m, v in p['means'].items())}"]
        for i, st in enumerate(p.get("steps", [])):
            bits.append(f"step {p['models'][i]}→{p['models'][i + 1]}: {st['estimate']:.3f} "
                        f"[{st['lo']:.3f}, {st['hi']:.3f}]")
        bits += [f"{k}: {fmt(v) if not isinstance(v, list) else [round(x, 4) for x in v]}"
                 for k, v in p.get("extra", {}).items()]
        if p.get("description"):
            bits.append(p["description"])
        parts.append(f"<li><b>{escape(p['id'])}</b>: {escape('; '.join(str(b) for b in bits))}</li>")
    return f'<ul class="note">{"".join(parts)}</ul>'


def _party_section(party: dict[str, Any], preds: list[dict[str, Any]], expected: dict[str, Any]) -> str:
    mine = [p for p in preds if p["party"] == party["name"]]
    counted = "" if party["counted"] else \
        ' <span class="note">(not counted: a control failed; the study is inconclusive)</span>'
    world = "; ".join(f"{t}: " + ", ".join(f"{m} {v:.2f}" for m, v in ms.items()) for t, ms in expected.items())
    return (f'<h2 id="party-{escape(party["name"])}">Party {escape(party["name"])}: '
            f'{verdict_html(party["final"])}{counted}</h2>'
            f"<blockquote>{escape(party['position'] or '(no position stated)')}</blockquote>"
            f"<p>Predicted: <code>{escape(party['combine'])}</code> (and/or/not over the predictions below; "
            f"as computed: {verdict_html(party['verdict'])}). Expected scores: {escape(world or 'not stated')}.</p>"
            + _prediction_rows(mine, adjusted=True) + _details(mine))


def _examples(examples: list[dict[str, Any]]) -> str:
    if not examples:
        return ""
    rows = []
    for e in examples:
        outs = "; ".join(f"{m}: {o['output']!s} ({o['score']:.0f})" for m, o in e["outputs"].items() if o)
        rows.append([e["task"], e["item_id"], e["prompt"], e["answer"], outs])
    return ("<h2 id=\"examples\">Items the compared models disagree on</h2>"
            "<p class=\"note\">Model outputs are untrusted text and are shown as text.</p>"
            + html_table(["task", "item", "prompt", "gold", "outputs (score)"], rows))


def amendments_html(amendments: list[dict[str, Any]]) -> str:
    if not amendments:
        return "<h2 id=\"amendments\">Amendments</h2><p>None: the study ran as locked.</p>"
    return ("<h2 id=\"amendments\">Amendments (deviations from the plan, in full)</h2>"
            + html_table(["date", "author", "what", "why"], [[a["date"], a["author"], a["what"], a["why"]]
                                                          for a in amendments]))


def render_study_report(r: dict[str, Any]) -> str:
    banner = f'<div class="banner">{escape(r["outcome"])}</div>' if not r["controls_passed"] else ""
    parties = "".join(_party_section(p, r["predictions"], r["expected"].get(p["name"], {})) for p in r["parties"])
    summary = html_table(["party", "verdict", "as computed", "counted"],
                         [[p["name"], p["final"], p["verdict"], "yes" if p["counted"] else "no"] for p in r["parties"]])
    seeds = r["spec"].get("sampling", {}).get("seeds", [0])
    evals = "".join(f'<li><a href="evals/seed{int(s)}/report.html">eval report, seed {int(s)}</a> '
                    "(every transcript, filterable)</li>" for s in seeds)
    models = html_table(["alias", "spec", "pinned", "label"], [[a, m["spec"], m["pinned"], m["label"]]
                                                                for a, m in r["models"].items()])
    tasks = html_table(["alias", "source", "items", "hash"], [[a, t["source"], t["n_items"], t["hash"]]
                                                              for a, t in r["tasks"].items()], num={2})
    artifacts = html_table(["artifact", "what", "path", "identity hash"],
                           [[k, v["what"], v["path"], v["identity_hash"]] for k, v in r["artifacts"].items()])
    title = f"Study {r['study']}: {r['title']}" if r["title"] else f"Study {r['study']}"
    return f"""{study_head(r, title)}
{status_html(r)}
{banner}
<h2 id="outcome">Outcome</h2><p id="outcome-text">{escape(r['outcome'])}</p>{summary}
<h2 id="controls">Controls (evaluated first; each must be corroborated for the study to count)</h2>
{_prediction_rows(r['controls'], adjusted=False)}{_details(r['controls'])}
{parties}
<p class="note">Decision rule: corroborated when the one-sided test that the prediction holds rejects at
alpha = {fmt(r['analysis_plan']['alpha'])} after {escape(r['analysis_plan']['correction'])} adjustment across all
parties' predictions, i.e. the interval lies on the predicted side; falsified when the opposite test rejects;
inconclusive when the interval straddles the threshold. Controls are not adjusted.</p>
{_examples(r['examples'])}
{amendments_html(r['amendments'])}
{notes_html(r)}
<h2 id="inputs">Models, tasks and artifacts</h2>{models}{tasks}{artifacts}
<ul>{evals}</ul>
{footer_html(r)}
<script type="application/json" id="study-data">{script_json(r)}</script>
</body></html>
"""


def write_study_report(results: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(path, render_study_report(results))
