"""Aggregate runs over seeds, draw the phase diagrams, and write a self-contained summary.

Every cell (variant, λ, training fraction) gets a mean and a 95% CI over seeds (``empiricist.stats``).
The λ = 0 twins belong to both variants and are drawn in both panels.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.experiments.probe_evasion.config import LAYERS, StegoConfig
from empiricist.experiments.probe_evasion.predictions import PREDICTIONS, _interval

CELL_METRICS = ("gen_step", "censored", "final_test_acc", "final_train_acc", "pen_probe_acc", "live_probe_acc",
                "lin_emb", "lin_h1", "lin_h2", "ctrl_emb", "ctrl_h1", "ctrl_h2", "r2_h1", "r2_h2", "switched", "chance")


def aggregate(rows: list[dict[str, Any]], cfg: StegoConfig) -> list[dict[str, Any]]:
    """One row per (variant, λ, fraction): mean, lo, hi over seeds of each metric."""
    metrics = list(CELL_METRICS) + [f"mlp_{layer}" for layer in cfg.mlp_probe_layers]
    cells = []
    for key in dict.fromkeys((r["variant"], r["lam"], r["frac"]) for r in rows):
        rs = [r for r in rows if (r["variant"], r["lam"], r["frac"]) == key]
        cell: dict[str, Any] = {"variant": key[0], "lam": key[1], "frac": key[2], "n_seeds": len(rs)}
        for m in metrics:
            mean, lo, hi = _interval(np.array([float(r[m]) for r in rs]), np.arange(len(rs)))
            cell[m], cell[f"{m}_lo"], cell[f"{m}_hi"] = mean, lo, hi
        cells.append(cell)
    return cells


def _cell(cells: list[dict], variant: str, lam: float, frac: float) -> dict | None:
    want = "none" if lam == 0 else variant
    return next((c for c in cells if c["variant"] == want and c["lam"] == lam and c["frac"] == frac), None)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_phase(cells: list[dict], cfg: StegoConfig, path: Path) -> Path:
    """Heatmaps over λ × training fraction, one row per variant: time to generalise and probe accuracies."""
    plt = _plt()
    layer = cfg.probe_layer
    panels = [("gen_step", f"steps to held-out acc ≥ {cfg.grok_threshold:.2f}"), (f"lin_{layer}", f"fresh linear probe, {layer}"),
              ("pen_probe_acc", "training-time probe"), ("final_test_acc", "final held-out acc")]
    if layer in cfg.mlp_probe_layers:
        panels.insert(2, (f"mlp_{layer}", f"fresh MLP probe, {layer}"))
    lams, fracs = sorted(cfg.lambdas), sorted(cfg.train_fracs)
    fig, axes = plt.subplots(len(cfg.variants), len(panels), figsize=(3.2 * len(panels), 2.6 * len(cfg.variants)),
                             squeeze=False)
    for i, variant in enumerate(cfg.variants):
        for j, (metric, title) in enumerate(panels):
            ax = axes[i, j]
            grid = np.full((len(fracs), len(lams)), np.nan)
            fmt = ".0f" if metric == "gen_step" else ".2f"
            for (fi, f), (li, lam) in ((a, b) for a in enumerate(fracs) for b in enumerate(lams)):
                c = _cell(cells, variant, lam, f)
                if c is not None:
                    grid[fi, li] = c[metric]
                    half = (c[f"{metric}_hi"] - c[f"{metric}_lo"]) / 2
                    ax.text(li, fi, f"{c[metric]:{fmt}}\n±{half:{fmt}}", ha="center", va="center", fontsize=7,
                            color="w")
            vmax = cfg.steps if metric == "gen_step" else 1.0
            ax.imshow(grid, origin="lower", aspect="auto", cmap="magma" if metric == "gen_step" else "viridis",
                      vmin=0, vmax=vmax)
            ax.set_xticks(range(len(lams)), [f"{x:g}" for x in lams], fontsize=8)
            ax.set_yticks(range(len(fracs)), [f"{x:g}" for x in fracs], fontsize=8)
            ax.set_title(f"{variant}: {title}", fontsize=8)
            if i == len(cfg.variants) - 1:
                ax.set_xlabel("λ", fontsize=8)
            if j == 0:
                ax.set_ylabel("training fraction", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(history: dict[str, np.ndarray], rows: list[dict], cfg: StegoConfig, path: Path) -> Path:
    """Held-out accuracy and the penalised probe's accuracy over training, mean over seeds, middle fraction."""
    plt = _plt()
    fracs = sorted(cfg.train_fracs)
    frac = fracs[len(fracs) // 2]
    steps = history["steps"]
    fig, axes = plt.subplots(2, len(cfg.variants), figsize=(4.5 * len(cfg.variants), 5.5), squeeze=False, sharex=True)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(cfg.lambdas)))
    for j, variant in enumerate(cfg.variants):
        for lam, col in zip(sorted(cfg.lambdas), colors, strict=True):
            idx = [i for i, r in enumerate(rows) if r["frac"] == frac and r["lam"] == lam
                   and r["variant"] in (variant, "none")]
            if not idx:
                continue
            axes[0, j].plot(steps, history["test_acc"][:, idx].mean(1), color=col, label=f"λ={lam:g}")
            axes[1, j].plot(steps, history["probe_penalised"][:, idx].mean(1), color=col, label=f"λ={lam:g}")
        chance = np.mean([r["chance"] for r in rows])
        axes[1, j].axhline(chance, color="grey", ls=":", lw=1)
        axes[0, j].set_title(f"{variant} (training fraction {frac:g}): held-out acc", fontsize=9)
        axes[1, j].set_title("accuracy of the probe in the loss (held-out pairs)", fontsize=9)
        axes[1, j].set_xlabel("step")
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_layers(cells: list[dict], cfg: StegoConfig, path: Path) -> Path:
    """Fresh linear-probe accuracy for S (solid) and its control (dashed) at each layer, by λ."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(cfg.variants), figsize=(4.5 * len(cfg.variants), 3.4), squeeze=False, sharey=True)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(cfg.lambdas)))
    x = np.arange(len(LAYERS))
    for j, variant in enumerate(cfg.variants):
        ax = axes[0, j]
        for lam, col in zip(sorted(cfg.lambdas), colors, strict=True):
            cs = [c for c in cells if c["lam"] == lam and c["variant"] in (variant, "none")]
            for prefix, ls in (("lin", "-"), ("ctrl", "--")):
                keys = [f"{prefix}_{layer}" for layer in LAYERS if f"{prefix}_{layer}" in cs[0]] if cs else []
                if len(keys) != len(LAYERS):
                    continue
                mean = [np.mean([c[k] for c in cs]) for k in keys]
                err = [np.mean([(c[f"{k}_hi"] - c[f"{k}_lo"]) / 2 for c in cs]) for k in keys]
                ax.errorbar(x + 0.03 * (lam > 0), mean, yerr=err, color=col, ls=ls, marker="o", ms=3, capsize=2,
                            label=f"λ={lam:g}" if prefix == "lin" else None)
        ax.axhline(np.mean([c["chance"] for c in cells]), color="grey", ls=":", lw=1)
        ax.set_xticks(x, LAYERS)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{variant}: fresh linear probe for S (dashed: control)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return f"{_fmt(v[0])} [{_fmt(v[1])}, {_fmt(v[2])}]"
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)


def _table(header: Sequence[str], body: list[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(x) for x in row) + " |" for row in body]


LEGEND = ("`gen_step`: first step with held-out accuracy ≥ threshold (censored runs count as the budget; "
          "`censored` is the share). `pen_probe_acc`: the probe inside the loss (frozen snapshot or live "
          "adversary), `live_probe_acc`: an online probe that keeps training, both on held-out pairs. "
          "`lin_*`/`mlp_*`: fresh probes after training (k-fold over all pairs). `ctrl_*`: control task "
          "(S's values shuffled across answers). `r2_h1`: R² of the frequency-k* Fourier pair. `switched`: "
          "share of runs whose own dominant frequency is no longer k*.")
STYLE = ("<!doctype html><meta charset='utf-8'><title>stego grid</title><style>body{font-family:sans-serif;"
         "max-width:1400px;margin:auto}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
         "padding:2px 6px}img{max-width:100%}</style>")


def summary_markdown(cfg: StegoConfig, cells: list[dict], verdicts: list[dict], images: list[str], runtime_s: float,
                     command: str) -> str:
    """The report: predictions, verdicts, the per-cell table, and the plots (relative image links)."""
    layer = cfg.probe_layer
    run = (f"Command: `{command}` — {len(cfg.train_fracs)} fractions × λ {list(cfg.lambdas)} × "
           f"{list(cfg.variants)} × {cfg.seeds} seeds, {cfg.steps} steps, runtime {runtime_s / 60:.1f} min.")
    lines = [f"# Probe evasion on (a + b) mod {cfg.p}: grid `{cfg.name}`", "", run, "", "## Predictions", ""]
    lines += [f"- **{k}**: {v}" for k, v in PREDICTIONS.items()]
    lines += ["", "## Verdicts (paired with the λ = 0 twin; mean [95% CI])", ""]
    lines += _table(["variant", "λ", "runs", f"fresh linear probe {layer}", "chance", "Δ gen. step", "Δ held-out acc",
                     "evades", "cost", "P1 (three-valued)", "supports", "why"],
                    [[v["variant"], v["lam"], v["n_runs"], v["fresh_probe"], v["chance"], v["delta_gen_step"],
                      v["delta_test_acc"], v["verdicts"]["evades"], v["verdicts"]["cost"], v["verdicts"]["P1"],
                      f"**{v['supports']}**", v["why"]] for v in verdicts])
    mlp = [f"mlp_{layer}"] if layer in cfg.mlp_probe_layers else []
    cols = ["gen_step", "censored", "final_test_acc", "pen_probe_acc", "live_probe_acc", "lin_emb", "lin_h1",
            "lin_h2", "ctrl_h1", *mlp, "r2_h1", "switched"]
    lines += ["", "## Cells (mean over seeds [95% CI])", ""]
    lines += _table(["variant", "λ", "frac", *cols],
                    [[c["variant"], c["lam"], c["frac"], *[(c[k], c[f"{k}_lo"], c[f"{k}_hi"]) for k in cols]]
                     for c in cells])
    lines += ["", LEGEND, "", "## Plots", ""]
    lines += [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def summary_html(markdown: str, folder: Path) -> str:
    """A self-contained HTML page from the markdown above: tables, headings, images inlined as base64."""
    out = [STYLE]
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(line) <= set("|-"):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<td>{html.escape(c).replace('**', '')}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("!["):
            name = line[line.index("(") + 1:-1]
            data = base64.b64encode((folder / name).read_bytes()).decode()
            out.append(f"<p><img src='data:image/png;base64,{data}' alt='{html.escape(name)}'></p>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out) + "\n"
