"""empiricist.unlearn: machine-unlearning methods as objectives of the shared trainer (docs/unlearning.md
once the study lands; issue 18). ``unlearn`` runs one method from a checkpoint on a forget store."""

from __future__ import annotations

from empiricist.unlearn.methods import METHODS, NPO, RMU, GradientAscent, GradientDifference
from empiricist.unlearn.run import unlearn

__all__ = ["METHODS", "NPO", "RMU", "GradientAscent", "GradientDifference", "unlearn"]
