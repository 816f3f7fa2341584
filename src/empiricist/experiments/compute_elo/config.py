"""The compute–Elo experiment's configuration: the ladder, the caps and their data, the imitation grid,
expert iteration, the ratings, and the thresholds the parties disagree about.

Plain data that round-trips through JSON, so its hash names the grid and the lock pins it. Why the
defaults are what they are is in docs/compute_elo.md ("Design" and "Pilot").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from empiricist.errors import InputError
from empiricist.games.expert import ExItConfig
from empiricist.games.ladder import LadderConfig
from empiricist.studies.experiment import GridConfig, grid_config


@dataclass(frozen=True)
class ComputeEloConfig(GridConfig):
    """Caps on one ladder; per cap: data, imitation networks × checkpoints, then expert iteration."""

    name: str = "full"
    # a round robin, 100 games a pair (the pilot's 40 left the caps' ratings ±35–41)
    ladder: dict[str, Any] = field(default_factory=lambda: LadderConfig(games_per_pair=100).to_dict())
    caps: tuple[str, ...] = ("mcts-4", "mcts-16", "mcts-64")  # ladder agents: each one's rating is a cap
    n_players: int = 4  # the data's players: the strongest agents at or below the cap
    n_games: int = 6000  # games of capped data per cap
    widths: tuple[int, ...] = (16, 32, 64, 128)  # the imitation networks' hidden widths
    log2_steps: tuple[int, int] = (5, 12)  # checkpoints at 2^5 … 2^12 steps
    batch: int = 128
    lr: float = 3e-3
    above_cap: float = 400.0  # the above-cap condition: the network asked to play at cap + this
    exit: dict[str, Any] = field(default_factory=lambda: ExItConfig().to_dict())
    rate_games: int = 40  # games per opponent when rating a network
    rate_window: int = 6  # opponents per rating: the cheap half of the ladder, then the nearest
    confirm_games: int = 100  # the confirmation rating (every ladder agent) of each selected network
    d: float = 100.0  # Elo above the cap that counts as imitation exceeding it
    k: float = 3.0  # compute per Elo above the cap ÷ below it that counts as a bend
    level: float = 0.95
    n_sims: int = 4000  # parametric draws for the slope ratio's interval
    seed: int = 0

    def __post_init__(self) -> None:
        LadderConfig(**self.ladder)
        ExItConfig(**self.exit)
        lo, hi = self.log2_steps
        if not self.caps or not self.widths or not 0 <= lo < hi:
            raise InputError("caps and widths must be non-empty and log2_steps (lo, hi) with 0 <= lo < hi",
                             field="experiment.config")
        if not 0 < self.level < 1 or self.k <= 0 or self.n_sims < 100:
            raise InputError("level in (0, 1), k > 0, n_sims >= 100", field="experiment.config")

    def ladder_config(self) -> LadderConfig:
        return LadderConfig(**self.ladder)

    def exit_config(self) -> ExItConfig:
        return ExItConfig(**self.exit)

    def steps(self) -> tuple[int, ...]:
        lo, hi = self.log2_steps
        return tuple(2**k for k in range(lo, hi + 1))


GRIDS: dict[str, ComputeEloConfig] = {
    # about 6 minutes on 2 cores (docs/compute_elo.md, "Budget")
    "full": ComputeEloConfig(),
    # CI-sized: Hex 3×3, a 5-agent ladder, one cap, two tiny networks; it tests the machinery, not the question
    "quick": ComputeEloConfig(
        name="quick", ladder=LadderConfig(game="hex(board_size=3)", max_log2_sims=3, games_per_pair=10).to_dict(),
        caps=("mcts-2",), n_players=2, n_games=100, widths=(8, 16), log2_steps=(3, 5), rate_games=6, rate_window=3,
        confirm_games=6, exit=ExItConfig(iterations=2, games=20, sims=8, steps=16).to_dict(), n_sims=500,
        d=300.0),  # a wider d: six games per opponent leave the gap ±250 Elo wide
}


def get_grid(name: str, overrides: dict[str, Any] | None = None) -> ComputeEloConfig:
    return grid_config(GRIDS, name, overrides, ("caps", "widths", "log2_steps"))
