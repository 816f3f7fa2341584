"""The compute–Elo grid as a study's experiment: a cell is a cap and a condition.

Imported for its side effect: ``@experiment`` registers ``ComputeElo`` (spec kind ``compute_elo``) with
``empiricist.studies.experiment``. The rule is ``rule`` (its source is pinned in the lock); the plan
here (``study check``) says what the grid will train and rate, and how wide its intervals will be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.experiments.compute_elo import rule
from empiricist.experiments.compute_elo.config import GRIDS, ComputeEloConfig, get_grid
from empiricist.games.elo import SCALE
from empiricist.studies.experiment import Experiment, GridRun, Plan, experiment, finite, grid_identity_hash

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.fields import Fields


def expected_se(games: float, informative: float, p: float = 0.3) -> float:
    """The SE of a rating from ``games`` games of which a share ``informative`` are against opponents it
    beats (or loses to) with probability about ``p`` (Fisher information p(1 − p) per game, logit scale).
    A planning number: the pilot's SEs are in docs/compute_elo.md beside it."""
    return SCALE / math.sqrt(max(games * informative * p * (1 - p), 1e-9))


@experiment
class ComputeElo(Experiment):
    """How does scaling behave past the data's ceiling? (docs/compute_elo.md)"""

    name = "compute_elo"
    rule = rule
    grid_kind = "compute_elo_grid"
    tests = rule.CELL_TESTS
    control_tests = rule.CONTROL_TESTS
    control_cell = "every cap"
    grid_files = ("results.json", "curves.png", "ladder.png")
    numbers_caption = "numbers: the rule's statistic (an Elo gap, or the slope ratio r)"

    def grids(self) -> tuple[str, ...]:
        return tuple(GRIDS)

    def config(self, grid: str, overrides: dict[str, Any]) -> ComputeEloConfig:
        return get_grid(grid, overrides)

    def cell(self, f: Fields, cfg: ComputeEloConfig) -> dict[str, Any]:
        return {"cap": f.choice("cap", cfg.caps), "condition": f.choice("condition", rule.CONDITIONS, "cap")}

    def describe_cell(self, cell: Mapping[str, Any]) -> str:
        return f"cap {cell['cap']}, {cell.get('condition', 'cap')} condition" if "cap" in cell else "every cap"

    def study_spec(self, cfg: ComputeEloConfig) -> dict[str, Any]:
        return {"config": cfg.to_dict(), "config_hash": cfg.hash, "decision_rule": rule.__doc__}

    def plan(self, cfg: ComputeEloConfig) -> Plan:
        lad = cfg.ladder_config()
        n_ladder = len(lad.agents())
        n_nets = len(cfg.caps) * len(cfg.widths) * (len(cfg.steps()) + 1)
        ex = cfg.exit_config()
        # the confirmation plays every ladder agent, a ladder agent its 2 × reach neighbours (about half
        # of either near enough to inform)
        se = math.hypot(expected_se(cfg.confirm_games * (n_ladder - 1), 0.5),
                        expected_se(lad.games_per_pair * min(2 * lad.reach, n_ladder - 1), 0.5))
        half = rule._z(cfg.level) * se
        text = (f"{lad.game}: a ladder of {n_ladder} agents; caps {', '.join(cfg.caps)}; {cfg.n_games} games of data per "
                f"cap; {len(cfg.widths)} widths × {len(cfg.steps())} checkpoints ({n_nets} rated networks); expert "
                f"iteration {ex.iterations} × {ex.games} games at {ex.sims} simulations. A confirmed gap to the cap has "
                f"an interval of about ±{half:.0f} Elo (expected), against d = {cfg.d:g}; a bend is r < 1/k = "
                f"{1 / cfg.k:.2f}")
        flags = [(f"UNDERPOWERED: the gap's interval (±{half:.0f} Elo) is wider than d = {cfg.d:g}: neither "
                  "exceeds_cap nor saturates can be decided")] if half > cfg.d else []
        return Plan(n_nets, text, flags)

    def run(self, cfg: ComputeEloConfig, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        from empiricist.experiments.compute_elo.job import run_grid  # imports torch in its jobs

        path, results, reused = run_grid(cfg, workspace, progress, executor)
        return GridRun(path, results["rows"], reused, float(results["runtime_s"]), grid_identity_hash(path))

    def decide(self, rows: list[dict[str, Any]], cfg: ComputeEloConfig
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return finite(rule.evaluate_cells(rows, cfg)), finite(rule.control_checks(rows, cfg))

    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        from empiricist.experiments.compute_elo.report import section

        return section(results, grid)
