"""The probe-evasion experiment: can a network hide a sufficient statistic from a linear probe, and at what cost?

Entry points: ``run_stego_grid(config | "default" | "reduced", out_dir)`` and ``empiricist stego run``.
See docs/internals.md for the design, the measured default grid and its weak points.
"""

from empiricist.internals.stego.config import GRIDS, StegoConfig, get_grid
from empiricist.internals.stego.predictions import (
    PREDICTIONS,
    control_checks,
    evaluate_predictions,
    study_spec,
)
from empiricist.internals.stego.run import StegoResults, run_stego_grid

__all__ = ["GRIDS", "PREDICTIONS", "StegoConfig", "StegoResults", "control_checks", "evaluate_predictions",
           "get_grid", "run_stego_grid", "study_spec"]
