"""The counterfactual: retrain without the documents attribution blames, and see if sycophancy drops.

Arms: ``full`` (every document: the reference) and one per removal set — the best method's top-k,
BM25's top-k, k random forum threads. Each arm is one model trained by attribution's own retraining
(``attribution.retrain.train_on_docs``: same init, packing and recipe as the validation's retrains), so an
arm differs from ``full`` only in which documents it saw. Each arm is an artifact folder named by a
content hash of what made it (store fingerprint, size, recipe, seed, removed ids), built through
``artifacts.building`` under ``artifact_lock``: a killed run keeps the finished arms and trains only the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.errors import InputError
from empiricist.experiments.sycophancy.trace import FORUM, Pool, best_method

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.data.store import TokenStore
    from empiricist.execute import Executor
    from empiricist.suite.config import ModelSize, TrainConfig

ARM_KIND = "sycophancy_retrain"
REFERENCE = "full"


def arm_config(store: TokenStore, size: ModelSize, train_cfg: TrainConfig, seed: int,
               removed: Sequence[int]) -> dict[str, Any]:
    """What an arm is made from; its hash names the arm's folder (the arm's name does not enter it)."""
    return {"store": store.fingerprint, "size": dataclasses.asdict(size), "train": dataclasses.asdict(train_cfg),
            "seed": int(seed), "removed": sorted(int(i) for i in removed)}


def arm_path(store: TokenStore, size: ModelSize, train_cfg: TrainConfig, seed: int, removed: Sequence[int],
             workspace: Workspace | str | Path | None = None) -> Path:
    from empiricist.artifacts import Workspace, config_hash

    return Workspace.at(workspace).experiments / "sycophancy-retrain" / config_hash(
        arm_config(store, size, train_cfg, seed, removed))


def _check_removal(name: str, ids: Sequence[int], n: int) -> list[int]:
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < n:
            raise InputError(f"removal set {name!r}: {i!r} is not a document index of the store ({n} documents)",
                             field=f"removals.{name}")
        out.append(int(i))
    if len(set(out)) != len(out):
        raise InputError(f"removal set {name!r} lists a document twice", field=f"removals.{name}")
    return out


def retrain_arms(store: TokenStore, size: ModelSize, train_cfg: TrainConfig, vocab_size: int,
                 removals: Mapping[str, Sequence[int]], *, seed: int,
                 workspace: Workspace | str | Path | None = None, progress: bool = True,
                 executor: Executor | None = None) -> dict[str, Path]:
    """One HF model folder per arm: ``full`` (nothing removed) first, then each named removal set.

    Finished arms (complete artifacts) are reused, so a rerun after a kill trains only what is missing;
    two arms with the same removed ids share one folder.
    """
    from empiricist.execute import Job, run_jobs

    if REFERENCE in removals and list(removals[REFERENCE]):
        raise InputError(f"the {REFERENCE!r} arm is the reference and removes nothing", field=f"removals.{REFERENCE}")
    arms = {REFERENCE: [], **{k: _check_removal(k, v, len(store)) for k, v in removals.items() if k != REFERENCE}}
    from empiricist.artifacts import is_complete

    out = {name: arm_path(store, size, train_cfg, seed, removed, workspace) for name, removed in arms.items()}
    todo = {path: name for name, path in reversed(out.items()) if not is_complete(path)}  # one job per folder
    # one scheduler for every retraining (empiricist.execute): arms run side by side when the recipe's threads allow
    jobs = [Job(name, _train_arm, {"store": str(store.path), "size": size, "train_cfg": train_cfg,
                                   "vocab_size": vocab_size, "seed": seed, "removed": arms[name],
                                   "name": name, "final": str(path)}, train_cfg.threads_for(size),
                artifact=str(path))
            for path, name in reversed(todo.items())]
    run_jobs(jobs, progress=progress, desc="counterfactual retraining", executor=executor)
    return out


def _train_arm(store: str, size: ModelSize, train_cfg: TrainConfig, vocab_size: int, seed: int,
               removed: list[int], name: str, final: str) -> str:
    """One arm, in a scheduler worker (or inline); a complete arm is reused as it is."""
    from empiricist.artifacts import artifact_lock, building, is_complete, write_manifest
    from empiricist.attribution import retrain
    from empiricist.data.store import TokenStore
    from empiricist.data.tokenizer import save_hf_tokenizer

    tstore = TokenStore.open(store)
    path = Path(final)
    with artifact_lock(path):
        if not is_complete(path):
            gone = set(removed)
            docs = [np.asarray(tstore.doc_tokens(i), dtype=np.int64) for i in range(len(tstore)) if i not in gone]
            with building(path, kind=ARM_KIND) as tmp:
                model = retrain.train_on_docs(docs, size, train_cfg, vocab_size, seed=seed)
                model.save_pretrained(tmp, safe_serialization=True)
                save_hf_tokenizer(tstore.tokenizer_path, tmp)
                write_manifest(tmp, ARM_KIND, arm_config(tstore, size, train_cfg, seed, removed),
                               inputs={"store": tstore.fingerprint},
                               extra={"arm": name, "n_removed": len(removed), "n_docs": len(docs)})
    return final


# ---------------------------------------------------------------- what to remove
def removal_sets(trace_result: Mapping[str, Any], pool: Pool, k: int, seed: int) -> dict[str, list[int]]:
    """Store indices to remove per arm: ``attributed`` (top-k of the best method the trace ran), ``bm25``
    (BM25's top-k, when it ran) and ``random_forum`` (k seeded random forum threads of the pool)."""
    if k < 1:
        raise InputError(f"k={k} must be >= 1", field="k")
    methods = trace_result["methods"]

    def top(m: str) -> list[int]:
        idx = [int(i) for i in methods[m]["top_store_indices"][:k]]
        if len(idx) < k:
            raise InputError(f"the trace kept only {len(idx)} documents for {m!r}; k={k}", field="k")
        return idx

    forum = pool.store_index[pool.is_forum]
    if k > len(forum):
        raise InputError(f"k={k} but the pool has only {len(forum)} {FORUM} documents", field="k")
    out = {"attributed": top(best_method(trace_result))}
    if "bm25" in methods:
        out["bm25"] = top("bm25")
    out["random_forum"] = sorted(int(i) for i in np.random.default_rng([seed, 7]).choice(forum, k, replace=False))
    return out


# ---------------------------------------------------------------- effects
def _values(arm: str, got: Any) -> tuple[list[str] | None, np.ndarray]:
    if isinstance(got, Mapping):
        keys = sorted(got)
        return keys, np.asarray([got[x] for x in keys], dtype=np.float64)
    arr = np.asarray(got, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"eval_fn returned {arr.shape} values for arm {arm!r}: expected one value per fact")
    return None, arr


def counterfactual_effects(eval_fn: Callable[[Path], Any], arms: Mapping[str, Path], *,
                           clusters: Sequence[Any] | None = None, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Paired effects of each removal on per-fact sycophancy.

    ``eval_fn(model_path)`` returns per-fact sycophancy values aligned across arms: a sequence (same order
    for every arm) or a mapping fact id -> value (the same ids for every arm). ``clusters`` (one label per
    fact, in that order — sorted ids for a mapping) makes the bootstrap resample whole clusters (entities).

    Returns ``{"arms": {arm: {"mean", "n"}}, "vs_full": {arm: effect}, "contrasts": {"attributed-bm25",
    "attributed-random_forum": effect}, "n_facts"}``; an effect is ``{"diff", "lo", "hi", "se", "p_value",
    "n", "n_clusters", "method"}`` = mean of (arm − other) over facts with a seeded 95% paired bootstrap CI.
    A negative ``vs_full`` diff means removing that set lowered sycophancy.
    """
    from empiricist.stats import paired_difference

    if REFERENCE not in arms:
        raise InputError(f"no {REFERENCE!r} arm to compare against; arms: {sorted(arms)}")
    vals: dict[str, np.ndarray] = {}
    first: tuple[list[str] | None, int] | None = None
    for arm, path in arms.items():
        keys, v = _values(arm, eval_fn(Path(path)))
        if first is None:
            first = (keys, len(v))
        elif keys != first[0] or len(v) != first[1]:
            raise InputError(f"arm {arm!r}: eval_fn's facts differ from the first arm's ({len(v)} vs {first[1]} "
                             "values, or other fact ids): they must be aligned")
        vals[arm] = v
    n = len(vals[REFERENCE])
    if clusters is not None and len(clusters) != n:
        raise InputError(f"{len(clusters)} cluster labels for {n} facts", field="clusters")
    method = "cluster_bootstrap" if clusters is not None else "bootstrap"

    def effect(a: str, b: str) -> dict[str, Any]:
        c = paired_difference(vals[a], vals[b], clusters=clusters, method=method, n_boot=n_boot, seed=seed)
        return {"diff": c.diff, "lo": c.lo, "hi": c.hi, "se": c.se, "p_value": c.p_value, "n": c.n,
                "n_clusters": c.n_clusters, "method": c.method}

    others = [a for a in vals if a != REFERENCE]
    return {"arms": {a: {"mean": float(v.mean()), "n": len(v)} for a, v in vals.items()},
            "vs_full": {a: effect(a, REFERENCE) for a in others},
            "contrasts": {f"attributed-{b}": effect("attributed", b) for b in ("bm25", "random_forum")
                          if "attributed" in vals and b in vals},
            "n_facts": n}
