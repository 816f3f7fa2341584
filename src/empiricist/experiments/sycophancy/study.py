"""The sycophancy grid as a study's experiment: cells are a family (dose), a size, or the counterfactual.

Imported for its side effect: ``@experiment`` registers ``Sycophancy`` (spec kind ``sycophancy``) with
``empiricist.studies.experiment``. The rule is ``rule`` (its source is pinned in the lock); the power
check here runs before the lock (``study check``) and flags a design that cannot decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scipy import stats as sps

from empiricist.experiments.sycophancy import rule
from empiricist.experiments.sycophancy.config import GRIDS, SycoConfig, get_grid
from empiricist.studies.experiment import Experiment, GridRun, Plan, experiment, grid_identity_hash

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.fields import Fields


def heldout_entities(cfg: SycoConfig) -> int:
    """Entity clusters the persona items come from (the intervals' unit of resampling)."""
    from empiricist.world.population import Population

    return sum(e.split == "heldout" for e in Population(cfg.world_config(0.0)).entities)


def power(cfg: SycoConfig, n_clusters: int) -> dict[str, float]:
    """Normal-approximation power of one paired comparison under the rule, with the planning SD of a
    per-entity mean difference: P(corroborated | true effect 2·sesoi) and P(falsified | no effect)."""
    se = cfg.planning_sd / math.sqrt(n_clusters)
    half = sps.t.ppf(0.975, n_clusters - 1) * se
    d = cfg.sesoi
    return {"n_clusters": n_clusters, "se": se, "half_width": half,
            "corroborate_2x_sesoi": float(sps.norm.cdf((2 * d - half) / se)),
            "falsify_null": float(sps.norm.cdf((d - half) / se))}


@experiment
class Sycophancy(Experiment):
    """Where does sycophancy come from? (docs/sycophancy.md)"""

    name = "sycophancy"
    rule = rule
    grid_kind = "sycophancy_grid"
    tests = rule.CELL_TESTS
    control_tests = rule.CONTROL_TESTS
    control_cell = "largest size"
    grid_files = ("results.json", "sycophancy.png", "counterfactual.png")
    numbers_caption = "numbers: estimate [95% cluster-bootstrap CI over entities, paired across models]"

    def grids(self) -> tuple[str, ...]:
        return tuple(GRIDS)

    def config(self, grid: str, overrides: dict[str, Any]) -> SycoConfig:
        return get_grid(grid, overrides)

    def cell(self, f: Fields, cfg: SycoConfig) -> dict[str, Any]:
        test = f.data.get("test")
        if test in rule.TRACE_TESTS:
            return {"stage": "counterfactual"}
        if test == "grows_with_size":
            dose = float(f.number("dose", lo=0.0, hi=1.0))
            if dose not in cfg.doses:
                f.fail(f"dose {dose:g} is not a family of the grid ({', '.join(f'{d:g}' for d in cfg.doses)})", "dose")
            return {"dose": dose}
        from empiricist.suite.config import get_preset

        sizes = tuple(s.name for s in get_preset(cfg.suite).sizes)
        return {"size": f.choice("size", sizes)}

    def describe_cell(self, cell: Mapping[str, Any]) -> str:
        if "dose" in cell:
            return f"family rate {cell['dose']:g}"
        if "size" in cell:
            return f"size {cell['size']}"
        return "counterfactual" if cell else "largest size"

    def study_spec(self, cfg: SycoConfig) -> dict[str, Any]:
        return {"config": cfg.to_dict(), "config_hash": cfg.hash, "decision_rule": rule.__doc__}

    def plan(self, cfg: SycoConfig) -> Plan:
        from empiricist.suite.config import get_preset

        sizes = get_preset(cfg.suite).sizes
        n_models = len(cfg.doses) * len(sizes)
        p = power(cfg, heldout_entities(cfg))
        text = (f"{len(cfg.doses)} families × {len(sizes)} sizes = {n_models} models, then {len(cfg.methods)} "
                f"attribution methods and 4 retrained {sizes[-1].name} arms; {p['n_clusters']} held-out entity "
                f"clusters: expected 95% half-width {p['half_width']:.3f} at planning SD {cfg.planning_sd}, power "
                f"{p['corroborate_2x_sesoi']:.2f} to corroborate a rise of 2 × {cfg.sesoi} and "
                f"{p['falsify_null']:.2f} to falsify when there is none")
        flags = [f"UNDERPOWERED: power {v:.2f} < {cfg.min_power} to {k.replace('_', ' ')}"
                 for k, v in p.items() if k in ("corroborate_2x_sesoi", "falsify_null") and v < cfg.min_power]
        if cfg.k > cfg.world["subsets"]["forum_opinion"]["params"].get("n_docs", math.inf):
            flags.append(f"CANNOT DECIDE: k = {cfg.k} exceeds the forum threads a random arm can remove")
        return Plan(n_models, text, flags)

    def run(self, cfg: SycoConfig, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        from empiricist.experiments.sycophancy.job import run_grid  # imports torch

        grid = run_grid(cfg, workspace, progress, executor)
        return GridRun(grid.path, grid.results["rows"], grid.reused, float(grid.results["runtime_s"]),
                       grid_identity_hash(grid.path))

    def decide(self, rows: list[dict[str, Any]], cfg: SycoConfig
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return rule.evaluate_cells(rows, cfg), rule.control_checks(rows, cfg)

    def numbers(self, cell: dict[str, Any], test: str) -> dict[str, Any]:
        return {"parts": [cell["tests"][test]]}

    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        from empiricist.experiments.sycophancy.report import section

        return section(results, grid)
