"""The compute–Elo grid end to end: ladder → capped data → imitation networks × checkpoints, rated →
the best one re-rated and improved by expert iteration, rated → the controls' re-ratings → one grid folder.

The ladder and the data are workspace artifacts (games/); networks are checkpoints under
``<workspace>/games/compute_elo-<config hash>/`` (a killed run resumes them); every unit of play or
training is a job on the executor. The grid folder (``<workspace>/compute_elo/<grid>-<config hash>/``) is
written last: ``results.json`` (every row the rule decides on) and the figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import Workspace, artifact_lock, is_complete
from empiricist.studies.experiment import write_grid

if TYPE_CHECKING:
    from empiricist.execute import Executor
    from empiricist.experiments.compute_elo.config import ComputeEloConfig
    from empiricist.games.elo import Rating
    from empiricist.games.ladder import Ladder

GRID_KIND = "compute_elo_grid"
RATE_SEED, CONFIRM_SEED, RERATE_SEED = 11, 23, 37


def train_imitation(data: str, width: int, steps: list[int], batch: int, lr: float, seed: int, out: str) -> list[str]:
    """One network on one cap's data, every checkpoint written (a job: it resumes what ``out`` holds)."""
    from empiricist.games.dataset import open_dataset
    from empiricist.games.net import TrainConfig, train

    ds = open_dataset(Path(data))
    lo, hi = ds.elo_range()
    center, scale = (lo + hi) / 2, max((hi - lo) / 2, 100.0)
    meta = {"obs_dim": ds.obs_dim, "n_actions": ds.n_actions, "elo_center": center, "elo_scale": scale,
            "default_elo": hi, "data": Path(data).name}
    paths = train(ds.arrays(center, scale), TrainConfig(width=width, steps=tuple(steps), batch=batch, lr=lr, seed=seed),
                  out, meta)
    return [str(p) for p in paths]


def _row(kind: str, r: Rating, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, **extra, "elo": r.elo, "se": r.se, "games": r.games}


def _net_meta(path: str) -> dict[str, Any]:
    from empiricist.games.net import read_checkpoint

    return read_checkpoint(path)[1]


