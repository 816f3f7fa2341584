"""Evals during training with a locked threshold policy: the policy file and its lock, a planted crossing on
a tiny suite (the alert with its hash, interval and evidence; the stop, and the resume once STOP goes), a
watcher started after training computing only what is new, and the live view."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_evals_common import *  # shared fixtures: conftest.py belongs to the lead

from empiricist.errors import InputError
from empiricist.monitor import Watcher, load_policy, lock_policy, read_policy

POLICY = """
[policy]
id = "planted"
tasks = ["{task}"]

[[thresholds]]
id = "any-score"
task = "{task}"
when = "{when}"
confidence = 0.9
action = "{action}"
"""


def _policy(tmp_path: Path, when: str = "mean >= 0", action: str = "stop", name: str = "p.toml",
            task: str = "fact_qa") -> Path:
    path = tmp_path / name
    path.write_text(POLICY.format(when=when, action=action, task=task))
    return path


def test_a_policy_is_read_strictly_and_a_locked_one_cannot_move(tmp_path):
    p = _policy(tmp_path)
    pol = read_policy(p)
    assert pol.thresholds[0].when == "mean >= 0" and pol.thresholds[0].crossed({"mean": 0.1, "lo": 0, "hi": 1})
    assert not read_policy(_policy(tmp_path, "lower > 0.3", name="q.toml")).thresholds[0].crossed(
        {"mean": 0.5, "lo": 0.29, "hi": 0.7})
    with pytest.raises(InputError, match=r"thresholds\[0\]\.when = 'above 3'"):
        read_policy(_policy(tmp_path, "above 3", name="bad.toml"))
    with pytest.raises(InputError, match="action = 'explode'"):
        read_policy(_policy(tmp_path, action="explode", name="bad2.toml"))
    with pytest.raises(InputError, match="not locked"):
        load_policy(p)
    lock_policy(p, "Ada")
    policy, lock = load_policy(p)
    assert lock["sha256"] == policy.sha256 and lock["signer"] == "Ada"
    p.write_text(p.read_text().replace("mean >= 0", "mean >= 0.5"))  # the threshold moved after the commitment
    with pytest.raises(InputError, match="changed since it was locked"):
        load_policy(p)
    with pytest.raises(InputError, match="locks another version"):
        lock_policy(p, "Ada")


def _suite_cfg(steps: int = 8):
    from empiricist.suite.config import get_preset

    cfg = get_preset("tiny")
    return dataclasses.replace(cfg, sizes=cfg.sizes[:2],
                               train=dataclasses.replace(cfg.train, steps=steps, resume_every=2, threads=1))


def test_a_planted_crossing_alerts_with_its_evidence_and_stops_training(eval_store, eval_world, tmp_path):
    from empiricist.artifacts import Workspace, is_complete
    from empiricist.monitor.live import table, write_page
    from empiricist.suite.suite import train_suite

    ws = Workspace.at(tmp_path / "ws")
    p = _policy(tmp_path, task=f"world:{eval_world}:fact_qa")  # every checkpoint crosses "mean >= 0": planted
    lock_policy(p, "Ada")
    policy, lock = load_policy(p)
    suite_dir = tmp_path / "suite"
    said: list[str] = []
    cfg = _suite_cfg()
    # the suite folder must exist before the watcher reads its world: train_suite writes suite.json first
    watcher: Watcher | None = None

    def on_step(step: int, loss: float) -> None:
        nonlocal watcher
        if watcher is None:
            watcher = Watcher(suite_dir, policy, ws, lock=lock, say=said.append)
        watcher.on_step(step, loss)

    train_suite(cfg, eval_store, suite_dir, progress=False, on_step=on_step)
    assert watcher is not None
    alerts = watcher.alerts()
    assert [(a["size"], a["step"]) for a in alerts] == [("t1", 0)]  # one alert: the first crossing
    a = alerts[0]
    assert a["policy"]["sha256"] == policy.sha256 and a["threshold"]["when"] == "mean >= 0"
    assert a["confidence"] == 0.9 and a["lo"] <= a["mean"] <= a["hi"]
    run_dir = Path(a["evidence"]["eval_run"])  # the same run folder and report as any eval run
    assert (run_dir / "results.jsonl").is_file() and (run_dir / "report.html").is_file() and a["evidence"]["items"]
    assert any(s.startswith("ALERT any-score") for s in said)
    for size in ("t1", "t2"):  # the stop: neither size finished; t2 never took a step
        model = suite_dir / "models" / size
        assert (model / "STOP").is_file() and not is_complete(model)
    stopped = json.loads((suite_dir / "models" / "t1" / "stopped.json").read_text())
    assert 1 <= stopped["step"] < cfg.train.steps and json.loads(stopped["reason"])["policy"]["sha256"] == policy.sha256
    assert json.loads((suite_dir / "models" / "t2" / "stopped.json").read_text())["step"] == 0
    # the live view renders what was recorded, escaped
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(table(watcher))
    assert "ALERT" in console.export_text()
    page = write_page(watcher).read_text()
    assert "any-score" in page and "data:image/png;base64" in page and "<script" not in page
    # a person removes STOP: training resumes from the snapshot and finishes
    for size in ("t1", "t2"):
        (suite_dir / "models" / size / "STOP").unlink()
    train_suite(cfg, eval_store, suite_dir, progress=False)
    assert all(is_complete(suite_dir / "models" / s) for s in ("t1", "t2"))


def test_a_watcher_started_after_training_reads_the_cache_and_records_without_acting(tiny_suite, eval_world,
                                                                                     tmp_path):
    from empiricist.artifacts import Workspace
    from empiricist.monitor.watch import checkpoints

    ws = Workspace.at(tmp_path / "ws")
    p = _policy(tmp_path, "upper < 0", action="alert", task=f"world:{eval_world}:fact_qa")  # never crossed
    policy, _ = load_policy(p, require_lock=False)
    w = Watcher(tiny_suite, policy, ws, say=lambda _: None)
    first = w.poll()
    assert len(first["new"]) == len(checkpoints(tiny_suite)) and not first["alerts"]
    assert {(m["size"], m["step"]) for m in w.metrics()} == {(s, k) for s, k, _ in checkpoints(tiny_suite)}
    assert w.poll() == {"new": [], "alerts": []}  # nothing new: nothing computed
    assert not any((tiny_suite / "models" / s / "STOP").exists() for s in ("t1", "t2"))


def test_the_cli_trains_with_a_policy_and_the_monitor_reads_it_back(eval_store, eval_world, tmp_path):
    from typer.testing import CliRunner

    from empiricist.cli import app

    p = _policy(tmp_path, task=f"world:{eval_world}:fact_qa")
    ws = str(tmp_path / "ws")
    run = CliRunner().invoke
    res = run(app, ["suite", "train", "--preset", "tiny", "--store", str(eval_store.path), "--steps", "4",
                    "--policy", str(p), "--workspace", ws, "--quiet"])
    assert res.exit_code != 0 and "not locked" in str(res.exception)  # a policy must be committed to first
    assert run(app, ["policy", "lock", str(p), "--signer", "Ada"]).exit_code == 0
    res = run(app, ["suite", "train", "--preset", "tiny", "--store", str(eval_store.path), "--steps", "4",
                    "--policy", str(p), "--workspace", ws, "--quiet"])
    assert res.exit_code == 0, res.output
    assert "ALERT any-score" in res.output and "STOP written" in res.output
    suite = next((tmp_path / "ws" / "suites").iterdir())
    res = run(app, ["monitor", str(suite), "--policy", str(p), "--once", "--workspace", ws])
    assert res.exit_code == 0, res.output
    assert "ALERT" in res.output and "report.html" in res.output
    assert list((tmp_path / "ws" / "monitor").glob("*/report.html"))
    res = run(app, ["policy", "check", str(p)])
    assert "locked by Ada" in res.output and "mean >= 0" in res.output


def test_a_budget_defers_evaluation_and_finish_catches_up(eval_store, eval_world, tmp_path):
    from empiricist.artifacts import Workspace, is_complete
    from empiricist.monitor.watch import TrainingWatch, checkpoints
    from empiricist.suite.suite import train_suite

    p = _policy(tmp_path, action="alert", task=f"world:{eval_world}:fact_qa")
    policy, _ = load_policy(p, require_lock=False)
    suite_dir = tmp_path / "suite"
    # share 0: after the first evaluation every later checkpoint is over budget, so training is never
    # held up again; the checkpoints wait for finish()
    watch = TrainingWatch(suite_dir, policy, Workspace.at(tmp_path / "ws"), say=lambda _: None, share=0.0)
    train_suite(_suite_cfg(), eval_store, suite_dir, progress=False, on_step=watch)
    assert all(is_complete(suite_dir / "models" / s) for s in ("t1", "t2"))  # alert only: nothing stopped
    assert watch.deferred >= 1 and watch.eval_s > 0
    evaluated_during = {(m["size"], m["step"]) for m in watch.watcher.metrics()}
    assert len(evaluated_during) < len(checkpoints(suite_dir))
    w = watch.finish()  # whatever was deferred is evaluated now
    assert {(m["size"], m["step"]) for m in w.metrics()} == {(s, k) for s, k, _ in checkpoints(suite_dir)}
    assert [a["size"] for a in w.alerts()] == ["t1", "t2"]  # one alert per size, the first crossing


def test_gradualism_on_a_suite_forecasts_the_largest_size_and_the_final_checkpoints(eval_store, eval_world,
                                                                                      tmp_path):
    from empiricist.artifacts import Workspace
    from empiricist.monitor.gradualism import suite_gradualism
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import train_suite

    cfg = get_preset("tiny")  # four sizes, 16 steps: checkpoints 0, 1, 2, 4, 8, 16
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=16, resume_every=8, threads=1))
    suite = train_suite(cfg, eval_store, tmp_path / "suite", progress=False)
    (res,) = suite_gradualism(str(suite), [f"world:{eval_world}:fact_qa"], workspace=Workspace.at(tmp_path / "ws"))
    whats = [f["what"] for f in res["forecasts"]]
    assert whats[0].startswith("t4 from t1, t2, t3") and len(whats) == 1 + 4 and not res["skipped"]
    for f in res["forecasts"]:
        assert f["acc"]["lo"] <= f["acc"]["mean"] <= f["acc"]["hi"] and f["acc"]["level"] == 0.95
        assert f["verdict"] in ("smooth", "artefact", "jump")
        assert f["acc"]["covered"] == (f["acc"]["lo"] <= f["acc"]["actual"] <= f["acc"]["hi"])
    assert res["coverage"]["n"] == 5 and 0 <= res["coverage"]["acc"] <= 1
    assert res["items"][0]["what"] == "t1 → t4 (final checkpoints)" and res["items"][0]["n_items"] > 0
    from typer.testing import CliRunner

    from empiricist.cli import app

    out = CliRunner().invoke(app, ["gradualism", str(suite), "--task", f"world:{eval_world}:fact_qa",
                                   "--workspace", str(tmp_path / "ws")])
    assert out.exit_code == 0, out.output
    assert "forecasts at 95%" in out.output and "verdict" in out.output
    out = CliRunner().invoke(app, ["gradualism", str(suite), "--task", f"world:{eval_world}:fact_qa", "--json",
                                   "--workspace", str(tmp_path / "ws")])
    assert json.loads(out.output)[0]["forecasts"][0]["what"] == whats[0]  # read back from the cache
    out = CliRunner().invoke(app, ["gradualism", str(suite), "--task", f"world:{eval_world}:fact_qa", "--out",
                                   str(tmp_path / "g"), "--workspace", str(tmp_path / "ws")])
    page = (tmp_path / "g" / "report.html").read_text()
    assert out.exit_code == 0 and "t4 from t1, t2, t3" in page and "data:image/png;base64" in page
