"""The compute–Elo grid's figures: per cap, Elo against compute for imitation (every network and
checkpoint, the frontier) and expert iteration, with the cap; and the ladder itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.experiments.compute_elo import rule

if TYPE_CHECKING:
    from empiricist.experiments.compute_elo.config import ComputeEloConfig

FILES = ("curves.png", "ladder.png")
N_BAND = 500  # parametric draws for a fitted frontier line's band


def line_band(pts: list[dict[str, Any]], level: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The least-squares line through a method's frontier (as the rule fits it) over its compute range,
    and its band: percentiles over draws of every rating from N(elo, se), the frontier refitted."""
    c = np.array([r["compute"] for r in pts])
    xs = np.logspace(np.log10(c.min()), np.log10(c.max()), 30)
    elo, se = np.array([r["elo"] for r in pts]), np.array([r["se"] for r in pts])
    rng = np.random.default_rng(seed)

    def fit(e: np.ndarray) -> np.ndarray:
        front = rule.frontier(list(zip(c.tolist(), e.tolist())))
        coef = np.polyfit(np.log10([f[0] for f in front]), [f[1] for f in front], 1)
        return np.polyval(coef, np.log10(xs))

    draws = np.array([fit(elo + rng.standard_normal(len(elo)) * se) for _ in range(N_BAND)])
    a = (1 - level) / 2
    return xs, fit(elo), np.quantile(draws, a, axis=0), np.quantile(draws, 1 - a, axis=0)


def plot_grid(results: dict[str, Any], out: Path, cfg: ComputeEloConfig) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    z = rule._z(cfg.level)
    fig, axes = plt.subplots(1, len(cfg.caps), figsize=(6 * len(cfg.caps), 4.2), squeeze=False, sharey=True)
    for ax, cap in zip(axes[0], cfg.caps, strict=True):
        data = next(r for r in rows if r["kind"] == "data" and r["cap"] == cap)
        imit, ex = rule.slopes(rows, cap)
        for w in cfg.widths:
            mine = sorted((r for r in imit if r["width"] == w), key=lambda r: r["compute"])
            ax.errorbar([r["compute"] for r in mine], [r["elo"] for r in mine], yerr=[z * r["se"] for r in mine],
                        marker="o", ms=3, lw=0.8, capsize=2, alpha=0.8, label=f"imitation w{w}")
        above = [r for r in rows if r["kind"] == "imitation" and r["cap"] == cap and r["condition"] == "above_cap"]
        ax.errorbar([r["compute"] for r in above], [r["elo"] for r in above], yerr=[z * r["se"] for r in above],
                    fmt="^", color="tab:gray", ms=5, capsize=2, label=f"asked to play at cap + {cfg.above_cap:g}")
        front = rule.frontier([(r["compute"], r["elo"]) for r in imit])
        ax.plot([c for c, _ in front], [e for _, e in front], color="black", lw=1.5, label="imitation frontier")
        ax.errorbar([r["compute"] for r in ex], [r["elo"] for r in ex], yerr=[z * r["se"] for r in ex], marker="s",
                    ms=4, color="tab:red", lw=1.5, capsize=2, label="expert iteration")
        for pts, color, what in ((imit, "black", "imitation"), (ex, "tab:red", "expert iteration")):
            if len({r["compute"] for r in pts}) >= 2:
                xs, mid, lo, hi = line_band(pts, cfg.level, cfg.seed)
                ax.plot(xs, mid, color=color, ls=":", lw=1.2, label=f"{what}: frontier fit, {cfg.level:g} band")
                ax.fill_between(xs, lo, hi, color=color, alpha=0.12, lw=0)
        ax.axhline(data["cap_elo"], color="tab:purple", ls="--", lw=1, label=f"cap: {cap} ({data['cap_elo']:.0f})")
        ax.set_xscale("log")
        ax.set_xlabel("compute (FLOPs: training; + self-play inference for expert iteration)")
        ax.set_title(f"data capped at {cap}", fontsize=10)
        ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel(f"Elo (random = 0), {cfg.level:g} intervals")
    fig.tight_layout()
    paths = [out / FILES[0]]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    lad = sorted((r for r in rows if r["kind"] == "ladder" and r["agent"].startswith("mcts-")),
                 key=lambda r: int(r["agent"].split("-")[1]))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.errorbar([int(r["agent"].split("-")[1]) for r in lad], [r["elo"] for r in lad],
                yerr=[z * r["se"] for r in lad], marker="o", ms=4, capsize=2)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("MCTS simulations per move (random rollouts)")
    ax.set_ylabel("Elo (random = 0)")
    ax.set_title(f"the ladder: {cfg.ladder['game']}", fontsize=10)
    for r in (r for r in rows if r["kind"] == "rerate"):
        ax.plot(int(r["agent"].split("-")[1]), r["elo"], "x", color="tab:red", ms=7)
    ax.text(0.02, 0.95, "x: re-rated on fresh games (control)", transform=ax.transAxes, fontsize=7, va="top")
    fig.tight_layout()
    paths.append(out / FILES[1])
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
