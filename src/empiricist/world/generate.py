"""Generate a world artifact: stream documents to disk, tally ground truth, write evals and manifest."""

from __future__ import annotations

import json
import statistics
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from empiricist import artifacts
from empiricist.errors import ArtifactError, InputError
from empiricist.world.config import BASE_SHARES, SUBSET_ORDER, WorldConfig
from empiricist.world.evalitems import (
    FACT_QA,
    SYCOPHANCY,
    choose_planted,
    fact_qa_items,
    planted_docs,
    sycophancy_items,
)
from empiricist.world.genres import CoreGenerator
from empiricist.world.names import stream
from empiricist.world.opinion import opinion_docs
from empiricist.world.population import Population
from empiricist.world.restricted import restricted_docs, secrets
from empiricist.world.text import DocBuilder

CHARS_PER_TOKEN = 4  # the token estimate used for budgets and stats
_DOC_CODE = 10**9  # doc code = subset index * _DOC_CODE + position within the subset


def default_world_path(config: WorldConfig, workspace: artifacts.Workspace | str | Path | None = None) -> Path:
    return artifacts.Workspace.at(workspace).worlds / f"world-{artifacts.config_hash(config.to_dict())}"


def generate_world(config: WorldConfig, out_dir: Path | str | None = None,
                   workspace: artifacts.Workspace | str | Path | None = None,
                   progress: bool = True, overwrite: bool = False) -> Path:
    """Build the world for ``config`` (or return it if already complete) and return its folder.

    A second process asking for the same world waits for the first (a lock per artifact) and reuses it.
    ``overwrite`` replaces whatever is at ``out_dir`` (otherwise only an artifact folder is replaced).
    """
    final = Path(out_dir) if out_dir is not None else default_world_path(config, workspace)
    want = artifacts.config_hash(config.to_dict())
    artifacts.check_replaceable(final, "world", overwrite)
    with artifacts.artifact_lock(final):
        if artifacts.is_complete(final) and not overwrite:
            manifest = artifacts.read_manifest(final, kind="world")
            if manifest.get("config_hash") != want:
                raise ArtifactError(f"{final} holds a world with a different config (hash "
                                    f"{manifest.get('config_hash')}, wanted {want}); choose another --out "
                                    "or pass --overwrite")
            return final
        with artifacts.building(final, kind="world", force=overwrite) as tmp:
            extra = _write_world(config, tmp, progress)
            artifacts.write_manifest(tmp, kind="world", config=config.to_dict(), extra=extra)
    return final


