"""The gradualism experiment: the rule's interval validated by simulation (coverage at the nominal level
when the scatter is as declared, planted jumps found), the rule on rows whose verdicts are known, the
power check, and the CI-sized study end to end through `study run`."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from empiricist.errors import InputError
from empiricist.experiments.gradualism import rule
from empiricist.experiments.gradualism.config import get_grid

SPECS = Path(__file__).resolve().parents[1] / "src" / "empiricist" / "experiments" / "gradualism" / "specs"
PARAMS = {"s1": 1e5, "s2": 4e5, "s3": 1.6e6}
STEPS = (32, 64, 128, 256, 300)


def _cfg():
    return dataclasses.replace(get_grid("full"), tasks=("fact_qa",), metrics=("fact_qa:acc", "fact_qa:logp"))


def _rows(rng, jump=0.0, logp_jump=0.0, sweeps=("family rate 0", "family rate 0.4", "family rate 0.8")):
    """Three sizes per sweep on a line in log params and log step, scattered as declared; ``jump`` added to
    the largest size's final accuracy in the last sweep (``logp_jump`` to its log probability)."""
    cfg = _cfg()
    rows = []
    for sweep in sweeps:
        for size, n in PARAMS.items():
            for step in STEPS:
                final = step == STEPS[-1]
                acc = 0.1 + 0.05 * math.log10(n / 1e5) + 0.04 * math.log10(step / 32)
                logp = -3 + 0.2 * math.log10(n / 1e5) + 0.1 * math.log10(step / 32)
                acc += rng.normal(0, cfg.scatter["fact_qa:checkpoint_acc"] / 3)
                logp += rng.normal(0, cfg.scatter["fact_qa:checkpoint_logp"] / 3)
                if final and size == "s3" and sweep == sweeps[-1]:
                    acc, logp = acc + jump, logp + logp_jump
                scores = (rng.random(400) < acc).astype(float).tolist() if final else None
                row = {"kind": "point", "sweep": sweep, "task": "fact_qa", "size": size, "step": step, "n_params": n,
                       "acc": acc, "logp": logp, "final": final, "early": not final, "eighth": step == 32}
                if scores is not None:
                    row["scores"] = [1.0] * 200 + [0.0] * 200 if size == "s3" else [0.0] * 400
                rows.append(row)
    return rows


def test_the_declared_interval_covers_at_its_level_and_sees_a_planted_jump():
    rng = np.random.default_rng(0)
    x, sd = [1e5, 4e5, 1.6e6], 0.03
    hits, seen = 0, 0
    for _ in range(4000):
        y = [0.1 + 0.05 * math.log10(v / 1e5) + rng.normal(0, sd) for v in x]
        f = rule.line_forecast(x[:2], y[:2], x[2], sd, 0.95)
        hits += f["lo"] <= y[2] <= f["hi"]
        seen += abs((y[2] + 4 * f["se"] - f["mean"]) / f["se"]) > rule.jump_bar(10, 0.05)
    assert abs(hits / 4000 - 0.95) < 0.012  # binomial SE at 4,000 draws is 0.0034
    assert seen / 4000 > 0.6  # a 4-SE jump against a bar of 2.81 SE: power Φ(1.19) ≈ 0.88


def test_a_smooth_world_corroborates_gradual_and_falsifies_jumpy():
    cells = {c["metric"]: c for c in rule.evaluate_cells(_rows(np.random.default_rng(1)), _cfg())}
    assert set(cells) == {"acc", "logp"}
    for c in cells.values():
        assert c["verdicts"] == {"covers_nominal": "corroborated", "jumps": "falsified"}, c["tests"]
        assert c["tests"]["covers_nominal"]["n"] == 3 * (1 + 3)  # per sweep: one size forecast, three checkpoints


