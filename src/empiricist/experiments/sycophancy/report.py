"""The sycophancy experiment's part of the study report: the grid, attribution, counterfactual, transcripts.

Every string that came from a model or a file is escaped (``html_table`` escapes its cells); figures are
inlined as ``data:`` PNGs so the page is one self-contained file; transcripts are links to the eval runs'
own reports (each keeps every prompt, choice and answer).
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any

from empiricist.report.html import Html, html_table, png_figure

CAPTIONS = {
    "sycophancy.png": "Harmful sycophancy (P(asker's wrong value | stated) − P(it | no view)) by family and size, "
                      "95% cluster-bootstrap intervals over entities; lines: the fitted size trend per family with "
                      "its band; right: the dose-response at each size.",
    "counterfactual.png": "Sycophancy of the retrained model without each removal set, against the reference "
                          "retrained on everything (95% intervals).",
}


def _ci(e: dict[str, Any], key: str = "estimate") -> str:
    return f"{e[key]:+.4f} [{e['lo']:+.4f}, {e['hi']:+.4f}]"


def _link(target: str, base: Path, text: str) -> Html:
    rel = os.path.relpath(target, base) if target else ""
    return Html(f'<a href="{escape(rel)}">{escape(text)}</a>' if rel else escape(text))


def _figure(grid: Path, name: str) -> str:
    return png_figure(grid / name, CAPTIONS.get(name, name))


def grid_table(rows: list[dict[str, Any]], base: Path) -> str:
    body = []
    for r in rows:
        if r.get("kind") != "model":
            continue
        s, k = r["summary"], r["by_knowledge"]
        split = " / ".join("-" if k[n] is None else f"{k[n]['harmful']['estimate']:+.3f} (n={k['n_' + n]})"
                           for n in ("known", "unknown"))
        body.append([r["family"], r["size"], f"{r['params']:,}", _ci(s["harmful"]), _ci(s["right"]),
                     f"{s['p_wrong_none']['estimate']:.3f}", f"{s['letter_bias']['estimate']:.3f}",
                     f"{r['forum_defer_mean']:.3f}", f"{r['fact_acc']:.3f}", split,
                     _link(r.get("eval_run", ""), base, "transcripts")])
    return html_table(["family", "size", "params", "sycophancy (wrong views)", "sycophancy (right views)",
                       "P(wrong value | no view)", "P(A | no view)", "forum deference", "held-out fact acc",
                       "sycophancy when known / unknown", "transcripts"], body)


def comparisons_table(comparisons: list[dict[str, Any]]) -> str:
    body = [[c["size"], f"{c['family']} − {c['against']}",
             *(f"{c[m]['difference']:+.4f} [{c[m]['lo']:+.4f}, {c[m]['hi']:+.4f}]" for m in ("harmful", "right")),
             f"{c['harmful']['p_value']:.2g}", c["n_entities"]] for c in comparisons]
    return html_table(["size", "families", "Δ sycophancy (wrong views)", "Δ sycophancy (right views)", "p (wrong)",
                       "entities"], body)


def trends_table(trends: dict[str, Any]) -> str:
    body = [[f"size trend, {name}", "log10 parameters", f"{t['slope']:+.4f} [{t['slope_lo']:+.4f}, {t['slope_hi']:+.4f}]",
             f"{t['p_value']:.2g}"] for name, t in trends.get("size", {}).items()]
    body += [[f"dose-response, {name}", "dose", f"{t['slope']:+.4f} [{t['slope_lo']:+.4f}, {t['slope_hi']:+.4f}]",
              f"{t['p_value']:.2g}"] for name, t in trends.get("dose", {}).items()]
    return html_table(["fit", "x", "slope of harmful sycophancy [95% CI]", "p (slope = 0)"], body)


def attribution_table(trace: dict[str, Any]) -> str:
    body = []
    for m, r in trace["methods"].items():
        d, f = r["deferred_share"], r["deferred_share_among_forum"]
        body.append([m, d["k"], f"{d['share']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]", f"{d['chance']:.3f}",
                     f"{d['p_value']:.2g}", f"{r['forum_share']['share']:.3f}",
                     f"{f['share']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}]", f"{f['chance']:.3f}", r["seconds"]])
    return html_table(["method", "k", "deferring threads in top-k", "chance", "p (hypergeometric)",
                       "forum docs in top-k", "deferring among the top-k forum docs", "chance (forum)", "seconds"],
                      body)


def counterfactual_table(trace: dict[str, Any], rows: list[dict[str, Any]], base: Path) -> str:
    eff = trace["effects"]
    arms = {r["arm"]: r for r in rows if r.get("kind") == "arm"}
    body = []
    for arm, a in eff["arms"].items():
        vs = eff["vs_full"].get(arm)
        body.append([arm, arms[arm]["removed"], f"{a['mean']:+.4f}",
                     "reference" if vs is None else f"{vs['diff']:+.4f} [{vs['lo']:+.4f}, {vs['hi']:+.4f}]",
                     _link(arms[arm].get("eval_run", ""), base, "transcripts")])
    return html_table(["arm", "documents removed", "sycophancy (wrong views)", "minus the reference", "transcripts"],
                      body)


def section(results: dict[str, Any], grid: Path) -> str:
    from json import loads

    data = loads((grid / "results.json").read_text()) if (grid / "results.json").is_file() else {}
    rows, trace = data.get("rows", []), data.get("trace")
    base = grid.parent
    parts = [f'<h2 id="grid">Sycophancy by family × size</h2>{grid_table(rows, base)}',
             _figure(grid, "sycophancy.png"),
             f'<h2 id="comparisons">Paired family comparisons</h2>{comparisons_table(data.get("comparisons", []))}',
             (f'<h2 id="trends">Fitted trends (weighted least squares, entity bootstrap)</h2>'
             f'{trends_table(data.get("trends", {}))}')]
    if trace:
        pool = trace["pool"]
        best = escape(trace["best_method"])
        note = (f'<p class="note">{trace["n_queries"]} contrast queries (the sycophantic choice against the honest '
                f"one) × a pool of {pool['n']} documents ({pool['n_forum']} forum threads, {pool['n_deferred']} "
                f"deferring; {pool['n_other']} others); k = {trace['k']}.</p>")
        parts += [f'<h2 id="attribution">Attribution of the sycophantic answers (best: {best})</h2>',
                  note, attribution_table(trace),
                  '<h2 id="counterfactual">The counterfactual: retrained without each set</h2>',
                  counterfactual_table(trace, rows, base), _figure(grid, "counterfactual.png")]
    t = data.get("timings_s", {})
    parts.append(f'<p class="note">grid built in {data.get("runtime_s", "?")} s ({escape(str(t))}).</p>')
    return "".join(parts)
