"""Probe-evasion training: batched runs are independent, the adversarial term works, the grid writes a report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from empiricist.artifacts import read_manifest, verify
from empiricist.errors import InputError
from empiricist.experiments.probe_evasion import StegoConfig, get_grid, study_spec
from empiricist.experiments.probe_evasion.analysis import dominant_frequency
from empiricist.experiments.probe_evasion.model import control_of, sector_labels
from empiricist.experiments.probe_evasion.run import run_stego_grid
from empiricist.experiments.probe_evasion.train import RunSpec, train_runs


def tiny(**kw) -> StegoConfig:
    base = {"steps": 300, "eval_every": 50, "freeze_step": 100, "seeds": 1, "posthoc_k": 3, "posthoc_regs": (1e-2,),
            "mlp_probe_steps": 40, "threads": 1}
    return get_grid("reduced", **{**base, **kw})


def test_statistic_and_control_have_the_same_balance():
    S = sector_labels(23, 4)
    assert S.shape == (11, 529)
    for k in range(11):
        counts = np.bincount(S[k].numpy())
        assert counts.max() - counts.min() <= 23  # one answer value (23 pairs) apart at most
        assert np.array_equal(np.sort(np.bincount(control_of(S[k], 23, seed=k).numpy())), np.sort(counts))


def test_batched_runs_are_independent():
    cfg = tiny(steps=60, freeze_step=30)
    alone = train_runs(cfg, [RunSpec(1, 0.6, 0.0, "none")], progress=False)
    together = train_runs(cfg, [RunSpec(0, 0.5, 1.0, "adversarial", 3), RunSpec(1, 0.6, 0.0, "none")], progress=False)
    np.testing.assert_allclose(alone.curves["test_acc"][:, 0], together.curves["test_acc"][:, 1], atol=1e-6)
    torch.testing.assert_close(alone.reps["h1"][0], together.reps["h1"][1], atol=1e-4, rtol=1e-4)


def test_a_batch_split_side_by_side_trains_the_same_bytes_as_one_batch(monkeypatch):
    from empiricist.experiments.probe_evasion.run import _train_split
    from empiricist.experiments.probe_evasion.train import merge, padded_rows

    cfg = tiny(steps=60, freeze_step=30)
    runs = [RunSpec(0, 0.5, 1.0, "adversarial", 3), RunSpec(1, 0.6, 0.0, "none"), RunSpec(0, 0.4, 1.0, "frozen", 2),
            RunSpec(1, 0.5, 0.0, "none")]
    whole = train_runs(cfg, runs, progress=False)
    pad = padded_rows(cfg, runs)
    parts = merge([train_runs(cfg, runs[:2], progress=False, pad_to=pad),
                   train_runs(cfg, runs[2:], progress=False, pad_to=pad)])
    monkeypatch.setattr("empiricist.execute.available_cores", lambda: 2)
    scheduled = _train_split(cfg, runs, progress=False, desc="t")  # two spawned workers, one thread each
    for got in (parts, scheduled):
        assert got.runs == runs
        assert all(np.array_equal(whole.curves[k], got.curves[k]) for k in whole.curves)
        assert all(torch.equal(whole.reps[k], got.reps[k]) for k in whole.reps)


def test_adversarial_term_lowers_the_training_time_probe_accuracy():
    """Same seed, same split, same init: with λ > 0 the live probe for S_k* ends far below the λ = 0 twin's."""
    cfg = tiny(steps=500)
    twin = train_runs(cfg, [RunSpec(0, 0.6, 0.0, "none")], progress=False)
    k = int(dominant_frequency(twin.reps["h1"], cfg.p)[0])
    adv = train_runs(cfg, [RunSpec(0, 0.6, 3.0, "adversarial", k)], progress=False)
    free, hidden = twin.curves["head_acc"][-1, 0, k - 1], adv.curves["head_acc"][-1, 0, k - 1]
    assert free > 0.8, f"the unpenalised twin should carry S_k* linearly (got {free:.2f})"
    assert hidden < free - 0.3, f"the penalty should push the probe down (λ=0: {free:.2f}, λ=3: {hidden:.2f})"
    assert adv.curves["penalty"][-1, 0] < 0.1


def test_grid_writes_a_self_contained_report(tmp_path):
    cfg = tiny(seeds=2)
    res = run_stego_grid(cfg, tmp_path / "grid", progress=False)
    assert verify(res.path) == [] and StegoConfig.from_dict(read_manifest(res.path, kind="stego_grid")["config"]) == cfg
    assert len(res.rows) == 2 * (1 + 2) and {v["variant"] for v in res.verdicts} == {"adversarial", "frozen"}
    assert all(v["supports"] in ("P1", "not-P1") for v in res.verdicts)
    assert all((v["verdicts"]["P1"] == "corroborated") == (v["supports"] == "P1") for v in res.verdicts)
    html = (res.path / "summary.html").read_text()
    assert html.count("data:image/png;base64") == 3 and "Verdicts" in html
    saved = json.loads((res.path / "results.json").read_text())
    assert saved["study"]["config_hash"] == study_spec(cfg)["config_hash"]
    row = res.rows[0]
    for key in ("gen_step", "lin_h1", "ctrl_h1", "mlp_h1", "r2_h1", "pen_probe_acc", "k_star", "k_after"):
        assert key in row
    with np.load(res.path / "curves.npz") as z:
        assert z["test_acc"].shape == (len(z["steps"]), len(res.rows))


def test_bad_configs_are_refused():
    with pytest.raises(InputError, match="prime"):
        StegoConfig(p=24)
    with pytest.raises(InputError, match="include 0"):
        StegoConfig(lambdas=(1.0, 3.0))
    with pytest.raises(InputError, match="unknown stego grid"):
        get_grid("huge")
