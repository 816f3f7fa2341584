"""Model handles on local folders, and the CLI's one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from empiricist.errors import ArtifactError, EmpiricistError
from empiricist.suite.config import ModelSize
from empiricist.suite.handles import load_model
from empiricist.suite.model import build_model


def save_local_model(folder: Path, tokenizer_json: Path, vocab: int) -> Path:
    from empiricist.data.tokenizer import save_hf_tokenizer

    build_model(ModelSize("x", 16, 1, 2), vocab, 64, seed=0).save_pretrained(folder)
    save_hf_tokenizer(tokenizer_json, folder)
    return folder


def test_local_folder_loads_like_a_hub_model(small_store, tmp_path):
    from empiricist.data.store import TokenStore

    store = TokenStore.open(small_store)
    folder = save_local_model(tmp_path / "m", store.tokenizer_path, store.vocab_size)
    h = load_model(str(folder))
    assert h.provenance["source"] == "path" and h.provenance["weights_sha256"]
    assert h.model.config.model_type == "gpt_neox" and len(h.tokenizer) == store.vocab_size
    # a hub id goes to from_pretrained; offline and uncached it fails with one clear message
    with pytest.raises(ArtifactError, match="could not load model 'nobody/no-such-model'"):
        load_model("nobody/no-such-model", revision="step1000")


def test_tokenizer_too_big_for_the_model_is_refused(small_store, tmp_path):
    from empiricist.data.store import TokenStore

    store = TokenStore.open(small_store)
    folder = save_local_model(tmp_path / "m", store.tokenizer_path, vocab=100)  # fewer rows than tokens
    with pytest.raises(EmpiricistError, match="does not belong to this model"):
        load_model(str(folder))


def test_order_refuses_another_store(small_store, tmp_path):
    from conftest import synthetic_texts

    from empiricist.data import Document, build_store, train_bpe
    from empiricist.data.order import TrainingOrder
    from empiricist.data.store import TokenStore

    store = TokenStore.open(small_store)
    TrainingOrder(store, 16, 2, 0).save(tmp_path / "order")
    texts = synthetic_texts(200, seed=5)
    tok = train_bpe(texts, 280, tmp_path / "tok2")
    other = TokenStore.open(build_store((Document(str(i), t) for i, t in enumerate(texts)), tok, tmp_path / "s2",
                                       progress=False))
    with pytest.raises(EmpiricistError, match="made for another token store"):
        TrainingOrder.load(tmp_path / "order", other)
    with pytest.raises(ArtifactError, match="encodes text differently"):
        store.check_tokenizer(tok)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from empiricist.cli import main; main()", *args], check=False,
                          capture_output=True, text=True)


def test_cli_bad_input_is_one_clear_line(tmp_path):
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken\n')
    tok = tmp_path / "tok.json"
    r = run_cli("data", "tokenizer", str(bad), "--out", str(tok), "--vocab", "300")
    assert r.returncode == 2
    assert "corpus.jsonl, line 2" in r.stderr and "malformed JSON" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("model", "info", str(tmp_path / "missing-model"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("data", "batch", "--suite", "no-such-suite", "--step", "1", "-w", str(tmp_path))
    assert r.returncode == 2 and "no suite 'no-such-suite'" in r.stderr
