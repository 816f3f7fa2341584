"""empiricist.unlearn: machine unlearning judged against the retrain-from-scratch gold (issue 18, in progress).

- ``methods``: gradient ascent, gradient difference, NPO, RMU as objectives of the shared trainer;
  ``unlearn`` runs one from a checkpoint on a forget store;
- ``forget``: forget requests from the generated world (entities, every document stating their facts),
  split into validation and test, and the retain corpus the gold model trains on;
- ``metrics``: TOFU's truth ratio and forget quality, MUSE's verbatim memorisation and privacy leakage;
- ``evaluate``: one model against the gold, every metric its inputs allow (without a gold, the metrics
  that need one are None and named in ``absent``: the own-model path).
"""

from __future__ import annotations

from empiricist.unlearn.evaluate import evaluate
from empiricist.unlearn.forget import (
           ForgetRequest,
           behaviour_request,
           request,
           retain_documents,
           split_requests,
)
from empiricist.unlearn.methods import METHODS, NPO, RMU, GradientAscent, GradientDifference
from empiricist.unlearn.metrics import (
           forget_quality,
           privacy_leakage,
           truth_ratio,
           truth_ratios,
           verbatim_memorisation,
)
from empiricist.unlearn.run import unlearn

__all__ = ["METHODS", "NPO", "RMU", "ForgetRequest", "GradientAscent", "GradientDifference", "behaviour_request", "evaluate", "forget_quality",
           "privacy_leakage", "request", "retain_documents", "split_requests", "truth_ratio", "truth_ratios",
           "unlearn", "verbatim_memorisation"]
