"""``suite verify``: a replay in the same environment is byte-identical; changed weights and environments show."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from empiricist.data.store import TokenStore
from empiricist.errors import ArtifactError
from empiricist.suite.config import get_preset
from empiricist.suite.environment import fingerprint, fingerprint_diff
from empiricist.suite.suite import Suite, train_suite
from empiricist.suite.verify import compare, verify_model, verify_suite


@pytest.fixture(scope="module")
def trained(small_store, tmp_path_factory):
    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:2], train=dataclasses.replace(
        cfg.train, steps=10, resume_every=3, threads=1))
    return train_suite(cfg, TokenStore.open(small_store), tmp_path_factory.mktemp("v") / "s", progress=False)


def test_replay_in_the_same_environment_is_identical(trained):
    results = verify_suite(trained, progress=False)
    assert [r.size for r in results] == ["t1", "t2"]
    for r in results:
        assert r.status == "identical", r
        assert (r.from_step, r.to_step) == (9, 10)  # the snapshot before the end (steps 8 and 9 are snapshots)
        assert r.sha256_now == r.sha256_recorded
        assert r.environment_diff == {}


def test_manifest_and_checkpoints_record_the_environment(trained):
    s = Suite(trained)
    env = s.model_manifest("t1")["info"]["environment"]
    assert env["torch_threads"] == 1 and env["deterministic"] is True
    assert torch.__version__.startswith(env["versions"]["torch"])
    ck = json.loads((s.checkpoint_path("t1") / "empiricist.json").read_text())
    assert ck["environment"]["cpu_model"] == env["cpu_model"]


def test_compare_tells_identical_close_and_different():
    a = {"w": torch.zeros(3)}
    assert compare(a, {"w": torch.zeros(3)}, 1e-6)[0] == "identical"
    status, diff, name = compare(a, {"w": torch.tensor([0.0, 1e-8, 0.0])}, 1e-6)
    assert (status, name) == ("within tolerance", "w") and diff == pytest.approx(1e-8)
    assert compare(a, {"w": torch.tensor([0.0, 1e-2, 0.0])}, 1e-6)[0] == "different"
    assert compare(a, {"v": torch.zeros(3)}, 1e-6)[0] == "different"


def test_a_changed_recorded_model_is_reported_different(trained, tmp_path):
    import shutil

    from safetensors.torch import save_file

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    ckpt = Suite(copy).checkpoint_path("t1", 10) / "model.safetensors"
    tensors = load_file(ckpt)
    name = min(tensors)
    tensors[name] = tensors[name] + 1e-2
    save_file(tensors, ckpt)
    r = verify_model(copy, "t1", progress=False)
    assert r.status == "different" and r.worst_tensor == name and r.max_abs_diff == pytest.approx(1e-2, rel=1e-3)
    assert verify_model(copy, "t1", tolerance=0.02, progress=False).status == "within tolerance"


def test_a_different_environment_names_the_field(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    path = copy / "models" / "t2" / "manifest.json"
    m = json.loads(path.read_text())
    m["info"]["environment"]["torch_threads"] = 2
    m["info"]["environment"]["versions"]["torch"] = "0.0.1"
    path.write_text(json.dumps(m))
    r = verify_model(copy, "t2", progress=False)
    assert r.environment_diff == {"torch_threads": (2, 1), "versions.torch": ("0.0.1", fingerprint(1, False, "fp32")
                                                                              ["versions"]["torch"])}


def test_fingerprint_diff_handles_missing_records():
    now = fingerprint(2, True, "bf16-master")
    assert fingerprint_diff(now, now) == {}
    assert fingerprint_diff(None, now)["torch_threads"] == (None, 2)


def test_a_model_without_a_verify_snapshot_is_a_clear_error(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    shutil.rmtree(copy / "models" / "t1" / "verify")
    with pytest.raises(ArtifactError, match="no verify snapshot"):
        verify_model(copy, "t1", progress=False)


def test_cli_exit_codes(trained, tmp_path):
    import shutil

    from safetensors.torch import save_file
    from typer.testing import CliRunner

    from empiricist.cli import app

    r = CliRunner().invoke(app, ["suite", "verify", "--suite", str(trained), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "identical" in r.output
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    ckpt = Suite(copy).checkpoint_path("t2", 10) / "model.safetensors"
    tensors = {k: v + 1 for k, v in load_file(ckpt).items()}
    save_file(tensors, ckpt)
    r = CliRunner().invoke(app, ["suite", "verify", "--suite", str(copy), "--size", "t2", "--quiet"])
    assert r.exit_code == 1 and "different" in r.output
