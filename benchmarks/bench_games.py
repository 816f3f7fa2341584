"""What the compute–Elo study's play costs: C++ MCTS games by simulations, one network move in numpy
against torch, and network-guided Python MCTS (games/).

    python benchmarks/bench_games.py [--games 20]

Prints one JSON line per measurement. Times are wall clock on one thread, medians of repeats; run it
alone (two shared cores are noisy). ``numpy_evaluate`` includes reading the OpenSpiel state (observation,
legal moves) and the masked softmax; the two forward timings are the network alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=20)
    ap.add_argument("--game", default="hex(board_size=5)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from empiricist.games.agents import Agent, play_match
    from empiricist.games.net import NetShape, TrainConfig, _Torch, load_net, train
    from empiricist.games.rules import load_game
    from empiricist.games.search import selfplay

    for sims in (16, 128, 1024):
        a, b = Agent("mcts", sims=sims).to_dict(), Agent("mcts", sims=sims // 2).to_dict()
        s = _median_time(lambda a=a, b=b: play_match(args.game, a, b, args.games, 0), 3) / args.games
        print(json.dumps({"what": f"C++ MCTS game, {sims} vs {sims // 2} simulations", "ms_per_game": round(1e3 * s, 2)}))

    g = load_game(args.game)
    obs_dim, n_actions = int(np.prod(g.observation_tensor_shape())), g.num_distinct_actions()
    rng = np.random.default_rng(0)
    n = 512
    legal = np.ones((n, n_actions), dtype=bool)
    data = {"x": rng.random((n, obs_dim + 2)).astype(np.float32), "legal": legal,
            "action": rng.integers(0, n_actions, n), "value": rng.choice([-1.0, 1.0], n).astype(np.float32),
            "policy": None}
    meta = {"obs_dim": obs_dim, "n_actions": n_actions, "elo_center": 0.0, "elo_scale": 100.0, "default_elo": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for width in (16, 128):
            path = train(data, TrainConfig(width=width, steps=(1,)), Path(tmp) / f"w{width}", meta)[-1]
            net = load_net(path)
            state = g.new_initial_state()
            model = _Torch.build(NetShape(obs_dim, n_actions, width), 0)
            x = torch.from_numpy(data["x"][:1])

            def torch_moves(model: torch.nn.Module = model, x: torch.Tensor = x) -> None:
                with torch.no_grad():
                    for _ in range(200):
                        _Torch.forward(model, x)

            xn = data["x"][:1]
            t_eval = _median_time(lambda net=net, state=state: [net.evaluate(state) for _ in range(200)], 5) / 200
            t_np = _median_time(lambda net=net, xn=xn: [net.forward(xn) for _ in range(200)], 5) / 200
            t_torch = _median_time(torch_moves, 5) / 200
            print(json.dumps({"what": f"one position, width {width}", "numpy_forward_us": round(1e6 * t_np, 1),
                              "torch_forward_us": round(1e6 * t_torch, 1), "torch_over_numpy": round(t_torch / t_np, 2),
                              "numpy_evaluate_us (state to move probabilities)": round(1e6 * t_eval, 1)}))
        t = time.perf_counter()
        sp = selfplay(args.game, str(path), sims=64, first_game=0, n_games=args.games, seed=0)
        dt = time.perf_counter() - t
        print(json.dumps({"what": "network-guided Python MCTS self-play, width 128, 64 simulations",
                          "ms_per_game": round(1e3 * dt / args.games, 1),
                          "evaluations_per_s": round(sp["evaluations"] / dt)}))


if __name__ == "__main__":
    main()
