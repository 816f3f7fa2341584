"""The unlearning grid as a study's experiment: a cell is a method, judged against the retrained gold.

Imported for its side effect: ``@experiment`` registers ``Unlearning`` (spec kind ``unlearning``) with
``empiricist.studies.experiment``. The rule is ``rule`` (its source is pinned in the lock); the power
check here runs before the lock (``study check``) and flags a design that cannot decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.experiments.unlearning import rule
from empiricist.experiments.unlearning.config import GRIDS, METHODS, UnlearningConfig, get_grid
from empiricist.studies.experiment import Experiment, GridRun, Plan, experiment, finite, grid_identity_hash

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.fields import Fields


def power(cfg: UnlearningConfig) -> dict[str, float]:
    """Power of ``relearns_fast`` under the planning SD of a seed's log2 ratio (t-interval over seeds,
    normal approximation): P(corroborated | true speed-up k²) and P(falsified | no speed-up)."""
    from empiricist.stats.power import interval_power

    bar = math.log2(cfg.k)
    p = interval_power(len(cfg.seeds), cfg.planning_sd, bar, 2 * bar)
    return {**p, "corroborate_k_squared": p.pop("corroborate")}


@experiment
class Unlearning(Experiment):
    """Does machine unlearning reach the retrain-from-scratch gold, or only hide the knowledge? (docs/unlearning.md)"""

    name = "unlearning"
    rule = rule
    grid_kind = "unlearning_grid"
    tests = rule.CELL_TESTS
    control_tests = rule.CONTROL_TESTS
    control_cell = "base, gold"
    grid_files = ("results.json", "relearning.png", "methods.png")
    numbers_caption = "numbers: estimate [95% t-interval over seeds]"

    def grids(self) -> tuple[str, ...]:
        return tuple(GRIDS)

    def config(self, grid: str, overrides: dict[str, Any]) -> UnlearningConfig:
        return get_grid(grid, overrides)

    def cell(self, f: Fields, cfg: UnlearningConfig) -> dict[str, Any]:
        return {"method": f.choice("method", METHODS)}

    def describe_cell(self, cell: Mapping[str, Any]) -> str:
        return f"method {cell['method']}" if "method" in cell else "base, gold"

    def study_spec(self, cfg: UnlearningConfig) -> dict[str, Any]:
        return {"config": cfg.to_dict(), "config_hash": cfg.hash, "decision_rule": rule.__doc__}

    def plan(self, cfg: UnlearningConfig) -> Plan:
        n = len(cfg.seeds)
        n_sweep = len(METHODS) * len(cfg.unlearn_lrs)
        runs = 2 * n + 1 + n_sweep + len(METHODS) * n + (len(METHODS) + 2) * n
        p = power(cfg)
        text = (f"{2 * n + 1} models from scratch ({n} seeds × base and gold, one validation gold; {cfg.steps} steps, "
                f"d_model {cfg.d_model}), {n_sweep} validation runs, {len(METHODS) * n} test runs of "
                f"{cfg.unlearn_steps} steps, {(len(METHODS) + 2) * n} relearning runs of {cfg.relearn_steps} steps; "
                f"{n} seeds: expected 95% half-width {p['half_width']:.2f} (log2 units) at planning SD "
                f"{cfg.planning_sd}, power {p['corroborate_k_squared']:.2f} to corroborate a {cfg.k:g}²× speed-up "
                f"and {p['falsify_null']:.2f} to falsify when there is none")
        flags = [f"UNDERPOWERED: power {v:.2f} < {cfg.min_power} to {k.replace('_', ' ')}"
                 for k, v in p.items() if k in ("corroborate_k_squared", "falsify_null") and v < cfg.min_power]
        if 2 * cfg.relearn_steps + 1 < cfg.k:
            flags.append(f"CANNOT DECIDE: a censored gold ({2 * cfg.relearn_steps} steps) cannot show {cfg.k:g}×")
        return Plan(runs, text, flags)

    def run(self, cfg: UnlearningConfig, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        from empiricist.experiments.unlearning.job import run_grid  # imports torch

        path, results, reused = run_grid(cfg, workspace, progress, executor)
        return GridRun(path, results["rows"], reused, float(results["runtime_s"]), grid_identity_hash(path))

    def decide(self, rows: list[dict[str, Any]], cfg: UnlearningConfig
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return finite(rule.evaluate_cells(rows, cfg)), finite(rule.control_checks(rows, cfg))

    def numbers(self, cell: dict[str, Any], test: str) -> dict[str, Any]:
        t = cell["tests"][test]
        return {"parts": [t["forget_gap_share"], t["utility_difference"]] if test == "matches_gold" else [t]}

    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        from empiricist.experiments.unlearning.report import section

        return section(results, grid)
