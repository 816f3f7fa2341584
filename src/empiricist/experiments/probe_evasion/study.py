"""The probe-evasion grid as a study's experiment: cells are (variant, λ > 0), the rule is ``predictions``.

Imported for its side effect: ``@experiment`` registers ``ProbeEvasion`` (spec kind ``probe_evasion``,
alias ``stego``, the name the shipped specs and locks use) with ``empiricist.studies.experiment``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from empiricist.artifacts import is_complete, read_manifest, verify
from empiricist.errors import ArtifactError, InputError
from empiricist.experiments.probe_evasion import predictions
from empiricist.experiments.probe_evasion.config import GRIDS, StegoConfig, get_grid
from empiricist.report.html import html_table
from empiricist.studies.experiment import Experiment, GridRun, Plan, experiment, grid_identity_hash
from empiricist.studies.lock import LockMismatch

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.fields import Fields

CAPTIONS = {
    "phase.png": "Phase diagrams over λ × training fraction (rows: variants): steps to generalise, fresh probes, "
                 "the training-time probe, final held-out accuracy; mean ± half the 95% CI over seeds.",
    "curves.png": "Held-out accuracy and the accuracy of the probe in the loss over training (middle fraction).",
    "layers.png": "Fresh linear probe for S (solid) and its control (dashed) at each layer, by λ.",
}


def _cells(cfg: StegoConfig) -> list[tuple[str, float]]:
    return [(v, float(lam)) for v in cfg.variants for lam in cfg.lambdas if lam > 0]


def _num(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 10 else f"{x:.3f}"


@experiment
class ProbeEvasion(Experiment):
    """Can a network hide a sufficient statistic from a linear probe, and at what cost? (docs/internals.md)"""

    name = "probe_evasion"
    aliases = ("stego",)
    rule = predictions
    grid_kind = "stego_grid"
    tests = predictions.CELL_TESTS
    control_tests = predictions.CONTROL_TESTS
    parts: ClassVar[dict[str, tuple[str, ...]]] = {"cost": ("slower", "worse"), "P1": ("evades", "slower", "worse")}
    control_cell = "λ = 0"
    grid_files = ("phase.png", "curves.png", "layers.png", "summary.md", "runs.csv", "cells.csv", "results.json")
    formerly: ClassVar[dict[str, str]] = {"empiricist.experiments.probe_evasion": "empiricist.internals.stego"}

    def grids(self) -> tuple[str, ...]:
        return tuple(GRIDS)

    def config(self, grid: str, overrides: dict[str, Any]) -> StegoConfig:
        base = get_grid(grid)
        known = {f.name for f in dataclasses.fields(base)}
        for key in overrides:
            if key not in known:
                raise InputError(f"unknown config key {key!r}; the grid's keys: {', '.join(sorted(known))}",
                                 field=f"experiment.config.{key}")
        return base.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})

    def cell(self, f: Fields, cfg: StegoConfig) -> dict[str, Any]:
        cells = _cells(cfg)
        variant = f.choice("variant", tuple(dict.fromkeys(v for v, _ in cells)))
        lam = float(f.number("lam", lo=0.0))
        if (variant, lam) not in cells:
            f.fail(f"λ = {lam:g} is not a penalised λ of the grid ({sorted({x for _, x in cells})})", "lam")
        return {"variant": variant, "lam": lam}

    def describe_cell(self, cell: Mapping[str, Any]) -> str:
        return f"{cell['variant']}, λ = {cell['lam']:g}"

    def study_spec(self, cfg: StegoConfig) -> dict[str, Any]:
        return predictions.study_spec(cfg)

    def plan(self, cfg: StegoConfig) -> Plan:
        n_runs = len(cfg.train_fracs) * cfg.seeds * (1 + len(_cells(cfg)))
        flags = [f"UNDERPOWERED: {cfg.seeds} seeds leave a t-interval with {cfg.seeds - 1} degree(s) of freedom"] \
            if cfg.seeds < 3 else []
        return Plan(n_runs, f"{n_runs} runs of {cfg.steps} steps, {cfg.seeds} seeds. Power is not simulated (the "
                            "grid is the costly part); the rule's intervals are over seeds", flags)

    def run(self, cfg: StegoConfig, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        """Reuse the workspace's grid with this config hash when it is intact, else train it there."""
        from empiricist.experiments.probe_evasion.run import default_out, run_stego_grid  # imports torch

        folder = default_out(cfg, workspace)
        if is_complete(folder):
            manifest = read_manifest(folder, kind=self.grid_kind)
            if StegoConfig.from_dict(manifest["config"]) != cfg:
                raise ArtifactError(f"{folder}: holds a different config than its name says")
            bad = verify(folder)
            if bad:
                raise LockMismatch(f"the cached grid {folder} no longer matches its own manifest", bad)
            res = json.loads((folder / "results.json").read_text())
            return GridRun(folder, res["rows"], True, float(res["runtime_s"]), grid_identity_hash(folder))
        res = run_stego_grid(cfg, folder, progress, workspace=workspace, command="empiricist study run",
                             executor=executor)
        return GridRun(folder, res.rows, False, res.runtime_s, grid_identity_hash(folder))

    def decide(self, rows: list[dict[str, Any]], cfg: StegoConfig
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return predictions.evaluate_predictions(rows, cfg), predictions.control_checks(rows, cfg)

    def numbers(self, cell: dict[str, Any], test: str) -> dict[str, Any]:
        return {**super().numbers(cell, test), "n_runs": cell["n_runs"], "chance": cell["chance"]}

    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        """Every cell by the same rule (secondary), then the grid's phase diagrams as ``data:`` PNGs."""
        def ci(t: tuple | list) -> str:
            return f"{_num(t[0])} [{_num(t[1])}, {_num(t[2])}]"

        body = [[c["variant"], f"{c['lam']:g}", c["n_runs"], ci(c["fresh_probe"]), f"{c['chance']:.3f}",
                 ci(c["delta_gen_step"]), ci(c["delta_test_acc"]), c["verdicts"]["evades"], c["verdicts"]["cost"],
                 c["verdicts"]["P1"]] for c in results["cells"]]
        cells = html_table(["variant", "λ", "runs", "fresh linear probe", "chance", "Δ gen. step", "Δ held-out acc",
                            "evades", "cost", "P1"], body)
        figures = []
        for name, caption in CAPTIONS.items():
            if (grid / name).is_file():
                data = base64.b64encode((grid / name).read_bytes()).decode()
                figures.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(name)}" '
                               f'style="max-width:100%"><figcaption class="note">{escape(caption)}</figcaption>'
                               "</figure>")
        return (f'<h2 id="cells">Every cell (secondary: the rule applied to each variant and λ)</h2>{cells}'
                f'<h2 id="figures">Phase diagrams</h2>{"".join(figures) or "<p>No figures.</p>"}')
