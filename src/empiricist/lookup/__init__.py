"""empiricist.lookup: training-data lookup — exact n-gram counts, documents and ∞-gram distributions
(infini-gram), OLMoTrace-style output tracing, semantic (FAISS) and lexical (BM25) search, test-set
contamination and membership inference, each scored against the generated world's ground truth."""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports
from empiricist.lookup.trace import trace  # eager: a function named like its module

if TYPE_CHECKING:
    from empiricist.lookup.contamination import (
        ItemContamination,
        contamination_report,
        split_clean_contaminated,
    )
    from empiricist.lookup.groundtruth import evaluate_contamination, retrieval_groundtruth, to_markdown
    from empiricist.lookup.membership import MembershipScore, membership_scores, roc_auc
    from empiricist.lookup.ngram import NgramIndex, open_default_ngram
    from empiricist.lookup.ngram_build import build_ngram_index, default_ngram_index_path
    from empiricist.lookup.results import DocumentHit, FindResult, NextTokenDistribution
    from empiricist.lookup.search import Hit, SearchIndex, build_search_index
    from empiricist.lookup.trace import TraceResult, TraceSpan, trace_text

_EXPORTS = {
    "ItemContamination": "contamination",
    "contamination_report": "contamination",
    "split_clean_contaminated": "contamination",
    "evaluate_contamination": "groundtruth",
    "retrieval_groundtruth": "groundtruth",
    "to_markdown": "groundtruth",
    "MembershipScore": "membership",
    "membership_scores": "membership",
    "roc_auc": "membership",
    "NgramIndex": "ngram",
    "open_default_ngram": "ngram",
    "build_ngram_index": "ngram_build",
    "default_ngram_index_path": "ngram_build",
    "DocumentHit": "results",
    "FindResult": "results",
    "NextTokenDistribution": "results",
    "Hit": "search",
    "SearchIndex": "search",
    "build_search_index": "search",
    "TraceResult": "trace",
    "TraceSpan": "trace",
    "trace_text": "trace",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DocumentHit",
    "FindResult",
    "Hit",
    "ItemContamination",
    "MembershipScore",
    "NextTokenDistribution",
    "NgramIndex",
    "SearchIndex",
    "TraceResult",
    "TraceSpan",
    "build_ngram_index",
    "build_search_index",
    "contamination_report",
    "default_ngram_index_path",
    "evaluate_contamination",
    "membership_scores",
    "open_default_ngram",
    "retrieval_groundtruth",
    "roc_auc",
    "split_clean_contaminated",
    "to_markdown",
    "trace",
    "trace_text",
]
