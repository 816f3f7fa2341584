"""Eval-set contamination: which eval items occur, in part or whole, verbatim in the training data.

For each item we tokenize its text (by default ``question`` + ``answer``, whichever the item has) with
the store's tokenizer and ask the n-gram index, at every start position, for the longest stretch found
verbatim inside a training document (one suffix-array search each). That gives both

* the longest verbatim overlap with training data (tokens), and
* how many of the item's n-grams (n=13 by default) occur in training data,

and from the matching n-grams, the documents involved. An item shorter than ``n`` tokens counts as one
n-gram of its full length. Decision rule: contaminated when at least ``min_matches`` of its n-grams
occur *and* they are at least ``min_fraction`` of its n-grams.

``min_fraction=0`` is the GPT-3 / lm-evaluation-harness rule (any matching 13-gram; here on tokens, not
normalised words). It also flags items that merely share a template with a leaked item: in the tiny
world with ``plant_rate=0.1`` (BPE vocab 2000), 249 of 376 sycophancy items match some 13-gram but
only 38 were planted. Every planted item matches with all its n-grams; other items, across seeds and
vocab sizes 500-4000, with at most 75% of them. Hence the default ``min_fraction=0.8``, the threshold
of Llama 2's rule (80% of tokens in matched spans; PaLM: 70% of 8-grams); ``min_fraction=0`` gives
lm-eval parity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.errors import ArtifactError, InputError
from empiricist.lookup.ngram import NgramIndex
from empiricist.lookup.results import DocumentHit

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore

DEFAULT_FIELDS = ("question", "answer")
MIN_FRACTION = 0.8  # default share of an item's n-grams that must occur (module doc)


@dataclass(frozen=True)
class ItemContamination:
    """How much of one eval item occurs verbatim in the training data, and where.

    ``longest_span`` is the item-token span [start, end) of the longest overlap; ``documents`` the
    training documents holding matching n-grams (``score`` = how many distinct ones), most first.
    """

    item_id: str
    n_tokens: int
    n: int
    n_ngrams: int
    n_matching: int
    longest_overlap: int
    longest_span: tuple[int, int]
    longest_text: str
    contaminated: bool
    documents: list[DocumentHit] = field(default_factory=list)

    @property
    def fraction_matching(self) -> float:
        return self.n_matching / self.n_ngrams if self.n_ngrams else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "n_tokens": self.n_tokens, "n": self.n, "n_ngrams": self.n_ngrams,
                "n_matching": self.n_matching, "fraction_matching": self.fraction_matching,
                "longest_overlap": self.longest_overlap, "longest_span": list(self.longest_span),
                "longest_text": self.longest_text, "contaminated": self.contaminated,
                "documents": [d.to_dict() for d in self.documents]}


def item_text(item: Mapping[str, Any], fields: Sequence[str] = DEFAULT_FIELDS, where: str = "item") -> str:
    """The item's text to check: its ``fields`` that it has, joined by a space (a string item is itself)."""
    if isinstance(item, str):
        text = item
    elif isinstance(item, Mapping):
        if isinstance(fields, str):
            fields = (fields,)
        parts = [str(item[f]) for f in fields if item.get(f) not in (None, "")]
        if not parts:
            raise InputError(f"{where} has none of the text fields {list(fields)}", field=fields[0])
        text = " ".join(parts)
    else:
        raise InputError(f"{where} must be a mapping (an eval item) or text, got {type(item).__name__}")
    if not text.strip():
        raise InputError(f"{where}: empty text")
    return text


def id_of(item: Any, i: int, id_field: str = "id") -> str:
    return str(item.get(id_field, i)) if isinstance(item, Mapping) else str(i)


def open_index(store: TokenStore, index: NgramIndex | str | Path | None) -> NgramIndex:
    """``index`` (an NgramIndex, a path, or None: the store's default) checked to be the store's own."""
    if isinstance(index, NgramIndex):
        if index.store.fingerprint != store.fingerprint:
            raise ArtifactError(f"n-gram index {index.path} belongs to store {index.store.path}, "
                                f"not {store.path}")
        return index
    return NgramIndex.open(index, store)


