"""Players and games on OpenSpiel: the rules, its C++ MCTS bots, and seeded matches.

An ``Agent`` is a small value (it crosses process boundaries as a job argument and names itself in
every table); ``bot`` turns it into an OpenSpiel bot for one game. Matches alternate who moves first
(Hex's first player has a large advantage), and every game has its own seed, so a match is a pure
function of (game, agents, games, seed): the same on any executor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.errors import InputError
from empiricist.games.rules import game_seed, load_game, play_game

if TYPE_CHECKING:
    import pyspiel

    from empiricist.games.net import PolicyValueNet

KINDS = ("random", "mcts", "net", "net_mcts")
UCT_C = 1.4  # OpenSpiel's examples' exploration constant for random-rollout MCTS


@dataclass(frozen=True)
class Agent:
    """A player. ``random``; ``mcts`` (OpenSpiel's C++ MCTS, random rollouts, ``sims`` simulations per
    move); ``net`` (a policy network's most likely legal move); ``net_mcts`` (search with the network's
    prior and value, ``sims`` simulations). ``path``: the network file of the net kinds; ``elo``: the
    rating an Elo-conditioned network is asked to play at (None: the network's default condition)."""

    kind: str
    sims: int = 0
    path: str | None = None
    elo: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown agent kind {self.kind!r}: choose one of {list(KINDS)}", field="agent.kind")
        if self.kind in ("mcts", "net_mcts") and self.sims < 1:
            raise InputError(f"a {self.kind} agent needs sims >= 1", field="agent.sims")
        if self.kind in ("random", "net") and self.sims:
            raise InputError(f"a {self.kind} agent does not search: leave sims at 0", field="agent.sims")
        if self.kind.startswith("net") and not self.path:
            raise InputError(f"a {self.kind} agent needs the path of its network", field="agent.path")
        if self.elo is not None and not self.kind.startswith("net"):
            raise InputError("only a network agent takes an elo condition", field="agent.elo")

    @property
    def name(self) -> str:
        if self.kind == "random":
            return "random"
        if self.kind == "mcts":
            return f"mcts-{self.sims}"
        stem = str(self.path).rstrip("/").rsplit("/", 1)[-1].removesuffix(".safetensors")
        cond = "" if self.elo is None else f"@{self.elo:g}"
        return f"{self.kind}-{self.sims}:{stem}{cond}" if self.kind == "net_mcts" else f"net:{stem}{cond}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Agent:
        extra = set(d) - {"kind", "sims", "path", "elo"}
        if extra or "kind" not in d:
            raise InputError(f"an agent is kind, sims, path, elo (got {sorted(d)})", field="agent")
        return cls(**d)


class RandomBot:
    """A uniformly random legal move, for whichever player is to move."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def step(self, state: pyspiel.State) -> int:
        legal = state.legal_actions()
        return int(legal[self.rng.integers(len(legal))])

    def restart_at(self, state: pyspiel.State) -> None:  # the pyspiel.Bot interface
        pass


class GreedyPolicyBot:
    """A network's most likely legal move (ties broken by a seeded draw). Greedy, not sampled: a policy
    imitating a mix of players at temperature 0 plays the mix's majority move, which is how imitation could
    beat its teachers at all (Zhang et al. 2024, "Transcendence"); the study asks whether it does."""

    def __init__(self, net: PolicyValueNet, seed: int, elo: float | None) -> None:
        self.net, self.elo = net, elo
        self.rng = np.random.default_rng(seed)

    def step(self, state: pyspiel.State) -> int:
        probs = self.net.policy(state, self.elo)
        best = np.flatnonzero(probs >= probs.max() - 1e-9)
        return int(best[self.rng.integers(len(best))])

    def restart_at(self, state: pyspiel.State) -> None:  # the pyspiel.Bot interface
        pass


def bot(agent: Agent, game: pyspiel.Game, seed: int) -> Any:
    """An OpenSpiel bot (or one with the same ``step``) playing ``agent``."""
    import pyspiel

    if agent.kind == "random":
        # not pyspiel.make_uniform_random_bot (its step() segfaults in open-spiel 2.0.2) nor the Python
        # UniformRandomBot (bound to one player id): one bot here plays either side
        return RandomBot(seed)
    if agent.kind == "mcts":
        evaluator = pyspiel.RandomRolloutEvaluator(1, seed)
        # (game, evaluator, uct_c, max_simulations, max_memory_mb, solve, seed, verbose)
        return pyspiel.MCTSBot(game, evaluator, UCT_C, agent.sims, 1_000, False, seed, False)
    from empiricist.games.net import load_net

    net = load_net(agent.path)
    if agent.kind == "net":
        return GreedyPolicyBot(net, seed, agent.elo)
    from empiricist.games.search import net_mcts_bot

    return net_mcts_bot(game, net, agent.sims, seed, agent.elo)


def play_match(game: str, a: dict[str, Any], b: dict[str, Any], n_games: int, seed: int) -> dict[str, Any]:
    """``n_games`` between agents ``a`` and ``b`` (as dicts: a job argument), ``a`` moving first in the
    even-numbered games: ``a``'s wins. Hex has no draws; a draw in another game counts half."""
    g = load_game(game)
    agent_a, agent_b = Agent.from_dict(a), Agent.from_dict(b)
    wins = 0.0
    first_wins = 0.0
    for i in range(n_games):
        s = game_seed(seed, i)
        bot_a, bot_b = bot(agent_a, g, s), bot(agent_b, g, s + 1)
        a_first = i % 2 == 0
        ret, _ = play_game(g, bot_a, bot_b) if a_first else play_game(g, bot_b, bot_a)
        score_first = (ret + 1) / 2
        first_wins += score_first
        wins += score_first if a_first else 1 - score_first
    return {"a": agent_a.name, "b": agent_b.name, "wins": wins, "n": n_games, "first_wins": first_wins}
