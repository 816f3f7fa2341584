"""The Elo ladder: reference agents (random, MCTS with 2^k simulations) rated against each other, cached.

Each agent plays the next ``reach`` agents above it ``games_per_pair`` games (colours alternating; the
default reach makes it a round robin, so every agent is rated against the same pool a newcomer is),
every match a unit of work on the shared executor; ratings come from one maximum-likelihood fit
anchored at the random agent = 0 (games/elo.py). The ladder is an artifact
(``<workspace>/games/ladder-<config hash>/``: ``ladder.json`` with every match and rating, and a
manifest), so every study that names the same config rates against the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    atomic_write_json,
    building,
    config_hash,
    is_complete,
    write_manifest,
)
from empiricist.errors import InputError
from empiricist.games.agents import Agent, play_match
from empiricist.games.elo import Rating, fit_ratings, rate_player

if TYPE_CHECKING:
    from empiricist.execute import Executor

KIND = "elo_ladder"
ANCHOR = "random"


@dataclass(frozen=True)
class LadderConfig:
    game: str = "hex(board_size=5)"
    max_log2_sims: int = 11  # mcts-1 … mcts-2048
    games_per_pair: int = 40
    reach: int = 12  # each agent plays the next `reach` agents up the ladder (12: every pair, a round robin)
    seed: int = 0
    prior_draws: float = 1.0

    def __post_init__(self) -> None:
        if self.max_log2_sims < 1 or self.games_per_pair < 2 or self.reach < 1 or not self.prior_draws > 0:
            raise InputError("a ladder needs max_log2_sims >= 1, games_per_pair >= 2, reach >= 1, prior_draws > 0",
                             field="ladder")

    def agents(self) -> list[Agent]:
        return [Agent("random")] + [Agent("mcts", sims=2**k) for k in range(self.max_log2_sims + 1)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())


@dataclass(frozen=True)
class Ladder:
    """Rated reference agents."""

    config: LadderConfig
    ratings: dict[str, Rating]
    matches: list[dict[str, Any]]
    path: Path | None = None

    @property
    def agents(self) -> list[Agent]:
        return self.config.agents()

    def elo(self) -> dict[str, float]:
        return {k: r.elo for k, r in self.ratings.items()}

    def agent(self, name: str) -> Agent:
        for a in self.agents:
            if a.name == name:
                return a
        raise InputError(f"no ladder agent {name!r} (agents: {[a.name for a in self.agents]})", field="agent")

    def at_most(self, cap: float) -> list[Agent]:
        """The agents rated at or below ``cap``."""
        return [a for a in self.agents if self.ratings[a.name].elo <= cap]

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "ratings": {k: r.to_dict() for k, r in self.ratings.items()},
                "matches": self.matches}

    @classmethod
    def from_json(cls, d: dict[str, Any], path: Path | None = None) -> Ladder:
        return cls(LadderConfig(**d["config"]), {k: Rating(**v) for k, v in d["ratings"].items()}, d["matches"], path)


def _match_jobs(game: str, pairs: list[tuple[Agent, Agent]], n_games: int, seed: int) -> list[Any]:
    from empiricist.execute import Job

    return [Job(f"{a.name} vs {b.name}", play_match,
                {"game": game, "a": a.to_dict(), "b": b.to_dict(), "n_games": n_games, "seed": seed * 10_007 + i})
            for i, (a, b) in enumerate(pairs)]


def play_matches(game: str, pairs: list[tuple[Agent, Agent]], n_games: int, seed: int,
                 executor: Executor | None = None, progress: bool = False, desc: str = "matches") -> list[dict[str, Any]]:
    """Each pair's match result, each match one unit on the executor (same results on any executor)."""
    from empiricist.execute import run_jobs

    return run_jobs(_match_jobs(game, pairs, n_games, seed), executor=executor, progress=progress, desc=desc)


def fit_ladder(cfg: LadderConfig, matches: list[dict[str, Any]], path: Path | None = None) -> Ladder:
    return Ladder(cfg, fit_ratings(matches, ANCHOR, prior_draws=cfg.prior_draws), matches, path)


def build_ladder(cfg: LadderConfig, workspace: Workspace | str | Path | None = None,
                 executor: Executor | None = None, progress: bool = True) -> Ladder:
    """The ladder for ``cfg``: played and fitted once, then read from the workspace."""
    folder = Workspace.at(workspace).dir("games") / f"ladder-{cfg.hash}"
    with artifact_lock(folder):
        if is_complete(folder):
            return Ladder.from_json(json.loads((folder / "ladder.json").read_text()), folder)
        agents = cfg.agents()
        pairs = [(agents[i], agents[j]) for i in range(len(agents))
                 for j in range(i + 1, min(i + 1 + cfg.reach, len(agents)))]
        matches = play_matches(cfg.game, pairs, cfg.games_per_pair, cfg.seed, executor, progress, "ladder")
        ladder = fit_ladder(cfg, matches)
        with building(folder, overwrite=True, kind=KIND) as tmp:
            atomic_write_json(tmp / "ladder.json", ladder.to_json())
            write_manifest(tmp, KIND, cfg.to_dict())
    return Ladder(ladder.config, ladder.ratings, ladder.matches, folder)


def rate(agent: Agent, ladder: Ladder, games_per_opponent: int = 20, seed: int = 1, window: int | None = None,
         executor: Executor | None = None, progress: bool = False) -> tuple[Rating, list[dict[str, Any]]]:
    """``agent``'s rating against the fixed ladder (and its matches): ``rate_many`` of one."""
    return rate_many([agent], ladder, games_per_opponent, seed, window, executor, progress)[0]


def rate_many(agents: list[Agent], ladder: Ladder, games_per_opponent: int = 20, seed: int = 1,
              window: int | None = None, executor: Executor | None = None, progress: bool = False,
              desc: str = "rating") -> list[tuple[Rating, list[dict[str, Any]]]]:
    """Each agent's rating against the fixed ladder, every match of every agent in one batch of jobs.

    An agent plays every ladder agent but itself, or with ``window`` the cheapest half of the ladder
    and then the rest of the ``window`` agents nearest its first estimate from those (a game against a
    far weaker or stronger agent says little)."""
    game, elos, prior = ladder.config.game, ladder.elo(), ladder.config.prior_draws
    opponents = [[o for o in ladder.agents if o.name != a.name] for a in agents]
    if window is not None:
        first = [ops[: max(2, len(ops) // 2)] for ops in opponents]
    else:
        first = opponents
    which = [i for i, ops in enumerate(first) for _ in ops]
    pairs = [(agents[i], o) for i, ops in enumerate(first) for o in ops]
    matches: list[list[dict[str, Any]]] = [[] for _ in agents]
    for i, m in zip(which, play_matches(game, pairs, games_per_opponent, seed, executor, progress, desc)):
        matches[i].append(m)
    if window is not None:
        which, rest = [], []
        for i, (agent, ops) in enumerate(zip(agents, opponents)):
            guess = rate_player(agent.name, matches[i], elos, prior).elo
            near = sorted(ops, key=lambda o: abs(elos[o.name] - guess))[:window]
            got = [(agent, o) for o in near if o not in first[i]]
            which += [i] * len(got)
            rest += got
        for i, m in zip(which, play_matches(game, rest, games_per_opponent, seed + 1, executor, progress, desc)
                        if rest else []):
            matches[i].append(m)
    return [(rate_player(a.name, ms, elos, prior), ms) for a, ms in zip(agents, matches)]
