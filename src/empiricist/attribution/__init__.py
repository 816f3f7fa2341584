"""Training-data attribution: which documents made the model say this — and how far to trust the answer.

``attribute(model, queries, documents, method)`` scores every (query, document) pair with one of
``METHODS`` (EK-FAC via kronfluence, TRAK via traker, TrackStar-style and TracIn gradient similarity,
BM25 and MiniLM baselines). ``empiricist.attribution.validate`` measures each method against retraining
(LDS), the world's fact ground truth, and counterfactual removal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

if TYPE_CHECKING:
    from empiricist.attribution.api import Attribution, attribute
    from empiricist.attribution.data import Documents, Query, fact_queries, load_documents, load_queries
    from empiricist.attribution.methods import METHODS

_EXPORTS = {
    "Attribution": "api",
    "attribute": "api",
    "Documents": "data",
    "Query": "data",
    "fact_queries": "data",
    "load_documents": "data",
    "load_queries": "data",
    "METHODS": "methods",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["METHODS", "Attribution", "Documents", "Query", "attribute", "fact_queries", "load_documents", "load_queries"]
