"""The gradualism grid's figures: every forecast's interval against its measured value, and the measured
trajectories the forecasts were made from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.experiments.gradualism import rule

if TYPE_CHECKING:
    from empiricist.experiments.gradualism.config import GradualismConfig

FILES = ("forecasts.png", "trajectories.png")


def plot_grid(results: dict[str, Any], out: Path, cfg: GradualismConfig) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = rule.forecasts(results["rows"], cfg)
    bar = rule.jump_bar(len(rule.decided(fs, cfg)), cfg.alpha)
    fig, axes = plt.subplots(len(cfg.tasks), 2, figsize=(12, 3.2 * len(cfg.tasks)), squeeze=False)
    for i, task in enumerate(cfg.tasks):
        for j, kind in enumerate(rule.KINDS):
            ax = axes[i][j]
            mine = [f for f in fs if f["task"] == task and f["kind"] == kind]
            for n, f in enumerate(mine):
                color = "tab:blue" if f["covered"] else "tab:red" if abs(f["z"]) > bar else "tab:orange"
                ax.errorbar(n, f["mean"], yerr=[[f["mean"] - f["lo"]], [f["hi"] - f["mean"]]], fmt="none",
                            ecolor=color, capsize=3, alpha=0.8)
                ax.plot(n, f["actual"], "o" if f["forecast"] == "size" else "s", color=color, ms=4)
            ax.set_xticks(range(len(mine)))
            ax.set_xticklabels([f"{f['sweep'].replace('family ', '')}\n{f['size']} {f['forecast'][:4]}" for f in mine],
                               fontsize=6, rotation=90)
            ax.set_title(f"{task}: {'accuracy' if kind == 'acc' else 'mean log p(right answer)'}", fontsize=10)
    fig.suptitle(f"forecast intervals at {cfg.level:g} (bars) and measured values (circle: size, square: checkpoint); "
                 "blue covered, orange outside, red a jump", fontsize=9)
    fig.tight_layout()
    paths = [out / FILES[0]]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    pts = [r for r in results["rows"] if r.get("kind") == "point" and r["task"] == cfg.tasks[0]]
    sweeps = sorted({r["sweep"] for r in pts})
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.6 * len(sweeps), 3.2), squeeze=False, sharey=True)
    for ax, sweep in zip(axes[0], sweeps, strict=True):
        for size in sorted({r["size"] for r in pts if r["sweep"] == sweep}):
            mine = sorted((r for r in pts if r["sweep"] == sweep and r["size"] == size), key=lambda r: r["step"])
            ax.plot([r["step"] for r in mine], [r["acc"] for r in mine], marker="o", ms=3, label=size)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_title(sweep, fontsize=10)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"{cfg.tasks[0]} accuracy")
    fig.tight_layout()
    paths.append(out / FILES[1])
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