def _check_options(n: int, min_matches: int, min_fraction: float, max_docs: int) -> None:
    for name, value, low in (("n", n, 1), ("min_matches", min_matches, 1), ("max_docs", max_docs, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float)) \
            or not 0 <= min_fraction <= 1:
        raise InputError(f"min_fraction must be a number in [0, 1], got {min_fraction!r}")


def is_contaminated(n_matching: int, n_ngrams: int, min_matches: int = 1, min_fraction: float = MIN_FRACTION) -> bool:
    """The decision rule (module doc): enough matching n-grams, absolutely and as a fraction."""
    return n_matching >= min_matches and n_matching >= min_fraction * n_ngrams


def check_item(index: NgramIndex, text: str, n: int = 13, *, min_matches: int = 1, min_fraction: float = MIN_FRACTION,
               max_docs: int = 10, item_id: str = "") -> ItemContamination:
    """Contamination of one text against ``index`` (options as in ``contamination_report``)."""
    _check_options(n, min_matches, min_fraction, max_docs)
    ids = index.ids(text, what=f"item {item_id!r}", max_tokens=100_000)
    longest = np.array([index.longest_prefix(ids[i:]) for i in range(len(ids))], dtype=np.int64)
    n_eff = min(n, len(ids))
    starts = np.flatnonzero(longest[: len(ids) - n_eff + 1] >= n_eff)
    best = int(np.argmax(longest))
    span = (best, best + int(longest[best]))
    docs: list[DocumentHit] = []
    if starts.size and max_docs:
        found = [index.positions(ids[s:s + n_eff]) for s in starts]
        doc_arr = np.concatenate([d for d, _ in found])
        off_arr = np.concatenate([o for _, o in found])
        gram_of = np.repeat(np.arange(len(found)), [d.size for d, _ in found])
        uniq = np.unique(np.stack([doc_arr, gram_of]), axis=1)[0]  # (doc, n-gram) pairs, once each
        docs_u, counts = np.unique(uniq, return_counts=True)
        for j in np.lexsort((docs_u, -counts))[:max_docs]:
            d = int(docs_u[j])
            docs.append(index.hit(d, np.unique(off_arr[doc_arr == d]), score=float(counts[j])))
    n_grams, n_matching = len(ids) - n_eff + 1, int(starts.size)
    return ItemContamination(item_id, len(ids), n_eff, n_grams, n_matching, span[1] - span[0], span,
                             index.decode(ids[span[0]:span[1]]) if span[1] > span[0] else "",
                             is_contaminated(n_matching, n_grams, min_matches, min_fraction), docs)


def contamination_report(items: Iterable[Any], store: TokenStore, index: NgramIndex | str | Path | None = None,
                         n: int = 13, *, fields: Sequence[str] = DEFAULT_FIELDS, min_matches: int = 1,
                         min_fraction: float = MIN_FRACTION, max_docs: int = 10, id_field: str = "id"
                         ) -> list[ItemContamination]:
    """Per eval item: longest verbatim overlap, matching n-grams, documents, and the decision.

    ``items``: eval items (mappings; their ``fields`` are checked) or plain texts. ``index``: the store's
    n-gram index (an NgramIndex or its folder; None: the store's default location).
    """
    _check_options(n, min_matches, min_fraction, max_docs)
    ngram = open_index(store, index)
    out = []
    for i, item in enumerate(items):
        iid = id_of(item, i, id_field)
        text = item_text(item, fields, where=f"item {iid!r}")
        out.append(check_item(ngram, text, n, min_matches=min_matches, min_fraction=min_fraction,
                              max_docs=max_docs, item_id=iid))
    return out


def split_clean_contaminated(items: Iterable[Any], store: TokenStore, index: NgramIndex | str | Path | None = None,
                             n: int = 13, **options: Any) -> tuple[list[str], list[str]]:
    """(clean item ids, contaminated item ids), in item order: for reporting evals on both subsets.

    ``options`` are those of ``contamination_report`` (``fields``, ``min_matches``, ``min_fraction``,
    ``id_field``).
    """
    report = contamination_report(items, store, index, n, max_docs=0, **options)
    return ([r.item_id for r in report if not r.contaminated], [r.item_id for r in report if r.contaminated])
