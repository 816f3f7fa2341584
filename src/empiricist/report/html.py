"""One self-contained HTML report per eval run: tables with CIs, plots, comparisons, transcripts.

Safety rule (model outputs and eval items are untrusted text): every such string that goes into markup
passes through ``html.escape``; the transcripts travel as JSON inside ``<script type="application/json">``
with ``<``, ``>``, ``&`` written as ``\\u003c``/``\\u003e``/``\\u0026`` (so no ``</script>`` can close the
block), are read with ``JSON.parse`` and rendered with ``textContent`` only, never ``innerHTML``.
"""

from __future__ import annotations

import json
import math
import time
from html import escape
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_text
from empiricist.evals import analysis
from empiricist.evals.results import Results
from empiricist.report.plots import checkpoint_plot, scaling_plot

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:.9em}.fig{max-width:560px}pre{white-space:pre-wrap;margin:0;max-width:520px;
font:12px/1.35 ui-monospace,monospace}#filters{display:flex;gap:.6em;flex-wrap:wrap;margin:.5em 0}
#filters input{min-width:18em}.gold{font-weight:600}.pred{background:#fff3c4}.ok{color:#17692e}.bad{color:#a11}
ul.choices{margin:0;padding-left:1.2em;font:12px/1.35 ui-monospace,monospace}
"""

_JS = """
(function(){
  const data = JSON.parse(document.getElementById("transcripts-data").textContent);
  for (const r of data) {
    r.h = [r.m, r.t, r.id, r.p, r.o || "", r.x || "", ...r.c.map(c => c[0])].join("\\n").toLowerCase();
  }
  const MAX = 300;
  const $ = id => document.getElementById(id);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fill(select, values) {
    for (const v of values) { const o = el("option", v); o.value = v; select.appendChild(o); }
  }
  fill($("f-model"), [...new Set(data.map(r => r.m))]);
  fill($("f-task"), [...new Set(data.map(r => r.t))]);
  function row(r) {
    const tr = el("tr", null, "transcript-row");
    tr.appendChild(el("td", r.m));
    tr.appendChild(el("td", r.t));
    tr.appendChild(el("td", r.id));
    tr.appendChild(el("td", r.s === null ? "" : r.s.toFixed(3), "num " + (r.s >= 0.5 ? "ok" : "bad")));
    const p = el("td"); p.appendChild(el("pre", r.p)); tr.appendChild(p);
    const out = el("td");
    function choiceList(choices) {
      const ul = el("ul", null, "choices");
      for (const [text, lp, gold, pred] of choices) {
        ul.appendChild(el("li", JSON.stringify(text) + (lp === null ? "" : "  " + lp.toFixed(3)),
                          (gold ? "gold " : "") + (pred ? "pred" : "")));
      }
      return ul;
    }
    if (r.c.length > 8) {  // long choice lists: gold and prediction up front, the rest folded
      out.appendChild(choiceList(r.c.filter(c => c[2] || c[3])));
      const more = el("details"); more.appendChild(el("summary", "all " + r.c.length + " choices", "note"));
      more.appendChild(choiceList(r.c)); out.appendChild(more);
    } else if (r.c.length) {
      out.appendChild(choiceList(r.c));
    }
    if (r.o !== null) { out.appendChild(el("pre", r.o)); }
    if (r.x !== null && r.x !== r.o) { out.appendChild(el("div", "graded: " + r.x, "note")); }
    tr.appendChild(out);
    tr.appendChild(el("td", [r.cl, r.sp, r.k === null ? null : (r.k ? "contaminated" : "clean")]
                            .filter(v => v !== null && v !== undefined).join(" \\u00b7 "), "note"));
    return tr;
  }
  function render() {
    const m = $("f-model").value, t = $("f-task").value, s = $("f-score").value;
    const q = $("f-text").value.toLowerCase();
    const body = $("transcript-body");
    body.replaceChildren();
    let matched = 0, shown = 0;
    for (const r of data) {
      if ((m && r.m !== m) || (t && r.t !== t)) continue;
      if ((s === "correct" && !(r.s >= 0.5)) || (s === "incorrect" && !(r.s < 0.5))) continue;
      if (q && !r.h.includes(q)) continue;
      matched++;
      if (shown < MAX) { body.appendChild(row(r)); shown++; }
    }
    $("f-count").textContent = matched + " matching" + (matched > shown ? ", first " + shown + " shown" : "");
  }
  for (const id of ["f-model", "f-task", "f-score"]) $(id).addEventListener("change", render);
  $("f-text").addEventListener("input", render);
  render();
})();
"""


class Html(str):
    """Markup our own code built with every untrusted part already escaped: ``fmt`` passes it through."""


def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, Html):
        return str(x)
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) >= 10 ** -digits or x == 0 else f"{x:.2e}"
    return escape(str(x))


def png_figure(path: Path, caption: str) -> str:
    """A PNG inlined as a ``data:`` URI with its (escaped) caption, so a report stays one file; "" when the
    file is absent."""
    import base64

    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(path.name)}" style="max-width:100%">'
            f'<figcaption class="note">{escape(caption)}</figcaption></figure>')


def html_table(headers: list[str], rows: list[list[Any]], num: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{fmt(v)}</td>' if i in num else f"<td>{fmt(v)}</td>"
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _ci(e: dict[str, Any]) -> str:
    return "–" if e["lo"] is None else f"[{e['lo']:.3f}, {e['hi']:.3f}]"


def _method(e: dict[str, Any]) -> str:
    return f"{e['method']} ({e['n_clusters']} clusters)" if e["method"] == "clustered" else e["method"]


def _estimates(rows: list[dict[str, Any]], lead: list[str]) -> str:
    body = [[*(r.get(k) for k in lead), r["n"], r["mean"], _ci(r), _method(r)] for r in rows]
    return html_table([*lead, "n", "mean", "95% CI", "interval"], body, num={len(lead), len(lead) + 1})


def task_section(results: Results, task: str, summary: list[dict[str, Any]], alpha: float) -> str:
    rows = [r for r in summary if r["task"] == task]
    metric = rows[0]["metric"] if rows else "score"
    parts = [f'<h2 id="task-{escape(task)}">Task {escape(task)} <span class="note">metric: {escape(metric)}</span></h2>']
    parts.append(html_table(["model", "size", "step", "params", "n", "mean", "95% CI", "interval", "truncated"],
                        [[r["model"], r["size"], r["step"], r["n_params"], r["n"], r["mean"], _ci(r), _method(r),
                          r["truncated_items"]] for r in rows], num={3, 4, 5, 8}))
    for key, title in (("split", "By split (e.g. held-out entities)"),
                       ("contaminated", "Clean vs contaminated items (training-data n-gram overlap)")):
        sub = analysis.breakdown(results, task, key, alpha)
        if sub:
            parts.append(f"<h3>{escape(title)}</h3>" + _estimates(sub, ["model", key]))
    cmp = analysis.comparisons(results, task, alpha)
    if cmp:
        parts.append("<h3>Paired comparisons (same items; Holm-adjusted over all pairs)</h3>")
        parts.append(html_table(
            ["a", "b", "mean a−b", "95% CI", "p", "p (Holm)", "McNemar p", "McNemar p (Holm)", "a✓b✗", "a✗b✓",
             "method"],
            [[c["a"], c["b"], c["diff"], f"[{c['lo']:.3f}, {c['hi']:.3f}]", c["p"], c.get("p_holm"),
              c["mcnemar_p"], c.get("mcnemar_p_holm"), c["b10"], c["b01"], c["method"]] for c in cmp],
            num={2, 4, 5, 6, 7, 8, 9}))
    fit = analysis.scaling(results, task, alpha)
    if fit:
        parts.append("<h3>Scaling: score vs log10(parameters)</h3>"
                     f'<img class="fig" alt="scaling plot" src="{scaling_plot(fit, metric)}">')
    curves = analysis.checkpoint_curves(results, task, alpha)
    if curves:
        parts.append("<h3>Score by training step</h3>"
                     f'<img class="fig" alt="checkpoint plot" src="{checkpoint_plot(curves, metric)}">')
    return "\n".join(parts)


def transcripts(results: Results) -> list[dict[str, Any]]:
    """Compact transcript records for the browser (keys kept short: the report may hold many)."""
    out = []
    for r in results.rows():
        gold, logprobs = set(r["gold"] or []), r["logprobs"] or []
        choices = [[c, _finite(logprobs[i]) if i < len(logprobs) else None, i in gold, i == r["pred"]]
                   for i, c in enumerate(r["choices"] or [])]
        out.append({"m": r["model"], "t": r["task"], "id": r["item_id"], "s": r["score"], "p": r["prompt"],
                    "c": choices, "o": r["completion"], "x": r["extracted"], "cl": r["cluster"], "sp": r["split"],
                    "k": r["contaminated"]})
    return out


def _finite(x: float | None) -> float | None:
    """JSON has no infinities (a choice with probability 0 underflows to -inf): show those as blank."""
    return x if x is not None and math.isfinite(x) else None


def script_json(obj: Any) -> str:
    """JSON safe inside a ``<script>`` block: no ``<``, ``>`` or ``&`` survive literally."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def page_head(title: str, css: str = "", scripts: bool = False) -> str:
    """The start of a self-contained page: a CSP that allows no network (inline styles, data: images, and
    inline scripts only when ``scripts``), the title, and the shared CSS."""
    script = "; script-src 'unsafe-inline'" if scripts else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'{script}">
