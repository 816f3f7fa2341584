"""Game rules on OpenSpiel: loading a game with one clear error, per-game seeds, one game played.

The lowest module of ``games``: agents, search and data all play through ``play_game``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from empiricist.errors import InputError

if TYPE_CHECKING:
    import pyspiel


def load_game(spec: str) -> pyspiel.Game:
    """An OpenSpiel game from its spec string (``hex(board_size=5)``), with one clear error."""
    import pyspiel

    try:
        return pyspiel.load_game(spec)
    except Exception as e:  # noqa: BLE001 - pyspiel raises a bare RuntimeError/SpielError naming only internals
        raise InputError(f"OpenSpiel cannot load game {spec!r}: {e}", field="game") from None


def play_game(game: pyspiel.Game, first: Any, second: Any, record: bool = False
              ) -> tuple[float, list[tuple[list[float], list[int], int, int]]]:
    """One game: the first mover's return, and (when ``record``) every move as
    (observation of the mover, legal actions, action, mover)."""
    state = game.new_initial_state()
    bots = (first, second)
    moves = []
    while not state.is_terminal():
        player = state.current_player()
        action = bots[player].step(state)
        if record:
            moves.append((state.observation_tensor(player), state.legal_actions(player), int(action), player))
        state.apply_action(action)
    return float(state.returns()[0]), moves


def game_seed(seed: int, i: int) -> int:
    """Game ``i`` of a match's seeds (one per game and side, far apart)."""
    return (seed * 1_000_003 + i * 7_919) % (2**31 - 1)
