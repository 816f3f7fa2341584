"""``suite verify``: does this environment train the same model? Replay the last span and compare bytes.

The trainer keeps its last snapshot before the end as ``models/<size>/verify/`` (weights, optimiser,
step). Verify loads it, retrains from there to the end with the model's own recorded recipe (same
``Stepper``, thread count, deterministic kernels, data order and LR schedule), and compares the result with
the final checkpoint: identical bytes, equal within a tolerance, or different — and which fields of the
recorded environment fingerprint differ from this one (suite/environment.py says which fields matter).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from empiricist.artifacts import is_complete, sha256_file
from empiricist.errors import ArtifactError
from empiricist.suite.environment import fingerprint, fingerprint_diff
from empiricist.suite.model import build_model, quiet_transformers
from empiricist.suite.step import Stepper, configure_threads, deterministic
from empiricist.suite.suite import Suite
from empiricist.suite.train import load_snapshot, train_step


@dataclass
class VerifyResult:
    size: str
    status: str  # "identical", "within tolerance" or "different"
    from_step: int
    to_step: int
    max_abs_diff: float
    worst_tensor: str | None
    sha256_recorded: str  # of the final checkpoint's model.safetensors
    sha256_now: str  # of the same file written from the replay
    environment_diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "different"


def compare(recorded: dict[str, torch.Tensor], now: dict[str, torch.Tensor], tolerance: float
            ) -> tuple[str, float, str | None]:
    """(status, max |Δ|, the tensor with the largest |Δ|) over the recorded tensors."""
    worst, worst_name, identical = 0.0, None, True
    for name, a in recorded.items():
        b = now.get(name)
        if b is None or b.shape != a.shape:
            return "different", float("inf"), name
        if torch.equal(a, b):
            continue
        identical = False
        d = float((a.double() - b.double()).abs().max())
        if d > worst or worst_name is None:
            worst, worst_name = d, name
    if identical:
        return "identical", 0.0, None
    return ("within tolerance" if worst <= tolerance else "different"), worst, worst_name


def verify_model(suite_dir: str | Path, size: str, *, tolerance: float = 1e-6, progress: bool = True
                 ) -> VerifyResult:
    """Replay ``size``'s last training span from its verify snapshot and compare with its final checkpoint."""
    suite = Suite(suite_dir)
    model_dir = suite.model_dir(size)
    snap = model_dir / "verify"
    if not is_complete(model_dir):
        raise ArtifactError(f"{model_dir}: the model has not finished training; run `empiricist suite train` first")
    if not is_complete(snap):
        raise ArtifactError(f"{snap}: no verify snapshot (the model was trained before `suite verify` existed, "
                            "or its run has no snapshot before the last step); retrain it to verify it")
    cfg, spec = suite.config.train, suite.config.size(size)
    manifest = suite.model_manifest(size)
    threads = configure_threads(cfg.threads_for(spec))
    precision = cfg.precision_for(spec)
    model = build_model(spec, suite.meta["vocab_size"], cfg.seq_len, seed=cfg.seed)
    stepper = Stepper(model, cfg, precision, cfg.compile)
    start = load_snapshot(snap, model, stepper.opt)
    stepper.sync()
    order = suite.order()
    model.train()
    with deterministic():
        for step in tqdm(range(start, cfg.steps), desc=f"verify {size}", disable=not progress, unit="step"):
            train_step(stepper, cfg, order, step)
    final = suite.checkpoint_path(size, cfg.steps) / "model.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        quiet_transformers()
        model.save_pretrained(tmp, safe_serialization=True)  # the checkpoint's own serialisation (key names)
        mine = Path(tmp) / "model.safetensors"
        status, diff, worst = compare(load_file(final), load_file(mine), tolerance)
        sha_now = sha256_file(mine)
    env_now = fingerprint(threads, cfg.compile, precision)
    return VerifyResult(size, status, start, cfg.steps, diff, worst, sha256_file(final), sha_now,
                        fingerprint_diff(manifest.get("info", {}).get("environment"), env_now))


def verify_suite(suite_dir: str | Path, sizes: list[str] | None = None, *, tolerance: float = 1e-6,
                 progress: bool = True) -> list[VerifyResult]:
    suite = Suite(suite_dir)
    return [verify_model(suite.path, s, tolerance=tolerance, progress=progress) for s in sizes or suite.sizes]
