"""Run the whole grid and write it as an artifact: ``run_stego_grid(config, out_dir)``.

Two phases, each one batched training: (1) the λ = 0 twins, one per (training fraction, seed); each
twin's dominant frequency at the probe layer becomes k*, the frequency whose phase S the penalised runs
must hide — the one the unpenalised network *would* use, so evading it means changing what it computes,
not avoiding a feature it never had; (2) every (variant, λ > 0) run, with its twin's seed, split,
initialisation and k*. Then fresh probes on every run, aggregation over seeds, plots and the summary.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from empiricist.artifacts import (
    Workspace,
    atomic_write_json,
    atomic_write_text,
    building,
    config_hash,
    write_manifest,
)
from empiricist.experiments.probe_evasion.analysis import dominant_frequency, generalisation_step, posthoc
from empiricist.experiments.probe_evasion.config import StegoConfig, get_grid
from empiricist.experiments.probe_evasion.predictions import evaluate_predictions, study_spec
from empiricist.experiments.probe_evasion.report import (
    aggregate,
    plot_curves,
    plot_layers,
    plot_phase,
    summary_html,
    summary_markdown,
)
from empiricist.experiments.probe_evasion.train import RunSpec, Trained, merge, padded_rows, train_runs

if TYPE_CHECKING:
    from empiricist.execute import Executor
from empiricist.internals.sweep import rows_csv


@dataclass
class StegoResults:
    """The artifact folder plus what is in it, for callers that keep going in Python."""

    path: Path
    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    runtime_s: float


def _rows(cfg: StegoConfig, trained: Trained, k_star: np.ndarray) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Per-run result rows and per-run curves (T, R) for one trained batch."""
    post = posthoc(cfg, trained, k_star)
    c = trained.curves
    gen, censored = generalisation_step(trained.steps, c["test_acc"], cfg.grok_threshold)
    R = len(trained.runs)
    live = c["head_acc"][:, np.arange(R), k_star - 1]  # (T, R): the online probe for S_k*
    penalised = np.where([r.lam > 0 for r in trained.runs], c["pen_probe_acc"], live)
    rows = []
    for i, r in enumerate(trained.runs):
        rows.append({
            "seed": r.seed, "frac": r.frac, "lam": r.lam, "variant": r.variant, "k_star": int(k_star[i]),
            "gen_step": int(gen[i]), "censored": bool(censored[i]),
            "final_test_acc": float(c["test_acc"][-1, i]), "final_train_acc": float(c["train_acc"][-1, i]),
            "pen_probe_acc": float(penalised[-1, i]), "live_probe_acc": float(live[-1, i]),
            "final_penalty": float(c["penalty"][-1, i]) if r.lam > 0 else 0.0,
            **{k: (int(v[i]) if k == "k_after" else float(v[i])) for k, v in post.items()},
        })
        rows[-1]["switched"] = rows[-1]["k_after"] != rows[-1]["k_star"]
    curves = {"test_acc": c["test_acc"], "train_acc": c["train_acc"], "probe_penalised": penalised,
              "probe_live": live, "task_loss": c["task_loss"], "penalty": c["penalty"]}
    return rows, curves


def _train_split(cfg: StegoConfig, runs: list[RunSpec], progress: bool, desc: str,
                 executor: Executor | None = None) -> Trained:
    """One batch of runs, cut into as many parts as ``cfg.threads`` fit in the cores and trained side by
    side through the shared scheduler (empiricist.execute); the same bytes as one batch (``train_runs``)."""
    from empiricist.execute import Job, available_cores, run_jobs

    cores = available_cores()
    n = max(1, min(len(runs), cores // max(cfg.threads, 1) if cfg.threads else 1))
    if n == 1:
        return train_runs(cfg, runs, progress, desc=desc)
    pad, size = padded_rows(cfg, runs), -(-len(runs) // n)
    chunks = [runs[i:i + size] for i in range(0, len(runs), size)]
    jobs = [Job(f"{desc} part {i + 1}/{len(chunks)}", train_runs,
                {"cfg": cfg, "runs": chunk, "progress": False, "desc": desc, "pad_to": pad}, cfg.threads)
            for i, chunk in enumerate(chunks)]
    return merge(run_jobs(jobs, cores=cores, progress=progress, desc=desc, executor=executor))


def default_out(cfg: StegoConfig, workspace: Workspace | str | Path | None = None) -> Path:
    return Workspace.at(workspace).dir("stego") / f"{cfg.name}-{config_hash(cfg.to_dict())}"


def run_stego_grid(config: StegoConfig | str = "default", out_dir: str | Path | None = None, progress: bool = True,
                   *, overwrite: bool = False, workspace: Workspace | str | Path | None = None,
                   command: str = "empiricist stego run", executor: Executor | None = None) -> StegoResults:
    """Train and analyse the grid; write results.json, runs.csv, cells.csv, plots and summary.{md,html}.
    ``executor``: where the grid's parts train (default: this machine)."""
    cfg = get_grid(config) if isinstance(config, str) else config
    out = Path(out_dir) if out_dir is not None else default_out(cfg, workspace)
    threads_before = torch.get_num_threads()
    threads = cfg.threads or len(os.sched_getaffinity(0))  # as the suite trainer does (0 = every core)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        base = [RunSpec(s, f, 0.0, "none") for f in cfg.train_fracs for s in range(cfg.seeds)]
        t_base = _train_split(cfg, base, progress, "stego λ=0", executor)
        k_base = dominant_frequency(t_base.reps[cfg.probe_layer], cfg.p)
        k_of = {(r.seed, r.frac): int(k) for r, k in zip(base, k_base, strict=True)}
        rows, curves = _rows(cfg, t_base, k_base)
        penalised = [RunSpec(s, f, lam, v, k_of[(s, f)]) for v in cfg.variants for lam in cfg.lambdas if lam > 0
                     for f in cfg.train_fracs for s in range(cfg.seeds)]
        if penalised:
            t_pen = _train_split(cfg, penalised, progress, "stego λ>0", executor)
            more, more_curves = _rows(cfg, t_pen, np.array([r.k_star for r in penalised]))
            rows += more
            curves = {k: np.concatenate([v, more_curves[k]], axis=1) for k, v in curves.items()}
        curves["steps"] = t_base.steps
    finally:
        torch.set_num_threads(threads_before)
    cells = aggregate(rows, cfg)
    verdicts = evaluate_predictions(rows, cfg)
    runtime = time.perf_counter() - t0
    with building(out, overwrite=overwrite) as tmp:
        images = [plot_phase(cells, cfg, tmp / "phase.png").name, plot_curves(curves, rows, cfg, tmp / "curves.png").name,
                  plot_layers(cells, cfg, tmp / "layers.png").name]
        md = summary_markdown(cfg, cells, verdicts, images, runtime, command)
        atomic_write_text(tmp / "summary.md", md)
        atomic_write_text(tmp / "summary.html", summary_html(md, tmp))
        atomic_write_json(tmp / "results.json", {"config": cfg.to_dict(), "rows": rows, "cells": cells,
                                                 "verdicts": verdicts, "runtime_s": runtime,
                                                 "study": study_spec(cfg)})
        atomic_write_text(tmp / "runs.csv", rows_csv(rows, list(rows[0])))
        atomic_write_text(tmp / "cells.csv", rows_csv(cells, list(cells[0])))
        np.savez_compressed(tmp / "curves.npz", **curves)
        write_manifest(tmp, kind="stego_grid", config=cfg.to_dict(), extra={"runtime_s": runtime, "threads": threads})
    return StegoResults(out, rows, cells, verdicts, runtime)
