"""Policy-value networks, capped data, network-guided search and expert iteration (games/), and the
compute–Elo experiment's rule on constructed rows: each against a truth it can miss."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from empiricist.errors import InputError
from empiricist.games.agents import Agent, play_match
from empiricist.games.ladder import LadderConfig, build_ladder
from empiricist.games.net import NetShape, PolicyValueNet, TrainConfig, load_net, read_checkpoint, train
from empiricist.games.rules import load_game

GAME = "hex(board_size=3)"


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMPIRICIST_MAX_WORKERS", "1")
        ws = tmp_path_factory.mktemp("ws")
        return build_ladder(LadderConfig(game=GAME, max_log2_sims=4, games_per_pair=12), ws, progress=False), ws


def _toy(n: int = 600, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Random Hex-3×3-shaped positions whose right move is the lowest legal action, value = +1 when
    the mover is player 0: a target a network can learn exactly."""
    rng = np.random.default_rng(seed)
    legal = rng.random((n, 9)) < 0.6
    legal[np.arange(n), rng.integers(0, 9, n)] = True
    obs = rng.integers(0, 2, (n, 81)).astype(np.float32)
    mover = rng.integers(0, 2, n)
    x = np.concatenate([obs, mover[:, None], np.zeros((n, 1))], axis=1).astype(np.float32)
    x[:, :9] = legal  # the legal moves are visible in the input
    data = {"x": x, "legal": legal, "action": legal.argmax(1), "value": np.where(mover == 0, 1.0, -1.0),
            "policy": None}
    return data, {"obs_dim": 81, "n_actions": 9, "elo_center": 0.0, "elo_scale": 100.0, "default_elo": 0.0}


