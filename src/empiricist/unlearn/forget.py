"""Forget requests from the generated world: a set of entities whose every fact must go (TOFU-style), or the
documents behind a behaviour (``behaviour_request``: e.g. the forum threads that defer to the asker).

The world's ledger knows which documents state each fact (``facts.jsonl``: ``doc_ids``), so the forget
documents are exact: every document that states a fact of a forget entity, or is about one
(``subject``). The retain documents are all the others; the gold model retrains on them alone, with
the same recipe and seed. Entities are drawn seeded and split into a *validation* request (where
hyperparameters may be chosen) and a *test* request (only ever measured), disjoint.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empiricist.errors import InputError
from empiricist.world.load import World


@dataclass(frozen=True)
class ForgetRequest:
    """Entities to forget, the documents that carry them, and their facts (the QA items to measure)."""

    name: str
    entities: tuple[str, ...]
    doc_ids: frozenset[str]
    facts: tuple[str, ...]  # fact ids ("person-00003.birthplace")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "entities": list(self.entities), "n_docs": len(self.doc_ids),
                "facts": list(self.facts)}


def request(world: Path, entities: list[str], name: str) -> ForgetRequest:
    """The documents and facts of ``entities`` in ``world`` (every statement of any of their facts)."""
    w = World.open(world)
    wanted = set(entities)
    known = {r["id"] for r in w.entities}
    unknown = sorted(wanted - known)
    if unknown:
        raise InputError(f"entities {unknown[:3]} are not in the world {world}", field="entities")
    docs, facts = set(), []
    for fact in w.facts:
        if fact["entity"] in wanted:
            docs.update(fact["doc_ids"])
            facts.append(fact["id"])
    docs.update(d["id"] for d in w.iter_docs() if d.get("subject") in wanted)
    return ForgetRequest(name, tuple(sorted(wanted)), frozenset(docs), tuple(facts))


def draw_requests(world: Path, names: Sequence[str], n: int, seed: int = 0, entity_type: str = "person"
                  ) -> tuple[ForgetRequest, ...]:
    """Disjoint requests of ``n`` entities each, one per name (e.g. validation, test, holdout), drawn with ``seed``."""
    ids = sorted(r["id"] for r in World.open(world).entities if r["type"] == entity_type)
    if len(names) * n > len(ids):
        raise InputError(f"{len(names) * n} {entity_type} entities asked for; the world has {len(ids)}", field="n")
    picked = random.Random(seed).sample(ids, len(names) * n)
    return tuple(request(world, picked[i * n:(i + 1) * n], name) for i, name in enumerate(names))


def split_requests(world: Path, n: int, seed: int = 0, entity_type: str = "person"
                   ) -> tuple[ForgetRequest, ForgetRequest]:
    """Two disjoint requests of ``n`` entities each: (validation, test), drawn with ``seed``."""
    val, test = draw_requests(world, ("validation", "test"), n, seed, entity_type)
    return val, test


def retain_facts(world: Path, requests: Sequence[ForgetRequest], n: int, seed: int = 0) -> list[str]:
    """Up to ``n`` fact ids of the world that none of ``requests`` forgets (the utility set), seeded."""
    gone = set().union(*(r.facts for r in requests))
    rest = [f["id"] for f in World.open(world).facts if f["id"] not in gone]
    return sorted(random.Random(seed).sample(rest, min(n, len(rest))))


def behaviour_request(world: Path, name: str, **where: Any) -> ForgetRequest:
    """Every document whose ground-truth fields equal ``where`` (e.g. ``subset="forum_opinion",
    deferred=True``: the threads that teach deference): a request with documents and no entities."""
    if not where:
        raise InputError("a behaviour request needs at least one field to match, e.g. deferred=True", field="where")
    docs = frozenset(d["id"] for d in World.open(world).iter_docs() if all(d.get(k) == v for k, v in where.items()))
    if not docs:
        raise InputError(f"no document of {world} has {where}", field="where")
    return ForgetRequest(name, (), docs, ())


def retain_documents(world: Path, *requests: ForgetRequest) -> Iterator[dict[str, Any]]:
    """The world's documents none of ``requests`` forgets, in the world's order (the gold's corpus)."""
    drop = frozenset().union(*(r.doc_ids for r in requests))
    return (d for d in World.open(world).iter_docs() if d["id"] not in drop)