def run_cap(cap: str, cfg: ComputeEloConfig, ladder: Ladder, nets: Path, ws: Workspace, progress: bool,
            executor: Executor | None) -> list[dict[str, Any]]:
    """Every row of one cap: its data's control, the imitation grid, the confirmations, expert iteration."""
    from empiricist.execute import Job, run_jobs
    from empiricist.games.agents import Agent
    from empiricist.games.dataset import DataConfig, build_dataset, players
    from empiricist.games.elo import rate_player
    from empiricist.games.expert import expert_iteration
    from empiricist.games.ladder import rate_many

    say = print if progress else lambda *_: None
    elos = ladder.elo()
    cap_elo = elos[cap]
    dcfg = DataConfig(cap=cap, n_players=cfg.n_players, n_games=cfg.n_games, seed=cfg.seed)
    ds = build_dataset(dcfg, ladder, ws, executor, progress)
    pool = players(dcfg, ladder)
    top = pool[-1].name
    games = ds.games.to_pylist()
    matches = [{"a": g["first"], "b": g["second"], "wins": g["first_score"], "n": 1} for g in games
               if g["first"] != g["second"]]
    rows = [{"kind": "data", "cap": cap, "cap_elo": cap_elo, "cap_se": ladder.ratings[cap].se, "top": top,
             "players": {a.name: elos[a.name] for a in pool}, "n_games": len(games), "n_moves": len(ds.moves),
             "top_in_data": rate_player(top, matches, elos, ladder.config.prior_draws).to_dict()
             if len(pool) > 1 else None, "folder": str(ds.path)}]
    say(f"compute_elo: cap {cap} ({cap_elo:.0f} Elo): {len(ds.moves)} positions from {len(games)} games; "
        f"training {len(cfg.widths)} networks")
    jobs = [Job(f"imitate {cap} w{w}", train_imitation,
                {"data": str(ds.path), "width": w, "steps": list(cfg.steps()), "batch": cfg.batch, "lr": cfg.lr,
                 "seed": cfg.seed, "out": str(nets / cap / f"w{w}")}) for w in cfg.widths]
    per_width = run_jobs(jobs, executor=executor, progress=progress, desc=f"imitation ≤ {cap}")
    ckpts = [p for ps in per_width for p in ps]
    metas = {p: _net_meta(p) for p in ckpts}
    finals = [ps[-1] for ps in per_width]  # each width's last checkpoint (train returns them in step order)
    agents = [Agent("net", path=p) for p in ckpts] + [Agent("net", path=p, elo=cap_elo + cfg.above_cap) for p in finals]
    conds = ["cap"] * len(ckpts) + ["above_cap"] * len(finals)
    rated = rate_many(agents, ladder, cfg.rate_games, RATE_SEED, cfg.rate_window, executor, progress,
                      f"rating ≤ {cap}")
    for a, cond, (r, _) in zip(agents, conds, rated):
        m = metas[a.path]
        rows.append(_row("imitation", r, cap=cap, condition=cond, width=m["width"], step=m["step"],
                         params=m["params"], compute=float(m["train_flops"]), loss=m["loss"], path=a.path))
    # each condition's best network, re-rated on fresh games against every ladder agent (the selection's
    # own rating is biased upward: the best of many noisy numbers)
    best = {cond: max((r for r in rows if r["kind"] == "imitation" and r["condition"] == cond), key=lambda r: r["elo"])
            for cond in ("cap", "above_cap")}
    picks = [Agent("net", path=best["cap"]["path"]),
             Agent("net", path=best["above_cap"]["path"], elo=cap_elo + cfg.above_cap)]
    for cond, (r, _) in zip(best, rate_many(picks, ladder, cfg.confirm_games, CONFIRM_SEED, None, executor, progress,
                                            f"confirming ≤ {cap}")):
        b = best[cond]
        rows.append(_row("confirm", r, cap=cap, condition=cond, width=b["width"], step=b["step"], compute=b["compute"],
                         path=b["path"], selected_elo=b["elo"]))
    say(f"compute_elo: expert iteration from {Path(best['cap']['path']).parent.name}/{Path(best['cap']['path']).name}")
    recs = expert_iteration(best["cap"]["path"], ladder.config.game, cfg.exit_config(), nets / cap / "exit", executor,
                            progress)
    start = next(r for r in rows if r["kind"] == "confirm" and r["condition"] == "cap")
    rated = rate_many([Agent("net", path=rec["path"]) for rec in recs[1:]], ladder, cfg.rate_games, RATE_SEED,
                      cfg.rate_window, executor, progress, f"rating expert iteration ≤ {cap}")
    rows.append({"kind": "exit", "cap": cap, "iteration": 0, "compute": recs[0]["compute"], "elo": start["elo"],
                 "se": start["se"], "games": start["games"], "evaluations": 0, "positions": 0, "path": recs[0]["path"]})
    for rec, (r, _) in zip(recs[1:], rated):
        rows.append(_row("exit", r, cap=cap, iteration=rec["iteration"], compute=rec["compute"],
                         evaluations=rec["evaluations"], positions=rec["positions"], path=rec["path"]))
    return rows


def run_grid(cfg: ComputeEloConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
             executor: Executor | None = None) -> tuple[Path, dict[str, Any], bool]:
    """Build (or reuse) the whole grid: (its folder, its results, reused?)."""
    from empiricist.games.ladder import build_ladder, rate_many

    ws = Workspace.at(workspace)
    folder = ws.dir("compute_elo") / f"{cfg.name}-{cfg.hash}"
    with artifact_lock(folder):
        if is_complete(folder):
            return folder, json.loads((folder / "results.json").read_text()), True
        t0 = time.perf_counter()
        ladder = build_ladder(cfg.ladder_config(), ws, executor, progress)
        rows: list[dict[str, Any]] = [{"kind": "ladder", "agent": k, **r.to_dict()} for k, r in ladder.ratings.items()]
        for cap in cfg.caps:
            ladder.agent(cap)  # an unknown cap is one error naming the agents
        # the ladder-reproduces control: each cap agent rated again, on fresh games, as a newcomer would be
        again = rate_many([ladder.agent(c) for c in cfg.caps], ladder, cfg.confirm_games, RERATE_SEED, None, executor,
                          progress, "re-rating the caps")
        rows += [_row("rerate", r, agent=c, ladder_elo=ladder.ratings[c].elo, ladder_se=ladder.ratings[c].se)
                 for c, (r, _) in zip(cfg.caps, again)]
        nets = ws.dir("games") / f"compute_elo-{cfg.hash}"
        timings = {}
        for cap in cfg.caps:
            t = time.perf_counter()
            rows += run_cap(cap, cfg, ladder, nets, ws, progress, executor)
            timings[cap] = round(time.perf_counter() - t, 1)
        results = {"config": cfg.to_dict(), "rows": rows, "ladder": str(ladder.path),
                   "runtime_s": round(time.perf_counter() - t0, 1), "timings": timings}
        from empiricist.experiments.compute_elo import plots

        write_grid(folder, GRID_KIND, results, cfg.to_dict(), {"ladder": str(ladder.path)},
                   lambda res, out: plots.plot_grid(res, out, cfg))
    return folder, results, False

