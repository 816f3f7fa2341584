"""The unlearning experiment's configuration: the world, the requests, the recipe, the methods' sweep,
the relearning attack and the rule's thresholds.

Plain data that round-trips through JSON, so its hash names the grid and the lock pins it. Why the
defaults are what they are is in docs/unlearning.md ("Design").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from empiricist.errors import InputError
from empiricist.studies.experiment import GridConfig, grid_config

METHODS = ("gradient_ascent", "gradient_difference", "npo", "rmu")  # the cells; "none" is the base model
RETAIN_METHODS = ("gradient_difference", "npo", "rmu")  # those that also walk the retain documents


def _world_full() -> dict[str, Any]:
    # 40 people, ~12 documents per fact: a 128-wide model learns about three quarters of the people's
    # facts in 1,000 steps (measured on another world seed before the lock: docs/unlearning.md)
    return {"seed": 0, "target_tokens": 100_000, "n_people": 40, "n_orgs": 8, "n_cities": 10}


def _world_quick() -> dict[str, Any]:
    return {"seed": 0, "target_tokens": 30_000, "n_people": 24, "n_orgs": 4, "n_cities": 4, "n_countries": 3,
            "n_rivers": 3, "n_languages": 3, "n_currencies": 3}


@dataclass(frozen=True)
class UnlearningConfig(GridConfig):
    """Base and gold models × seeds, four methods swept on a validation request and run on a test one."""

    name: str = "full"
    world: dict[str, Any] = field(default_factory=_world_full)
    n_entities: int = 6  # people per request: validation, test, and a holdout no model trains on
    vocab_size: int = 1024
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    # pretraining (base and gold: the same recipe, seed and order; the gold's data lack the test request)
    steps: int = 1000
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    warmup_steps: int = 20
    # 10 seeds: the pilot (world seed 7, seeds 10-12) put the SD of a seed's log2 relearning ratio near 1.8;
    # 5 seeds would have had power 0.4 to corroborate a k²× speed-up (docs/unlearning.md, "Pilot")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    # unlearning: every method runs unlearn_steps at each learning rate on the validation request (first
    # seed); the (learning rate, checkpoint) it keeps is the one chosen there, then run on the test request
    unlearn_steps: int = 32
    unlearn_batch: int = 8
    unlearn_lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3)
    retain_weight: float = 1.0
    npo_beta: float = 0.1
    rmu_steering: float = 20.0
    rmu_alpha: float = 10.0  # pilot: at 100 (WMDP's order) the retain term held the forget facts at every lr
    rmu_layer: int = 0
    # a validation setting may cost at most this much retain accuracy. Pilot: at 0.05 no method left less than
    # 80% of the gap, so the relearning attack measured models that had not forgotten; 0.10 let them move
    select_utility_drop: float = 0.10
    # relearning: fine-tune on a few forget documents of half the test people; measured on their facts
    relearn_docs: int = 12
    relearn_steps: int = 64
    relearn_lr: float = 1e-3
    relearn_batch: int = 8
    recover_frac: float = 0.5  # recovered: back halfway from the gold's accuracy to the base's
    # measurement
    max_retain: int = 200  # retain fact-QA items (other entities' facts)
    max_docs: int = 60  # forget documents whose continuations are scored (verbatim memorisation)
    # decision
    gap_margin: float = 0.25  # matched on forget: the share of the base–gold truth-ratio gap left is within ±this
    utility_margin: float = 0.05  # matched on utility: retain accuracy within ±this of the gold's
    k: float = 4.0  # "relearns at least k× faster than the gold learns"
    min_gap: float = 0.2  # the base must know the forget facts: accuracy above the gold's by at least this
    planning_sd: float = 1.8  # SD over seeds of a seed's log2 relearning ratio, as the pilot measured it
    min_power: float = 0.8

    def __post_init__(self) -> None:
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"seeds={self.seeds}: need >= 2 distinct seeds (intervals are over seeds)",
                             field="experiment.config.seeds")
        if self.k <= 1:
            raise InputError("k must be > 1", field="experiment.config.k")
        if not 0 < self.recover_frac < 1:
            raise InputError("recover_frac must be in (0, 1)", field="experiment.config.recover_frac")
        for name in ("steps", "unlearn_steps", "relearn_steps", "relearn_docs", "n_entities", "batch_size",
                     "unlearn_batch", "relearn_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1", field=f"experiment.config.{name}")
        if self.n_entities < 2:
            raise InputError("n_entities must be >= 2 (the test request is split for relearning)",
                             field="experiment.config.n_entities")
        if not self.unlearn_lrs or min(self.unlearn_lrs) <= 0:
            raise InputError("unlearn_lrs must be non-empty and positive", field="experiment.config.unlearn_lrs")

    def options(self, method: str) -> dict[str, Any]:
        """The method's own keyword arguments (``unlearn.METHODS``)."""
        if method == "npo":
            return {"beta": self.npo_beta, "retain_weight": self.retain_weight}
        if method == "rmu":
            return {"steering": self.rmu_steering, "alpha": self.rmu_alpha, "layer": self.rmu_layer}
        if method == "gradient_difference":
            return {"retain_weight": self.retain_weight}
        return {}


GRIDS: dict[str, UnlearningConfig] = {
    # The default: 10 seeds × (base, gold) at d_model 128, four methods; ≤ 30 minutes on 2 cores (docs/unlearning.md).
    "full": UnlearningConfig(),
    # CI-sized: a small world, a 32-wide model, 2 seeds, short runs; about a minute. It exercises the
    # machinery, not the question (its power is printed, not enforced: min_power 0, pinned in its lock).
    "quick": UnlearningConfig(name="quick", world=_world_quick(), n_entities=3, vocab_size=384, d_model=32,
                              n_layers=1, n_heads=2, steps=120, seq_len=64, batch_size=8, seeds=(0, 1),
                              unlearn_steps=4, unlearn_lrs=(1e-3,), relearn_docs=4, relearn_steps=4,
                              max_retain=40, max_docs=8, min_power=0.0),
}


def get_grid(name: str, overrides: dict[str, Any] | None = None) -> UnlearningConfig:
    return grid_config(GRIDS, name, overrides, ("seeds", "unlearn_lrs"))
