"""Expert iteration from a network: self-play with network-guided search, train on the search, repeat.

Each iteration plays ``games`` self-play games (in chunks on the executor, games.search.selfplay), then
trains the network from its previous weights for ``steps`` steps on the last ``window`` iterations'
positions (visit distributions and outcomes). An iteration's folder holds its checkpoint and
``iteration.json`` (compute so far, evaluations, positions); a killed run resumes at the first
iteration without one. Compute is counted from the start network's training FLOPs: self-play adds
``2 × parameters`` per evaluation, training ``6 × parameters`` per sample.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import atomic_write_json
from empiricist.errors import InputError
from empiricist.games.net import TrainConfig, read_checkpoint, train
from empiricist.games.search import selfplay, selfplay_arrays

if TYPE_CHECKING:
    from empiricist.execute import Executor

CHUNK = 25  # self-play games per job


@dataclass(frozen=True)
class ExItConfig:
    iterations: int = 12
    games: int = 200  # self-play games per iteration
    sims: int = 64  # search simulations per move
    steps: int = 256  # training steps per iteration
    batch: int = 128
    lr: float = 1e-3
    window: int = 4  # iterations of positions trained on
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.iterations, self.games, self.sims, self.steps, self.batch, self.window) < 1:
            raise InputError("expert iteration needs iterations, games, sims, steps, batch, window >= 1",
                             field="expert_iteration")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expert_iteration(start: str | Path, game: str, cfg: ExItConfig, out: str | Path,
                     executor: Executor | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Every iteration's record (the start network is iteration 0), resuming what ``out`` holds."""
    from empiricist.execute import Job, run_jobs
    _, meta = read_checkpoint(start)
    obs_dim, n_actions = int(meta["obs_dim"]), int(meta["n_actions"])
    elo = float(meta["default_elo"])
    folder = Path(out)
    records = [{"iteration": 0, "path": str(start), "compute": float(meta["train_flops"]), "evaluations": 0,
                "positions": 0}]
    parts_by_iter: list[list[dict[str, Any]]] = []
    net = str(start)
    for it in range(1, cfg.iterations + 1):
        it_dir = folder / f"iter-{it:03d}"
        seed = cfg.seed * 1_000 + it
        jobs = [Job(f"self-play {it}:{k}", selfplay, {"game": game, "net_path": net, "sims": cfg.sims, "first_game": k,
                                                      "n_games": min(CHUNK, cfg.games - k), "seed": seed})
                for k in range(0, cfg.games, CHUNK)]
        done = it_dir / "iteration.json"
        if done.is_file():  # finished before a kill: its positions are replayed (seeded, the same) for the window
            parts_by_iter.append(run_jobs(jobs, executor=executor, progress=False))
            records.append(json.loads(done.read_text()))
            net = records[-1]["path"]
            continue
        parts = run_jobs(jobs, executor=executor, progress=progress, desc=f"self-play {it}/{cfg.iterations}")
        parts_by_iter.append(parts)
        recent = [p for ps in parts_by_iter[-cfg.window:] for p in ps]
        data = selfplay_arrays(recent, obs_dim, n_actions, elo, float(meta["elo_center"]), float(meta["elo_scale"]))
        tcfg = TrainConfig(width=int(meta["width"]), steps=(cfg.steps,), batch=cfg.batch, lr=cfg.lr, seed=seed)
        base = {k: meta[k] for k in ("obs_dim", "n_actions", "elo_center", "elo_scale", "default_elo")}
        path = train(data, tcfg, it_dir, {**base, "expert_iteration": it, "start": str(start)}, init=net)[-1]
        evaluations = sum(p["evaluations"] for p in parts)
        _, new_meta = read_checkpoint(path)
        compute = records[-1]["compute"] + evaluations * 2 * int(new_meta["params"]) + float(new_meta["train_flops"])
        rec = {"iteration": it, "path": str(path), "compute": compute, "evaluations": evaluations,
               "positions": len(data["x"]), "games": cfg.games}
        atomic_write_json(done, rec)
        records.append(rec)
        net = str(path)
    return records

