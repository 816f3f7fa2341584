"""Small, fast retraining on a list of documents: the ground truth that attribution is judged against.

It reuses the suite's pieces — ``build_model`` (same init for the same seed), ``TrainingOrder`` (same
packing), ``Stepper``/``lr_at`` (same recipe) — on an in-memory document list, so a retrained
model differs from the base model only in which documents it saw (and, between seeds, in init and order).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empiricist.artifacts import atomic_write_json
from empiricist.attribution.data import Rows, pad_batch, summed_nll
from empiricist.suite.config import ModelSize, TrainConfig

RUN_FILE = "training_run.json"  # the recipe beside a finished model: what attribution.magic replays


class ArrayStore:
    """The slice of the token-store interface that ``TrainingOrder`` reads, over arrays in memory."""

    def __init__(self, docs: Sequence[np.ndarray], name: str = "arrays") -> None:
        lengths = [len(d) for d in docs]
        self.doc_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._tokens = np.concatenate(list(docs)).astype(np.int64) if docs else np.zeros(0, np.int64)
        self.path = Path(f"<{name}>")
        self.fingerprint = f"{name}-{len(docs)}-{int(self.doc_offsets[-1])}"

    def __len__(self) -> int:
        return len(self.doc_offsets) - 1

    def tokens(self, start: int, end: int) -> np.ndarray:
        return self._tokens[start:end]


def tokens_fingerprint(docs: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for t in docs:
        h.update(len(t).to_bytes(8, "little"))
        h.update(np.ascontiguousarray(t, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def record_run(folder: Path, docs: Sequence[np.ndarray], size: ModelSize, cfg: TrainConfig, vocab_size: int,
               seed: int) -> None:
    """Write the recipe that made the model in ``folder``, with the suite's environment record (torch's
    thread count changes float summation order: 2 threads vs 1 moved weights by 1.5e-4 in 60 steps): what
    ``magic`` replays."""
    from empiricist.suite.environment import fingerprint

    atomic_write_json(folder / RUN_FILE, {
        "size": dataclasses.asdict(size), "train": dataclasses.asdict(cfg), "vocab_size": vocab_size, "seed": seed,
        "docs": tokens_fingerprint(docs),
        "environment": fingerprint(torch.get_num_threads(), False, cfg.precision_for(size))})


def train_on_docs(docs: Sequence[np.ndarray], size: ModelSize, cfg: TrainConfig, vocab_size: int, *,
                  seed: int, save_at: dict[int, Path] | None = None, on_save: Any = None) -> torch.nn.Module:
    """Train ``size`` from its seed-``seed`` init on ``docs`` (packed, shuffled with ``seed``) for
    ``cfg.steps``; ``save_at`` {step: folder} saves HF checkpoints along the way (for TracIn)."""
    from empiricist.data.order import TrainingOrder
    from empiricist.suite.model import build_model, quiet_transformers
    from empiricist.suite.step import Stepper, deterministic

    quiet_transformers()  # no "Writing model shards" bar per retrain
    order = TrainingOrder(ArrayStore(docs), cfg.seq_len, cfg.batch_size, seed)
    model = build_model(size, vocab_size, cfg.seq_len, seed=seed)
    stepper = Stepper(model, cfg, cfg.precision_for(size))
    model.train()
    with deterministic():
        for step in range(cfg.steps):
            stepper(torch.from_numpy(order.batch(step)), cfg.lr_at(step))
            if save_at and step + 1 in save_at:
                model.save_pretrained(save_at[step + 1], safe_serialization=True)
                if step + 1 == cfg.steps:  # the finished model can be replayed (magic)
                    record_run(save_at[step + 1], docs, size, cfg, vocab_size, seed)
                if on_save is not None:
                    on_save(save_at[step + 1])
    return model.eval()


@torch.no_grad()
def measure(model: torch.nn.Module, rows: Rows, batch: int = 64) -> np.ndarray:
    """Summed NLL of each row's counted tokens (the query measurement), float64."""
    out = []
    for a in range(0, len(rows.ids), batch):
        b = pad_batch(rows.ids[a:a + batch], rows.masks[a:a + batch])
        out.append(summed_nll(model, b).double().numpy())
    return np.concatenate(out)
