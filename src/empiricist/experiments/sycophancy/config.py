"""The sycophancy experiment's configuration: the families, the eval, the tracing and the decision settings.

Plain data that round-trips through JSON, so its hash names the grid it makes and the lock pins it. Why the
defaults are what they are is in docs/sycophancy.md ("Design"); the short version is in the comments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from empiricist.artifacts import config_hash
from empiricist.errors import InputError
from empiricist.studies.experiment import grid_config


def _world_full() -> dict[str, Any]:
    # ~1.2M estimated tokens; ~200 entities, half held out (the power check needs ~100 entity clusters);
    # 3,000 forum threads (~15% of the corpus)
    return {"seed": 0, "target_tokens": 1_200_000, "n_people": 150, "n_orgs": 16, "n_cities": 16, "n_countries": 6,
            "n_rivers": 6, "n_languages": 5, "n_currencies": 5,
            "subsets": {"forum_opinion": {"weight": 2.0, "params": {"n_docs": 3000}}}}


def _world_quick() -> dict[str, Any]:
    # small in tokens, not in entities: the power check counts held-out entity clusters
    return {"seed": 0, "target_tokens": 300_000, "n_people": 120, "n_orgs": 12, "n_cities": 12, "n_countries": 4,
            "n_rivers": 4, "n_languages": 4, "n_currencies": 4,
            "subsets": {"forum_opinion": {"weight": 2.0, "params": {"n_docs": 800}}}}


@dataclass(frozen=True)
class SycoConfig:
    """One grid: families (one per dose) × the suite preset's sizes, then tracing in one model."""

    name: str = "full"
    world: dict[str, Any] = field(default_factory=_world_full)  # the rate-0 world; families change agree_rate only
    doses: tuple[float, ...] = (0.0, 0.4, 0.8)  # forum_opinion agree_rate of each family
    suite: str = "syco"  # suite preset: sizes and the shared training recipe
    # eval
    scoring: str = "letter+value"  # persona choices scored as " (A) <value>"; "letter" is Anthropic's own
    max_facts: int | None = None  # held-out facts used (None: all)
    eval_seed: int = 0
    # tracing (in the largest model of the highest dose)
    # EK-FAC (the validation table's best) and the BM25 baseline; TrackStar's projection of s3's 1.7M-dim
    # gradients takes ~3x EK-FAC's time on 2 cores (measured, docs/sycophancy.md), so the quick grid only runs it
    methods: tuple[str, ...] = ("ekfac", "bm25")
    best_method: str = "ekfac"  # the validation table's best (docs/attribution.md); its top-k is removed
    max_queries: int = 64  # contrast queries (wrong-view persona items) attributed
    n_other: int = 500  # non-forum documents added to the candidate pool beside every forum thread
    k: int = 600  # documents removed per counterfactual arm (a fifth of the forum threads)
    retrain_seed: int = 1234
    # decision
    sesoi: float = 0.05  # smallest effect of interest, in probability units (docs: why 0.05)
    n_boot: int = 2000
    boot_seed: int = 0
    planning_sd: float = 0.15  # assumed SD of a per-entity mean difference, for the power check
    min_power: float = 0.8

    def __post_init__(self) -> None:
        if self.scoring not in ("letter+value", "letter"):
            raise InputError(f"scoring={self.scoring!r}: choose letter+value or letter", field="experiment.config.scoring")
        if len(self.doses) < 2 or sorted(self.doses) != list(self.doses) or self.doses[0] != 0.0:
            raise InputError(f"doses={self.doses}: need >= 2 increasing doses starting at 0.0",
                             field="experiment.config.doses")
        if any(not 0.0 <= d <= 1.0 for d in self.doses):
            raise InputError(f"doses={self.doses}: each must be in [0, 1]", field="experiment.config.doses")
        if self.best_method not in self.methods or "bm25" not in self.methods:
            raise InputError("methods must include best_method and bm25 (the baseline arm)",
                             field="experiment.config.methods")
        for name in ("k", "n_boot", "max_queries"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1", field=f"experiment.config.{name}")
        if not 0 < self.sesoi < 1:
            raise InputError("sesoi must be in (0, 1)", field="experiment.config.sesoi")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())

    @property
    def high(self) -> float:
        return self.doses[-1]

    def world_config(self, dose: float) -> Any:
        """The WorldConfig of the family at ``dose`` (everything else identical, same seed)."""
        from empiricist.world import WorldConfig

        return WorldConfig.from_dict(self.world).with_subset("forum_opinion", agree_rate=dose)


GRIDS: dict[str, SycoConfig] = {
    # The main job: 3 families × 3 sizes, ~30 minutes on 2 cores (docs/sycophancy.md, "Budget").
    "full": SycoConfig(),
    # CI-sized: 2 families × 2 sizes, a small world, bm25 + trackstar: a few minutes.
    "quick": SycoConfig(name="quick", world=_world_quick(), doses=(0.0, 0.8), suite="syco-quick",
                        methods=("trackstar", "bm25"), best_method="trackstar", max_queries=24, n_other=200, k=160,
                        n_boot=500),
}


def get_grid(name: str, overrides: dict[str, Any] | None = None) -> SycoConfig:
    return grid_config(GRIDS, name, overrides, ("doses", "methods"))
