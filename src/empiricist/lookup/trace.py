"""Trace a model output back to its training data, OLMoTrace-style: verbatim spans and their documents.

For every start position we find the longest stretch of the output that occurs verbatim inside some
training document (one suffix-array search per position, see ``NgramIndex.maximal_matches``). A span is
reported when it is *maximal* (no span starting earlier reaches as far), at least ``min_len`` tokens
long, and occurs at most ``max_freq`` times (more often means too common to say anything about where the
output came from). Equivalently: the maximal exact matches, filtered by length and frequency.

Documents are ranked by how much of the output they explain: first by the number of distinct reported
spans they contain, then by the total length of those spans, then by lower store index (deterministic).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from empiricist.errors import InputError
from empiricist.lookup.ngram import NgramIndex, Query
from empiricist.lookup.results import DocumentHit

MAX_TRACE_TOKENS = 8192


@dataclass(frozen=True)
class TraceSpan:
    """A verbatim match: output tokens [start, end), plus ``prompt_tokens`` prompt tokens just before it.

    ``length`` and ``count`` describe the whole matched sequence (prompt part included); ``text`` is the
    output part. ``documents`` are the top documents containing the span, ranked as in the module doc.
    """

    start: int
    end: int
    text: str
    length: int
    count: int
    prompt_tokens: int = 0
    documents: list[DocumentHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "length": self.length,
                "count": self.count, "prompt_tokens": self.prompt_tokens,
                "documents": [d.to_dict() for d in self.documents]}


@dataclass(frozen=True)
class TraceResult:
    """Spans of the output found verbatim in training data, and the documents that explain it best."""

    output_ids: list[int]
    prompt_len: int
    spans: list[TraceSpan]
    documents: list[DocumentHit]
    params: dict[str, Any]
    seconds: float

    @property
    def coverage(self) -> float:
        """Fraction of output tokens inside at least one reported span."""
        covered = np.zeros(len(self.output_ids), dtype=bool)
        for s in self.spans:
            covered[s.start:s.end] = True
        return float(covered.mean()) if covered.size else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"output_ids": self.output_ids, "prompt_len": self.prompt_len, "params": self.params,
                "coverage": self.coverage, "seconds": self.seconds,
                "spans": [s.to_dict() for s in self.spans],
                "documents": [d.to_dict() for d in self.documents]}


def trace(index: NgramIndex, output_ids: Query, prompt_ids: Query | None = None, min_len: int = 5,
          max_freq: int = 1000, max_docs: int = 10) -> TraceResult:
    """Find the maximal spans of ``output_ids`` that occur verbatim in the index's training documents.

    With ``prompt_ids`` a span may begin inside the prompt (the output continued a training sequence the
    prompt began); spans wholly inside the prompt are not reported. ``max_docs`` bounds the documents per
    span and overall; both lists are ranked by (spans contained desc, their total length desc, index).
    """
    for name, value, low in (("min_len", min_len, 1), ("max_freq", max_freq, 1), ("max_docs", max_docs, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    t0 = time.perf_counter()
    out = index.ids(output_ids, "output", max_tokens=MAX_TRACE_TOKENS)
    prompt = index.ids(prompt_ids, "prompt", max_tokens=MAX_TRACE_TOKENS) if prompt_ids is not None else []
    seq, p = prompt + out, len(prompt)
    ranges = [(i, j) for i, j in index.maximal_matches(seq, min_len, max_freq) if j > p]
    found = [index.positions(seq[i:j]) for i, j in ranges]
    docs_of = [np.unique(docs) for docs, _ in found]
    key = _rank_documents(docs_of, [j - i for i, j in ranges])
    top_of = [sorted(members.tolist(), key=key.__getitem__)[:max_docs] for members in docs_of]
    overall = sorted(key, key=key.__getitem__)[:max_docs]
    index.describe([d for top in top_of for d in top] + overall)
    spans = []
    for (i, j), (docs, offs), top in zip(ranges, found, top_of):
        hits = [index.hit(d, np.sort(offs[docs == d]), score=float(-key[d][0])) for d in top]
        start = max(i - p, 0)
        spans.append(TraceSpan(start, j - p, index.decode(out[start:j - p]), j - i, int(docs.size),
                               max(p - i, 0), hits))
    documents = []
    for d in overall:
        member = [k for k, members in enumerate(docs_of) if d in members]
        offs = np.sort(np.concatenate([found[k][1][found[k][0] == d] for k in member]))
        documents.append(index.hit(d, offs, score=float(-key[d][0]), spans=tuple(member)))
    params = {"min_len": min_len, "max_freq": max_freq, "max_docs": max_docs}
    return TraceResult(out, p, spans, documents, params, time.perf_counter() - t0)


def trace_text(index: NgramIndex, text: str, prompt: str | None = None, **kwargs: Any) -> TraceResult:
    """``trace`` for text: tokenized with the store's tokenizer (the prompt separately, if given)."""
    if not isinstance(text, str) or (prompt is not None and not isinstance(prompt, str)):
        raise InputError("trace_text takes text; use trace() for token ids")
    return trace(index, text, prompt, **kwargs)


def _rank_documents(docs_of: list[np.ndarray], lengths: list[int]) -> dict[int, tuple[int, int, int]]:
    """Sort key per document: (-spans contained, -total span length, index); smaller ranks first."""
    n_spans: dict[int, int] = {}
    total: dict[int, int] = {}
    for docs, length in zip(docs_of, lengths):
        for d in docs.tolist():
            n_spans[d] = n_spans.get(d, 0) + 1
            total[d] = total.get(d, 0) + length
    return {d: (-n_spans[d], -total[d], d) for d in n_spans}
