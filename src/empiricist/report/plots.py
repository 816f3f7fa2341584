"""Report figures as self-contained ``data:image/svg+xml;base64`` URIs.

An SVG shown through ``<img>`` cannot run scripts or reach the page, so model names in labels need no
escaping of their own, and the report stays one file that opens from disk.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _errorbars(ax: Any, xs: list[float], points: list[dict[str, Any]], **kw: Any) -> None:
    means = [p["mean"] for p in points]
    # clipped at 0: an interval whose bound sits a rounding error inside the mean (all items right)
    lo = [max(0.0, p["mean"] - p["lo"]) if p["lo"] is not None else 0 for p in points]
    hi = [max(0.0, p["hi"] - p["mean"]) if p["hi"] is not None else 0 for p in points]
    ax.errorbar(xs, means, yerr=[lo, hi], fmt="o", capsize=3, **kw)


def scaling_plot(scaling: dict[str, Any], metric: str) -> str:
    """Per-size means with CIs, the fitted line in log10(params) and its pointwise bootstrap band."""
    fit, points = scaling["fit"], scaling["points"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.fill_between(fit.band_x, fit.band_lo, fit.band_hi, alpha=0.25, color="C0",
                    label=f"{int(100 * (1 - fit.alpha))}% band ({fit.method})")
    ax.plot(fit.band_x, fit.band_fit, color="C0",
            label=f"slope {fit.slope:+.3f}/decade [{fit.slope_ci[0]:+.3f}, {fit.slope_ci[1]:+.3f}]")
    _errorbars(ax, [p["n_params"] for p in points], points, color="k", label="models (mean, CI)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _uri(fig)


def checkpoint_plot(curves: dict[str, list[dict[str, Any]]], metric: str) -> str:
    """Score by training step, one line with a CI band per size."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (size, pts) in enumerate(curves.items()):
        steps = [p["step"] for p in pts]
        ax.plot(steps, [p["mean"] for p in pts], marker="o", color=f"C{i}", label=size)
        if all(p["lo"] is not None for p in pts):
            ax.fill_between(steps, [p["lo"] for p in pts], [p["hi"] for p in pts], color=f"C{i}", alpha=0.2)
    ax.set_xlabel("training step")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _uri(fig)
