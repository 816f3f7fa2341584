"""The live view of a watched suite: a terminal table that refreshes, and an HTML page rewritten on every
poll (each metric's trajectory over steps per size, with its band and the thresholds; the alerts).

Rendering only: the numbers come from ``Watcher.metrics`` and ``Watcher.alerts``. Every string from a
model or a file is escaped (``html_table``), figures are inlined, the page loads nothing.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import atomic_write_text
from empiricist.report.html import html_table, page_head, png_figure

if TYPE_CHECKING:
    from rich.table import Table

    from empiricist.monitor.watch import Watcher


def latest(metrics: list[dict[str, Any]], confidence: float) -> list[dict[str, Any]]:
    """Per (size, task): the row of the last evaluated step at ``confidence``."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for m in metrics:
        if m["confidence"] == confidence:
            key = (m["size"], m["task"])
            if key not in last or m["step"] > last[key]["step"]:
                last[key] = m
    return [last[k] for k in sorted(last)]


def table(watcher: Watcher) -> Table:
    """The terminal view: each size × task at its newest checkpoint, with interval and alert state."""
    from rich.table import Table

    conf = watcher.policy.confidences[0]
    alerted = {(a["size"], watcher.task_name(a["threshold"]["task"])) for a in watcher.alerts()}
    t = Table(title=f"{watcher.suite.name} · policy {watcher.policy.id} ({watcher.policy.sha256[:12]})")
    for col in ("size", "step", "task", "metric", f"mean [{conf:.0%} CI]", "alert"):
        t.add_column(col)
    for m in latest(watcher.metrics(), conf):
        ci = "–" if m["lo"] is None else f"{m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"
        t.add_row(m["size"], str(m["step"]), m["task"], m["metric"], ci,
                  "ALERT" if (m["size"], m["task"]) in alerted else "")
    return t


def plot(watcher: Watcher, out: Path) -> list[Path]:
    """One figure per task: mean and band over steps (log scale, step + 1) per size, thresholds dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = watcher.metrics()
    paths = []
    for name in sorted({m["task"] for m in metrics}):
        ths = [th for th in watcher.policy.thresholds if watcher.task_name(th.task) == name]
        conf = ths[0].confidence if ths else watcher.policy.confidences[0]
        rows = [m for m in metrics if m["task"] == name and m["confidence"] == conf]
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for size in sorted({m["size"] for m in rows}):
            mine = sorted((m for m in rows if m["size"] == size), key=lambda m: m["step"])
            x = [m["step"] + 1 for m in mine]
            ax.plot(x, [m["mean"] for m in mine], marker="o", ms=3, label=size)
            if all(m["lo"] is not None for m in mine):
                ax.fill_between(x, [m["lo"] for m in mine], [m["hi"] for m in mine], alpha=0.15)
        for th in ths:
            ax.axhline(th.value, ls="--", lw=1, color="k")
            ax.annotate(f"{th.id}: {th.when}", (1, th.value), fontsize=7, va="bottom")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training step + 1")
        ax.set_ylabel(rows[0]["metric"] if rows else "score")
        ax.set_title(f"{name} ({conf:.0%} intervals)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_page(watcher: Watcher) -> Path:
    """``report.html`` in the watcher's folder, rewritten atomically."""
    figures = plot(watcher, watcher.folder)
    p = watcher.policy
    ths = html_table(["id", "task", "crossed when", "confidence", "action"],
                     [[t.id, t.task, t.when, f"{t.confidence:.0%}", t.action] for t in p.thresholds])
    alerts = html_table(["threshold", "checkpoint", "mean [CI]", "action", "time", "evidence (eval run)"],
                        [[a["threshold"]["id"], f"{a['size']}@step{a['step']}",
                          f"{a['mean']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]", a["threshold"]["action"], a["time"],
                          a["evidence"]["eval_run"]] for a in watcher.alerts()])
    body = [page_head(f"monitor: {watcher.suite.name}"),
            (f"<p class=\"note\">policy {escape(p.id)} sha256 {p.sha256} · refreshed "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}</p>"),
            "<h2>Thresholds (locked)</h2>", ths, "<h2>Alerts</h2>", alerts if watcher.alerts() else "<p>none</p>",
            "<h2>Trajectories</h2>", *(png_figure(f, f"{f.stem}: mean and interval per size over training; dashed: "
                                                   "thresholds") for f in figures), "</body></html>"]
    return atomic_write_text(watcher.folder / "report.html", "\n".join(body))


