"""The grid's figures: disclosure along each attack per arm (bands over seeds), and per arm the capability
and the probe's accuracy before and after the strongest attack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from empiricist.experiments.safeguards.config import ARMS
from empiricist.stats.means import t_band

COLORS = {"mle": "#444444", "mle_ft": "#d62728", "filter": "#2ca02c", "conditional": "#1f77b4",
          "unlikelihood": "#9467bd"}
FILES = ("attacks.png", "arms.png")


def plot_grid(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r.get("kind") == "model"]
    cells = [(a["n"], a["lr"]) for a in rows[0]["attacks"]]
    steps = np.asarray(results["checkpoints"], dtype=float)
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 3.6), squeeze=False, sharey=True)
    for ax, (n, lr) in zip(axes[0], cells, strict=True):
        for arm in ARMS:
            traj = np.array([next(a for a in r["attacks"] if (a["n"], a["lr"]) == (n, lr))["disclosure"]
                             for r in rows if r["arm"] == arm])
            m, lo, hi = t_band(traj)
            ax.plot(steps + 1, m, color=COLORS[arm], label=arm, marker="o", ms=3)
            ax.fill_between(steps + 1, lo, hi, color=COLORS[arm], alpha=0.15)
        ax.axhline(results["config"]["recovered"], color="k", ls=":", lw=1)
        ax.axhline(results["chance"], color="grey", ls="--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("attack step + 1")
        ax.set_title(f"{n} disclosing examples, lr {lr:g}", fontsize=10)
    axes[0][0].set_ylabel("disclosure rate (eval people)")
    axes[0][-1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    paths = [out / FILES[0]]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(ARMS))
    for i, arm in enumerate(ARMS):
        mine = [r for r in rows if r["arm"] == arm]
        m, lo, hi = t_band(np.array([[r["capability"]] for r in mine]))
        a1.errorbar(i, m[0], yerr=[[m[0] - lo[0]], [hi[0] - m[0]]], fmt="o", color=COLORS[arm], capsize=3)
        for off, key, marker in ((-0.12, "probe_before", "o"), (0.12, "probe_after", "s")):
            m, lo, hi = t_band(np.array([[r[key]["acc"]] for r in mine]))
            a2.errorbar(i + off, m[0], yerr=[[m[0] - lo[0]], [hi[0] - m[0]]], fmt=marker, color=COLORS[arm],
                        capsize=3, mfc="white" if key == "probe_after" else COLORS[arm])
    a1.set_title("fact-QA accuracy (capability)", fontsize=10)
    a2.set_title("probe for the code's class: before ● / after ○ the strongest attack", fontsize=10)
    a2.axhline(0.5, color="grey", ls="--", lw=0.8)
    for ax in (a1, a2):
        ax.set_xticks(x, ARMS, rotation=20, fontsize=8)
    fig.tight_layout()
    paths.append(out / FILES[1])
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths
