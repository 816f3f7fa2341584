"""Suite configuration as plain data (nanoGPT style): model sizes, the training recipe, presets.

A suite is several GPT-NeoX models (the Pythia architecture) that see exactly the same tokens in the
same order; only the size differs. Everything here round-trips through JSON so that the config hash
names the artifact it makes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from empiricist.errors import EmpiricistError


@dataclass(frozen=True)
class ModelSize:
    """One model shape. ``d_ff`` defaults to 4·d_model as in Pythia."""

    name: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise EmpiricistError(f"size {self.name}: d_model {self.d_model} not divisible by n_heads {self.n_heads}")
        if self.d_ff == 0:
            object.__setattr__(self, "d_ff", 4 * self.d_model)

    def n_params(self, vocab_size: int) -> int:
        """Parameter count of the GPTNeoX model (untied input/output embeddings, biases, layer norms)."""
        d, f = self.d_model, self.d_ff
        per_layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d  # attn qkv+o, mlp, 2 LNs
        return self.n_layers * per_layer + 2 * vocab_size * d + 2 * d

    def n_non_embedding_params(self, vocab_size: int) -> int:
        return self.n_params(vocab_size) - 2 * vocab_size * self.d_model


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe shared by every size in a suite."""

    seq_len: int = 128
    batch_size: int = 32  # sequences per optimiser step
    steps: int = 1000
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 1234
    # "fp32"; "bf16" (autocast over fp32 weights); "bf16-master" (bf16 compute copy, fp32 master weights in
    # the optimiser); "auto" / "auto-master": fp32 below d_model 64, else bf16 / bf16-master (see below)
    precision: str = "auto"
    compile: bool = False  # torch.compile the step (inductor); ~20 s warm-up a model, paid off on AMD/AVX-512,
    # lost 15-35% on the Xeon/AMX machine (docs/benchmarks.md), so no preset turns it on now
    threads: int = 0  # 0: all available cores; -1: per size, 1 below d_model 128 else all (see threads_for)
    resume_every: int = 100  # steps between resume snapshots (besides checkpoints)
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.precision not in ("bf16", "bf16-master", "fp32", "auto", "auto-master"):
            raise EmpiricistError("precision must be 'fp32', 'bf16', 'bf16-master', 'auto' or 'auto-master', "
                                  f"got {self.precision!r}")
        for name in ("seq_len", "batch_size", "steps"):
            if getattr(self, name) <= 0:
                raise EmpiricistError(f"train.{name} must be positive")
        if self.threads < -1:
            raise EmpiricistError(f"train.threads must be -1 (per size), 0 (all cores) or a count, got {self.threads}")

    def precision_for(self, size: ModelSize) -> str:
        """'auto': bf16 pays for its casts only once matmuls dominate (measured: d_model ≥ 64)."""
        if not self.precision.startswith("auto"):
            return self.precision
        if size.d_model < 64:
            return "fp32"
        return "bf16-master" if self.precision == "auto-master" else "bf16"

    def threads_for(self, size: ModelSize) -> int:
        """Threads a size trains with (0 = all cores). -1: small models use a second core badly, so they
        take one and the scheduler (empiricist.execute) trains two side by side."""
        if self.threads >= 0:
            return self.threads
        return 1 if size.d_model < 128 else 0

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.batch_size

    def checkpoint_steps(self) -> list[int]:
        """Pythia-style log-spaced steps: 0, 1, 2, 4, …, plus the last step."""
        steps = {0, self.steps}
        k = 1
        while k < self.steps:
            steps.add(k)
            k *= 2
        return sorted(steps)

    def lr_at(self, step: int) -> float:
        """Linear warm-up then cosine decay to ``min_lr_ratio``·lr."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cos)


@dataclass(frozen=True)
class SuiteConfig:
    """A suite: sizes × one recipe × one token store (identified by its manifest hash)."""

    name: str
    sizes: tuple[ModelSize, ...]
    train: TrainConfig = field(default_factory=TrainConfig)
    vocab_size: int = 2048  # for the tokenizer trained on a world; ignored with a given tokenizer

    def size(self, name: str) -> ModelSize:
        for s in self.sizes:
            if s.name == name:
                return s
        raise EmpiricistError(f"suite {self.name!r} has no size {name!r}; sizes: {[s.name for s in self.sizes]}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SuiteConfig:
        return cls(
            name=d["name"],
            sizes=tuple(ModelSize(**s) for s in d["sizes"]),
            train=TrainConfig(**d.get("train", {})),
            vocab_size=d.get("vocab_size", 2048),
        )

    def replace(self, **train_overrides: Any) -> SuiteConfig:
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **train_overrides))


def _sizes(*specs: tuple[str, int, int, int]) -> tuple[ModelSize, ...]:
    return tuple(ModelSize(name, d, n_layers, n_heads) for name, d, n_layers, n_heads in specs)


SUITE_PRESETS: dict[str, SuiteConfig] = {
    # The whole suite trains in well under a minute: used by tests and CI.
    "tiny": SuiteConfig(
        name="tiny",
        sizes=_sizes(("t1", 16, 1, 2), ("t2", 24, 1, 2), ("t3", 32, 2, 2), ("t4", 48, 2, 4)),
        train=TrainConfig(seq_len=64, batch_size=8, steps=40, lr=3e-3, warmup_steps=5, resume_every=10, log_every=5),
        vocab_size=384,
    ),
    # The default: four log-spaced sizes (≈0.1M–3M non-embedding parameters), ≤ 30 min on 2 cores.
    "micro": SuiteConfig(
        name="micro",
        sizes=_sizes(("m1", 48, 2, 4), ("m2", 96, 2, 4), ("m3", 160, 3, 4), ("m4", 256, 4, 8)),
        # bf16 compute with fp32 master weights from m2 up, m1/m2 trained side by side on one thread each,
        # no compile (it lost 15-35% on the Xeon/AMX machine; docs/benchmarks.md): see suite/step.py
        train=TrainConfig(seq_len=128, batch_size=32, steps=1200, lr=3e-3, warmup_steps=60, resume_every=100,
                          precision="auto-master", threads=-1),
        vocab_size=2048,
    ),
    # The sycophancy families (docs/sycophancy.md): three sizes, 300 steps × 32 × 128 ≈ 1.2M tokens each, so
    # 3 families × 3 sizes plus the retraining arms fit the main job's 45 minutes on 2 cores.
    "syco": SuiteConfig(
        name="syco",
        sizes=_sizes(("s1", 64, 2, 4), ("s2", 128, 2, 4), ("s3", 192, 3, 4)),
        train=TrainConfig(seq_len=128, batch_size=32, steps=300, lr=3e-3, warmup_steps=30, resume_every=50),
        vocab_size=2048,
    ),
    # Its CI-sized version (`empiricist run --quick`).
    "syco-quick": SuiteConfig(
        name="syco-quick",
        sizes=_sizes(("q1", 32, 1, 2), ("q2", 64, 2, 4)),
        train=TrainConfig(seq_len=128, batch_size=16, steps=120, lr=3e-3, warmup_steps=10, resume_every=40,
                          log_every=20),
        vocab_size=1024,
    ),
}


def get_preset(name: str) -> SuiteConfig:
    try:
        return SUITE_PRESETS[name]
    except KeyError:
        raise EmpiricistError(f"unknown suite preset {name!r}; presets: {sorted(SUITE_PRESETS)}") from None
