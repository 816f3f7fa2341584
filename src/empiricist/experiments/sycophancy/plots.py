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


def grid_table(rows: list[Mapping[str, Any]], n_boot: int, seed: int) -> dict[str, Any]:
    """``plot_grid``'s table from the grid's model rows, with the fitted size trend of each family (x = log10
    parameters) and the dose-response at each size (``metric.trend``, harmful sycophancy)."""
    import math

    from empiricist.experiments.sycophancy.metric import from_grid_row as pf
    from empiricist.experiments.sycophancy.metric import trend

    models = [r for r in rows if r.get("kind") == "model"]

    points = [{"family": r["family"], "dose": r["dose"], "size": r["size"], "x": math.log10(r["params"]),
               **{k: r["summary"]["harmful"][k] for k in ("estimate", "lo", "hi")}} for r in models]
    size_trends, dose_trends = {}, {}
    for fam in dict.fromkeys(r["family"] for r in models):
        rs = [r for r in models if r["family"] == fam]
        size_trends[fam] = trend([(math.log10(r["params"]), pf(r)) for r in rs], measure="harmful",
                                 n_boot=n_boot, seed=seed)
    for size in dict.fromkeys(r["size"] for r in models):
        rs = [r for r in models if r["size"] == size]
        dose_trends[size] = trend([(r["dose"], pf(r)) for r in rs], measure="harmful", n_boot=n_boot, seed=seed)
    return {"points": points, "size_trends": size_trends, "dose_trends": dose_trends,
            "measure": "harmful sycophancy"}


def plot_counterfactual(effects: Mapping[str, Any], path: str | Path) -> Path:
    """Each removal arm's sycophancy minus the reference's, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(effects["vs_full"])
    fig, ax = plt.subplots(figsize=(5, 3))
    est = [effects["vs_full"][a]["diff"] for a in arms]
    err = [[e - effects["vs_full"][a]["lo"] for a, e in zip(arms, est, strict=True)],
           [effects["vs_full"][a]["hi"] - e for a, e in zip(arms, est, strict=True)]]
    ax.errorbar(range(len(arms)), est, yerr=err, fmt="o", capsize=4)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("sycophancy minus the reference")
    ax.set_title("retrained without each set")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
