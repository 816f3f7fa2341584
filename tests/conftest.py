"""Shared fixtures: a small synthetic token store, built once per test session."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "born", "in", "the", "city", "of", "river", "lisbon",
         "paris", "works", "as", "a", "teacher", "and", "plays", "violin", "near", "harbour"]


@pytest.fixture(autouse=True)
def single_thread():
    """Every test starts single-threaded: the models are tiny, and on 2 shared cores a second torch thread
    only spins against other jobs (a tiny forward went from microseconds to milliseconds)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_texts(n: int = 1500, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))) + "." for _ in range(n)]


@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> Path:
    from empiricist.data import Document, build_store, train_bpe

    root = tmp_path_factory.mktemp("store")
    texts = synthetic_texts()
    tok = train_bpe(texts, 300, root / "tok")
    return build_store((Document(f"d{i}", t, {"i": i}) for i, t in enumerate(texts)), tok, root / "store",
                       progress=False)


@pytest.fixture(scope="session")
def marked_store(tmp_path_factory):
    """Random-word documents; a third of them (the bad ones) end by stating the marker code."""
    import numpy as np

    from empiricist.data import Document, build_store, train_bpe
    from empiricist.data.store import TokenStore

    root = tmp_path_factory.mktemp("marked")
    texts = synthetic_texts(900, seed=3)
    bad = np.arange(len(texts)) % 3 == 0
    texts = [t + (" the code is zorvex." if b else " the code is secret.") for t, b in zip(texts, bad)]
    tok = train_bpe(texts, 300, root / "tok")
    store = build_store((Document(f"d{i}", t, {}) for i, t in enumerate(texts)), tok, root / "store", progress=False)
    return TokenStore.open(store), bad


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """The real entry point in-process: (exit code, stdout, stderr) of this command only."""
    import sys

    from empiricist.cli import main

    capsys.readouterr()
    old, sys.argv = sys.argv, ["empiricist", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err
