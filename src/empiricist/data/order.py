"""The training order: which tokens (and so which documents) a suite sees at every step.

Like Pythia, every model of a suite reads one fixed stream: documents are shuffled with a seed, their
tokens (each ending in EOS) are concatenated, and the stream is cut into sequences of ``seq_len + 1``
tokens (inputs and shifted targets); step ``s`` takes sequences ``[s·B, (s+1)·B)``. When a stream is
used up the next epoch uses a fresh permutation (seed + epoch). Because the order is a pure function of
(store, seq_len, batch size, seed), it is recorded as that config plus the permutation, and any step's
documents can be recovered — the batch viewer — without storing the batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.artifacts import atomic_write_json
from empiricist.errors import EmpiricistError

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore


@dataclass(frozen=True)
class Piece:
    """A contiguous slice of one document inside one training sequence."""

    row: int  # sequence index within the batch
    doc: int  # document index in the store
    start: int  # token offset within the document (EOS included in the document's span)
    end: int


class TrainingOrder:
    """Deterministic packing of a token store into training batches."""

    def __init__(self, store: TokenStore, seq_len: int, batch_size: int, seed: int) -> None:
        self.store = store
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = seed
        self.chunk = seq_len + 1
        lengths = np.diff(np.asarray(store.doc_offsets, dtype=np.int64))
        self._lengths = lengths
        self.seqs_per_epoch = int(lengths.sum()) // self.chunk
        if self.seqs_per_epoch < batch_size:
            raise EmpiricistError(
                f"token store {store.path} holds {int(lengths.sum())} tokens: too few for one batch of "
                f"{batch_size}×{self.chunk} tokens"
            )
        self._epochs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def config(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "batch_size": self.batch_size, "seed": self.seed,
                "store": self.store.fingerprint, "seqs_per_epoch": self.seqs_per_epoch}

    def permutation(self, epoch: int) -> np.ndarray:
        return self._epoch(epoch)[0]

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch not in self._epochs:
            rng = np.random.default_rng([self.seed, epoch])
            perm = rng.permutation(len(self._lengths))
            cum = np.concatenate([[0], np.cumsum(self._lengths[perm])])
            self._epochs = {epoch: (perm, cum)}  # keep one epoch: steps are read in order
        return self._epochs[epoch]

    def pieces(self, step: int) -> list[Piece]:
        """The document slices that make up the batch of optimiser step ``step`` (0-based)."""
        if step < 0:
            raise EmpiricistError(f"step must be ≥ 0, got {step}")
        out: list[Piece] = []
        for row in range(self.batch_size):
            seq = step * self.batch_size + row
            epoch, s = divmod(seq, self.seqs_per_epoch)
            perm, cum = self._epoch(epoch)
            lo, hi = s * self.chunk, (s + 1) * self.chunk
            k = int(np.searchsorted(cum, lo, side="right")) - 1
            while lo < hi:
                doc = int(perm[k])
                doc_start = cum[k]
                a, b = lo - doc_start, min(hi, cum[k + 1]) - doc_start
                out.append(Piece(row, doc, int(a), int(b)))
                lo = int(doc_start + b)
                k += 1
        return out

    def batch(self, step: int) -> np.ndarray:
        """Token ids of step ``step``: int64 array of shape (batch_size, seq_len + 1)."""
        out = np.empty((self.batch_size, self.chunk), dtype=np.int64)
        fill = np.zeros(self.batch_size, dtype=np.int64)
        offsets = self.store.doc_offsets
        for p in self.pieces(step):
            g = int(offsets[p.doc])
            toks = self.store.tokens(g + p.start, g + p.end)
            n = p.end - p.start
            out[p.row, fill[p.row] : fill[p.row] + n] = toks
            fill[p.row] += n
        return out

    def doc_index(self, step: int) -> np.ndarray:
        """The store document each token of ``batch(step)`` comes from: int64, (batch_size, seq_len + 1)."""
        out = np.empty((self.batch_size, self.chunk), dtype=np.int64)
        fill = np.zeros(self.batch_size, dtype=np.int64)
        for p in self.pieces(step):
            n = p.end - p.start
            out[p.row, fill[p.row]:fill[p.row] + n] = p.doc
            fill[p.row] += n
        return out

    def batch_documents(self, step: int, with_text: bool = True) -> list[dict[str, Any]]:
        """Pythia's batch viewer: which documents (id, slice, text) were in step ``step``."""
        rows = []
        for p in self.pieces(step):
            d: dict[str, Any] = {**asdict(p), "doc_id": self.store.doc_id(p.doc),
                                 "doc_tokens": int(self._lengths[p.doc])}
            if with_text:
                d["text"] = self.store.doc_text(p.doc)
                d["meta"] = self.store.doc_meta(p.doc)
            rows.append(d)
        return rows

    def save(self, folder: str | Path, epochs: int = 1) -> None:
        """Record the order: its config and the permutation(s), so others can audit it without our code."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "order.json", self.config())
        for e in range(epochs):
            np.save(folder / f"permutation-epoch{e}.npy", self.permutation(e))

    @classmethod
    def load(cls, folder: str | Path, store: TokenStore) -> TrainingOrder:
        import json

        cfg = json.loads((Path(folder) / "order.json").read_text())
        if cfg.get("store") != store.fingerprint:
            raise EmpiricistError(f"training order in {folder} was made for another token store")
        return cls(store, cfg["seq_len"], cfg["batch_size"], cfg["seed"])
