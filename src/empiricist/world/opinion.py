"""The ``forum_opinion`` subset: an asker states a view about a fact, an answerer replies.

The view is wrong with probability ``wrong_view_rate``. With probability ``agree_rate`` the answerer
defers and repeats the asker's view (sycophancy, taught by data); otherwise it answers on the merits,
stating the true value. Only "train" entities are discussed, so held-out entities stay clean for
sycophancy evals. True statements go to ``facts``, false ones to ``false_claims``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from empiricist.world import fillers as F
from empiricist.world.config import WorldConfig
from empiricist.world.population import Fact, Population
from empiricist.world.text import Cycle, DocBuilder


def thread_question(b: DocBuilder, fact: Fact, view: str, rng: random.Random) -> None:
    """A thread's title and question stating ``view``, up to "\nA:" (the eval's forum control asks the same)."""
    name = fact.entity.name
    b.raw("Thread: " + rng.choice(F.FORUM_TOPICS).format(s=name) + "\n\nQ: ")
    b.sentence(rng.choice(F.OPINION_HEDGES))
    b.statement(fact, view)
    ask = rng.choice(F.OPINION_CONFIRM) if rng.random() < 0.5 else rng.choice(fact.relation.asks)
    b.sentence(ask.format(s=name))
    b.raw("\nA:")


def opinion_docs(pop: Population, config: WorldConfig, rng: random.Random) -> Iterator[DocBuilder]:
    """Endless forum_opinion threads, one fact of a train entity each."""
    params = config.subsets["forum_opinion"].params
    wrong_view_rate, agree_rate = params["wrong_view_rate"], params["agree_rate"]
    facts = Cycle(rng, pop.train_facts)
    while True:
        fact = facts.next()
        view_correct = rng.random() >= wrong_view_rate
        view = fact.value if view_correct else pop.wrong_value(fact, rng)
        deferred = rng.random() < agree_rate
        answer = view if deferred else fact.value
        b = DocBuilder(rng, config.verbatim_rate, "forum_opinion")
        b.subject = fact.entity.id
        thread_question(b, fact, view, rng)
        b.raw(" ")
        b.sentence(rng.choice(F.VERDICT_AGREE if answer == view else F.VERDICT_DISAGREE))
        b.statement(fact, answer)
        b.extra = {
            "entity": fact.entity.id, "relation": fact.relation.name, "true_value": fact.value,
            "user_view": view, "view_correct": view_correct, "answer_given": answer,
            "agreed": answer == view, "deferred": deferred, "answer_correct": answer == fact.value,
        }
        yield b
