"""``attribute(model, queries, documents, method) -> Attribution``: one entry point for every method."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist._malloc import keep_freed_memory
from empiricist.artifacts import Workspace
from empiricist.attribution.data import Documents, Query
from empiricist.attribution.methods import Context, check_options, get_method

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle


SIGN = "positive = training on the document lowers the query's NLL (removing it would raise it)"


@dataclass
class Attribution:
    """``scores[q, d]``: positive = training on document d lowers query q's measurement (NLL)."""

    method: str
    scores: np.ndarray
    queries: list[Query]
    docs: Documents
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> str:
        """What a score measures: nats of query NLL for methods that predict the change (``magic``)."""
        from empiricist.attribution.methods import UNITS

        return UNITS.get(self.method, "relative: ranks documents, not a predicted change")

    @property
    def sign(self) -> str:
        return SIGN

    def top(self, q: int, k: int = 10) -> list[tuple[int, float]]:
        """(document row, score) of the ``k`` highest scores for query ``q``, best first (ties: lower row)."""
        s = self.scores[q]
        order = np.lexsort((np.arange(len(s)), -s))[:k]
        return [(int(i), float(s[i])) for i in order]

    def to_records(self, k: int = 10, text_chars: int = 300) -> list[dict[str, Any]]:
        out = []
        for qi, q in enumerate(self.queries):
            out.append({**q.to_dict(), "method": self.method,
                        "top": [{"rank": r + 1, "doc_id": self.docs.ids[i], "score": s,
                                 "text": self.docs.texts[i][:text_chars]}
                                for r, (i, s) in enumerate(self.top(qi, k))]})
        return out


def attribute(model: ModelHandle | str, queries: Sequence[Query], documents: Documents, method: str = "trackstar", *,
              cache: str | Path | None = None, options: dict[str, Any] | None = None, progress: bool = True,
              workspace: Workspace | str | Path | None = None) -> Attribution:
    """Score every (query, document) pair with ``method``.

    ``model`` is a ``ModelHandle`` or a spec for ``load_model`` (``suite:micro/m1``, a local HF folder, a
    hub id). ``cache`` holds factors, features and traker/kronfluence stores: a second query set against
    the same model and documents reuses them.
    """
    from empiricist.suite.handles import ModelHandle, load_model

    keep_freed_memory()  # per-example gradients allocate and free large blocks: empiricist/_malloc.py
    fn = get_method(method)
    options = dict(options or {})
    check_options(method, options)
    handle = model if isinstance(model, ModelHandle) else load_model(str(model), workspace=workspace)
    if not queries:
        from empiricist.errors import InputError

        raise InputError("no queries to attribute")
    if len(documents) == 0:
        from empiricist.errors import InputError

        raise InputError("no documents to attribute to")
    ctx = Context(handle, list(queries), documents, Path(cache) if cache else None, options, progress)
    t0 = time.perf_counter()
    scores = fn(ctx)
    return Attribution(method, np.asarray(scores, dtype=np.float64), list(queries), documents,
                       time.perf_counter() - t0, options)
