"""Elo ratings (games/elo.py), agents and matches on OpenSpiel (games/agents.py), and the cached ladder
(games/ladder.py).

The rating checks are simulations: Bradley–Terry outcomes drawn at known ratings must be recovered, and the
95% intervals must cover about 95% of the time. The game checks use Hex on a 3x3 board, where a match of
20 games takes milliseconds. Everything is seeded, so every outcome here is deterministic.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from empiricist.artifacts import Workspace, is_complete
from empiricist.errors import InputError
from empiricist.games import ladder as ladder_mod
from empiricist.games.agents import Agent, RandomBot, bot, load_game, play_game, play_match
from empiricist.games.elo import expected_score, fit_ratings, rate_player
from empiricist.games.ladder import Ladder, LadderConfig, build_ladder, rate

GAME = "hex(board_size=3)"
TRUE = {"p0": 0.0, "p1": 120.0, "p2": -150.0, "p3": 260.0, "p4": 400.0, "p5": -320.0}


def simulate(truth: dict[str, float], n: int, rng: np.random.Generator) -> list[dict[str, object]]:
    """Every pair plays ``n`` games, the first named winning each with the Elo expected score."""
    return [{"a": a, "b": b, "wins": int(rng.binomial(n, expected_score(truth[a], truth[b]))), "n": n}
            for a, b in itertools.combinations(truth, 2)]


# ---- elo: expected score -------------------------------------------------------------------------------


@pytest.mark.parametrize(("ra", "rb"), [(0.0, 0.0), (100.0, -250.0), (1500.0, 1720.5), (-30.0, 800.0)])
def test_expected_score_is_symmetric(ra, rb):
    assert expected_score(ra, rb) + expected_score(rb, ra) == pytest.approx(1.0, abs=1e-12)
    if ra != rb:
        assert (expected_score(ra, rb) > 0.5) == (ra > rb)


def test_expected_score_scale():
    assert expected_score(0, 0) == 0.5
    p = expected_score(400, 0)  # 400 points: 10 to 1 odds
    assert p / (1 - p) == pytest.approx(10.0)
    assert expected_score(1000, 600) == pytest.approx(p)  # only the difference matters


# ---- elo: fit_ratings ----------------------------------------------------------------------------------


def test_fit_ratings_recovers_simulated_ratings():
    n = 400
    results = simulate(TRUE, n, np.random.default_rng(20))
    fit = fit_ratings(results, "p0")
    assert set(fit) == set(TRUE)
    assert fit["p0"].elo == 0.0 and fit["p0"].se == 0.0
    for p, truth in TRUE.items():
        r = fit[p]
        assert r.games == n * (len(TRUE) - 1)
        if p == "p0":
            continue
        assert r.se > 0
        assert abs(r.elo - truth) < 3 * r.se, (p, r, truth)
        assert r.lo < r.elo < r.hi
        assert r.hi - r.lo == pytest.approx(2 * 1.959964 * r.se, rel=1e-5)
    # the order of the players is recovered too
    assert sorted(TRUE, key=lambda p: fit[p].elo) == sorted(TRUE, key=TRUE.get)


def test_fit_ratings_anchor_only_shifts():
    results = simulate(TRUE, 100, np.random.default_rng(3))
    base = fit_ratings(results, "p0")
    shifted = fit_ratings(results, "p0", anchor_elo=1000.0)
    other = fit_ratings(results, "p3")  # another anchor: the same differences
    for p in TRUE:
        assert shifted[p].elo == pytest.approx(base[p].elo + 1000.0, abs=1e-6)
        assert shifted[p].se == pytest.approx(base[p].se, rel=1e-6)
        assert other[p].elo - other["p0"].elo == pytest.approx(base[p].elo, abs=1e-6)
    assert other["p3"].elo == 0.0


def test_fit_ratings_interval_level():
    results = simulate(TRUE, 100, np.random.default_rng(4))
    wide, narrow = fit_ratings(results, "p0", level=0.95), fit_ratings(results, "p0", level=0.5)
    for p in TRUE:
        if p != "p0":
            assert narrow[p].hi - narrow[p].lo < wide[p].hi - wide[p].lo
            assert narrow[p].elo == pytest.approx(wide[p].elo)


def test_fit_ratings_intervals_cover():
    """50 replications x 5 free players = 250 intervals; a correct 95% interval covers ~0.94 here (Wald, and
    the prior's pull), MC SE ~0.015. The z-scores' spread checks the SEs are neither too small nor too big."""
    n_reps, n = 50, 300
    covered, zs = [], []
    for seed in range(n_reps):
        fit = fit_ratings(simulate(TRUE, n, np.random.default_rng(1000 + seed)), "p0")
        for p, truth in TRUE.items():
            if p != "p0":
                covered.append(fit[p].lo <= truth <= fit[p].hi)
                zs.append((fit[p].elo - truth) / fit[p].se)
    coverage = float(np.mean(covered))
    assert 0.85 <= coverage <= 0.995, coverage
    assert 0.8 < float(np.std(zs)) < 1.3
    assert abs(float(np.mean(zs))) < 0.4


def test_fit_ratings_perfect_record_is_finite():
    results = [{"a": "champ", "b": "x", "wins": 30, "n": 30}, {"a": "y", "b": "champ", "wins": 0, "n": 30},
               {"a": "x", "b": "y", "wins": 15, "n": 30}]
    fit = fit_ratings(results, "x")
    champ = fit["champ"]
    assert math.isfinite(champ.elo) and math.isfinite(champ.se) and champ.se > 0
    assert champ.elo > fit["x"].elo and champ.elo > fit["y"].elo
    assert champ.elo < 2000  # one virtual draw per pair: a large but sane rating
    # a stronger prior pulls it toward its opponents
    assert fit_ratings(results, "x", prior_draws=10.0)["champ"].elo < champ.elo


def test_fit_ratings_sums_repeated_matches():
    one = fit_ratings([{"a": "a", "b": "b", "wins": 30, "n": 40}], "a")
    split = fit_ratings([{"a": "a", "b": "b", "wins": 10, "n": 15}, {"a": "b", "b": "a", "wins": 5, "n": 25}], "a")
    assert split["b"].elo == pytest.approx(one["b"].elo, abs=1e-6)
    assert split["b"].games == 40
    assert one["b"].elo < 0  # b scored 10 of 40 against the anchor


def test_fit_ratings_disconnected_graph():
    results = [{"a": "a", "b": "b", "wins": 5, "n": 10}, {"a": "c", "b": "d", "wins": 5, "n": 10}]
    with pytest.raises(InputError, match="not connected"):
        fit_ratings(results, "a")


def test_fit_ratings_chain_is_connected():
    results = [{"a": "a", "b": "b", "wins": 5, "n": 10}, {"a": "b", "b": "c", "wins": 3, "n": 10},
               {"a": "c", "b": "d", "wins": 4, "n": 10}]
    fit = fit_ratings(results, "a")
    assert fit["a"].elo == 0.0 and all(fit[p].se > 0 for p in "bcd")
    assert fit["d"].se > fit["b"].se  # further from the anchor, less certain


def test_fit_ratings_anchor_without_games():
    with pytest.raises(InputError, match="anchor"):
        fit_ratings([{"a": "a", "b": "b", "wins": 5, "n": 10}], "random")
    with pytest.raises(InputError, match="anchor"):
        fit_ratings([], "random")


@pytest.mark.parametrize("bad", [
    {"a": "a", "b": "b", "wins": 11, "n": 10},
    {"a": "a", "b": "b", "wins": -1, "n": 10},
    {"a": "a", "b": "b", "wins": 0, "n": 0},
    {"a": "a", "b": "a", "wins": 5, "n": 10},
])
def test_fit_ratings_bad_result(bad):
    good = {"a": "a", "b": "c", "wins": 5, "n": 10}
    with pytest.raises(InputError, match="bad match result"):
        fit_ratings([good, bad], "a")


# ---- elo: rate_player ----------------------------------------------------------------------------------


LADDER = {"random": 0.0, "m1": 150.0, "m2": 300.0, "m3": 450.0, "m4": 600.0}


def test_rate_player_recovers_known_rating():
    rng = np.random.default_rng(7)
    true, n = 380.0, 300
    results = []
    for i, (opp, r) in enumerate(LADDER.items()):
        wins = int(rng.binomial(n, expected_score(true, r)))
        # the new player is listed second in half the matches: its score is n - wins there
        results.append({"a": "new", "b": opp, "wins": wins, "n": n} if i % 2 == 0
                       else {"a": opp, "b": "new", "wins": n - wins, "n": n})
    unrelated = {"a": "m1", "b": "m2", "wins": 1, "n": 10}  # not the new player's: ignored
    rating = rate_player("new", [*results, unrelated], LADDER)
    assert rating.se > 0 and rating.games == n * len(LADDER)
    assert abs(rating.elo - true) < 3 * rating.se, rating
    assert rating.lo < true < rating.hi
    # the ladder's scale carries over: shifting every ladder rating shifts the new one
    shifted = rate_player("new", results, {k: v + 500 for k, v in LADDER.items()})
    assert shifted.elo == pytest.approx(rating.elo + 500, abs=1e-6)
    assert shifted.se == pytest.approx(rating.se, rel=1e-6)


def test_rate_player_agrees_with_a_joint_fit_against_one_opponent():
    results = [{"a": "new", "b": "random", "wins": 14, "n": 20}]
    joint = fit_ratings(results, "random")["new"]
    alone = rate_player("new", results, {"random": 0.0})
    assert alone.elo == pytest.approx(joint.elo, abs=1e-6)
    assert alone.se == pytest.approx(joint.se, rel=1e-6)
    assert alone.elo > 0


def test_rate_player_unknown_opponent():
    with pytest.raises(InputError, match="no ladder rating"):
        rate_player("new", [{"a": "new", "b": "stranger", "wins": 3, "n": 10}], LADDER)


def test_rate_player_no_games():
    with pytest.raises(InputError, match="no game"):
        rate_player("new", [], LADDER)
    with pytest.raises(InputError, match="no game"):
        rate_player("new", [{"a": "m1", "b": "m2", "wins": 3, "n": 10}], LADDER)


# ---- agents --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"kind": "alphazero"},
    {"kind": "mcts"},
    {"kind": "mcts", "sims": 0},
    {"kind": "net_mcts", "sims": 0, "path": "x.safetensors"},
    {"kind": "net"},
    {"kind": "net_mcts", "sims": 8},
    {"kind": "mcts", "sims": 8, "elo": 500.0},
    {"kind": "random", "elo": 500.0},
])
def test_agent_validation(kwargs):
    with pytest.raises(InputError):
        Agent(**kwargs)


def test_agent_names():
    assert Agent("random").name == "random"
    assert Agent("mcts", sims=8).name == "mcts-8"
    assert Agent("net", path="x/foo.safetensors").name == "net:foo"
    assert Agent("net", path="x/foo.safetensors", elo=500).name == "net:foo@500"
    assert Agent("net", path="runs/foo/").name == "net:foo"
    assert Agent("net_mcts", sims=16, path="x/foo.safetensors", elo=1200.5).name == "net_mcts-16:foo@1200.5"


@pytest.mark.parametrize("agent", [Agent("random"), Agent("mcts", sims=64),
                                   Agent("net", path="x/foo.safetensors", elo=500.0),
                                   Agent("net_mcts", sims=4, path="y.safetensors")])
def test_agent_round_trip(agent):
    d = agent.to_dict()
    assert set(d) == {"kind", "sims", "path", "elo"}
    assert Agent.from_dict(d) == agent
    assert Agent.from_dict(json.loads(json.dumps(d))) == agent  # crosses process boundaries as JSON-able data


def test_load_game():
    assert load_game(GAME).num_players() == 2
    with pytest.raises(InputError, match="cannot load game"):
        load_game("no_such_game_anywhere")
    with pytest.raises(InputError, match="cannot load game"):
        load_game("hex(board_size=")


def test_play_game_records_legal_alternating_moves():
    game = load_game(GAME)
    ret, moves = play_game(game, RandomBot(1), RandomBot(2), record=True)
    assert ret in (-1.0, 1.0)  # hex has no draws
    assert 5 <= len(moves) <= 9  # a 3x3 game needs at least 5 stones and has at most 9 cells
    for k, (obs, legal, action, mover) in enumerate(moves):
        assert mover == k % 2
        assert action in legal
        assert len(legal) == 9 - k
        assert len(obs) == game.observation_tensor_size()
    assert play_game(game, RandomBot(1), RandomBot(2))[1] == []  # nothing recorded unless asked


def test_bots():
    game = load_game(GAME)
    assert isinstance(bot(Agent("random"), game, 0), RandomBot)
    mcts = bot(Agent("mcts", sims=8), game, 0)
    state = game.new_initial_state()
    assert mcts.step(state) in state.legal_actions()


def test_play_match_is_seeded_and_well_formed():
    a, b = Agent("mcts", sims=8).to_dict(), Agent("random").to_dict()
    first = play_match(GAME, a, b, 20, seed=5)
    assert first == play_match(GAME, a, b, 20, seed=5)
    assert set(first) == {"a", "b", "wins", "n", "first_wins"}
    assert (first["a"], first["b"], first["n"]) == ("mcts-8", "random", 20)
    assert 0 <= first["wins"] <= 20 and 0 <= first["first_wins"] <= 20
    # the seed matters: random against random differs between seeds
    rr = Agent("random").to_dict()
    outcomes = {(m["wins"], m["first_wins"]) for m in (play_match(GAME, rr, rr, 20, seed=s) for s in range(6))}
    assert len(outcomes) > 1


def test_mcts_beats_random():
    res = play_match(GAME, Agent("mcts", sims=64).to_dict(), Agent("random").to_dict(), 20, seed=0)
    assert res["wins"] >= 14, res
    swapped = play_match(GAME, Agent("random").to_dict(), Agent("mcts", sims=64).to_dict(), 20, seed=0)
    assert swapped["wins"] <= 6, swapped


def test_first_mover_advantage_is_counted_for_the_first_mover():
    """Hex's first player wins with best play; two strong equal players: the first mover wins most games."""
    strong = Agent("mcts", sims=512).to_dict()
    res = play_match(GAME, strong, strong, 40, seed=0)
    assert res["first_wins"] >= 30, res
    assert 10 <= res["wins"] <= 30, res  # colours alternate, so neither side gets the first move every game


# ---- ladder --------------------------------------------------------------------------------------------


TINY = LadderConfig(game=GAME, max_log2_sims=3, games_per_pair=20, reach=2)


@pytest.mark.parametrize("kwargs", [{"max_log2_sims": 0}, {"games_per_pair": 1}, {"reach": 0}])
def test_ladder_config_validation(kwargs):
    with pytest.raises(InputError):
        LadderConfig(**kwargs)


def test_ladder_config():
    assert [a.name for a in TINY.agents()] == ["random", "mcts-1", "mcts-2", "mcts-4", "mcts-8"]
    assert LadderConfig(**TINY.to_dict()) == TINY
    assert TINY.hash == LadderConfig(**TINY.to_dict()).hash
    assert TINY.hash != LadderConfig(game=GAME, max_log2_sims=3, games_per_pair=20, seed=1).hash


@pytest.fixture(scope="module")
def tiny_ladder(tmp_path_factory):
    """The tiny ladder, played inline (one worker: no process pool to start)."""
    root = tmp_path_factory.mktemp("ladder")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMPIRICIST_MAX_WORKERS", "1")
        return build_ladder(TINY, Workspace(root), progress=False), root


def test_build_ladder(tiny_ladder):
    ladder, root = tiny_ladder
    names = [a.name for a in TINY.agents()]
    assert set(ladder.ratings) == set(names)
    assert ladder.ratings["random"].elo == 0.0
    assert all(math.isfinite(r.elo) for r in ladder.ratings.values())
    assert all(ladder.ratings[n].se > 0 for n in names[1:])
    assert ladder.ratings["mcts-8"].elo > ladder.ratings["random"].elo
    # each agent plays the next `reach` (2) agents up the ladder
    pairs = [(m["a"], m["b"]) for m in ladder.matches]
    assert pairs == [(names[i], names[j]) for i in range(5) for j in range(i + 1, min(i + 3, 5))]
    assert all(m["n"] == TINY.games_per_pair and 0 <= m["wins"] <= m["n"] for m in ladder.matches)
    assert ladder.path == root / "games" / f"ladder-{TINY.hash}"
    assert is_complete(ladder.path) and (ladder.path / "ladder.json").is_file()
    on_disk = json.loads((ladder.path / "ladder.json").read_text())
    assert on_disk["matches"] == ladder.matches
    assert ladder.elo() == {k: r.elo for k, r in ladder.ratings.items()}


def test_build_ladder_reuses_the_artifact(tiny_ladder, monkeypatch):
    ladder, root = tiny_ladder

    def no_games(*args, **kwargs):
        raise AssertionError("the ladder was played again instead of read from disk")

    monkeypatch.setattr(ladder_mod, "play_matches", no_games)
    again = build_ladder(TINY, root, progress=False)  # a str/Path workspace works too
    assert again.ratings == ladder.ratings
    assert again.matches == ladder.matches
    assert again.config == ladder.config and again.path == ladder.path
    # another config is another artifact: it would have to be played
    with pytest.raises(AssertionError, match="played again"):
        build_ladder(LadderConfig(game=GAME, max_log2_sims=2, games_per_pair=20), root, progress=False)


def test_build_ladder_same_on_a_process_pool(tiny_ladder, tmp_path, monkeypatch):
    """The local executor's pool (2 cores: 2 spawned workers) plays the same matches as inline play."""
    ladder, _ = tiny_ladder
    monkeypatch.delenv("EMPIRICIST_MAX_WORKERS", raising=False)
    pooled = build_ladder(TINY, tmp_path, progress=False)
    assert pooled.matches == ladder.matches
    assert pooled.ratings == ladder.ratings


def test_ladder_json_round_trip(tiny_ladder):
    ladder, _ = tiny_ladder
    back = Ladder.from_json(json.loads(json.dumps(ladder.to_json())), ladder.path)
    assert back == ladder
    assert Ladder.from_json(ladder.to_json()).path is None


def test_ladder_at_most(tiny_ladder):
    ladder, _ = tiny_ladder
    for cap in sorted(r.elo for r in ladder.ratings.values()):
        got = ladder.at_most(cap)
        assert {a.name for a in got} == {n for n, r in ladder.ratings.items() if r.elo <= cap}
        assert all(isinstance(a, Agent) for a in got)
    assert ladder.at_most(-1.0) == []
    assert ladder.at_most(0.0)[0] == Agent("random")
    assert ladder.at_most(math.inf) == ladder.agents


def test_ladder_agent(tiny_ladder):
    ladder, _ = tiny_ladder
    assert ladder.agent("mcts-4") == Agent("mcts", sims=4)
    assert ladder.agent("random") == Agent("random")
    with pytest.raises(InputError, match="no ladder agent"):
        ladder.agent("mcts-3")


def test_rate_against_the_ladder(tiny_ladder, monkeypatch):
    ladder, _ = tiny_ladder
    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")
    agent = Agent("mcts", sims=6)
    rating, matches = rate(agent, ladder, games_per_opponent=10)
    assert math.isfinite(rating.elo) and rating.se > 0 and rating.lo < rating.elo < rating.hi
    assert [m["b"] for m in matches] == [a.name for a in ladder.agents]
    assert all(m["a"] == "mcts-6" and m["n"] == 10 for m in matches)
    assert rating.games == 10 * len(ladder.agents)
    assert rating == rate_player("mcts-6", matches, ladder.elo(), ladder.config.prior_draws)
    assert (rating, matches) == rate(agent, ladder, games_per_opponent=10)  # seeded


def test_rate_with_a_window(tiny_ladder, monkeypatch):
    ladder, _ = tiny_ladder
    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")
    rating, matches = rate(Agent("mcts", sims=6), ladder, games_per_opponent=10, window=2)
    opponents = [m["b"] for m in matches]
    assert len(set(opponents)) == len(opponents)  # no opponent twice
    probe = [a.name for a in ladder.agents[:2]]  # the cheapest half of 5 agents: 2
    assert opponents[:2] == probe and len(opponents) <= len(probe) + 2
    assert math.isfinite(rating.elo) and rating.se > 0


def test_rate_player_is_the_same_from_one_row_per_game_as_from_one_row_per_match():
    # the prior's virtual draws are per opponent: listing a match game by game must not add one per game
    # (it did: a player's rating from its per-game data rows was shrunk toward its opponents)
    rng = np.random.default_rng(5)
    ladder = {"r": 0.0, "s": 300.0, "t": 600.0}
    games = [{"a": "x", "b": o, "wins": float(rng.random() < expected_score(450.0, e)), "n": 1}
             for o, e in ladder.items() for _ in range(150)]
    per_match = [{"a": "x", "b": o, "wins": sum(g["wins"] for g in games if g["b"] == o), "n": 150} for o in ladder]
    one, agg = rate_player("x", games, ladder), rate_player("x", per_match, ladder)
    assert one.elo == pytest.approx(agg.elo, abs=1e-6) and one.se == pytest.approx(agg.se, abs=1e-6)
    assert abs(one.elo - 450.0) < 3 * one.se and one.games == 450
