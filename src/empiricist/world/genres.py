"""The ``core`` subset: encyclopedia entries, news items, forum Q&A threads, short stories and lists.

Every genre states true facts only, each in its own sentence that names the entity (no pronouns), so a
recorded span always contains both the entity's name and the value.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from empiricist.world import fillers as F
from empiricist.world.config import GENRES, WorldConfig
from empiricist.world.population import Entity, Fact, Population
from empiricist.world.text import Cycle, DocBuilder, join_names


class CoreGenerator:
    """Yields an endless stream of core documents from one RNG; the caller stops at the token budget."""

    def __init__(self, pop: Population, config: WorldConfig, rng: random.Random) -> None:
        self.pop = pop
        self.rng = rng
        self.verbatim_rate = config.verbatim_rate
        self.genres = [g for g in GENRES if config.genre_weights.get(g, 0.0) > 0]
        self.cum_weights: list[float] = []
        total = 0.0
        for g in self.genres:
            total += config.genre_weights[g]
            self.cum_weights.append(total)
        self.any_entity = Cycle(rng, pop.entities)
        self.people = Cycle(rng, pop.by_type["person"])
        self.list_keys = Cycle(rng, list(pop.members))
        self.render: dict[str, Callable[[DocBuilder], None]] = {
            "encyclopedia": self.encyclopedia, "news": self.news, "forum": self.forum, "story": self.story,
            "list": self.lists,
        }

    def __iter__(self) -> Iterator[DocBuilder]:
        rng, genres, cum = self.rng, self.genres, self.cum_weights
        while True:
            genre = rng.choices(genres, cum_weights=cum)[0]
            b = DocBuilder(rng, self.verbatim_rate, genre)
            self.render[genre](b)
            yield b

    # ------------------------------------------------------------ helpers
    def _some_facts(self, ent: Entity, lo: int, hi: int) -> list[Fact]:
        k = self.rng.randint(min(lo, len(ent.facts)), min(hi, len(ent.facts)))
        return self.rng.sample(ent.facts, k)

    def _maybe_related(self, b: DocBuilder, ent: Entity, p: float) -> None:
        """Sometimes also state one fact about an entity this one links to (its city, employer...)."""
        related = self.pop.related(ent)
        if related and self.rng.random() < p:
            b.statement(self.rng.choice(self.rng.choice(related).facts))

    # ------------------------------------------------------------ genres
    def encyclopedia(self, b: DocBuilder) -> None:
        rng, ent = self.rng, self.any_entity.next()
        b.subject, name = ent.id, ent.name
        b.raw(name + "\n\n")
        b.sentence(rng.choice(F.ENCYCLOPEDIA_INTRO[ent.type]).format(s=name))
        for fact in self._some_facts(ent, 2, len(ent.facts)):
            if rng.random() < 0.25:
                b.sentence(rng.choice(F.ABOUT[ent.type]).format(s=name))
            b.statement(fact)
        self._maybe_related(b, ent, 0.5)
        if rng.random() < 0.5:
            b.sentence(rng.choice(F.GENERIC))

    def news(self, b: DocBuilder) -> None:
        rng, ent = self.rng, self.any_entity.next()
        b.subject, name = ent.id, ent.name
        b.raw(rng.choice(F.NEWS_HEADLINES[ent.type]).format(s=name) + "\n\n")
        b.sentence(rng.choice(F.ABOUT[ent.type]).format(s=name))
        for fact in self._some_facts(ent, 1, 3):
            b.statement(fact)
            if rng.random() < 0.4:
                b.sentence(rng.choice(F.NEWS_FILLER))
        self._maybe_related(b, ent, 0.5)
        b.sentence(rng.choice(F.NEWS_FILLER))

    def forum(self, b: DocBuilder) -> None:
        rng, ent = self.rng, self.any_entity.next()
        b.subject = ent.id
        b.raw("Thread: " + rng.choice(F.FORUM_TOPICS).format(s=ent.name) + "\n\n")
        facts = self._some_facts(ent, 1, 3)
        related = self.pop.related(ent)
        if related and rng.random() < 0.3:
            facts.append(rng.choice(rng.choice(related).facts))
        for fact in facts:
            b.raw("Q: " + rng.choice(fact.relation.asks).format(s=fact.entity.name) + "\nA: ")
            b.raw(rng.choice(F.FORUM_ACKS))
            b.statement(fact)
            b.raw("\n\n")

    def story(self, b: DocBuilder) -> None:
        rng, ent = self.rng, self.people.next()
        b.subject, name = ent.id, ent.name
        b.raw(rng.choice(F.STORY_TITLES).format(s=name) + "\n\n")
        b.sentence(rng.choice(F.STORY_OPENINGS).format(s=name))
        for fact in self._some_facts(ent, 2, 3):
            b.sentence(rng.choice(F.STORY_MIDDLES).format(s=name))
            b.statement(fact)
        self._maybe_related(b, ent, 0.3)
        b.sentence(rng.choice(F.STORY_ENDINGS).format(s=name))

    def lists(self, b: DocBuilder) -> None:
        """One to three list sentences; each states the listed relation for every entity it names."""
        rng, pop = self.rng, self.pop
        b.raw(rng.choice(F.LIST_TITLES) + "\n\n")
        for i in range(rng.randint(1, 3)):
            key = self.list_keys.next()
            members = pop.members[key]
            chosen = rng.sample(members, min(len(members), rng.randint(2, 6)))
            intro = rng.choice(chosen[0].relation.lists)
            if i:
                b.raw("\n")
            start = b.pos
            b.raw(intro.format(v=key[1]) + " " + join_names([f.entity.name for f in chosen]) + ".")
            for fact in chosen:
                b.record(fact, fact.value, "paraphrase", start, b.pos)
