"""How well do lookup methods work? Scored against a generated world, where the truth is known exactly.

* ``evaluate_contamination``: the n-gram detector's precision/recall at finding the eval items that
  ``planted.jsonl`` says were copied into the corpus, and each membership score's ROC AUC (planted
  items = members) for each model given (e.g. the sizes of a suite).
* ``retrieval_groundtruth``: for fact questions, how often the documents that state the fact
  (``facts.jsonl`` ``doc_ids``) come up in the top k of each retrieval method (n-gram tracing, BM25,
  MiniLM, a model's embeddings), separately for facts stated verbatim somewhere and paraphrase-only ones.

Both return plain rows (dicts) for ``to_markdown`` or a dataframe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from empiricist.errors import InputError
from empiricist.lookup.contamination import (
    DEFAULT_FIELDS,
    MIN_FRACTION,
    contamination_report,
    is_contaminated,
    open_index,
)
from empiricist.lookup.membership import SCORES, membership_scores, roc_auc
from empiricist.lookup.ngram import NgramIndex
from empiricist.lookup.search import SearchIndex
from empiricist.lookup.trace import trace

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore

EVALS = ("fact_qa", "sycophancy")
# name -> (min_matches, min_fraction): the lm-eval-harness rule and our default (see contamination.py)
DETECTOR_RULES: dict[str, tuple[int, float]] = {"any match (lm-eval)": (1, 0.0),
                                                 f">={MIN_FRACTION:.0%} match (default)": (1, MIN_FRACTION)}


def _world(world: Any) -> Any:
    from empiricist.world import World

    return world if isinstance(world, World) else World.open(Path(world))


def planted_ids(world: Any) -> dict[str, set[str]]:
    """Planted item ids per eval name (``fact_qa``, ``sycophancy``)."""
    out: dict[str, set[str]] = {name: set() for name in EVALS}
    for row in world.planted:
        name = Path(row["item_file"]).name.removesuffix(".jsonl")
        out.setdefault(name, set()).add(row["item_id"])
    return out


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def evaluate_contamination(world: Any, store: TokenStore, index: NgramIndex | str | Path | None,
                           models: Sequence[Any] | Mapping[str, Any] = (), *, n: int = 13, k: float = 0.2,
                           rules: Mapping[str, tuple[int, float]] | None = None,
                           fields: Sequence[str] = DEFAULT_FIELDS,
                           progress: bool = False) -> list[dict[str, Any]]:
    """Rows: per eval file, the detector under each rule (precision, recall) and each model's scores (AUC).

    ``models``: ModelHandles (named by ``handle.name``) or a mapping name -> handle. ``rules``: name ->
    (min_matches, min_fraction), default ``DETECTOR_RULES`` (with ``n`` as given).
    """
    world = _world(world)
    ngram = open_index(store, index)
    rules = DETECTOR_RULES if rules is None else rules
    named = dict(models) if isinstance(models, Mapping) else {m.name: m for m in models}
    planted = planted_ids(world)
    rows: list[dict[str, Any]] = []
    for name in EVALS:
        items = world.eval_items(name)
        members = planted.get(name, set())
        report = contamination_report(items, store, ngram, n, fields=fields, min_fraction=0.0, max_docs=0)
        base = {"eval": name, "n_members": len(members), "n_nonmembers": len(items) - len(members)}
        for rule, (min_matches, min_fraction) in rules.items():
            flagged = {r.item_id for r in report if is_contaminated(r.n_matching, r.n_ngrams, min_matches,
                                                                    min_fraction)}
            tp = len(flagged & members)
            rows.append({**base, "method": f"{n}-gram overlap: {rule}", "model": None,
                         "flagged": len(flagged), "precision": _rate(tp, len(flagged)),
                         "recall": _rate(tp, len(members)), "auc": None})
        for model_name, handle in named.items():
            scores = membership_scores(handle, items, k=k, fields=fields, progress=progress)
            for score in SCORES:
                pos = [s.scores()[score] for s in scores if s.item_id in members]
                neg = [s.scores()[score] for s in scores if s.item_id not in members]
                label = f"min-{round(k * 100)}% prob" if score == "min_k" else score
                rows.append({**base, "method": f"membership: {label}", "model": model_name, "flagged": None,
                             "precision": None, "recall": None, "auc": roc_auc(pos, neg)})
    return rows


# ---------------------------------------------------------------- retrieval
Retriever = NgramIndex | SearchIndex | Callable[[list[str], int], list[list[str]]]


def query_text(item: Mapping[str, Any], query: str = "question") -> str:
    """A fact_qa item as a retrieval query: ``question`` + answer, or the cloze ``prompt`` + answer."""
    if query == "question":
        return f"{item['question']} {item['answer']}"
    if query == "prompt":
        return item["prompt"] + item["choices"][item["target"]]
    raise InputError(f"query must be 'question' or 'prompt', got {query!r}")


def ranked_doc_ids(retriever: Retriever, queries: list[str], k: int,
                   trace_options: Mapping[str, Any] | None = None) -> list[list[str]]:
    """The top ``k`` distinct document ids per query, from any of the retrievers."""
    if isinstance(retriever, NgramIndex):
        opts = {"max_docs": k, **(trace_options or {})}
        return [[d.id for d in trace(retriever, q, **opts).documents][:k] for q in queries]
    if isinstance(retriever, SearchIndex):
        return [[h.doc_id for h in hits] for hits in retriever.search_many(queries, k, unique_docs=True)]
    if callable(retriever):
        return [list(r)[:k] for r in retriever(queries, k)]
    raise InputError(f"cannot retrieve with a {type(retriever).__name__}: pass an NgramIndex, a SearchIndex "
                     "or a function (queries, k) -> ranked doc ids")


def rank_metrics(ranked: Sequence[str], relevant: set[str], k: int) -> dict[str, float]:
    """hit@k, recall@k, precision@k and reciprocal rank (0 when nothing relevant is in the top k)."""
    top = list(ranked)[:k]
    found = [i for i, d in enumerate(top) if d in relevant]
    return {"hit": float(bool(found)), "recall": len(found) / len(relevant), "precision": len(found) / k,
            "rr": 1.0 / (found[0] + 1) if found else 0.0}


def retrieval_groundtruth(world: Any, store: TokenStore, indexes: Mapping[str, Retriever], *,
                          max_items: int | None = None, k: int = 10, query: str = "question",
                          trace_options: Mapping[str, Any] | None = None,
                          progress: bool = False) -> list[dict[str, Any]]:
    """Rows per (method, fact kind): recall@k etc. of the documents stating each fact_qa item's fact.

    ``indexes``: name -> NgramIndex (ranked by ``trace``), SearchIndex, or a function. ``max_items``: at
    most this many items of each fact kind (the first ones, deterministic). Facts stated in no document
    are skipped. ``store`` is the store every index was opened on (checked).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    world = _world(world)
    for name, idx in indexes.items():
        if isinstance(idx, (NgramIndex, SearchIndex)) and idx.store.fingerprint != store.fingerprint:
            raise InputError(f"index {name!r} was opened on another store ({idx.store.path}) "
                             f"than {store.path}")
    stated = {f"{f['entity']}.{f['relation']}": set(f["doc_ids"]) for f in world.facts}
    groups: dict[str, list[dict[str, Any]]] = {"verbatim": [], "paraphrase-only": []}
    for item in world.eval_items("fact_qa"):
        relevant = stated.get(f"{item['entity']}.{item['relation']}")
        group = groups["paraphrase-only" if item.get("paraphrase_only") else "verbatim"]
        if relevant and (max_items is None or len(group) < max_items):
            group.append({"query": query_text(item, query), "relevant": relevant})
    rows = []
    for name, idx in tqdm(indexes.items(), desc="retrieval ground truth", disable=not progress):
        for group, members in groups.items():
            ranked = ranked_doc_ids(idx, [m["query"] for m in members], k, trace_options) if members else []
            metrics = [rank_metrics(r, m["relevant"], k) for r, m in zip(ranked, members)]
            mean = {key: (sum(m[key] for m in metrics) / len(metrics) if metrics else None)
                    for key in ("hit", "recall", "precision", "rr")}
            rows.append({"method": name, "facts": group, "query": query, "n_items": len(members),
                         f"hit@{k}": mean["hit"], f"recall@{k}": mean["recall"],
                         f"precision@{k}": mean["precision"], f"mrr@{k}": mean["rr"]})
    return rows


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                digits: int = 3) -> str:
    """A GitHub-markdown table of ``rows`` (columns: given, else every key in first-seen order)."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
