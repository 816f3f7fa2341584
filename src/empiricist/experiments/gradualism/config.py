"""The gradualism experiment's configuration: the size sweep, the families, the tasks, the forecasting
windows and the declared scatter the rule's intervals are built from.

Plain data that round-trips through JSON, so its hash names the grid and the lock pins it. Why the
defaults are what they are is in docs/gradualism.md ("Design" and "Pilot").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from empiricist.errors import InputError
from empiricist.studies.experiment import GridConfig, grid_config

KINDS = ("acc", "logp")  # accuracy, and the mean log probability of the right answer (the continuous metric)
FORECASTS = ("size", "checkpoint")


def _world(preset: str, seed: int, **extra: Any) -> dict[str, Any]:
    from empiricist.world import WorldConfig

    return {**WorldConfig.preset(preset, seed=seed).to_dict(), **extra}


def _families_full() -> dict[str, Any]:
    # the sycophancy study's family world (experiments/sycophancy/config.py), on a seed no study has used
    return {"seed": 19, "target_tokens": 1_200_000, "n_people": 150, "n_orgs": 16, "n_cities": 16, "n_countries": 6,
            "n_rivers": 6, "n_languages": 5, "n_currencies": 5,
            "subsets": {"forum_opinion": {"weight": 2.0, "params": {"n_docs": 3000}}}}


def _families_quick() -> dict[str, Any]:
    return {"seed": 19, "target_tokens": 300_000, "n_people": 120, "n_orgs": 12, "n_cities": 12, "n_countries": 4,
            "n_rivers": 4, "n_languages": 4, "n_currencies": 4,
            "subsets": {"forum_opinion": {"weight": 2.0, "params": {"n_docs": 800}}}}


def _scatter() -> dict[str, float]:
    # The SD of a measured mean about its forecast line, per task, forecast and metric kind, declared before
    # the lock from the pilot (two syco families on world seed 7 and the 120-step micro run; docs/gradualism.md,
    # "Pilot"): the pilot's RMS residual times sqrt(n / chi2_0.2(n)) (its upper 80% bound), rounded up;
    # an accuracy never below 0.016, the binomial SE of one mean of 1,000 items at p = 0.5.
    return {"fact_qa:size_acc": 0.039, "fact_qa:size_logp": 0.08, "fact_qa:checkpoint_acc": 0.018,
            "fact_qa:checkpoint_logp": 0.074, "sycophancy:size_acc": 0.016, "sycophancy:size_logp": 1.4,
            "sycophancy:checkpoint_acc": 0.016, "sycophancy:checkpoint_logp": 0.47}


def _sesoi() -> dict[str, float]:
    # the jump the power check asks every decided forecast to see: 0.4 of the items (an "emergent" step from
    # near chance to most items) and one nat. The pilot's scatter left a size forecast from two or three sizes
    # blind below about 0.38; checkpoint forecasts see jumps of 0.1 (the plan prints each)
    return {"acc": 0.4, "logp": 1.0}


@dataclass(frozen=True)
class GradualismConfig(GridConfig):
    """A size sweep (the micro suite) and the sycophancy families, every late checkpoint evaluated."""

    name: str = "full"
    world: dict[str, Any] = field(default_factory=lambda: _world("micro", 19))  # the size sweep's world
    suite: str = "micro"  # suite preset of the size sweep (m1–m4)
    family_world: dict[str, Any] = field(default_factory=_families_full)
    family_subset: str = "forum_opinion"
    family_param: str = "agree_rate"
    doses: tuple[float, ...] = (0.0, 0.4, 0.8)
    family_suite: str = "syco"  # s1–s3
    tasks: tuple[str, ...] = ("fact_qa", "sycophancy")  # the world's own eval tasks
    # the metrics the rule decides on ("task:kind"). Not sycophancy:logp: in the pilot its log probability of
    # the right letter swung by 0.8 nats between sizes at chance accuracy (letter bias), so no jump under
    # 14 nats would show (docs/gradualism.md, "Pilot"); it is still forecast and reported
    metrics: tuple[str, ...] = ("fact_qa:acc", "fact_qa:logp", "sycophancy:acc")
    max_items: int = 1000  # items per task (a seeded sample; the same for every model)
    item_seed: int = 0
    n_early: int = 4  # a checkpoint forecast: the final checkpoint from the n_early checkpoints before it
    level: float = 0.95  # the forecasts' nominal coverage
    alpha: float = 0.05  # family-wise: jumps (Bonferroni over every forecast) and the coverage test
    scatter: dict[str, float] = field(default_factory=_scatter)
    sesoi: dict[str, float] = field(default_factory=_sesoi)  # the jump the power check asks to see
    min_spread: float = 0.05  # control: the largest size beats the smallest on fact QA by at least this
    min_power: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.level < 1 or not 0 < self.alpha < 1:
            raise InputError("level and alpha must be in (0, 1)", field="experiment.config.level")
        bad = [m for m in self.metrics if m.partition(":")[0] not in self.tasks or m.partition(":")[2] not in KINDS]
        if bad or not self.metrics:
            raise InputError(f"metrics {bad or '()'}: each must be task:kind with a task of {list(self.tasks)} and a "
                             f"kind of {list(KINDS)}", field="experiment.config.metrics")
        if self.n_early < 2:
            raise InputError("n_early must be >= 2 (a line needs two points)", field="experiment.config.n_early")
        missing = {f"{t}:{f}_{k}" for t in self.tasks for f in FORECASTS for k in KINDS} - set(self.scatter)
        if missing or any(v <= 0 for v in self.scatter.values()):
            raise InputError(f"scatter needs a positive value for each of {sorted(missing) or 'its keys'}",
                             field="experiment.config.scatter")

    def family_world_config(self, dose: float) -> Any:
        from empiricist.world import WorldConfig

        return WorldConfig.from_dict(self.family_world).with_subset(self.family_subset, **{self.family_param: dose})


GRIDS: dict[str, GradualismConfig] = {
    # about 22 minutes of training and 10 of evaluation on 2 cores (docs/gradualism.md, "Budget")
    "full": GradualismConfig(),
    # CI-sized: the tiny suite (40 steps) and two syco-quick families; it tests the machinery, not the question
    "quick": GradualismConfig(name="quick", world=_world("tiny", 19), suite="tiny", family_world=_families_quick(),
                              doses=(0.0, 0.8), family_suite="syco-quick", max_items=200, n_early=3,
                              # the tiny models' 64-token context is shorter than a sycophancy prompt
                              tasks=("fact_qa",), metrics=("fact_qa:acc", "fact_qa:logp")),
}


def get_grid(name: str, overrides: dict[str, Any] | None = None) -> GradualismConfig:
    return grid_config(GRIDS, name, overrides, ("doses", "tasks", "metrics"))
