"""magic: metagradients through the training run, checked against what they claim to be.

Ground truth here is the run itself: finite differences of the replayed training in float64 (the
metagradient must equal them), one step of torch's own AdamW + clipping (the replayed step must be it),
the recorded model (the replay must reproduce it), and masked retraining (metasmoothness).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empiricist.attribution.data import Documents, Rows
from empiricist.attribution.magic import (
    Replay,
    check_replay,
    metagradients,
    metasmoothness,
    query_loss,
    read_run,
)
from empiricist.attribution.retrain import record_run, train_on_docs
from empiricist.errors import EmpiricistError
from empiricist.suite.config import ModelSize, TrainConfig

V = 96
SIZE = ModelSize("m", 16, 1, 2)
CFG = TrainConfig(seq_len=32, batch_size=4, steps=10, lr=1e-2, warmup_steps=2, threads=1, precision="fp32")


def _docs(n: int = 24, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.append(rng.integers(1, V, int(rng.integers(10, 30))), 0) for _ in range(n)]


def _rows(n: int = 3, seed: int = 1) -> Rows:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1, V, 10) for _ in range(n)]
    masks = [np.r_[np.zeros(5), np.ones(5)].astype(np.float32) for _ in ids]
    return Rows(ids, masks, np.arange(n), np.ones(n, dtype=np.float32))


def test_the_replayed_step_is_the_trainers_step():
    from empiricist.suite.model import build_model
    from empiricist.suite.step import Stepper

    docs = _docs()
    replay = Replay(docs, SIZE, CFG, V, seed=0)
    model = build_model(SIZE, V, CFG.seq_len, seed=0)
    model.config._attn_implementation = "eager"  # as the replay: same kernels, so float noise is all that differs
    stepper = Stepper(model, CFG, "fp32")
    state = replay.start()
    for t in range(3):
        stepper(torch.from_numpy(replay.order.batch(t)), CFG.lr_at(t))
        state = replay._step_nograd(state, torch.ones(len(docs)), t)
    for k, p in model.named_parameters():
        # the moments are linear in the (clipped) gradients: float noise only
        torch.testing.assert_close(state[1][k], stepper.opt.state[p]["exp_avg"], rtol=1e-4, atol=1e-8)
        torch.testing.assert_close(state[2][k], stepper.opt.state[p]["exp_avg_sq"], rtol=1e-4, atol=1e-10)
        # the weights: Adam's m/√v turns float noise in near-zero gradients into up to ~lr·1e-3 per step
        torch.testing.assert_close(state[0][k], p.detach(), rtol=0, atol=1e-3 * CFG.lr)


def test_metagradients_equal_unrolled_autograd_and_finite_differences():
    """Gold 1: plain autograd through the whole unrolled run (memory ∝ steps; fine at this size).
    Gold 2: central differences of the replayed training (h = 1e-3: smaller steps meet Adam's m/√v on
    near-zero gradients, whose curvature is huge, and float noise from HF's float32 rotary tables)."""
    from empiricist.attribution.data import pad_batch, summed_nll
    from empiricist.attribution.magic import _Bound

    docs, rows = _docs(), _rows()
    replay = Replay(docs, SIZE, CFG, V, seed=0, dtype=torch.float64)
    mg, _ = metagradients(replay, rows, 3, segment=3, chunk=2, progress=False)  # segments, chunks: both paths
    w = torch.ones(len(docs), dtype=torch.float64, requires_grad=True)
    state = replay.start()
    for t in range(CFG.steps):
        state = replay.step(state, w, t)
    for q in range(3):
        nll = summed_nll(_Bound(replay.model, state[0]), pad_batch([rows.ids[q]], [rows.masks[q]])).sum()
        (gold,) = torch.autograd.grad(nll, w, retain_graph=True)
        np.testing.assert_allclose(mg[q], gold.numpy(), rtol=1e-8, atol=1e-12)
    h = 1e-3
    for d in (0, 7, 19):
        up, down = torch.ones(len(docs), dtype=torch.float64), torch.ones(len(docs), dtype=torch.float64)
        up[d] += h
        down[d] -= h
        fd = (query_loss(replay, replay.run(up)[0][0], rows, 3) - query_loss(replay, replay.run(down)[0][0], rows, 3)) / (2 * h)
        np.testing.assert_allclose(mg[:, d], fd, rtol=2e-3, atol=1e-6)
    assert np.abs(mg).max() > 1e-3  # not vacuously zero
    same, _ = metagradients(replay, rows, 3, segment=1, chunk=3, progress=False)  # every state kept
    np.testing.assert_allclose(mg, same, rtol=1e-9, atol=1e-12)


def test_metasmoothness_finds_the_linear_range_and_where_it_ends():
    """Tiny weight changes are first order; this recipe (Adam at lr 1e-2 from step 0, whose first steps
    are nearly lr·sign(g), so coordinates with |g| near Adam's ε have huge curvature) stops being linear
    by ε = 1e-2 — the check must say so rather than report a good fit."""
    docs, rows = _docs(), _rows()
    replay = Replay(docs, SIZE, CFG, V, seed=0, dtype=torch.float64)
    mg, _ = metagradients(replay, rows, 3, progress=False)
    out = metasmoothness(replay, rows, 3, mg, scales=(1e-5, 1e-2), n_directions=3)
    assert [o["scale"] for o in out] == [1e-5, 1e-2]
    assert out[0]["r"] > 0.99 and abs(out[0]["slope"] - 1) < 0.05, out
    assert out[1]["r"] < 0.9, out
    assert out[1]["mean_abs_actual"] > out[0]["mean_abs_actual"]


def test_the_replay_must_reproduce_the_recorded_model(tmp_path):
    docs = _docs()
    folder = tmp_path / "final"
    model = train_on_docs(docs, SIZE, CFG, V, seed=0, save_at={CFG.steps: folder})
    documents = Documents([f"d{i}" for i in range(len(docs))], docs, [""] * len(docs))
    run = read_run(folder, documents)
    final = Replay(docs, **run).trainer(Replay(docs, **run).start(), 0, CFG.steps)[0]
    assert check_replay(final[0], model) == 0.0  # the trainer itself, same threads: bit for bit
    other = Replay(docs, **{**run, "seed": 1}).run()[0]  # another init: not the recorded run
    with pytest.raises(EmpiricistError, match="did not reproduce"):
        check_replay(other[0], model, environment=run["environment"])
    assert run["environment"]["torch_threads"] == torch.get_num_threads()
    with pytest.raises(EmpiricistError, match="trained on documents"):
        read_run(folder, documents.subset(range(10)))
    with pytest.raises(EmpiricistError, match="recorded training run"):
        read_run(tmp_path, documents)


def test_magic_through_attribute_is_in_nats(tmp_path):
    """On a saved model: ``attribute(..., "magic")`` is minus the metagradient of the query's summed NLL
    (the tests above hold that to autograd and finite differences), labelled in nats."""
    from conftest import synthetic_texts

    from empiricist.attribution import Query, attribute
    from empiricist.data.tokenizer import save_hf_tokenizer, train_bpe
    from empiricist.suite.handles import load_model

    texts = synthetic_texts(40, seed=5)
    tok_path = train_bpe(texts, 300, tmp_path / "tok")
    folder = tmp_path / "model"
    folder.mkdir()
    save_hf_tokenizer(tok_path, folder)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    docs = Documents.from_texts(texts, tok)
    record_run(folder, docs.tokens, SIZE, CFG, len(tok), 0)
    train_on_docs(docs.tokens, SIZE, CFG, len(tok), seed=0).save_pretrained(folder, safe_serialization=True)
    q = Query(texts[3][:20], texts[3][20:40], None, "q")
    res = attribute(load_model(str(folder)), [q], docs, "magic", progress=False)
    assert res.units.startswith("nats") and "positive" in res.sign
    from empiricist.attribution.data import query_rows

    mg, _ = metagradients(Replay(docs.tokens, SIZE, CFG, len(tok), 0), query_rows([q], tok, CFG.seq_len), 1,
                          progress=False)
    np.testing.assert_allclose(res.scores, -mg, rtol=1e-6, atol=1e-9)  # positive = lowers the NLL
    assert np.abs(res.scores).max() > 1e-3
