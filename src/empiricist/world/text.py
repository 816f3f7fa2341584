"""Building one document: its text plus the exact character span of every statement it makes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from empiricist.world.population import Fact

T = TypeVar("T")


class Cycle:
    """Draws items in shuffled passes, so every item is used about equally often (balanced coverage)."""

    def __init__(self, rng: random.Random, items: Sequence[T]) -> None:
        self.rng = rng
        self.items = list(items)
        self.order: list[T] = []

    def next(self) -> T:
        if not self.order:
            self.order = list(self.items)
            self.rng.shuffle(self.order)
        return self.order.pop()


def join_names(names: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class DocBuilder:
    """Appends text and records statements with their spans.

    A statement with the fact's true value goes to ``facts``; with any other value to ``false_claims``.
    ``form`` is "verbatim" when the relation's canonical template is used, else "paraphrase".
    Paraphrase-only facts are always rendered with a paraphrase, whatever the value.
    """

    __slots__ = (
        "extra",
        "facts",
        "false_claims",
        "genre",
        "keys",
        "last",
        "parts",
        "planted",
        "pos",
        "rng",
        "subject",
        "verbatim_rate",
    )

    def __init__(self, rng: random.Random, verbatim_rate: float, genre: str) -> None:
        self.rng = rng
        self.genre = genre
        self.verbatim_rate = verbatim_rate
        self.parts: list[str] = []
        self.pos = 0
        self.last = "\n"
        self.facts: list[dict[str, Any]] = []
        self.false_claims: list[dict[str, Any]] = []
        self.keys: list[tuple[int, str]] = []  # (fact index, form) of true statements, for the ledger
        self.planted: list[str] = []
        self.subject: str | None = None
        self.extra: dict[str, Any] = {}

    def raw(self, s: str) -> None:
        if s:
            self.parts.append(s)
            self.pos += len(s)
            self.last = s[-1]

    def sentence(self, s: str) -> None:
        """Append a sentence, separated by a space unless we are at the start of a line."""
        if s:
            if self.last not in " \n":
                self.raw(" ")
            self.raw(s)

    def statement(self, fact: Fact, value: str | None = None) -> None:
        """State ``fact`` (or, with a wrong ``value``, a false claim about it) as one sentence."""
        rel = fact.relation
        value = fact.value if value is None else value
        if fact.paraphrase_only or self.rng.random() >= self.verbatim_rate:
            form, tpl = "paraphrase", self.rng.choice(rel.paraphrases)
        else:
            form, tpl = "verbatim", rel.canonical
        text = tpl.format(s=fact.entity.name, v=value)
        if self.last not in " \n":
            self.raw(" ")
        start = self.pos
        self.raw(text)
        self.record(fact, value, form, start, self.pos)

    def record(self, fact: Fact, value: str, form: str, start: int, end: int) -> None:
        """Record that text[start:end] states ``value`` for ``fact``'s entity and relation."""
        entry = {"entity": fact.entity.id, "relation": fact.relation.name, "value": value, "form": form,
                 "start": start, "end": end}
        if value == fact.value:
            self.facts.append(entry)
            self.keys.append((fact.index, form))
        else:
            self.false_claims.append(entry)

    def finish(self, doc_id: str, subset: str) -> dict[str, Any]:
        doc = {"id": doc_id, "subset": subset, "genre": self.genre, "subject": self.subject,
               "text": "".join(self.parts).rstrip(), "facts": self.facts, "false_claims": self.false_claims,
               "planted": self.planted}
        doc.update(self.extra)
        return doc
