"""The gradualism grid as a study's experiment: a cell is a metric (a task and a kind), its forecasts pooled
over the size sweep and the families.

Imported for its side effect: ``@experiment`` registers ``Gradualism`` (spec kind ``gradualism``) with
``empiricist.studies.experiment``. The rule is ``rule`` (its source is pinned in the lock); the power check
here runs before the lock (``study check``) and says which jumps the design can see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scipy import stats

from empiricist.experiments.gradualism import rule
from empiricist.experiments.gradualism.config import GRIDS, GradualismConfig, get_grid
from empiricist.experiments.gradualism.measure import needed_steps
from empiricist.studies.experiment import Experiment, GridRun, Plan, experiment, finite, grid_identity_hash

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.fields import Fields


def _leverage(x: list[float], x_new: float) -> float:
    t = [math.log10(v) for v in x]
    mean = sum(t) / len(t)
    sxx = sum((v - mean) ** 2 for v in t)
    return 1 / len(t) + (math.log10(x_new) - mean) ** 2 / sxx


def planned_forecasts(cfg: GradualismConfig) -> list[dict[str, Any]]:
    """The forecasts the grid will make, with their leverage (parameters approximated as 12·L·d² plus the
    embeddings; the rule uses the counted ones)."""
    from empiricist.suite.config import get_preset

    out = []
    for preset, n_sweeps in ((get_preset(cfg.suite), 1), (get_preset(cfg.family_suite), len(cfg.doses))):
        n = [12 * s.n_layers * s.d_model ** 2 + 2 * preset.vocab_size * s.d_model for s in preset.sizes]
        plan = needed_steps(preset.train.checkpoint_steps(), cfg.n_early)
        kinds = ([("size", _leverage(n[:-1], n[-1]))] if len(n) >= 3 else []) + \
            [("checkpoint", _leverage(plan["early"], plan["final"]))] * len(n)
        out += [{"suite": preset.name, "forecast": f, "leverage": h} for _ in range(n_sweeps) for f, h in kinds]
    return out


def power(cfg: GradualismConfig) -> dict[str, Any]:
    """Per (task, forecast, metric): the jump seen with 80% power, and the power to see the sesoi."""
    planned = planned_forecasts(cfg)
    n_total = len(planned) * len(cfg.metrics)
    bar = rule.jump_bar(n_total, cfg.alpha)
    rows = []
    for metric in cfg.metrics:
        task, kind = metric.split(":")
        for f in ("size", "checkpoint"):
            hs = [p["leverage"] for p in planned if p["forecast"] == f]
            if hs:
                se = cfg.scatter[f"{task}:{f}_{kind}"] * math.sqrt(1 + max(hs))  # the least precise of them
                d = cfg.sesoi[kind] / se
                p = float(stats.norm.cdf(d - bar) + stats.norm.cdf(-d - bar))
                rows.append({"task": task, "forecast": f, "metric": kind, "se": se, "power_sesoi": p,
                             "jump_80": (bar + stats.norm.ppf(0.8)) * se})
    return {"n_forecasts": n_total, "bar": bar, "rows": rows}


@experiment
class Gradualism(Experiment):
    """Do small and early models forecast large and late ones? (docs/gradualism.md)"""

    name = "gradualism"
    rule = rule
    grid_kind = "gradualism_grid"
    tests = rule.CELL_TESTS
    control_tests = rule.CONTROL_TESTS
    control_cell = "every sweep"
    grid_files = ("results.json", "forecasts.png", "trajectories.png")
    numbers_caption = "numbers: the rule's statistic (coverage, or the largest |z|)"

    def grids(self) -> tuple[str, ...]:
        return tuple(GRIDS)

    def config(self, grid: str, overrides: dict[str, Any]) -> GradualismConfig:
        return get_grid(grid, overrides)

    def cell(self, f: Fields, cfg: GradualismConfig) -> dict[str, Any]:
        return {"task": f.choice("task", cfg.tasks), "metric": f.choice("metric", rule.KINDS)}

    def describe_cell(self, cell: Mapping[str, Any]) -> str:
        return f"{cell['task']} {cell['metric']}" if "task" in cell else "every sweep"

    def study_spec(self, cfg: GradualismConfig) -> dict[str, Any]:
        return {"config": cfg.to_dict(), "config_hash": cfg.hash, "decision_rule": rule.__doc__}

    def plan(self, cfg: GradualismConfig) -> Plan:
        p = power(cfg)
        n_suites = 1 + len(cfg.doses)
        lines = "; ".join(f"{r['task']} {r['forecast']} {r['metric']}: a jump of {r['jump_80']:.3g} seen with "
                          f"power 0.8 (power {r['power_sesoi']:.2f} at {cfg.sesoi[r['metric']]:g})" for r in p["rows"])
        text = (f"{n_suites} suites ({cfg.suite}, and {cfg.family_suite} at doses {', '.join(map(str, cfg.doses))}); "
                f"{p['n_forecasts']} forecasts; a jump is |z| > {p['bar']:.2f}. {lines}")
        flags = [f"UNDERPOWERED: {r['task']} {r['forecast']} {r['metric']}: power {r['power_sesoi']:.2f} < "
                 f"{cfg.min_power} to see a jump of {cfg.sesoi[r['metric']]:g}"
                 for r in p["rows"] if r["power_sesoi"] < cfg.min_power]
        return Plan(n_suites, text, flags)

    def run(self, cfg: GradualismConfig, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        from empiricist.experiments.gradualism.job import run_grid  # imports torch

        path, results, reused = run_grid(cfg, workspace, progress, executor)
        return GridRun(path, results["rows"], reused, float(results["runtime_s"]), grid_identity_hash(path))

    def decide(self, rows: list[dict[str, Any]], cfg: GradualismConfig
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return finite(rule.evaluate_cells(rows, cfg)), finite(rule.control_checks(rows, cfg))

    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        from empiricist.experiments.gradualism.report import section

        return section(results, grid)
