"""Shared fixtures for the eval and report tests: a tiny world, its tokenizer, tiny models, a tiny suite.

Imported by the other ``test_evals*``/``test_report*`` modules (pytest picks fixtures up from module
globals). Torch runs single-threaded here: on 2 cores shared with a training job, two threads spin
against each other and a tiny forward pass gets ~50x slower.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
__all__ = ["eval_store", "eval_world", "handle", "model_dirs", "save_model", "subset", "tiny_suite"]


@pytest.fixture(scope="session")
def eval_world(tmp_path_factory) -> Path:
    from empiricist.world import WorldConfig, generate_world

    config = WorldConfig.preset("tiny", plant_rate=0.1)
    return Path(generate_world(config, out_dir=tmp_path_factory.mktemp("evw") / "world", progress=False))


@pytest.fixture(scope="session")
def eval_store(eval_world, tmp_path_factory):
    from empiricist.data import TokenStore, build_store, iter_documents, train_bpe

    root = tmp_path_factory.mktemp("evstore")
    tok = train_bpe((d.text for d in iter_documents(eval_world)), 384, root / "tok")
    return TokenStore.open(build_store(iter_documents(eval_world), tok, root / "store", progress=False))


def save_model(folder: Path, tokenizer_json: Path, vocab: int, d_model: int = 16, n_layers: int = 1,
               seed: int = 0, positions: int = 256) -> Path:
    from empiricist.data.tokenizer import save_hf_tokenizer
    from empiricist.suite.config import ModelSize
    from empiricist.suite.model import build_model

    build_model(ModelSize(f"d{d_model}", d_model, n_layers, 2), vocab, positions, seed).save_pretrained(folder)
    save_hf_tokenizer(tokenizer_json, folder)
    return folder


@pytest.fixture(scope="session")
def model_dirs(eval_store, tmp_path_factory) -> list[Path]:
    """Two randomly initialised models of different sizes sharing the world's tokenizer (256 positions)."""
    root = tmp_path_factory.mktemp("evmodels")
    return [save_model(root / "small", eval_store.tokenizer_path, eval_store.vocab_size, 16, 1, seed=0),
            save_model(root / "large", eval_store.tokenizer_path, eval_store.vocab_size, 32, 2, seed=1)]


@pytest.fixture(scope="session")
def handle(model_dirs):
    from empiricist.suite.handles import load_model

    return load_model(str(model_dirs[0]))


@pytest.fixture(scope="session")
def tiny_suite(eval_store, tmp_path_factory) -> Path:
    """Two sizes of the tiny preset trained 4 steps on the world (checkpoints 0, 1, 2, 4; 64 positions)."""
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import train_suite

    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:2],
                              train=dataclasses.replace(cfg.train, steps=4, resume_every=2, threads=1))
    return Path(train_suite(cfg, eval_store, tmp_path_factory.mktemp("evsuite") / "suite", progress=False))


def subset(task, n: int = 0, ids: set[str] | None = None):
    """A task restricted to its first ``n`` items, or to the items with the given ids."""
    items = tuple(it for it in task.items if it.id in ids) if ids is not None else task.items[:n]
    return dataclasses.replace(task, items=items)
