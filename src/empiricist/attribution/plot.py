"""One figure of a validation run: per method, LDS (fact and text queries) and the counterfactual effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_validation(result: dict[str, Any], path: str | Path) -> Path:
    """Bar charts with 95% CIs; written as PNG (and SVG beside it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    names = [r["method"] for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for off, kind, color in ((-0.2, "fact", "tab:blue"), (0.2, "text", "tab:orange")):
        k = f"lds_{kind}"
        mean = np.array([r[k] for r in rows])
        err = np.array([[r[k] - r[k + "_lo"] for r in rows], [r[k + "_hi"] - r[k] for r in rows]])
        axes[0].bar(x + off, mean, 0.4, yerr=err, capsize=3, color=color, label=f"{kind} queries")
    axes[0].axhline(0, color="black", lw=0.8)
    axes[0].set_title("LDS (Spearman, retrained on random halves)")
    axes[0].legend(frameon=False, fontsize=8)
    mean = np.array([r["cf_vs_random"] for r in rows])
    err = np.array([[r["cf_vs_random"] - r["cf_vs_random_lo"] for r in rows],
                    [r["cf_vs_random_hi"] - r["cf_vs_random"] for r in rows]])
    axes[1].bar(x, mean, 0.5, yerr=err, capsize=3, color="tab:green")
    axes[1].axhline(0, color="black", lw=0.8)
    k = result.get("config", {}).get("cf_k", "k")
    axes[1].set_title(f"remove each query's top {k}, retrain: ΔNLL − random removal", fontsize=10)
    for ax in axes:
        ax.set_xticks(x, names, rotation=30, ha="right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path
