"""The grid's figures: relearning curves per method against the gold (bands over seeds), and per method
the forget/utility trade-off with the probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from empiricist.experiments.unlearning.config import METHODS
from empiricist.stats.means import t_band

NAMES = ("none", *METHODS, "gold")
COLORS = {"none": "#444444", "gradient_ascent": "#d62728", "gradient_difference": "#ff7f0e", "npo": "#1f77b4",
          "rmu": "#9467bd", "gold": "#2ca02c"}
FILES = ("relearning.png", "methods.png")


def plot_grid(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r.get("kind") == "model"]
    steps = np.asarray(results["checkpoints"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, key, title in ((axes[0], "shown", "facts the relearning documents state"),
                           (axes[1], "unseen", "facts of the other test people (never shown)")):
        for name in NAMES:
            traj = np.array([r["relearn"][key] for r in rows if r["method"] == name])
            m, lo, hi = t_band(traj)
            ax.plot(steps + 1, m, color=COLORS[name], label=name, marker="o", ms=3,
                    ls="--" if name in ("none", "gold") else "-")
            ax.fill_between(steps + 1, lo, hi, color=COLORS[name], alpha=0.12)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("relearning step + 1")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("fact-QA accuracy")
    axes[1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    paths = [out / FILES[0]]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    x = np.arange(len(NAMES))
    for ax, key, title in ((axes[0], "knowledge_forget", "forget-fact accuracy"),
                           (axes[1], "utility", "retain-fact accuracy (utility)"),
                           (axes[2], None, "probe on forget people (mean of 3 attributes)")):
        for i, name in enumerate(NAMES):
            vals = np.array([[r["probe"]["mean_acc"] if key is None else r[key]]
                             for r in rows if r["method"] == name])
            m, lo, hi = t_band(vals)
            ax.errorbar(i, m[0], yerr=[[m[0] - lo[0]], [hi[0] - m[0]]], fmt="o", color=COLORS[name], capsize=3)
        ax.set_xticks(x, NAMES, rotation=25, fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    paths.append(out / FILES[1])
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths
