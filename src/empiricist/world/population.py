"""The population: entities, their true attribute values, the train/held-out split, paraphrase-only facts.

This is the ground truth every document and eval item is rendered from. It depends only on the seed and
the population-size fields of the config, never on subsets, so toggling a subset cannot change a fact.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from empiricist.world.config import WorldConfig
from empiricist.world.names import NameRegistry, stream
from empiricist.world.relations import ENTITY_TYPES, RELATIONS, RELATIONS_OF, VALUE_SETS, Relation

_ORG_SUFFIXES = ("Group", "Works", "Holdings", "Company", "Trust", "Partners", "Foundry", "Industries")


@dataclass(eq=False)
class Entity:
    index: int
    id: str
    type: str
    name: str
    split: str  # "train": forum_opinion may discuss it; "heldout": reserved for held-out evals
    facts: list[Fact] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "name": self.name, "split": self.split,
            "attributes": {f.relation.name: f.value for f in self.facts},
            "links": {f.relation.name: f.value_entity for f in self.facts if f.value_entity is not None},
        }


@dataclass(eq=False)
class Fact:
    """One (entity, relation) pair and its single true value."""

    index: int
    entity: Entity
    relation: Relation
    value: str
    value_entity: str | None  # id of the entity the value names (a city, an org...), if any
    paraphrase_only: bool = False

    @property
    def id(self) -> str:
        return f"{self.entity.id}.{self.relation.name}"


class Population:
    """All entities and facts of a world, plus the indexes generators need."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        names = _make_names(config)
        self.entities: list[Entity] = []
        self.by_type: dict[str, list[Entity]] = {}
        for etype in ENTITY_TYPES:
            ents = [Entity(len(self.entities) + i, f"{etype}-{i:05d}", etype, n, "heldout")
                    for i, n in enumerate(names[etype])]
            self.by_type[etype] = ents
            self.entities.extend(ents)
        self.by_name = {e.name: e for e in self.entities}
        self.by_id = {e.id: e for e in self.entities}
        self.value_sets: dict[str, tuple[str, ...]] = {
            r.name: tuple(names[r.values]) if r.values in names else VALUE_SETS[r.values] for r in RELATIONS
        }
        self.facts: list[Fact] = []
        rng = stream(config.seed, "values")
        for ent in self.entities:
            for rel in RELATIONS_OF[ent.type]:
                value = rng.choice(self.value_sets[rel.name])
                linked = self.by_name.get(value) if rel.values in ENTITY_TYPES else None
                fact = Fact(len(self.facts), ent, rel, value, linked.id if linked else None)
                ent.facts.append(fact)
                self.facts.append(fact)
        self._split()
        self._choose_paraphrase_only()
        # (relation, value) -> the facts with that value: list sentences ("Cities in X: A, B and C.").
        self.members: dict[tuple[str, str], list[Fact]] = {}
        for f in self.facts:
            self.members.setdefault((f.relation.name, f.value), []).append(f)
        self.train_facts = [f for f in self.facts if f.entity.split == "train"]

    def _split(self) -> None:
        rng = stream(self.config.seed, "split")
        for etype in ENTITY_TYPES:
            ents = list(self.by_type[etype])
            rng.shuffle(ents)
            for e in ents[: round(self.config.train_entity_frac * len(ents))]:
                e.split = "train"

    def _choose_paraphrase_only(self) -> None:
        rng = stream(self.config.seed, "paraphrase_only")
        k = round(self.config.paraphrase_only_frac * len(self.facts))
        for i in rng.sample(range(len(self.facts)), k):
            self.facts[i].paraphrase_only = True

    def wrong_value(self, fact: Fact, rng: random.Random) -> str:
        """A uniformly drawn value of ``fact``'s relation other than the true one."""
        values = self.value_sets[fact.relation.name]
        j = rng.randrange(len(values) - 1)
        return values[j + 1] if j >= values.index(fact.value) else values[j]

    def related(self, ent: Entity) -> list[Entity]:
        """Entities named by ``ent``'s values (its birthplace, employer, country...)."""
        return [self.by_id[f.value_entity] for f in ent.facts if f.value_entity is not None]


def _make_names(config: WorldConfig) -> dict[str, list[str]]:
    """All names of a world from one registry, so no name is a prefix of another of any kind."""
    rng = stream(config.seed, "names")
    reg = NameRegistry(rng)
    out: dict[str, list[str]] = {
        "country": reg.many(config.n_countries),
        "city": reg.many(config.n_cities),
        "org": [f"{reg.word()} {rng.choice(_ORG_SUFFIXES)}" for _ in range(config.n_orgs)],
        "river": reg.many(config.n_rivers, syllables=(2, 2)),
        "language": reg.many(config.n_languages, suffix="demonym"),
        "currency": reg.many(config.n_currencies, syllables=(1, 2)),
    }
    n = config.n_people
    n_first = max(8, math.ceil(math.sqrt(2 * n)))
    n_last = max(8, math.ceil(2 * n / n_first))
    first, last = reg.many(n_first), reg.many(n_last)
    out["person"] = [f"{first[i // n_last]} {last[i % n_last]}" for i in rng.sample(range(n_first * n_last), n)]
    return out
