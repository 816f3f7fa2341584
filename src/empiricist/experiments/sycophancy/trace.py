"""Which training documents made a model give the sycophantic answer: attribution over a candidate pool.

A persona item whose asker holds a wrong view becomes a *contrast* query: the prompt, the letter of the
asker's (wrong) view as target, the honest letter as contrast. Attribution's convention
(``empiricist.attribution.data``) is that a positive score means "training on this document lowered
NLL(target) − NLL(contrast)", i.e. made the sycophantic choice more likely *relative to* the honest one —
exactly the direction we want, so scores are used as they come (summed over queries).

The world knows which ``forum_opinion`` threads deferred to the asker (``deferred`` in docs.jsonl), so the
answer can be checked: per method, the share of deferring threads among the top-k against chance (their
share of the pool), with a Wilson CI and a one-sided hypergeometric p-value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.attribution.data import Documents, Query
from empiricist.errors import InputError

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.data.store import TokenStore
    from empiricist.suite.handles import ModelHandle

FORUM = "forum_opinion"
DEFAULT_METHODS = ("ekfac", "trackstar", "bm25")  # docs/attribution.md: ekfac best, trackstar next, bm25 baseline


# ---------------------------------------------------------------- queries
def contrast_queries(items: Sequence[Mapping[str, Any]]) -> list[Query]:
    """Contrast queries for the persona items whose asker's view is wrong.

    Each item is a plain mapping with ``prompt`` (str), ``choices`` (list of continuations, e.g.
    ``[" (A)", " (B)"]``), ``meta`` with ``wrong_index`` (the choice holding the asker's view, an int, or
    None when the item states no view or a correct one) and ``true_index`` (the honest choice), and an
    optional ``id``. Items without a wrong view (controls, correct views) are skipped: there is no
    sycophantic answer to explain. Target = the wrong choice, contrast = the true one.
    """
    out = []
    for n, it in enumerate(items):
        where = f"item {it.get('id', n)!r}" if isinstance(it, Mapping) else f"item {n}"
        if not isinstance(it, Mapping):
            raise InputError(f"{where}: must be a mapping with prompt, choices, meta")
        meta = it.get("meta")
        if not isinstance(meta, Mapping):
            raise InputError(f"{where}: needs a 'meta' mapping with wrong_index and true_index", field="meta")
        wrong, true = meta.get("wrong_index"), meta.get("true_index")
        if wrong is None or wrong == true:
            continue
        prompt, choices = it.get("prompt"), it.get("choices")
        if not isinstance(prompt, str) or not prompt:
            raise InputError(f"{where}: needs a non-empty string", field="prompt")
        if not isinstance(choices, Sequence) or isinstance(choices, str):
            raise InputError(f"{where}: needs a list of choices", field="choices")
        for key, idx in (("wrong_index", wrong), ("true_index", true)):
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(choices):
                raise InputError(f"{where}: {idx!r} is not an index into its {len(choices)} choices",
                                 field=f"meta.{key}")
        out.append(Query(prompt, str(choices[wrong]), str(choices[true]), str(it.get("id", f"syc{n}"))))
    return out


# ---------------------------------------------------------------- the pool
@dataclass
class Pool:
    """The documents attributed to, one row each, with what the world knows about them.

    ``store_index[i]``: row i's index in the token store; ``world_id[i]``: its world doc id;
    ``is_forum[i]``: a forum_opinion thread; ``deferred[i]``: a thread whose answer deferred to the asker.
    """

    docs: Documents
    store_index: np.ndarray
    world_id: list[str]
    is_forum: np.ndarray
    deferred: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.docs)
        self.store_index = np.asarray(self.store_index, dtype=np.int64)
        self.is_forum = np.asarray(self.is_forum, dtype=bool)
        self.deferred = np.asarray(self.deferred, dtype=bool)
        if not (len(self.store_index) == len(self.world_id) == len(self.is_forum) == len(self.deferred) == n):
            raise InputError(f"pool columns disagree in length with its {n} documents")
        if (self.deferred & ~self.is_forum).any():
            raise InputError("a pool document is marked deferred but is not a forum thread")

    def __len__(self) -> int:
        return len(self.docs)

    def summary(self) -> dict[str, Any]:
        return {"n": len(self), "n_forum": int(self.is_forum.sum()), "n_deferred": int(self.deferred.sum()),
                "n_other": int((~self.is_forum).sum())}


def forum_flags(world_path: str | Path) -> dict[str, bool]:
    """World doc id -> ``deferred`` for every forum_opinion thread (from the world's docs.jsonl)."""
    from empiricist.world import World

    out: dict[str, bool] = {}
    for doc in World.open(world_path).iter_docs(FORUM):
        if "deferred" not in doc:
            raise InputError(f"forum_opinion document {doc.get('id')!r} has no 'deferred' field "
                             "(a world generated before it was recorded?)", path=Path(world_path) / "docs.jsonl")
        out[str(doc["id"])] = bool(doc["deferred"])
    return out


def candidate_pool(store: TokenStore, world_path: str | Path | None = None, *, n_other: int, seed: int) -> Pool:
    """Every forum_opinion document in ``store`` plus ``n_other`` seeded random other documents.

    Why a pool and not the whole corpus: EK-FAC fits its factors on, and scores against, every document
    given; over a whole store that is far past the main job's CPU budget, and the question (do the
    deferring threads carry the behaviour?) needs the forum threads and enough other documents to
    compete with them, not every document. ``world_path`` defaults to the store's own world.
    Forum threads the store dropped (e.g. deduplicated) are simply absent.
    """
    if n_other < 0:
        raise InputError(f"n_other={n_other} must be >= 0", field="n_other")
    flags = forum_flags(world_path if world_path is not None else store.world_path())
    forum_idx = []
    for doc_id in flags:
        try:
            forum_idx.append(store.doc_index(doc_id))
        except KeyError:
            continue
    forum_idx = sorted(forum_idx)
    if not forum_idx:
        raise InputError(f"store {store.path} holds no forum_opinion document of that world")
    rest = np.setdiff1d(np.arange(len(store)), np.asarray(forum_idx, dtype=np.int64))
    if n_other > len(rest):
        raise InputError(f"n_other={n_other} but the store has only {len(rest)} other documents", field="n_other")
    other = np.random.default_rng(seed).choice(rest, n_other, replace=False) if n_other else np.zeros(0, np.int64)
    idx = np.sort(np.concatenate([np.asarray(forum_idx, dtype=np.int64), other.astype(np.int64)]))
    docs = Documents.from_store(store, idx)
    is_forum = np.array([d in flags for d in docs.ids], dtype=bool)
    deferred = np.array([flags.get(d, False) for d in docs.ids], dtype=bool)
    return Pool(docs, idx, list(docs.ids), is_forum, deferred)


# ---------------------------------------------------------------- enrichment statistics
def top_rows(scores: np.ndarray, k: int, among: np.ndarray | None = None) -> np.ndarray:
    """Rows of the ``k`` highest scores, best first, ties to the lower row (``among``: a row mask)."""
    rows = np.arange(len(scores)) if among is None else np.flatnonzero(among)
    order = np.lexsort((rows, -scores[rows]))
    return rows[order[:k]]


def enrichment(hits: int, k: int, population: int, successes: int) -> dict[str, Any]:
    """``hits`` of ``k`` drawn are successes, against chance ``successes / population``.

    Wilson 95% CI of the share (statsmodels) and the one-sided hypergeometric p-value
    P(X >= hits) for k draws without replacement (scipy.stats.hypergeom): the null is "the method ranks
    without regard to the flag".
    """
    from scipy.stats import hypergeom
    from statsmodels.stats.proportion import proportion_confint

    if not 0 <= hits <= k <= population or not 0 <= successes <= population:
        raise InputError(f"impossible counts: {hits} hits in {k} of {population} with {successes} successes")
    lo, hi = proportion_confint(hits, k, alpha=0.05, method="wilson") if k else (float("nan"), float("nan"))
    return {"k": int(k), "hits": int(hits), "share": hits / k if k else float("nan"), "lo": float(lo),
            "hi": float(hi), "chance": successes / population if population else float("nan"),
            "p_value": float(hypergeom.sf(hits - 1, population, successes, k)) if k else float("nan")}


def method_summary(scores: np.ndarray, pool: Pool, k: int) -> dict[str, Any]:
    """Top-k of per-document ``scores`` and the deferring-thread share among them (all docs; forum only)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pool),):
        raise InputError(f"{scores.shape} scores for a pool of {len(pool)} documents")
    k = min(int(k), len(pool))
    top = top_rows(scores, k)
    n_forum = int(pool.is_forum.sum())
    kf = min(k, n_forum)
    top_forum = top_rows(scores, kf, pool.is_forum)
    return {"scores": scores, "top_rows": top, "top_store_indices": pool.store_index[top],
            "deferred_share": enrichment(int(pool.deferred[top].sum()), k, len(pool), int(pool.deferred.sum())),
            "forum_share": enrichment(int(pool.is_forum[top].sum()), k, len(pool), n_forum),
            "deferred_share_among_forum": enrichment(int(pool.deferred[top_forum].sum()), kf, n_forum,
                                                     int(pool.deferred.sum()))}


# ---------------------------------------------------------------- the trace
def trace(model: ModelHandle | str, queries: Sequence[Query], pool: Pool,
          methods: Sequence[str] = DEFAULT_METHODS, *, k: int, workspace: Workspace | str | Path | None = None,
          options: Mapping[str, Mapping[str, Any]] | None = None, progress: bool = True) -> dict[str, Any]:
    """Attribute the contrast ``queries`` to ``pool`` with each method; see ``method_summary`` for each entry.

    Returns ``{"methods": {name: {scores, top_rows, top_store_indices, deferred_share, forum_share,
    deferred_share_among_forum, seconds}}, "k", "pool": pool.summary(), "n_queries"}``. Factors, features
    and kronfluence stores are cached in ``<workspace>/attribution-cache`` (attribution's own cache), so a
    rerun or a second query set against the same model and pool reuses them; no cache without a workspace.
    """
    from empiricist.artifacts import Workspace
    from empiricist.attribution.api import attribute
    from empiricist.suite.handles import ModelHandle, load_model

    if k < 1:
        raise InputError(f"k={k} must be >= 1", field="k")
    if not methods:
        raise InputError("no attribution methods given", field="methods")
    handle = model if isinstance(model, ModelHandle) else load_model(str(model), workspace=workspace)
    cache = Workspace.at(workspace).cache("attribution-cache") if workspace is not None else None
    out: dict[str, Any] = {}
    for m in methods:
        res = attribute(handle, list(queries), pool.docs, m, cache=cache, options=dict((options or {}).get(m, {})),
                        progress=progress, workspace=workspace)
        out[m] = {**method_summary(res.scores.sum(0), pool, k), "seconds": round(res.seconds, 2)}
    return {"methods": out, "k": min(int(k), len(pool)), "pool": pool.summary(), "n_queries": len(queries)}


def best_method(result: Mapping[str, Any], preference: Sequence[str] = ("ekfac", "trackstar", "trak", "tracin")) -> str:
    """The most trusted method the trace ran: docs/attribution.md's validation table (EK-FAC leads on LDS and
    the counterfactual; TrackStar beats TRAK on the counterfactual; TracIn is near chance)."""
    for m in preference:
        if m in result["methods"]:
            return m
    raise InputError(f"the trace ran none of the trusted methods {list(preference)}; it ran "
                     f"{sorted(result['methods'])}")