def share_text(e: dict[str, Any]) -> str:
    """A proportion with its interval and count, as the reports print it."""
    return "–" if e["estimate"] is None else f"{e['estimate']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}] (n {e['n']})"


def _forecast_plot(res: dict[str, Any], path: Path) -> Path:
    """Each forecast's interval against what was measured (accuracy and log p(right))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = res["forecasts"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(fs) + 1.6), squeeze=False)
    for ax, key, title in ((axes[0][0], "acc", "accuracy"), (axes[0][1], "logp", "mean log p(right answer)")):
        for i, f in enumerate(fs):
            v = f[key]
            ax.plot([v["lo"], v["hi"]], [i, i], color="#1f77b4", lw=3, alpha=0.5)
            ax.plot(v["mean"], i, "|", color="#1f77b4", ms=10)
            ax.plot(v["actual"], i, "o", color="#2ca02c" if v["covered"] else "#d62728", ms=5)
        ax.set_yticks(range(len(fs)), [f["what"] for f in fs] if key == "acc" else [""] * len(fs), fontsize=7)
        ax.set_title(f"{title}: {res['level']:.0%} prediction interval, measured ●", fontsize=9)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_gradualism_page(results: list[dict[str, Any]], out: Path, title: str) -> Path:
    """The gradualism report: per task the forecasts (interval, measured, covered, verdict), coverage,
    per-item predictability and what could not be forecast; one self-contained page."""
    out.mkdir(parents=True, exist_ok=True)
    body = [page_head(title)]
    for res in results:
        cov = res["coverage"]
        body.append(f"<h2>{escape(res['task'])}</h2><p class=\"note\">{cov['n']} forecasts at {res['level']:.0%}: "
                    f"accuracy covered {cov['acc']}, log p(right) covered {cov['logp']}; eval run "
                    f"{escape(res.get('eval_run', ''))}</p>")
        rows = [[f["what"], f"{f['acc']['mean']:.3f} [{f['acc']['lo']:.3f}, {f['acc']['hi']:.3f}]",
                 f"{f['acc']['actual']:.3f}", "yes" if f["acc"]["covered"] else "NO",
                 f"{f['logp']['mean']:.2f} [{f['logp']['lo']:.2f}, {f['logp']['hi']:.2f}]",
                 f"{f['logp']['actual']:.2f}", "yes" if f["logp"]["covered"] else "NO", f["verdict"]]
                for f in res["forecasts"]]
        body.append(html_table(["forecast", "accuracy: predicted [PI]", "measured", "covered",
                                "log p(right): predicted [PI]", "measured", "covered", "verdict"], rows))
        if res["forecasts"]:
            fig = _forecast_plot(res, out / f"{res['task']}.png")
            body.append(png_figure(fig, "Each forecast's prediction interval (bar, | the point forecast) and the "
                                        "measured value (green: inside, red: outside)."))
        body.append(html_table(["items", "precision P(late right | early right)", "recall", "base rate"],
                               [[it["what"], share_text(it["precision"]), share_text(it["recall"]),
                                 share_text(it["base_rate"])] for it in res["items"]]))
        if res["skipped"]:
            body.append("<ul>" + "".join(f"<li>skipped: {escape(s)}</li>" for s in res["skipped"]) + "</ul>")
    body.append("</body></html>")
    return atomic_write_text(out / "report.html", "\n".join(body))
