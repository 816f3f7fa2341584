"""The trainer's step: each precision trains, bf16-master resumes exactly, compiled multi-thread runs repeat."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest
import torch

from empiricist.data.store import TokenStore
from empiricist.suite.config import ModelSize, SuiteConfig, TrainConfig, get_preset
from empiricist.suite.model import build_model
from empiricist.suite.step import Stepper
from empiricist.suite.suite import Suite, train_suite

SIZE = ModelSize("x", 64, 1, 4)


def _batches(n: int, vocab: int = 256) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, vocab, (4, 33), generator=g) for _ in range(n)]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "bf16-master"])
def test_every_precision_learns_a_repeated_batch(precision):
    cfg = TrainConfig(seq_len=32, batch_size=4, steps=30, lr=3e-3, warmup_steps=1)
    model = build_model(SIZE, 256, 32, seed=0)
    stepper = Stepper(model, cfg, precision)
    batch = _batches(1)[0]
    losses = [float(stepper(batch, 3e-3)) for _ in range(30)]
    assert losses[-1] < losses[0] - 1.0
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master stays fp32


def test_bf16_master_compute_copy_is_the_rounding_of_the_master():
    cfg = TrainConfig(seq_len=32, batch_size=4, steps=5)
    model = build_model(SIZE, 256, 32, seed=0)
    stepper = Stepper(model, cfg, "bf16-master")
    for b in _batches(3):
        stepper(b, 1e-3)
    master = dict(model.named_parameters())
    for name, p in stepper.compute.named_parameters():
        assert p.dtype == torch.bfloat16
        assert torch.equal(p, master[name].detach().to(torch.bfloat16)), name


def test_bf16_master_is_closer_to_fp32_than_to_a_different_seed():
    """Same init, same batches: bf16-master tracks fp32 training; a different init does not."""
    cfg = TrainConfig(seq_len=32, batch_size=4, steps=10)
    runs = {}
    for name, precision, seed in [("fp32", "fp32", 0), ("master", "bf16-master", 0), ("other", "fp32", 1)]:
        model = build_model(SIZE, 256, 32, seed=seed)
        stepper = Stepper(model, cfg, precision)
        for b in _batches(10):
            stepper(b, 1e-3)
        runs[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    near = (runs["master"] - runs["fp32"]).norm()
    far = (runs["other"] - runs["fp32"]).norm()
    assert near < 0.1 * far


def _config(precision: str, compile: bool, threads: int) -> SuiteConfig:
    cfg = get_preset("tiny")
    return dataclasses.replace(cfg, sizes=(ModelSize("t4", 64, 1, 4),), train=dataclasses.replace(
        cfg.train, steps=8, resume_every=3, threads=threads, precision=precision, compile=compile))


class _Stop(Exception):
    pass


def test_bf16_master_resumes_to_the_same_bytes(small_store, tmp_path):
    store = TokenStore.open(small_store)
    cfg = _config("bf16-master", False, 1)
    full = train_suite(cfg, store, tmp_path / "full", progress=False)

    def stop_at_7(step: int, loss: float) -> None:
        if step == 7:
            raise _Stop  # after the step-6 snapshot: the rerun must resume from it
    with pytest.raises(_Stop):
        train_suite(cfg, store, tmp_path / "resumed", progress=False, on_step=stop_at_7)
    assert '"step": 6' in (tmp_path / "resumed/models/t4/resume/state.json").read_text()
    resumed = train_suite(cfg, store, tmp_path / "resumed", progress=False)
    a = (Suite(full).checkpoint_path("t4") / "model.safetensors").read_bytes()
    assert a == (Suite(resumed).checkpoint_path("t4") / "model.safetensors").read_bytes()


RUN = textwrap.dedent("""
    import dataclasses, hashlib, sys
    from empiricist.data.store import TokenStore
    from empiricist.suite.config import ModelSize, get_preset
    from empiricist.suite.suite import Suite, train_suite
    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=(ModelSize("t4", 64, 1, 4),), train=dataclasses.replace(
        cfg.train, steps=4, threads=2, precision=sys.argv[3], compile=True))
    out = train_suite(cfg, TokenStore.open(sys.argv[1]), sys.argv[2], progress=False)
    print(hashlib.sha256((Suite(out).checkpoint_path("t4") / "model.safetensors").read_bytes()).hexdigest())
""")


@pytest.mark.slow
def test_compiled_two_thread_training_repeats_across_processes(small_store, tmp_path):
    """Before ``deterministic()``, inductor's atomic adds made two such runs differ in embed_in."""
    script = tmp_path / "run.py"
    script.write_text(RUN)
    # both processes at once: compiling is mostly one thread, so side by side takes about half the time
    procs = [subprocess.Popen([sys.executable, str(script), str(small_store), str(tmp_path / f"r{i}"), "bf16"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    shas = [out.split()[-1] for out, _ in outs]
    assert shas[0] == shas[1]
