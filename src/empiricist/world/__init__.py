"""empiricist.world: a seeded synthetic corpus whose ground truth is known exactly.

Entities with attributes, documents in several genres stating those facts (with spans), switchable
subsets (``core``, ``forum_opinion``, ``planted``), and eval items (fact QA, sycophancy), some of them
planted into the corpus at a known rate. ``generate_world(config)`` builds it; ``World.open`` reads it.

A world folder holds:

- ``docs.jsonl``: {id, subset, genre, subject, text, facts, false_claims, planted, ...}; ``facts`` and
  ``false_claims`` are lists of {entity, relation, value, form ("verbatim"|"paraphrase"), start, end} with
  ``text[start:end]`` the sentence making the statement (it contains the entity's name and the value).
  forum_opinion docs add entity, relation, true_value, user_view, view_correct, answer_given, agreed,
  deferred, answer_correct. Texts are ASCII, so character offsets are also byte offsets.
- ``entities.jsonl``: {id, type, name, split ("train"|"heldout"), attributes {relation: value}, links}.
- ``facts.jsonl``: one row per (entity, relation) with its true value, paraphrase_only, n_docs (documents
  stating it), n_verbatim / n_paraphrase (documents with at least one statement in that form),
  n_mentions (statements) and doc_ids.
- ``eval/fact_qa.jsonl``, ``eval/sycophancy.jsonl``, ``planted.jsonl``, ``config.json``, ``manifest.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

if TYPE_CHECKING:
    from empiricist.world.config import (
        BASE_SHARES,
        DEFAULT_PARAMS,
        GENRES,
        SUBSET_ORDER,
        WORLD_PRESETS,
        SubsetConfig,
        WorldConfig,
    )
    from empiricist.world.generate import default_world_path, generate_world
    from empiricist.world.load import World
    from empiricist.world.relations import RELATIONS, RELATIONS_BY_NAME, Relation

_EXPORTS = {
    "BASE_SHARES": "config",
    "DEFAULT_PARAMS": "config",
    "GENRES": "config",
    "SUBSET_ORDER": "config",
    "WORLD_PRESETS": "config",
    "SubsetConfig": "config",
    "WorldConfig": "config",
    "default_world_path": "generate",
    "generate_world": "generate",
    "World": "load",
    "RELATIONS": "relations",
    "RELATIONS_BY_NAME": "relations",
    "Relation": "relations",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BASE_SHARES", "DEFAULT_PARAMS", "GENRES", "RELATIONS", "RELATIONS_BY_NAME", "SUBSET_ORDER", "WORLD_PRESETS",
    "Relation", "SubsetConfig", "World", "WorldConfig", "default_world_path", "generate_world",
]
