"""Unlearning methods through the shared trainer, on ground truth: a model that learned a marker only the
'bad' documents state is asked to forget exactly those documents. Each method must lower the marker's
likelihood; those with a retain term must keep the rest closer to the start than gradient ascent does."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from empiricist.data import Document, build_store
from empiricist.data.order import TrainingOrder
from empiricist.data.store import TokenStore
from empiricist.errors import InputError
from empiricist.suite.config import ModelSize, get_preset
from empiricist.suite.handles import load_model
from empiricist.suite.train import train_model
from empiricist.unlearn import METHODS, unlearn

SIZE = ModelSize("u", 32, 2, 2)


@pytest.fixture(scope="module")
def setup(marked_store, tmp_path_factory):
    store, bad = marked_store
    root = tmp_path_factory.mktemp("unlearn")
    cfg = dataclasses.replace(get_preset("tiny").train, steps=60, threads=1, precision="fp32")
    base = train_model(root / "base", SIZE, cfg, TrainingOrder(store, cfg.seq_len, cfg.batch_size, cfg.seed),
                       store.vocab_size, tokenizer_path=store.tokenizer_path, progress=False)
    texts = [store.doc_text(i) for i in range(store.num_docs)]

    def sub(name, keep):
        return TokenStore.open(build_store((Document(f"{name}{i}", t, {}) for i, t in enumerate(texts) if keep[i]),
                                           store.tokenizer_path, root / name, progress=False))
    return store, sub("forget", bad), sub("retain", ~bad), base / "checkpoints" / "step60", cfg, root


def _score(model_dir, store: TokenStore) -> tuple[float, float]:
    """(log p(' zorvex' | marker prompt), mean token log-prob of retained text)."""
    h = load_model(str(model_dir))
    tok = store.tokenizer()
    prompt, word = tok.encode("alpha beta the code is").ids, tok.encode("alpha beta the code is zorvex").ids
    with torch.inference_mode():
        lp = torch.log_softmax(h.model(input_ids=torch.tensor([word[:-1]])).logits.float(), -1)[0]
        marker = float(sum(lp[i - 1, word[i]] for i in range(len(prompt), len(word))))
        x = torch.tensor(np.asarray(store.tokens(0, 400), dtype=np.int64))[None]
        lp = torch.log_softmax(h.model(input_ids=x[:, :-1]).logits.float(), -1)
        keep = float(lp.gather(-1, x[:, 1:, None]).mean())
    return marker, keep


def test_every_method_forgets_the_marker_and_the_retain_term_protects_the_rest(setup):
    _, forget, retain, start, cfg, root = setup
    ucfg = dataclasses.replace(cfg, steps=12, lr=1e-3, warmup_steps=0, seed=5)
    marker0, keep0 = _score(start, retain)
    got = {}
    for method in METHODS:
        out = unlearn(start, SIZE, ucfg, forget, root / method, method,
                      retain=None if method == "gradient_ascent" else retain,
                      **({"layer": 0, "steering": 20.0, "alpha": 10.0} if method == "rmu" else {}))
        got[method] = _score(out / "checkpoints" / "step12", retain)
        info = json.loads((out / "manifest.json").read_text())["info"]
        assert info["objective"]["kind"] == method and info["init_from"]["path"] == str(start)
    for method in ("gradient_ascent", "gradient_difference", "npo"):  # the likelihood-based methods
        assert got[method][0] < marker0 - 1.0, (method, got[method], marker0)  # the forget marker became unlikely
    ga_damage = keep0 - got["gradient_ascent"][1]
    for method in ("gradient_difference", "npo"):
        assert keep0 - got[method][1] < ga_damage, method  # the retain term kept the rest nearer the start


def test_rmu_moves_forget_activations_to_its_direction_and_its_retain_term_anchors(setup):
    """What RMU optimises, each term checked directly at its layer: the forget term alone pulls forget
    activations towards steering × u; adding the retain term keeps retained activations nearer the frozen
    start's. (Its marker effect is weak in this fixture, where forget and retain documents share all but
    their last words, so the two terms pull against each other.)"""
    from empiricist.unlearn.methods import RMU

    _, forget, retain, start, cfg, root = setup
    rmu = RMU(layer=0, steering=20.0)
    ucfg = dataclasses.replace(cfg, steps=12, lr=1e-2, warmup_steps=0, seed=5)
    runs = {name: unlearn(start, SIZE, ucfg, forget, root / f"rmu-{name}", "rmu", retain=kept, layer=0,
                          steering=20.0, alpha=10.0) / "checkpoints" / "step12"
            for name, kept in (("forget-only", None), ("with-retain", retain))}
    fb = torch.from_numpy(TrainingOrder(forget, cfg.seq_len, cfg.batch_size, 9).batch(0))
    rb = torch.from_numpy(TrainingOrder(retain, cfg.seq_len, cfg.batch_size, 9).batch(0))
    before = load_model(str(start)).model
    target = rmu.steering * rmu.direction(SIZE.d_model)
    with torch.no_grad():
        d0 = (rmu.hidden(before, fb) - target).norm(dim=-1).mean()
        models = {k: load_model(str(v)).model for k, v in runs.items()}
        d = {k: (rmu.hidden(m, fb) - target).norm(dim=-1).mean() for k, m in models.items()}
        drift = {k: (rmu.hidden(m, rb) - rmu.hidden(before, rb)).norm(dim=-1).mean() for k, m in models.items()}
    assert d["forget-only"] < 0.5 * d0  # the forget term alone: most of the way to steering × u
    assert drift["with-retain"] < 0.5 * drift["forget-only"]  # the retain term anchors retained text


def test_npo_is_bounded_where_gradient_ascent_is_not(setup):
    """NPO's loss flattens once the forget likelihood is far below the reference's (softplus → 0)."""
    from empiricist.unlearn.methods import NPO, GradientAscent

    _, forget, _, start, cfg, _ = setup
    batch = torch.from_numpy(TrainingOrder(forget, cfg.seq_len, cfg.batch_size, 0).batch(0))
    model = load_model(str(start)).model
    npo, ga = NPO(start=str(start), beta=0.1), GradientAscent()
    with torch.no_grad():
        at_start, ga_start = float(npo.loss(model, batch, None)), float(ga.loss(model, batch, None))
        assert abs(at_start - 2 / 0.1 * np.log(2)) < 1e-3  # log πθ = log π_ref: (2/β)·softplus(0)
        model.get_output_embeddings().weight.mul_(-4.0)  # now a far worse model of the forget text
        npo_far, ga_far = float(npo.loss(model, batch, None)), float(ga.loss(model, batch, None))
    assert 0 <= npo_far < 0.1 * at_start  # bounded below by 0, and (here) there to float precision
    assert ga_far < ga_start - 10  # gradient ascent's loss keeps falling with the damage


def test_an_unknown_method_is_named(setup):
    _, forget, _, start, cfg, root = setup
    with pytest.raises(InputError, match="unknown unlearning method 'forget_harder'"):
        unlearn(start, SIZE, cfg, forget, root / "x", "forget_harder")
