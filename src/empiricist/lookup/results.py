"""Plain result records for training-data lookups: documents found, counts, next-token distributions.

Frozen dataclasses with ``to_dict`` so the CLI, reports and tests serialise them the same way (JSON-safe:
token ids as ints, metadata as the store recorded it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DocumentHit:
    """A training document matching a query: our index and id, where it matched, and its metadata.

    ``offsets`` are token offsets inside the document (0 = its first token). Tracing also sets ``score``
    (the number of traced spans the document contains, its primary rank key) and, for the trace's overall
    documents, ``spans`` (indices into ``TraceResult.spans``).
    """

    index: int
    id: str
    occurrences: int
    offsets: tuple[int, ...]
    meta: dict[str, Any]
    score: float | None = None
    spans: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "occurrences": self.occurrences,
                               "offsets": list(self.offsets), "meta": self.meta}
        if self.score is not None:
            out["score"] = self.score
        if self.spans:
            out["spans"] = list(self.spans)
        return out


@dataclass(frozen=True)
class FindResult:
    """Where a query (token ids, or a CNF of them) occurs.

    ``count``: occurrences (for a CNF: positions in the matching documents where one of its n-grams
    starts); ``num_docs``: distinct documents matching; ``documents``: the first ``max_docs`` of them,
    most occurrences first, then by document index.
    """

    query: Any
    count: int
    num_docs: int
    documents: list[DocumentHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "count": self.count, "num_docs": self.num_docs,
                "documents": [d.to_dict() for d in self.documents]}


@dataclass(frozen=True)
class NextTokenDistribution:
    """The infini-gram (∞-gram) next-token distribution of a query.

    ``suffix_len`` tokens of the query's end are used: the longest suffix that occurs somewhere with a
    next token inside the same document (0 = none does; then ``counts`` are unigram counts). ``count`` is
    how many such occurrences there are; ``counts`` maps next-token id to how many of them it follows.
    ``approx`` is True when the engine sampled the occurrences (more than ``max_support``), in which case
    the counts are scaled estimates that still sum to about ``count``.
    """

    query: list[int]
    suffix_len: int
    count: int
    counts: dict[int, int]
    approx: bool = False

    def probs(self) -> dict[int, float]:
        total = sum(self.counts.values())
        return {t: c / total for t, c in self.counts.items()} if total else {}

    def top(self, k: int = 10) -> list[tuple[int, int]]:
        """The ``k`` most frequent next tokens as (id, count), ties by id."""
        return sorted(self.counts.items(), key=lambda tc: (-tc[1], tc[0]))[:k]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "suffix_len": self.suffix_len, "count": self.count,
                "counts": {str(t): c for t, c in sorted(self.counts.items())}, "approx": self.approx}
