"""Unlearning metrics, each as its benchmark defines it, computed against the gold (retrained) model.

- ``truth_ratio`` (TOFU, Maini et al. 2024): for a question, the mean per-token-normalised probability
  of the wrong answers over that of the right one, P(wrong)^(1/|wrong|) / P(right)^(1/|right|). The
  world's fact-QA items hold every value of a relation as choices, so it comes straight from the eval
  runner's per-choice log-likelihoods (``logprobs``, ``n_tokens``).
- ``forget_quality`` (TOFU): the p-value of a two-sample Kolmogorov–Smirnov test between the unlearned
  model's truth ratios on the forget facts and the gold model's (high: indistinguishable from a model
  that never saw them).
- ``verbatim_memorisation`` (MUSE, Shi et al. 2024): ROUGE-L F1 between a model's greedy continuation
  of a forget document's prefix and the document's true continuation (``rouge_score``, Google's).
- ``privacy_leakage`` (MUSE's PrivLeak): (AUC_unlearned − AUC_gold) / AUC_gold, where each AUC is that of
  a membership score (Min-K% prob, ``lookup.membership``) separating forget documents from held-out
  ones. 0 is the gold's leakage; positive leaks membership, negative over-unlearns (itself a signal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats


def truth_ratio(logprobs: Sequence[float], n_tokens: Sequence[int], right: int) -> float:
    """TOFU's truth ratio of one item from each choice's summed log-probability and token count."""
    lp = np.asarray(logprobs, dtype=float) / np.maximum(np.asarray(n_tokens, dtype=float), 1.0)
    wrong = np.delete(lp, right)
    if wrong.size == 0:
        raise ValueError("a truth ratio needs at least one wrong answer")
    return float(np.mean(np.exp(wrong)) / np.exp(lp[right]))


def truth_ratios(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per item id, from the eval runner's log-likelihood rows (one gold index per item)."""
    return {r["item_id"]: truth_ratio(r["logprobs"], r["n_tokens"], int(r["gold"][0])) for r in rows}


def forget_quality(unlearned: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    """TOFU's forget quality: the KS test of the two truth-ratio distributions (p-value, statistic)."""
    res = stats.ks_2samp(np.asarray(unlearned, float), np.asarray(gold, float))
    return {"p_value": float(res.pvalue), "ks": float(res.statistic), "n": len(unlearned)}


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (Google's ``rouge_score``, no stemming: the world's words are invented)."""
    from rouge_score import rouge_scorer

    return float(rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(reference, candidate)["rougeL"].fmeasure)


def verbatim_memorisation(continuations: Sequence[str], references: Sequence[str]) -> float:
    """MUSE's VerbMem: the mean ROUGE-L F1 of continuations against the true text."""
    if len(continuations) != len(references) or not references:
        raise ValueError("need one continuation per reference, and at least one")
    return float(np.mean([rouge_l(c, r) for c, r in zip(continuations, references, strict=True)]))


def privacy_leakage(auc_unlearned: float, auc_gold: float) -> float:
    """MUSE's PrivLeak: the relative difference of the membership AUCs (0: the gold's)."""
    return (auc_unlearned - auc_gold) / auc_gold