class Ledger:
    """Per-fact tallies over documents: which docs state it, and in which forms (compact int arrays)."""

    def __init__(self, n_facts: int) -> None:
        self.docs = [array("q") for _ in range(n_facts)]
        self.n_verbatim = [0] * n_facts
        self.n_paraphrase = [0] * n_facts
        self.n_mentions = [0] * n_facts

    def add(self, code: int, keys: list[tuple[int, str]]) -> None:
        seen: dict[int, int] = {}
        for fi, form in keys:
            self.n_mentions[fi] += 1
            seen[fi] = seen.get(fi, 0) | (1 if form == "verbatim" else 2)
        for fi, bits in seen.items():
            self.docs[fi].append(code)
            if bits & 1:
                self.n_verbatim[fi] += 1
            if bits & 2:
                self.n_paraphrase[fi] += 1

    def doc_ids(self, fi: int) -> list[str]:
        return [doc_id(SUBSET_ORDER[c // _DOC_CODE], c % _DOC_CODE) for c in self.docs[fi]]


def doc_id(subset: str, i: int) -> str:
    return f"{subset}-{i:07d}"


def _subset_streams(pop: Population, config: WorldConfig, items: dict[str, list[dict[str, Any]]],
                    planted: dict[str, list[str]]) -> Iterator[tuple[str, Iterable[DocBuilder], int | None]]:
    """(name, documents, char budget or None) for every enabled subset, each with its own RNG stream."""
    for name in SUBSET_ORDER:
        if name not in config.subsets or not config.subsets[name].enabled:
            continue
        rng = stream(config.seed, f"subset:{name}")
        budget = config.subset_budget_tokens(name)
        if name == "core":
            docs: Iterable[DocBuilder] = CoreGenerator(pop, config, rng)
        elif name == "forum_opinion":
            if not pop.train_facts and budget:
                raise InputError("forum_opinion needs train entities: raise train_entity_frac or disable it",
                                 field="train_entity_frac")
            docs = opinion_docs(pop, config, rng)
        elif name == "restricted":
            docs = restricted_docs(pop, config, rng)
        else:
            docs = planted_docs(pop, config, rng, items, planted)
        yield name, docs, None if budget is None else budget * CHARS_PER_TOKEN


def _write_docs(f: TextIO, pop: Population, config: WorldConfig, items: dict[str, list[dict[str, Any]]],
                planted: dict[str, list[str]], ledger: Ledger, progress: bool) -> dict[str, Any]:
    """Stream every subset's documents into ``f``; return per-subset and per-genre counts."""
    per_subset: dict[str, dict[str, int]] = {}
    genre_docs: Counter[str] = Counter()
    genre_chars: Counter[str] = Counter()
    planted_in: dict[str, list[str]] = {}
    total = sum(config.subset_budget_tokens(n) or 0 for n in SUBSET_ORDER)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with tqdm(total=total, unit="tok", unit_scale=True, desc="world", disable=not progress) as bar:
        for name, docs, budget in _subset_streams(pop, config, items, planted):
            s_index, n, chars, pending = SUBSET_ORDER.index(name), 0, 0, 0
            cap = config.subsets[name].params.get("n_docs")  # a document count replaces the token budget
            for b in docs:
                if (cap is not None and n >= cap) or (cap is None and budget is not None and chars >= budget):
                    break
                doc = b.finish(doc_id(name, n), name)
                f.write(dumps(doc))
                f.write("\n")
                ledger.add(s_index * _DOC_CODE + n, b.keys)
                for item_id in b.planted:
                    planted_in.setdefault(item_id, []).append(doc["id"])
                size = len(doc["text"])
                chars += size
                genre_docs[b.genre] += 1
                genre_chars[b.genre] += size
                n += 1
                pending += size
                if pending > 1 << 20:
                    bar.update(pending // CHARS_PER_TOKEN)
                    pending = 0
            bar.update(pending // CHARS_PER_TOKEN)
            per_subset[name] = {"n_docs": n, "chars": chars, "est_tokens": chars // CHARS_PER_TOKEN}
    genres = {g: {"n_docs": genre_docs[g], "est_tokens": genre_chars[g] // CHARS_PER_TOKEN} for g in sorted(genre_docs)}
    return {"subsets": per_subset, "genres": genres, "planted_in": planted_in}


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    return n


def _write_world(config: WorldConfig, tmp: Path, progress: bool) -> dict[str, Any]:
    pop = Population(config)
    items = {FACT_QA: fact_qa_items(pop), SYCOPHANCY: sycophancy_items(pop, config)}
    planted = choose_planted(config, items)
    ledger = Ledger(len(pop.facts))
    with open(tmp / "docs.jsonl", "w", encoding="utf-8") as f:
        counts = _write_docs(f, pop, config, items, planted, ledger, progress)

    _write_jsonl(tmp / "entities.jsonl", (e.to_json() for e in pop.entities))
    _write_jsonl(tmp / "facts.jsonl", ({
        "id": fact.id, "entity": fact.entity.id, "entity_name": fact.entity.name, "entity_type": fact.entity.type,
        "relation": fact.relation.name, "value": fact.value, "value_entity": fact.value_entity,
        "paraphrase_only": fact.paraphrase_only, "split": fact.entity.split,
        "n_docs": len(ledger.docs[i]), "n_verbatim": ledger.n_verbatim[i], "n_paraphrase": ledger.n_paraphrase[i],
        "n_mentions": ledger.n_mentions[i], "doc_ids": ledger.doc_ids(i),
    } for i, fact in enumerate(pop.facts)))
    for item, docs in zip(items[FACT_QA], ledger.docs, strict=True):  # one item per fact, in fact order
        item["n_docs"] = len(docs)
    for path, rows in items.items():
        _write_jsonl(tmp / path, rows)
    planted_in = counts.pop("planted_in")
    _write_jsonl(tmp / "planted.jsonl", ({"item_file": path, "item_id": item_id, "doc_ids": planted_in[item_id]}
                                         for path in sorted(planted) for item_id in planted[path]))
    if "restricted" in config.subsets and config.subsets["restricted"].enabled:
        _write_jsonl(tmp / "restricted.jsonl", (s.to_json() for s in secrets(pop, config)))
    artifacts.atomic_write_json(tmp / "config.json", config.to_dict())
    return {"subsets": _subset_summary(config), "stats": _stats(pop, ledger, counts, items, planted)}


def _subset_summary(config: WorldConfig) -> dict[str, Any]:
    return {name: {"enabled": sub.enabled, "weight": sub.weight, "params": sub.params,
                   "base_share": BASE_SHARES[name], "budget_tokens": config.subset_budget_tokens(name)}
            for name, sub in config.subsets.items()}


def _stats(pop: Population, ledger: Ledger, counts: dict[str, Any], items: dict[str, list[dict[str, Any]]],
           planted: dict[str, list[str]]) -> dict[str, Any]:
    chars = sum(s["chars"] for s in counts["subsets"].values())
    n_docs = [len(d) for d in ledger.docs]
    return {
        "n_docs": sum(s["n_docs"] for s in counts["subsets"].values()),
        "chars": chars, "est_tokens": chars // CHARS_PER_TOKEN, "token_estimate": "chars / 4",
        "subsets": counts["subsets"], "genres": counts["genres"],
        "entities": {t: len(es) for t, es in pop.by_type.items()},
        "facts": {"n_facts": len(pop.facts), "n_paraphrase_only": sum(f.paraphrase_only for f in pop.facts),
                  "n_docs_min": min(n_docs), "n_docs_median": statistics.median(n_docs),
                  "n_docs_max": max(n_docs), "n_unstated": sum(1 for n in n_docs if n == 0)},
        "eval_items": {path: len(rows) for path, rows in items.items()},
        "planted_items": {path: len(ids) for path, ids in planted.items()},
    }