<title>{escape(title)}</title><style>{CSS}{css}</style></head>
<body>
<h1>{escape(title)}</h1>"""


def render_report(results: Results, title: str = "eval report", alpha: float = 0.05) -> str:
    summary = analysis.summary_rows(results, alpha)
    info = results.model_info()
    first = results.rows()[0] if len(results) else {}
    models = html_table(["model", "spec", "weights sha256", "suite", "size", "step", "params"],
                    [[m, i["model_spec"], (i["model_hash"] or "")[:16], Path(i["suite"]).name if i["suite"] else None,
                      i["size"], i["step"], i["n_params"]] for m, i in info.items()], num={5, 6})
    sections = "\n".join(task_section(results, t, summary, alpha) for t in results.tasks())
    return f"""{page_head(title, scripts=True)}
<p class="note">generated {escape(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))} by empiricist ·
scoring: <code>{escape(first.get('scoring') or '')}</code> · seed {fmt(first.get('seed'))} ·
{int(100 * (1 - alpha))}% intervals: clustered when items share clusters, else Wilson (0/1) or t.</p>
<h2>Models</h2>{models}
{sections}
<h2 id="transcripts">Transcripts</h2>
<div id="filters">
<label>model <select id="f-model"><option value="">all</option></select></label>
<label>task <select id="f-task"><option value="">all</option></select></label>
<label>score <select id="f-score"><option value="">all</option><option value="correct">correct (≥ 0.5)</option>
<option value="incorrect">incorrect</option></select></label>
<label>text <input id="f-text" type="search" placeholder="filter by prompt, choice, output, id"></label>
<span id="f-count" class="note"></span></div>
<table id="transcripts-table"><thead><tr><th>model</th><th>task</th><th>item</th><th>score</th><th>prompt</th>
<th>choices (log-prob; <span class="gold">gold</span>, <span class="pred">prediction</span>) / output</th>
<th>cluster · split · contamination</th></tr></thead><tbody id="transcript-body"></tbody></table>
<script type="application/json" id="transcripts-data">{script_json(transcripts(results))}</script>
<script>{_JS}</script>
</body></html>
"""


def write_report(results: Results, path: str | Path, title: str = "eval report", alpha: float = 0.05) -> Path:
    """Render the report and write it atomically; returns its path."""
    return atomic_write_text(path, render_report(results, title, alpha))


def write_run_report(results: Results, folder: Path, title: str) -> None:
    """``run_eval``'s ``render`` hook: the run's ``report.html``, written before the run's manifest."""
    write_report(results, Path(folder) / "report.html", title=title)
