"""The safeguards grid as a study's experiment: a cell is an arm, compared with the fine-tuned safeguard.

Imported for its side effect: ``@experiment`` registers ``Safeguards`` (spec kind ``safeguards``) with
``empiricist.studies.experiment``. The rule is ``rule`` (its source is pinned in the lock); the power
check here runs before the lock (``study check``) and flags a design that cannot decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.experiments.safeguards import rule
from empiricist.experiments.safeguards.config import ARMS, GRIDS, PRETRAINED, SafeguardsConfig, get_grid
from empiricist.studies.experiment import Experiment, GridRun, Plan, experiment, finite, grid_identity_hash

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.fields import Fields


def power(cfg: SafeguardsConfig) -> dict[str, float]:
    """Power of ``outlasts_finetuning`` under the planning SD of a seed's log2 ratio (t-interval over
    seeds, normal approximation): P(corroborated | true ratio k²) and P(falsified | no difference)."""
    from empiricist.stats.power import interval_power

    bar = math.log2(cfg.k)
    p = interval_power(len(cfg.seeds), cfg.planning_sd, bar, 2 * bar)
    return {**p, "corroborate_k_squared": p.pop("corroborate")}


@experiment
class Safeguards(Experiment):
    """Does pretraining with preference data bake in safeguards? (docs/safeguards.md)"""

    name = "safeguards"
    rule = rule
    grid_kind = "safeguards_grid"
    tests = rule.CELL_TESTS
    control_tests = rule.CONTROL_TESTS
    control_cell = "all arms"
    grid_files = ("results.json", "attacks.png", "arms.png")
    numbers_caption = "numbers: estimate [95% t-interval over seeds]"

    def grids(self) -> tuple[str, ...]:
        return tuple(GRIDS)

    def config(self, grid: str, overrides: dict[str, Any]) -> SafeguardsConfig:
        return get_grid(grid, overrides)

    def cell(self, f: Fields, cfg: SafeguardsConfig) -> dict[str, Any]:
        return {"arm": f.choice("arm", rule.CELL_ARMS)}

    def describe_cell(self, cell: Mapping[str, Any]) -> str:
        return f"arm {cell['arm']}" if "arm" in cell else "all arms"

    def study_spec(self, cfg: SafeguardsConfig) -> dict[str, Any]:
        return {"config": cfg.to_dict(), "config_hash": cfg.hash, "decision_rule": rule.__doc__}

    def plan(self, cfg: SafeguardsConfig) -> Plan:
        n_pre = len(PRETRAINED) * len(cfg.seeds)
        n_attack = len(ARMS) * len(cfg.seeds) * len(cfg.attack_cells())
        p = power(cfg)
        text = (f"{len(PRETRAINED)} pretrained arms × {len(cfg.seeds)} seeds = {n_pre} models ({cfg.steps} steps, "
                f"d_model {cfg.d_model}), {len(cfg.seeds)} refusal fine-tunes, {n_attack} attack runs of "
                f"{cfg.attack_steps} steps; {p['n_seeds']} seeds: expected 95% half-width {p['half_width']:.2f} "
                f"(log2 units) at planning SD {cfg.planning_sd}, power {p['corroborate_k_squared']:.2f} to "
                f"corroborate a {cfg.k:g}²× durability and {p['falsify_null']:.2f} to falsify when there is none")
        flags = [f"UNDERPOWERED: power {v:.2f} < {cfg.min_power} to {k.replace('_', ' ')}"
                 for k, v in p.items() if k in ("corroborate_k_squared", "falsify_null") and v < cfg.min_power]
        if 2 * cfg.attack_steps + 1 < cfg.k:
            flags.append(f"CANNOT DECIDE: a censored attack ({2 * cfg.attack_steps} steps) cannot show {cfg.k:g}×")
        return Plan(n_pre + len(cfg.seeds) + n_attack, text, flags)

    def run(self, cfg: SafeguardsConfig, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        from empiricist.experiments.safeguards.job import run_grid  # imports torch

        path, results, reused = run_grid(cfg, workspace, progress, executor)
        return GridRun(path, results["rows"], reused, float(results["runtime_s"]), grid_identity_hash(path))

    def decide(self, rows: list[dict[str, Any]], cfg: SafeguardsConfig
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return finite(rule.evaluate_cells(rows, cfg)), finite(rule.control_checks(rows, cfg))

    def numbers(self, cell: dict[str, Any], test: str) -> dict[str, Any]:
        return {"parts": [cell["tests"][test]]}

    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        from empiricist.experiments.safeguards.report import section

        return section(results, grid)
