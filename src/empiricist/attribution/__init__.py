"""Training-data attribution: which documents made the model say this — and how far to trust the answer.

``attribute(model, queries, documents, method)`` scores every (query, document) pair with one of
``METHODS`` (EK-FAC via kronfluence, TRAK via traker, TrackStar-style and TracIn gradient similarity,
BM25 and MiniLM baselines). ``empiricist.attribution.validate`` measures each method against retraining
(LDS), the world's fact ground truth, and counterfactual removal.
"""

from empiricist.attribution.api import Attribution, attribute
from empiricist.attribution.data import Documents, Query, fact_queries, load_documents, load_queries
from empiricist.attribution.methods import METHODS

__all__ = ["METHODS", "Attribution", "Documents", "Query", "attribute", "fact_queries", "load_documents", "load_queries"]