def test_a_planted_jump_is_found_and_labelled_artefact_when_the_log_probability_holds():
    cfg = _cfg()
    cells = {c["metric"]: c for c in rule.evaluate_cells(_rows(np.random.default_rng(2), jump=0.45), cfg)}
    acc = cells["acc"]
    assert acc["verdicts"] == {"covers_nominal": "falsified", "jumps": "corroborated"}
    jumped = acc["tests"]["jumps"]["jumped"]
    assert {j["label"] for j in jumped} == {"artefact"} and any("s3 from s1, s2" in j["what"] for j in jumped)
    assert cells["logp"]["verdicts"]["jumps"] == "falsified"
    real = rule.evaluate_cells(_rows(np.random.default_rng(2), jump=0.45, logp_jump=2.0), cfg)
    assert {j["label"] for c in real if c["metric"] == "acc" for j in c["tests"]["jumps"]["jumped"]} == {"real"}


def test_the_controls_read_the_interpolations_and_the_trend():
    cfg = _cfg()
    rows = _rows(np.random.default_rng(3))
    ctl = rule.control_checks(rows, cfg)
    assert ctl["interpolation_holds"]["verdict"] == "corroborated"
    assert ctl["trend_exists"]["verdict"] == "corroborated"  # s3 right on half the items, s1 on none
    for r in rows:
        if r["size"] == "s2" and r["step"] == 128:
            r["acc"] += 0.5  # a checkpoint off its line where the line has data on both sides
        if "scores" in r:
            r["scores"] = [0.0] * 400
    ctl = rule.control_checks(rows, cfg)
    assert ctl["interpolation_holds"]["verdict"] == "falsified"
    assert ctl["trend_exists"]["verdict"] == "falsified"


def test_the_power_check_passes_the_locked_design_and_flags_a_blind_one():
    from empiricist.experiments.gradualism import study

    exp = study.Gradualism()
    assert exp.plan(get_grid("full")).flags == []
    wide = get_grid("full", {"scatter": {k: 3 * v for k, v in get_grid("full").scatter.items()}})
    flags = exp.plan(wide).flags
    assert flags and all(f.startswith("UNDERPOWERED") for f in flags)
    with pytest.raises(InputError, match="metrics"):
        get_grid("full", {"metrics": ["fact_qa:loss"]})
    with pytest.raises(InputError, match="scatter"):
        get_grid("full", {"scatter": {"fact_qa:size_acc": 0.1}})


def test_the_quick_study_runs_end_to_end_and_reuses_its_grid(tmp_path):
    import empiricist.experiments.gradualism.study  # noqa: F401  (registers the experiment, as the CLI does)
    from empiricist.studies import run_study, sign

    spec = tmp_path / "gradualism_quick.toml"
    shutil.copy(SPECS / "gradualism_quick.toml", spec)
    ws = tmp_path / "ws"
    for party, who in (("gradual", "Ada"), ("jumpy", "Bob")):
        sign(spec, party, who, workspace=ws)
    run = run_study(spec, workspace=ws)
    res = run.results
    assert res["experiment"] == "gradualism" and {c["metric"] for c in res["cells"]} == {"acc", "logp"}
    assert set(res["control_checks"]) == set(rule.CONTROL_TESTS)
    assert {p["name"] for p in res["parties"]} == {"gradual", "jumpy"}
    page = run.report.read_text()
    assert "Every forecast against its measurement" in page and "data:image/png;base64" in page
    grid = json.loads((run.folder / "grid" / "results.json").read_text())
    points = [r for r in grid["rows"] if r["kind"] == "point"]
    assert {r["sweep"] for r in points} == {"size sweep", "family rate 0", "family rate 0.8"}
    assert all(r["n_items"] == 200 for r in points)
    for run_folder in grid["eval_runs"].values():
        assert (Path(run_folder) / "results.jsonl").is_file()  # every answer kept
    n_forecasts = len(rule.forecasts(grid["rows"], get_grid("quick")))
    assert n_forecasts == 2 * ((1 + 4) + 2 * 2)  # size sweep: m4 + four checkpoints; families: two checkpoints each
    assert run_study(spec, workspace=ws, out=tmp_path / "again").results["grid"]["reused"]
