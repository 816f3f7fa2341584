"""Probe one property across layers and checkpoints: the table, the heatmap, and the artifact folder.

Each checkpoint is loaded once; the residual stream at every requested layer is captured at the last
token of each text, and all layers (task and control labels together) are cross-validated in one batched
call. Rows are what a results table needs: model, step, layer, accuracy with CI, control accuracy,
selectivity, chance.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.artifacts import (
    Workspace,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    building,
    write_manifest,
)
from empiricist.errors import InputError
from empiricist.internals.datasets import ProbeDataset
from empiricist.internals.probes import DEFAULT_REGS, probe_with_control

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle

COLUMNS = ("model", "step", "site", "layer", "acc", "acc_lo", "acc_hi", "control_acc", "selectivity", "chance", "n",
           "reg")


def checkpoint_specs(suite: str, size: str | None = None, workspace: Workspace | str | Path | None = None) -> list[str]:
    """``suite:<folder>/<size>@step<N>`` for every finished checkpoint of one size (default: the largest)."""
    from empiricist.suite.handles import resolve_suite
    from empiricist.suite.suite import Suite

    s = Suite(resolve_suite(suite, workspace))
    size = size or s.sizes[-1]
    steps = s.checkpoints(size)
    if not steps:
        raise InputError(f"suite {s.path.name}: size {size!r} has no checkpoints")
    return [f"suite:{s.path}/{size}@step{n}" for n in steps]


def model_world(spec: str, workspace: Workspace | str | Path | None = None) -> Path:
    """The world a suite model was trained on (what a probe's --world defaults to)."""
    from empiricist.errors import ArtifactError
    from empiricist.suite.handles import resolve
    from empiricist.suite.suite import Suite

    prov = resolve(spec, workspace=workspace)
    if prov["source"] != "suite":
        raise InputError(f"{spec} is not a suite model: pass --world")
    try:
        return Suite(prov["suite"]).world_path()
    except ArtifactError as e:
        raise InputError(f"{e}: pass --world") from None


def probe_specs(models: Sequence[str], suite: str | None = None, size: str | None = None,
                all_checkpoints: bool = False, workspace: Workspace | str | Path | None = None) -> list[str]:
    """Expand --model / --suite / --all-checkpoints into the list of checkpoints to probe."""
    from empiricist.suite.handles import resolve

    if not all_checkpoints:
        if not models:
            raise InputError("give --model SPEC (or --suite NAME --all-checkpoints)")
        return list(models)
    if suite is None:
        if len(models) != 1 or not models[0].startswith("suite:"):
            raise InputError("--all-checkpoints needs --suite NAME or one --model suite:<suite>/<size>")
        prov = resolve(models[0], workspace=workspace)
        suite, size = prov["suite"], prov["size"]
    return checkpoint_specs(suite, size, workspace)


def parse_layers(layers: str) -> str | list[str]:
    """``all`` → every residual layer; ``0,2,4`` → those layers."""
    if layers.strip() == "all":
        return "resid"
    try:
        return [f"resid.{int(x)}" for x in layers.replace(" ", "").split(",") if x]
    except ValueError:
        raise InputError(f"--layers must be 'all' or comma-separated integers, got {layers!r}") from None


def probe_model(handle: ModelHandle, dataset: ProbeDataset, sites: str | Sequence[str] = "resid", *, kind: str = "logistic",
                k: int = 5, regs: Sequence[float] = DEFAULT_REGS, seed: int = 0, batch_size: int = 32) -> list[dict]:
    """Probe rows (one per site) for one loaded model."""
    from empiricist.internals.activations import collect_activations

    acts = collect_activations(handle.model, handle.tokenizer, dataset.texts, sites, "last", batch_size=batch_size)
    names = list(acts.acts)
    X = np.stack([acts.acts[s] for s in names])
    rows = probe_with_control(X, dataset.labels, dataset.types, kind=kind, k=k, regs=regs, seed=seed)
    step = handle.provenance.get("step")
    return [{"model": handle.name, "step": step, "site": s, "layer": int(s.split(".")[1]) if "." in s else -1, **r}
            for s, r in zip(names, rows, strict=True)]


def probe_models(specs: Sequence[str], dataset: ProbeDataset, sites: str | Sequence[str] = "resid", *,
                 workspace: Workspace | str | Path | None = None, progress: bool = True,
                 **kw: Any) -> tuple[list[dict], dict[str, str]]:
    """Probe rows for every model spec, and each model's weight hash (for the manifest)."""
    from tqdm import tqdm

    from empiricist.suite.handles import load_model

    rows: list[dict] = []
    hashes: dict[str, str] = {}
    for spec in tqdm(specs, desc="probe", unit="model", disable=not progress):
        h = load_model(spec, workspace=workspace)
        hashes[h.name] = h.model_hash
        rows += probe_model(h, dataset, sites, **kw)
    return rows, hashes


def plot_heatmap(rows: list[dict], path: Path, title: str) -> list[Path]:
    """Accuracy and selectivity by layer (rows) × checkpoint (columns); PNG and SVG next to each other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(dict.fromkeys((r["model"], r["step"]) for r in rows))
    layers = sorted({r["layer"] for r in rows})
    grids = {key: np.full((len(layers), len(cols)), np.nan) for key in ("acc", "selectivity")}
    for r in rows:
        for key, g in grids.items():
            g[layers.index(r["layer"]), cols.index((r["model"], r["step"]))] = r[key]
    labels = [f"step {s}" if s is not None else m for m, s in cols]
    chance = float(np.mean([r["chance"] for r in rows]))
    fig, axes = plt.subplots(2, 1, figsize=(3 + 0.8 * len(cols), 2 * (1.3 + 0.35 * len(layers))), squeeze=False)
    for ax, (key, g) in zip(axes[:, 0], grids.items(), strict=True):
        lo, hi = (chance, 1.0) if key == "acc" else (min(0.0, np.nanmin(g)), max(0.05, np.nanmax(g)))
        im = ax.imshow(g, origin="lower", aspect="auto", cmap="viridis", vmin=lo, vmax=hi)
        ax.set_xticks(range(len(cols)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(layers)), [f"resid.{i}" for i in layers], fontsize=8)
        ax.set_title("probe accuracy" if key == "acc" else "selectivity (acc − control acc)", fontsize=9)
        for (i, j), v in np.ndenumerate(g):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{title} (chance {chance:.2f})", fontsize=10)
    fig.tight_layout()
    out = []
    for ext in ("png", "svg"):
        with atomic_path(path.with_suffix(f".{ext}")) as tmp:
            fig.savefig(tmp, dpi=120, format=ext)
        out.append(path.with_suffix(f".{ext}"))
    plt.close(fig)
    return out


def rows_csv(rows: list[dict], columns: Sequence[str] = COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def run_probe(specs: Sequence[str], dataset: ProbeDataset, out_dir: str | Path, sites: str | Sequence[str] = "resid",
              *, overwrite: bool = True, force: bool = False, progress: bool = True,
              workspace: Workspace | str | Path | None = None,
              **kw: Any) -> tuple[Path, list[dict]]:
    """Probe every model, write results.{json,csv} and heatmap.{png,svg} as a ``probe`` artifact.

    ``overwrite`` replaces an earlier probe result there; ``force`` (``--overwrite``) replaces anything."""
    rows, hashes = probe_models(specs, dataset, sites, workspace=workspace, progress=progress, **kw)
    config = {"specs": list(specs), "dataset": dataset.name, "sites": sites, **kw}
    with building(out_dir, overwrite=overwrite, force=force) as tmp:
        atomic_write_json(tmp / "results.json", {"rows": rows, "dataset": dataset.meta})
        atomic_write_text(tmp / "results.csv", rows_csv(rows))
        plot_heatmap(rows, tmp / "heatmap", f"{dataset.name}: linear probe")
        write_manifest(tmp, kind="probe", config=config,
                       inputs={"dataset": dataset.hash, **{f"model:{k}": v for k, v in hashes.items()}})
    return Path(out_dir), rows
