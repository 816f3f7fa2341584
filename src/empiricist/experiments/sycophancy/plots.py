"""The headline figure: sycophancy by family x size (with fitted size trends) and the dose-response."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def plot_grid(table: Mapping[str, Any], path: str | Path) -> Path:
    """Two panels written as a PNG; returns its path.

    ``table``: {"points": [{"family", "dose", "x" (log10 parameters), "estimate", "lo", "hi", "size"?}],
    "size_trends": {family: ``metric.trend`` result} (optional), "dose_trends": {size label or x:
    ``metric.trend`` result} (optional), "measure": a y-axis label (optional)}. Left: each family's points
    against log10 parameters with CI bars and its fitted band; right: each size's points against the dose.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = list(table.get("points", []))
    label = table.get("measure", "sycophancy")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    families = list(dict.fromkeys(p["family"] for p in points))
    for i, fam in enumerate(families):
        ps = sorted((p for p in points if p["family"] == fam), key=lambda p: p["x"])
        c = colors[i % len(colors)]
        dx = _dodge(i, len(families), [p["x"] for p in points])
        _errorbar(left, [p["x"] + dx for p in ps], ps, c, f"{fam} (dose {ps[0].get('dose', '?')})")
        _band(left, table.get("size_trends", {}).get(fam), c)
    left.set_xlabel("log10 parameters")
    left.set_ylabel(label)
    left.set_title("by family and size")

    sizes = list(dict.fromkeys(p.get("size", p["x"]) for p in points))
    for i, size in enumerate(sizes):
        ps = sorted((p for p in points if p.get("size", p["x"]) == size), key=lambda p: p["dose"])
        c = colors[i % len(colors)]
        dx = _dodge(i, len(sizes), [p["dose"] for p in points])
        _errorbar(right, [p["dose"] + dx for p in ps], ps, c, f"size {size}")
        _band(right, table.get("dose_trends", {}).get(size), c)
    right.set_xlabel("dose (forum agree_rate)")
    right.set_title("dose-response")
    for ax in (left, right):
        ax.axhline(0, color="black", lw=0.8)
        if points:
            ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _dodge(i: int, n: int, xs: list[float]) -> float:
    """A small horizontal offset per series, so error bars at one x do not hide each other."""
    span = (max(xs) - min(xs)) or 1.0
    return (i - (n - 1) / 2) * 0.015 * span


def _errorbar(ax: Any, xs: list[float], ps: list[Mapping[str, Any]], color: str, label: str) -> None:
    est = [p["estimate"] for p in ps]
    err = [[p["estimate"] - p["lo"] for p in ps], [p["hi"] - p["estimate"] for p in ps]]
    ax.errorbar(xs, est, yerr=err, fmt="o", capsize=3, color=color, label=label)


def _band(ax: Any, fit: Mapping[str, Any] | None, color: str) -> None:
    if not fit:
        return
    band = fit["band"]
    ax.plot(band["x"], band["fit"], color=color, lw=1)
    ax.fill_between(band["x"], band["lo"], band["hi"], color=color, alpha=0.15, lw=0)
