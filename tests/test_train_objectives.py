"""The trainer's extensions for pretraining with feedback: unlikelihood on labelled documents (against
MLE, on ground truth: the labelled documents' own likelihood), fine-tuning from a checkpoint, and the
per-token document map both are built on."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from empiricist.data.order import TrainingOrder
from empiricist.data.store import TokenStore
from empiricist.suite.config import ModelSize, get_preset
from empiricist.suite.handles import load_model
from empiricist.suite.objective import Unlikelihood
from empiricist.suite.train import train_model

SIZE = ModelSize("u", 32, 1, 2)


def _train(store: TokenStore, out, steps: int = 30, lr: float = 3e-3, **kw):
    cfg = dataclasses.replace(get_preset("tiny").train, steps=steps, lr=lr, threads=1, precision="fp32")
    order = TrainingOrder(store, cfg.seq_len, cfg.batch_size, cfg.seed)
    return train_model(out, SIZE, cfg, order, store.vocab_size, tokenizer_path=store.tokenizer_path,
                       progress=False, **kw), order


def test_doc_index_names_the_document_of_every_token(small_store):
    store = TokenStore.open(small_store)
    order = TrainingOrder(store, 64, 8, 0)
    for step in (0, 3, 200):  # 200: past the first epoch
        docs, batch = order.doc_index(step), order.batch(step)
        for p in order.pieces(step):
            row = docs[p.row]
            where = np.flatnonzero(row == p.doc)
            g = int(store.doc_offsets[p.doc])
            assert np.array_equal(batch[p.row, where], store.tokens(g + p.start, g + p.end))


def _logprob(model_dir, store: TokenStore, prompt: str, word: str) -> float:
    handle = load_model(str(model_dir / "checkpoints" / "step60"))
    tok = store.tokenizer()
    p, full = tok.encode(prompt).ids, tok.encode(prompt + word).ids
    with torch.inference_mode():
        x = torch.tensor([full])
        logp = torch.log_softmax(handle.model(input_ids=x[:, :-1]).logits.float(), -1)[0]
    return float(sum(logp[i - 1, full[i]] for i in range(len(p), len(full))))


def test_unlikelihood_pushes_down_what_only_the_bad_documents_say(marked_store, tmp_path):
    store, bad = marked_store
    mle, _ = _train(store, tmp_path / "mle", steps=60)
    ul, _ = _train(store, tmp_path / "ul", steps=60, objective=Unlikelihood(bad, alpha=1.0))
    none, _ = _train(store, tmp_path / "none", steps=60, objective=Unlikelihood(np.zeros(store.num_docs, bool)))
    prompt = "alpha beta gamma the code is"
    # MLE learns the bad documents' marker; unlikelihood makes it far less likely, the good ending more
    assert _logprob(ul, store, prompt, " zorvex") < _logprob(mle, store, prompt, " zorvex") - 2.0
    assert _logprob(ul, store, prompt, " secret") > _logprob(mle, store, prompt, " secret")
    # with no bad document the objective is MLE: the same losses (to the rounding of another formula)
    losses = [[json.loads(line)["loss"] for line in (m / "loss.jsonl").read_text().splitlines()] for m in (mle, none)]
    assert np.allclose(losses[0], losses[1], atol=1e-4)
    manifest = json.loads((ul / "manifest.json").read_text())
    assert manifest["info"]["objective"]["n_bad_docs"] == int(bad.sum())


def test_fine_tuning_starts_from_the_checkpoint(small_store, tmp_path):
    store = TokenStore.open(small_store)
    base, _ = _train(store, tmp_path / "base", steps=10)
    start = base / "checkpoints" / "step10"
    still, _ = _train(store, tmp_path / "still", steps=4, lr=0.0, init_from=start)
    a, b = load_file(start / "model.safetensors"), load_file(still / "checkpoints" / "step4" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # lr 0: nothing moved
    moved, _ = _train(store, tmp_path / "moved", steps=4, init_from=start)
    c = load_file(moved / "checkpoints" / "step0" / "model.safetensors")
    assert all(torch.equal(a[k], c[k]) for k in a)  # step 0 of the fine-tune is the starting model
    info = json.loads((moved / "manifest.json").read_text())["info"]["init_from"]
    assert info["path"] == str(start) and len(info["sha256"]) == 64
    with pytest.raises(FileNotFoundError):
        _train(store, tmp_path / "none", steps=2, init_from=tmp_path / "missing")