def test_a_network_learns_a_known_rule_and_numpy_play_matches_torch(tmp_path):
    import torch

    from empiricist.games.net import _Torch

    data, meta = _toy()
    path = train(data, TrainConfig(width=32, steps=(50, 400), lr=1e-2), tmp_path / "n", meta)[-1]
    net = load_net(path)
    logits, value = net.forward(data["x"])
    pred = np.where(data["legal"], logits, -np.inf).argmax(1)
    assert (pred == data["action"]).mean() > 0.9  # chance is about 1/5
    assert np.corrcoef(value, data["value"])[0, 1] > 0.9
    _, m = read_checkpoint(path)
    assert m["step"] == 400 and m["samples"] == 400 * 128 and m["train_flops"] == 6 * m["params"] * 400 * 128
    model = _Torch.build(NetShape(81, 9, 32), 0)
    assert sum(p.numel() for p in model.parameters()) == NetShape(81, 9, 32).params
    from empiricist.games.net import _restore

    _restore(path, model, None)
    with torch.no_grad():
        t_logits, t_value = _Torch.forward(model, torch.from_numpy(data["x"][:20]))
    np.testing.assert_allclose(t_logits.numpy(), logits[:20], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(t_value.numpy(), value[:20], rtol=1e-4, atol=1e-4)


def test_training_is_seeded_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    data, meta = _toy()
    cfg = TrainConfig(width=16, steps=(20, 60))
    a = train(data, cfg, tmp_path / "a", meta)
    b = train(data, cfg, tmp_path / "b", meta)
    wa, wb = read_checkpoint(a[-1])[0], read_checkpoint(b[-1])[0]
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    a[-1].unlink()  # killed after the first checkpoint
    again = read_checkpoint(train(data, cfg, tmp_path / "a", meta)[-1])[0]
    assert all(np.array_equal(again[k], wb[k]) for k in wb)
    other = read_checkpoint(train(data, TrainConfig(width=16, steps=(20, 60), seed=1), tmp_path / "c", meta)[-1])[0]
    assert not np.array_equal(other["w1"], wb["w1"])


def test_bad_network_files_and_configs_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no network file"):
        load_net(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a network checkpoint"):
        load_net(junk)
    from safetensors.numpy import save_file

    save_file({"w1": np.zeros((2, 2), dtype=np.float32)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(InputError, match="metadata"):
        load_net(tmp_path / "foreign.safetensors")
    with pytest.raises(InputError, match="increasing"):
        TrainConfig(steps=(64, 32))
    with pytest.raises(InputError, match="lack"):
        PolicyValueNet({}, {"elo_center": 0, "elo_scale": 1, "default_elo": 0, "obs_dim": 1, "n_actions": 1,
                            "width": 1})


def test_capped_data_holds_only_players_at_or_below_the_cap_and_is_reused(ladder, monkeypatch):
    from empiricist.games import dataset
    from empiricist.games.dataset import DataConfig, build_dataset, players

    lad, ws = ladder
    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")
    cfg = DataConfig(cap="mcts-4", n_players=3, n_games=60)
    ds = build_dataset(cfg, lad, ws, progress=False)
    cap = lad.ratings["mcts-4"].elo
    allowed = {a.name for a in players(cfg, lad)}
    assert len(allowed) == 3 and "mcts-4" in allowed and all(lad.ratings[a].elo <= cap for a in allowed)
    m = ds.moves.to_pylist()
    assert {r["agent"] for r in m} <= allowed and {r["opponent"] for r in m} <= allowed
    assert all(r["action"] in r["legal"] and r["outcome"] in (-1.0, 1.0) for r in m)
    assert all(r["elo"] == lad.ratings[r["agent"]].elo for r in m)
    # the two sides of a game see opposite outcomes; the first mover's score agrees with games.parquet
    first = {g["game"]: g["first_score"] for g in ds.games.to_pylist()}
    for r in m:
        assert (r["outcome"] + 1) / 2 == (first[r["game"]] if r["mover"] == 0 else 1 - first[r["game"]])
    arr = ds.arrays(100.0, 100.0)
    assert arr["x"].shape == (len(m), 81 + 2) and arr["legal"].sum(1).min() >= 1
    monkeypatch.setattr(dataset, "play_records", lambda **_: pytest.fail("replayed a finished dataset"))
    again = build_dataset(cfg, lad, ws, progress=False)
    assert again.path == ds.path and again.moves.equals(ds.moves)
    with pytest.raises(InputError, match="no ladder agent"):
        build_dataset(DataConfig(cap="mcts-99"), lad, ws, progress=False)


def _tiny_net(tmp_path, ladder_ws):
    from empiricist.games.dataset import DataConfig, build_dataset

    lad, ws = ladder_ws
    ds = build_dataset(DataConfig(cap="mcts-4", n_players=3, n_games=60), lad, ws, progress=False)
    meta = {"obs_dim": ds.obs_dim, "n_actions": ds.n_actions, "elo_center": 0.0, "elo_scale": 100.0,
            "default_elo": lad.ratings["mcts-4"].elo}
    return train(ds.arrays(0.0, 100.0), TrainConfig(width=16, steps=(40,)), tmp_path / "net", meta)[-1]


def test_network_agents_search_and_self_play(tmp_path, ladder, monkeypatch):
    from empiricist.games.search import NetEvaluator, selfplay

    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")
    path = _tiny_net(tmp_path, ladder)
    net = load_net(path)
    game = load_game(GAME)
    state = game.new_initial_state()
    ev = NetEvaluator(net, None)
    v = ev.evaluate(state)
    assert v.shape == (2,) and v[0] == -v[1] and ev.evaluations == 1
    prior = ev.prior(state)  # the same state: no second evaluation
    assert ev.evaluations == 1 and math.isclose(sum(p for _, p in prior), 1.0, rel_tol=1e-6)
    for kind, sims in (("net", 0), ("net_mcts", 8)):
        r = play_match(GAME, Agent(kind, sims=sims, path=str(path)).to_dict(), Agent("random").to_dict(), 6, 0)
        assert r["n"] == 6 and 0 <= r["wins"] <= 6
        assert r == play_match(GAME, Agent(kind, sims=sims, path=str(path)).to_dict(), Agent("random").to_dict(), 6, 0)
    sp = selfplay(GAME, str(path), sims=8, first_game=0, n_games=4, seed=3)
    assert sp["games"] == 4 and sp["evaluations"] > 0 and len(sp["policy"]) == len(sp["value"]) == len(sp["legal"])
    for pol, legal in zip(sp["policy"], sp["legal"]):
        assert math.isclose(float(pol.sum()), 1.0, rel_tol=1e-5) and set(np.flatnonzero(pol)) <= set(legal)
    assert set(sp["value"]) <= {-1.0, 1.0}
    again = selfplay(GAME, str(path), sims=8, first_game=0, n_games=4, seed=3)
    assert again["value"] == sp["value"] and all(np.array_equal(a, b) for a, b in zip(again["policy"], sp["policy"]))


def test_expert_iteration_counts_its_compute_and_resumes(tmp_path, ladder, monkeypatch):
    from empiricist.games.expert import ExItConfig, expert_iteration

    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")
    start = _tiny_net(tmp_path, ladder)
    cfg = ExItConfig(iterations=2, games=6, sims=4, steps=10, batch=16)
    recs = expert_iteration(start, GAME, cfg, tmp_path / "exit")
    assert [r["iteration"] for r in recs] == [0, 1, 2]
    assert recs[0]["compute"] == read_checkpoint(start)[1]["train_flops"]
    params = read_checkpoint(recs[1]["path"])[1]["params"]
    step = recs[1]["compute"] - recs[0]["compute"]
    assert step == recs[1]["evaluations"] * 2 * params + 6 * params * 10 * 16
    w2 = read_checkpoint(recs[2]["path"])[0]
    (tmp_path / "exit" / "iter-002" / "iteration.json").unlink()  # killed before the last iteration finished
    next((tmp_path / "exit" / "iter-002").glob("*.safetensors")).unlink()
    again = expert_iteration(start, GAME, cfg, tmp_path / "exit")
    assert again == recs and all(np.array_equal(read_checkpoint(again[2]["path"])[0][k], w2[k]) for k in w2)
    with pytest.raises(InputError):
        ExItConfig(iterations=0)


# --- the compute–Elo rule on constructed rows ----------------------------------------------------------


def _rows(exit_slope: float, gap: float, se: float = 10.0, imit_slope: float = 200.0) -> list[dict[str, object]]:
    cap_elo = 400.0
    rows = [{"kind": "ladder", "agent": a, "elo": e, "se": 20.0} for a, e in (("random", 0.0), ("mcts-16", cap_elo))]
    rows.append({"kind": "data", "cap": "mcts-16", "cap_elo": cap_elo, "cap_se": 20.0, "top": "mcts-16",
                 "players": {"mcts-16": cap_elo}, "top_in_data": {"elo": cap_elo + 5, "se": 30.0}})
    for i, c in enumerate((1e8, 1e9, 1e10)):
        rows.append({"kind": "imitation", "cap": "mcts-16", "condition": "cap", "width": 16, "step": 2**i,
                     "compute": c, "elo": 100 + imit_slope * i, "se": se})
    for cond in ("cap", "above_cap"):
        rows.append({"kind": "confirm", "cap": "mcts-16", "condition": cond, "width": 16, "step": 4,
                     "compute": 1e10, "elo": cap_elo + gap, "se": se, "selected_elo": cap_elo + gap})
    for i, c in enumerate((1e10, 2e10, 5e10, 1e11)):
        rows.append({"kind": "exit", "cap": "mcts-16", "iteration": i, "compute": c,
                     "elo": 500 + exit_slope * math.log10(c / 1e10), "se": se})
    rows.append({"kind": "rerate", "agent": "mcts-16", "elo": cap_elo + 10, "se": 20.0, "ladder_elo": cap_elo,
                 "ladder_se": 20.0})
    return rows


def _cfg(**kw):
    from empiricist.experiments.compute_elo.config import get_grid

    return get_grid("quick", {"caps": ["mcts-16"], "n_sims": 400, **kw})


def test_the_rule_decides_a_bend_a_continuation_and_the_gap_as_constructed():
    from empiricist.experiments.compute_elo import rule

    assert rule.frontier([(3, 6), (1, 5), (2, 3), (4, 4)]) == [(1, 5), (2, 5), (3, 6), (4, 6)]
    assert math.isclose(rule.slope([(10, 0), (100, 50), (1000, 100)]), 50)
    cfg = _cfg(k=3.0, d=100.0)
    by = {c["condition"]: c for c in rule.evaluate_cells(_rows(exit_slope=20, gap=300), cfg)}
    assert by["cap"]["verdicts"] == {"exceeds_cap": "corroborated", "saturates": "falsified",
                                     "bends": "corroborated", "no_bend": "falsified"}
    assert math.isclose(by["cap"]["tests"]["bends"]["imitation_slope"], 200, rel_tol=1e-9)
    flat = {c["condition"]: c for c in rule.evaluate_cells(_rows(exit_slope=250, gap=0), cfg)}["cap"]
    assert flat["verdicts"] == {"exceeds_cap": "falsified", "saturates": "corroborated", "bends": "falsified",
                                "no_bend": "corroborated"}
    near = {c["condition"]: c for c in rule.evaluate_cells(_rows(exit_slope=200 / 3, gap=100, se=60), cfg)}["cap"]
    assert near["verdicts"]["bends"] == near["verdicts"]["exceeds_cap"] == "inconclusive"
    # a flat imitation frontier leaves no slope to compare against: undecidable, not a bend
    assert {c["verdicts"]["bends"] for c in rule.evaluate_cells(_rows(20, 0, imit_slope=0.0), cfg)} == {"inconclusive"}


def test_the_controls_fail_when_a_rating_does_not_reproduce_or_the_data_is_above_its_cap():
    from empiricist.experiments.compute_elo import rule

    cfg = _cfg()
    rows = _rows(20, 300)
    assert {k: v["verdict"] for k, v in rule.control_checks(rows, cfg).items()} == {
        "ladder_reproduces": "corroborated", "data_elo_as_claimed": "corroborated", "ladder_has_headroom": "falsified"}
    tall = rows + [{"kind": "ladder", "agent": "mcts-2048", "elo": 1300.0, "se": 40.0}]
    assert rule.control_checks(tall, cfg)["ladder_has_headroom"]["verdict"] == "corroborated"
    moved = [dict(r, elo=r["elo"] + 200) if r["kind"] == "rerate" else r for r in rows]
    assert rule.control_checks(moved, cfg)["ladder_reproduces"]["verdict"] == "falsified"
    above = [dict(r, players={"mcts-16": 400.0, "mcts-32": 600.0}) if r["kind"] == "data" else r for r in rows]
    assert rule.control_checks(above, cfg)["data_elo_as_claimed"]["verdict"] == "falsified"
    off = [dict(r, top_in_data={"elo": 700.0, "se": 30.0}) if r["kind"] == "data" else r for r in rows]
    assert rule.control_checks(off, cfg)["data_elo_as_claimed"]["verdict"] == "falsified"
    weaker = [dict(r, top_in_data={"elo": 100.0, "se": 30.0}) if r["kind"] == "data" else r for r in rows]
    assert rule.control_checks(weaker, cfg)["data_elo_as_claimed"]["verdict"] == "corroborated"  # one-sided


def test_the_plan_flags_a_gap_it_cannot_decide():
    from empiricist.experiments.compute_elo.config import get_grid
    from empiricist.experiments.compute_elo.study import ComputeElo

    exp = ComputeElo()
    assert exp.plan(get_grid("full")).flags == []
    assert exp.plan(get_grid("full", {"confirm_games": 2, "d": 20.0})).flags[0].startswith("UNDERPOWERED")
    with pytest.raises(InputError, match="unknown config key"):
        get_grid("full", {"kk": 3})
    with pytest.raises(InputError):
        get_grid("full", {"widths": []})


def test_the_quick_study_runs_end_to_end_and_reuses_its_grid(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    import empiricist.experiments.compute_elo.study  # noqa: F401  (registers the experiment, as the CLI does)
    from empiricist.experiments.compute_elo import rule
    from empiricist.studies import run_study, sign

    specs = Path(__file__).resolve().parents[1] / "src" / "empiricist" / "experiments" / "compute_elo" / "specs"
    spec = tmp_path / "compute_elo_quick.toml"
    shutil.copy(specs / "compute_elo_quick.toml", spec)
    ws = tmp_path / "ws"
    for party, who in (("ceiling", "Ada"), ("generalise", "Bob")):
        sign(spec, party, who, workspace=ws)
    run = run_study(spec, workspace=ws)
    res = run.results
    assert res["experiment"] == "compute_elo" and {c["condition"] for c in res["cells"]} == {"cap", "above_cap"}
    assert set(res["control_checks"]) == set(rule.CONTROL_TESTS)
    page = run.report.read_text()
    assert "Compute–Elo curves below and above the cap" in page and "data:image/png;base64" in page
    grid = json.loads((run.folder / "grid" / "results.json").read_text())
    kinds = {r["kind"] for r in grid["rows"]}
    assert kinds == {"ladder", "rerate", "data", "imitation", "confirm", "exit"}
    ex = sorted((r for r in grid["rows"] if r["kind"] == "exit"), key=lambda r: r["iteration"])
    assert len(ex) == 3 and all(a["compute"] < b["compute"] for a, b in itertools.pairwise(ex))
    assert run_study(spec, workspace=ws, out=tmp_path / "again").results["grid"]["reused"]


def test_the_shipped_study_is_locked_by_both_parties_and_its_results_are_what_the_rule_says():
    from pathlib import Path

    import empiricist.experiments.compute_elo.study  # noqa: F401
    from empiricist.experiments.compute_elo import rule
    from empiricist.experiments.compute_elo.report import config_of
    from empiricist.studies import read_lock
    from empiricist.studies.run import prepare_run

    specs = Path(__file__).resolve().parents[1] / "src" / "empiricist" / "experiments" / "compute_elo" / "specs"
    prepare_run(specs / "compute_elo.toml")  # the spec, the rule's source and the config as locked
    lock = read_lock(specs / "compute_elo.toml")
    assert lock["complete"] and {s["party"] for s in lock["signoffs"]} == {"ceiling", "generalise"}
    shipped = specs / "compute_elo.results"
    res = json.loads((shipped / "results.json").read_text())
    grid = json.loads((shipped / "grid" / "results.json").read_text())
    cfg = config_of(grid["config"])
    # the shipped verdicts are the locked rule's, recomputed from the shipped rows
    again = {(c["cap"], c["condition"]): c["verdicts"] for c in rule.evaluate_cells(grid["rows"], cfg)}
    assert again == {(c["cap"], c["condition"]): c["verdicts"] for c in res["cells"]}
    assert {k: v["verdict"] for k, v in rule.control_checks(grid["rows"], cfg).items()} == \
        {k: v["verdict"] for k, v in res["control_checks"].items()}
    assert res["amendments"] and "rate_player" in res["amendments"][0]["what"]
