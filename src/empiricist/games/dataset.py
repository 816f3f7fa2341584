"""Capped game data: games among ladder agents rated at or below a cap, every move kept with its players' ratings.

The cap is a ladder agent (``mcts-16``): the data's players are the ``n_players`` strongest agents rated at
or below it, paired at random per game (seeded), colours as drawn. Each move is a row of
``moves.parquet`` (the mover's observation, legal moves, action, the mover's and opponent's names and
ladder Elo, and the game's outcome from the mover's side); ``games.parquet`` holds one row per game
(who played first and second, the first mover's score), which the data-Elo control reads. The folder is
an artifact like a corpus: a manifest with every file's hash, the config, and the ladder it was rated on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    building,
    config_hash,
    is_complete,
    read_manifest,
    write_manifest,
)
from empiricist.errors import InputError
from empiricist.games.agents import Agent, bot
from empiricist.games.rules import game_seed, load_game, play_game

if TYPE_CHECKING:
    import pyarrow as pa

    from empiricist.execute import Executor
    from empiricist.games.ladder import Ladder

KIND = "game_data"
CHUNK = 100  # games per job


@dataclass(frozen=True)
class DataConfig:
    cap: str = "mcts-16"  # the strongest agent allowed: its ladder rating is the cap
    n_players: int = 4  # the strongest agents at or below the cap
    n_games: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_players < 1 or self.n_games < 1:
            raise InputError("capped data needs n_players >= 1 and n_games >= 1", field="data")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def players(cfg: DataConfig, ladder: Ladder) -> list[Agent]:
    """The data's players: the ``n_players`` strongest ladder agents rated at or below the cap agent."""
    cap = ladder.ratings[ladder.agent(cfg.cap).name].elo
    below = sorted(ladder.at_most(cap), key=lambda a: ladder.ratings[a.name].elo)
    return below[-cfg.n_players:]


def play_records(game: str, agents: list[dict[str, Any]], elos: list[float], first_game: int, n_games: int,
                 seed: int) -> dict[str, Any]:
    """``n_games`` games (numbered from ``first_game``) between seeded random pairs of ``agents``, every
    move recorded: one job of the dataset."""
    g = load_game(game)
    pool = [Agent.from_dict(a) for a in agents]
    cols: dict[str, list[Any]] = {k: [] for k in ("game", "ply", "mover", "agent", "elo", "opponent", "opponent_elo",
                                                   "action", "legal", "obs", "outcome")}
    games: dict[str, list[Any]] = {"game": [], "first": [], "second": [], "first_score": []}
    for gi in range(first_game, first_game + n_games):
        s = game_seed(seed, gi)
        i, j = np.random.default_rng(s).integers(len(pool), size=2)
        ret, moves = play_game(g, bot(pool[i], g, s), bot(pool[j], g, s + 1), record=True)
        side = (i, j)
        for ply, (obs, legal, action, mover) in enumerate(moves):
            me, you = side[mover], side[1 - mover]
            cols["game"].append(gi)
            cols["ply"].append(ply)
            cols["mover"].append(mover)
            cols["agent"].append(pool[me].name)
            cols["elo"].append(elos[me])
            cols["opponent"].append(pool[you].name)
            cols["opponent_elo"].append(elos[you])
            cols["action"].append(action)
            cols["legal"].append(legal)
            cols["obs"].append(np.asarray(obs, dtype=np.uint8).tobytes())
            cols["outcome"].append(ret if mover == 0 else -ret)
        games["game"].append(gi)
        games["first"].append(pool[i].name)
        games["second"].append(pool[j].name)
        games["first_score"].append((ret + 1) / 2)
    return {"moves": cols, "games": games}


@dataclass(frozen=True)
class GameData:
    path: Path
    moves: pa.Table
    games: pa.Table
    config: DataConfig
    obs_dim: int
    n_actions: int

    def arrays(self, center: float, scale: float) -> dict[str, np.ndarray]:
        """Training arrays: input rows (net.features), legal-move mask, action, and outcome."""
        from empiricist.games.net import features, positions

        m = self.moves
        obs, legal = positions(m.column("obs").to_pylist(), m.column("legal").to_pylist(), self.obs_dim,
                               self.n_actions)
        col = {k: m.column(k).to_numpy() for k in ("mover", "elo", "action", "outcome")}
        return {"x": features(obs, col["mover"], col["elo"], center, scale), "legal": legal,
                "action": col["action"].astype(np.int64), "value": col["outcome"].astype(np.float32), "policy": None}

    def elo_range(self) -> tuple[float, float]:
        e = self.moves.column("elo").to_numpy()
        return float(e.min()), float(e.max())


def open_dataset(folder: Path) -> GameData:
    """A dataset folder this package wrote (its manifest names the config it was played with)."""
    import pyarrow.parquet as pq

    man = read_manifest(folder, KIND)
    return GameData(folder, pq.read_table(folder / "moves.parquet"), pq.read_table(folder / "games.parquet"),
                    DataConfig(**man["config"]["data"]), int(man["obs_dim"]), int(man["n_actions"]))


def build_dataset(cfg: DataConfig, ladder: Ladder, workspace: Workspace | str | Path | None = None,
                  executor: Executor | None = None, progress: bool = True) -> GameData:
    """The capped games for ``cfg`` on ``ladder``: played once (in chunks on the executor), then reused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from empiricist.execute import Job, run_jobs

    full = {"data": cfg.to_dict(), "ladder": ladder.config.hash}
    folder = Workspace.at(workspace).dir("games") / f"data-{cfg.cap}-{config_hash(full)}"
    with artifact_lock(folder):
        if is_complete(folder):
            return open_dataset(folder)
        pool = players(cfg, ladder)
        elos = [ladder.ratings[a.name].elo for a in pool]
        jobs = [Job(f"games {k}", play_records, {"game": ladder.config.game, "agents": [a.to_dict() for a in pool],
                                                 "elos": elos, "first_game": k, "n_games": min(CHUNK, cfg.n_games - k),
                                                 "seed": cfg.seed})
                for k in range(0, cfg.n_games, CHUNK)]
        parts = run_jobs(jobs, executor=executor, progress=progress, desc=f"data ≤ {cfg.cap}")
        moves = pa.concat_tables([pa.table(p["moves"]) for p in parts])
        games = pa.concat_tables([pa.table(p["games"]) for p in parts])
        g = load_game(ladder.config.game)
        with building(folder, overwrite=True, kind=KIND) as tmp:
            pq.write_table(moves, tmp / "moves.parquet")
            pq.write_table(games, tmp / "games.parquet")
            write_manifest(tmp, KIND, full, inputs={"ladder": str(ladder.path) if ladder.path else ""},
                           extra={"players": {a.name: e for a, e in zip(pool, elos)}, "cap_elo": max(elos),
                                  "obs_dim": int(np.prod(g.observation_tensor_shape())),
                                  "n_actions": g.num_distinct_actions(), "n_moves": len(moves)})
    return open_dataset(folder)
