"""Search with a network, and expert iteration: past the data's cap by self-play.

``net_mcts_bot`` is OpenSpiel's Python MCTS (``open_spiel.python.algorithms.mcts``: PUCT selection as in
AlphaZero) with the network as its prior and value; only the evaluator is ours. ``selfplay`` plays
games with it and records, per move, the search's visit distribution (the improved policy) and the
game's outcome: the targets of the next network (Anthony et al. 2017, "Thinking Fast and Slow";
AlphaZero). Every network evaluation is counted, so inference enters the compute axis as
``2 × parameters`` per evaluation, like training's ``6 × parameters`` per sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.games.net import PolicyValueNet, load_net
from empiricist.games.rules import game_seed, load_game

if TYPE_CHECKING:
    import pyspiel

PUCT_C = 2.0  # AlphaZero-style exploration constant with a prior (OpenSpiel's alpha_zero default)


class NetEvaluator:
    """The ``Evaluator`` OpenSpiel's MCTS asks for: per-player values and the prior over legal moves,
    from one network evaluation per new state (cached for the prior the search asks for next)."""

    def __init__(self, net: PolicyValueNet, elo: float | None) -> None:
        self.net, self.elo = net, elo
        self.evaluations = 0
        self._last: tuple[str, np.ndarray, float] | None = None

    def _eval(self, state: pyspiel.State) -> tuple[np.ndarray, float]:
        key = state.history_str()
        if self._last is None or self._last[0] != key:
            probs, value = self.net.evaluate(state, self.elo)
            self.evaluations += 1
            self._last = (key, probs, value)
        return self._last[1], self._last[2]

    def evaluate(self, state: pyspiel.State) -> np.ndarray:
        if state.is_terminal():
            return np.asarray(state.returns())
        _, v = self._eval(state)
        return np.array([v, -v]) if state.current_player() == 0 else np.array([-v, v])

    def prior(self, state: pyspiel.State) -> list[tuple[int, float]]:
        probs, _ = self._eval(state)
        return [(a, float(probs[a])) for a in state.legal_actions()]


def net_mcts_bot(game: pyspiel.Game, net: PolicyValueNet, sims: int, seed: int, elo: float | None = None,
                 noise: tuple[float, float] | None = None) -> Any:
    from open_spiel.python.algorithms import mcts

    return mcts.MCTSBot(game, PUCT_C, sims, NetEvaluator(net, elo), solve=False,
                        random_state=np.random.RandomState(seed % (2**32)),
                        child_selection_fn=mcts.SearchNode.puct_value, dirichlet_noise=noise)


def selfplay(game: str, net_path: str, sims: int, first_game: int, n_games: int, seed: int,
             temperature_moves: int = 4, noise: tuple[float, float] = (0.25, 1.0)) -> dict[str, Any]:
    """Self-play games with network-guided search (one job of an iteration): per move the observation,
    mover, legal moves and the search's visit distribution; the mover's outcome; the evaluations spent.

    The first ``temperature_moves`` moves are drawn in proportion to the visits and the root gets
    Dirichlet noise (AlphaZero's exploration), so the games differ; later moves take the most visited."""
    g = load_game(game)
    net = load_net(net_path)
    n_actions = g.num_distinct_actions()
    out: dict[str, list[Any]] = {"obs": [], "mover": [], "legal": [], "policy": [], "value": []}
    evaluations = 0
    for gi in range(first_game, first_game + n_games):
        s = game_seed(seed, gi)
        search = net_mcts_bot(g, net, sims, s, noise=noise)
        rng = np.random.default_rng(s)
        state = g.new_initial_state()
        movers = []
        while not state.is_terminal():
            player = state.current_player()
            root = search.mcts_search(state)
            visits = np.zeros(n_actions)
            for c in root.children:
                visits[c.action] = c.explore_count
            target = visits / visits.sum()
            ply = len(movers)
            action = int(rng.choice(n_actions, p=target)) if ply < temperature_moves else int(np.argmax(visits))
            out["obs"].append(np.asarray(state.observation_tensor(player), dtype=np.uint8).tobytes())
            out["mover"].append(player)
            out["legal"].append(state.legal_actions(player))
            out["policy"].append(target.astype(np.float32))
            movers.append(player)
            state.apply_action(action)
        returns = state.returns()
        out["value"] += [float(returns[p]) for p in movers]
        evaluations += search.evaluator.evaluations
    return {**out, "evaluations": evaluations, "games": n_games}


def selfplay_arrays(parts: list[dict[str, Any]], obs_dim: int, n_actions: int, elo: float, center: float,
                    scale: float) -> dict[str, np.ndarray]:
    """Training arrays from self-play jobs (the network's input rows with the Elo condition it plays at)."""
    from empiricist.games.net import features, positions

    obs, legal = positions([b for p in parts for b in p["obs"]], [a for p in parts for a in p["legal"]], obs_dim,
                           n_actions)
    mover = np.array([m for p in parts for m in p["mover"]])
    policy = np.stack([t for p in parts for t in p["policy"]]).astype(np.float32)
    value = np.array([v for p in parts for v in p["value"]], dtype=np.float32)
    action = policy.argmax(1)
    return {"x": features(obs, mover, np.full(len(obs), elo), center, scale), "legal": legal, "action": action,
            "value": value, "policy": policy}
