"""The probe-evasion experiment: can a network hide a sufficient statistic from a linear probe, and at what cost?

Entry points: ``run.run_stego_grid(config | "default" | "reduced", out_dir)`` and ``empiricist stego run``; as a
pre-registered study, ``[experiment] kind = "probe_evasion"`` (or its old name ``"stego"``), registered by
importing this package (``study``). See docs/internals.md for the design, the measured default grid and its
weak points, and docs/studies.md for the study. Importing the package does not import torch (``run``
does), so registering the experiment does not load torch.
"""

from empiricist.experiments.probe_evasion.config import GRIDS, StegoConfig, get_grid
from empiricist.experiments.probe_evasion.predictions import (
    PREDICTIONS,
    control_checks,
    evaluate_predictions,
    study_spec,
)
from empiricist.experiments.probe_evasion.study import ProbeEvasion

__all__ = ["GRIDS", "PREDICTIONS", "ProbeEvasion", "StegoConfig", "control_checks", "evaluate_predictions", "get_grid",
           "study_spec"]
