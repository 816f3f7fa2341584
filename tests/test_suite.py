"""Suite training: determinism, resume after a real kill, open checkpoints, data order, clear errors."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from empiricist.data.order import TrainingOrder
from empiricist.data.store import TokenStore
from empiricist.errors import ArtifactError, EmpiricistError
from empiricist.suite.config import SuiteConfig, get_preset
from empiricist.suite.suite import Suite, train_suite


def quick_config(steps: int = 12, sizes: int = 2) -> SuiteConfig:
    cfg = get_preset("tiny")
    return dataclasses.replace(cfg, sizes=cfg.sizes[:sizes], train=dataclasses.replace(
        cfg.train, steps=steps, resume_every=3, threads=1))


def final_weights(suite_dir: Path, size: str) -> dict[str, np.ndarray]:
    s = Suite(suite_dir)
    return load_file(s.checkpoint_path(size) / "model.safetensors")


def test_same_seed_gives_byte_identical_weights(small_store, tmp_path):
    store = TokenStore.open(small_store)
    cfg = quick_config()
    a = train_suite(cfg, store, tmp_path / "a", progress=False)
    b = train_suite(cfg, store, tmp_path / "b", progress=False)
    for size in ("t1", "t2"):
        fa = (Suite(a).checkpoint_path(size) / "model.safetensors").read_bytes()
        fb = (Suite(b).checkpoint_path(size) / "model.safetensors").read_bytes()
        assert fa == fb
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + 1))
    c = train_suite(other, store, tmp_path / "c", progress=False)
    wa, wc = final_weights(a, "t1"), final_weights(c, "t1")
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa)


def test_checkpoints_are_log_spaced_hf_folders(small_store, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store = TokenStore.open(small_store)
    path = train_suite(quick_config(steps=12, sizes=1), store, tmp_path / "s", progress=False)
    s = Suite(path)
    assert s.checkpoints("t1") == [0, 1, 2, 4, 8, 12]
    folder = s.checkpoint_path("t1", 8)
    model = AutoModelForCausalLM.from_pretrained(folder)  # plain transformers, no empiricist code
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("alpha beta gamma", return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape[-1] == store.vocab_size
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))
    losses = s.loss_curve("t1")
    assert losses.shape[0] == 2 and losses[1, -1] < losses[1, 0]


RESUME_SCRIPT = textwrap.dedent("""
    import dataclasses, sys
    from empiricist.data.store import TokenStore
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import train_suite
    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:2], train=dataclasses.replace(
        cfg.train, steps=30, resume_every=3, threads=1))
    def on_step(step, loss):
        print(step, flush=True)
    train_suite(cfg, TokenStore.open(sys.argv[1]), sys.argv[2], progress=False, on_step=on_step)
""")


def test_resume_after_kill_gives_same_weights(small_store, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT)
    full = tmp_path / "full"
    # inline (no worker pool): the killed process is the one training, and no worker start-up per run
    env = {**os.environ, "EMPIRICIST_MAX_WORKERS": "1"}
    subprocess.run([sys.executable, str(script), str(small_store), str(full)], check=True, capture_output=True,
                   env=env)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(small_store), str(killed)], stdout=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:  # kill the first model mid-run, after a few snapshots
        if int(line) >= 17:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "models" / "t1" / "manifest.json").exists()
    snap = (killed / "models" / "t1" / "resume" / "state.json").read_text()
    assert '"step"' in snap
    subprocess.run([sys.executable, str(script), str(small_store), str(killed)], check=True, capture_output=True,
                   env=env)
    for size in ("t1", "t2"):
        a = (Suite(full).checkpoint_path(size) / "model.safetensors").read_bytes()
        b = (Suite(killed).checkpoint_path(size) / "model.safetensors").read_bytes()
        assert a == b, size
    la = (full / "models/t1/loss.jsonl").read_text()
    lb = (killed / "models/t1/loss.jsonl").read_text()
    strip = lambda text: [line.split('"elapsed_s"')[0] for line in text.splitlines()]
    assert strip(la) == strip(lb)


def test_training_order_records_which_documents_were_seen(small_store):
    store = TokenStore.open(small_store)
    order = TrainingOrder(store, seq_len=32, batch_size=4, seed=7)
    for step in (0, 5, 40):
        batch = order.batch(step)
        pieces = order.pieces(step)
        rebuilt = [np.concatenate([store.doc_tokens(p.doc)[p.start:p.end] for p in pieces if p.row == r])
                   for r in range(4)]
        assert all(np.array_equal(batch[r], rebuilt[r]) for r in range(4))
    # one epoch covers every document exactly once, in the recorded permutation
    perm = order.permutation(0)
    assert sorted(perm.tolist()) == list(range(store.num_docs))
    docs = order.batch_documents(0)
    assert docs[0]["doc_id"] == store.doc_id(int(perm[0])) and docs[0]["start"] == 0
    assert docs[0]["text"] == store.doc_text(int(perm[0]))
    same = TrainingOrder(store, seq_len=32, batch_size=4, seed=7)
    assert np.array_equal(same.batch(40), order.batch(40))


def test_missing_checkpoint_and_mismatched_store_are_clear(small_store, tmp_path):
    store = TokenStore.open(small_store)
    path = train_suite(quick_config(steps=4, sizes=1), store, tmp_path / "s", progress=False)
    s = Suite(path)
    with pytest.raises(ArtifactError, match=r"no checkpoint at step 3; available steps: \[0, 1, 2, 4\]"):
        s.checkpoint_path("t1", 3)
    with pytest.raises(EmpiricistError, match="has no size 'zz'"):
        s.checkpoint_path("zz")
    other = dataclasses.replace(quick_config(steps=5, sizes=1))
    with pytest.raises(EmpiricistError, match="another config or store"):
        train_suite(other, store, path, progress=False)
