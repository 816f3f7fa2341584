"""Configuration of the probe-evasion ("steganographic representations") grid: plain data, hashed.

Defaults were chosen by short pilot sweeps on 2 CPU cores (see docs/internals.md): with AdamW at
lr 1e-2 and weight decay 3, init scale 0.5, the two-hidden-layer MLP on (a + b) mod 23 generalises in
a few hundred steps at 60% training data and in one to three thousand at 40%, so training fraction spans
fast, slow and censored generalisation inside a 3,000-step budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from empiricist.errors import InputError

VARIANTS = ("adversarial", "frozen")
LAYERS = ("emb", "h1", "h2")


@dataclass(frozen=True)
class StegoConfig:
    """One grid: task, model, optimiser, the probe penalty, the grid axes, seeds and post-hoc probes."""

    name: str = "default"
    # task: (a + b) mod p; S = sector of the phase 2πk*c/p in n_sectors bins
    p: int = 23
    n_sectors: int = 4
    # model: [E_a; E_b] → h1 = relu → h2 = relu → logits
    d_embed: int = 24
    d_hidden: int = 64
    init_scale: float = 0.5
    # optimiser (full batch AdamW)
    lr: float = 1e-2
    weight_decay: float = 3.0
    steps: int = 3000
    eval_every: int = 50
    grok_threshold: float = 0.95
    # the penalised probe
    probe_layer: str = "h1"
    probe_steps: int = 2
    probe_lr: float = 1e-2
    probe_l2: float = 1e-3
    freeze_step: int = 300
    # grid
    lambdas: tuple[float, ...] = (0.0, 0.3, 1.0, 3.0)
    train_fracs: tuple[float, ...] = (0.4, 0.5, 0.6)
    variants: tuple[str, ...] = VARIANTS
    seeds: int = 5
    # post-hoc probes
    posthoc_k: int = 5
    posthoc_regs: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    mlp_probe_layers: tuple[str, ...] = ("h1",)
    mlp_probe_hidden: int = 32
    mlp_probe_steps: int = 200
    mlp_probe_k: int = 3
    # decision rule (see predictions.py)
    evasion_margin: float = 0.10
    cost_rel: float = 0.25
    cost_acc: float = 0.05
    threads: int = 1  # 0 = every core; one thread is the robust choice on a shared 2-core machine

    def __post_init__(self) -> None:
        bad = []
        if self.p < 5 or any(self.p % q == 0 for q in range(2, int(self.p**0.5) + 1)):
            bad.append(f"p={self.p} must be a prime ≥ 5 (every frequency then determines the answer)")
        if not 2 <= self.n_sectors <= self.p // 2:
            bad.append(f"n_sectors={self.n_sectors} must be in 2..p//2")
        if 0.0 not in self.lambdas or min(self.lambdas) < 0:
            bad.append(f"lambdas={self.lambdas} must be ≥ 0 and include 0 (the unpenalised twin)")
        if any(not 0 < f < 1 for f in self.train_fracs):
            bad.append(f"train_fracs={self.train_fracs} must be in (0, 1)")
        if set(self.variants) - set(VARIANTS) or not self.variants:
            bad.append(f"variants={self.variants} must be drawn from {VARIANTS}")
        if self.probe_layer not in ("h1", "h2"):
            bad.append(f"probe_layer={self.probe_layer!r} must be h1 or h2")
        if set(self.mlp_probe_layers) - set(LAYERS):
            bad.append(f"mlp_probe_layers={self.mlp_probe_layers} must be drawn from {LAYERS}")
        if not 0 <= self.freeze_step < self.steps:
            bad.append(f"freeze_step={self.freeze_step} must be in [0, steps)")
        if self.seeds < 1 or self.steps < self.eval_every:
            bad.append("seeds must be ≥ 1 and steps ≥ eval_every")
        if bad:
            raise InputError("; ".join(bad), field="stego config")

    @property
    def n_freqs(self) -> int:
        return (self.p - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StegoConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown stego config keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def replace(self, **kw: Any) -> StegoConfig:
        return dataclasses.replace(self, **kw)


GRIDS: dict[str, StegoConfig] = {
    # 3 fractions × (1 + 3 λ × 2 variants) × 5 seeds = 105 runs of 3,000 steps: ≈ 10 min on 2 cores.
    "default": StegoConfig(),
    # 2 seeds × (1 + 1 λ × 2 variants) = 6 runs of 800 steps at 60% data: CI-sized (< 60 s).
    "reduced": StegoConfig(name="reduced", steps=800, eval_every=50, freeze_step=200, lambdas=(0.0, 1.0),
                           train_fracs=(0.6,), seeds=2, posthoc_k=3, posthoc_regs=(1e-2,), mlp_probe_steps=100),
}


def get_grid(name: str, **overrides: Any) -> StegoConfig:
    if name not in GRIDS:
        raise InputError(f"unknown stego grid {name!r}; choose from {sorted(GRIDS)}")
    return GRIDS[name].replace(**overrides) if overrides else GRIDS[name]
