"""Unlearning methods as objectives of the shared trainer (``suite/objective.py``): the loop, checkpoints,
resume and determinism are every suite model's; a method only says what it minimises.

The trainer's own order walks the *forget* documents; methods that also keep the model close on the
*retain* documents hold a second order over them and hand its batch to each step (``prepare``).

- ``GradientAscent``: maximise the forget documents' loss (minimise −CE). Unbounded: it destroys the
  model if run long; the baseline every paper reports.
- ``GradientDifference``: gradient ascent on forget plus ``retain_weight`` × CE on retain.
- ``NPO`` (Zhang et al. 2024, negative preference optimisation): (2/β)·softplus(β·(log πθ(x) − log
  π_ref(x))) per forget sequence, with the starting model as π_ref: bounded, so it slows as the forget
  likelihood falls below the reference's; plus ``retain_weight`` × CE on retain (NPO+RT) when given.
- ``RMU`` (Li et al. 2024, WMDP's representation misdirection): push the residual stream at ``layer``
  on forget tokens towards ``steering`` × a fixed random unit vector, and keep it equal to the frozen
  starting model's on retain tokens (``alpha`` × the squared distance).

Each is small glue over torch; the published implementations (TOFU's, open-unlearning's, WMDP's) are
written against their own trainers and HF ``Trainer``, not against a step function, so they are
re-stated here, each with its paper's formula and defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from empiricist.suite.model import load_checkpoint_model
from empiricist.suite.objective import target_logprobs
from empiricist.suite.step import lm_loss

if TYPE_CHECKING:
    from empiricist.data.order import TrainingOrder


def _frozen(path: str | Path) -> torch.nn.Module:
    """The starting model, frozen (π_ref of NPO, the anchor of RMU), loaded once per training process."""
    model = load_checkpoint_model(path).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@dataclass(eq=False)
class _WithRetain:
    """Shared plumbing: the retain order (optional) and, for methods that need it, the starting model."""

    retain: TrainingOrder | None = None
    retain_weight: float = 1.0
    start: str | None = None  # the starting checkpoint (a folder), for π_ref / the frozen anchor
    _ref: torch.nn.Module | None = field(default=None, init=False, repr=False)

    def prepare(self, order: TrainingOrder, step: int) -> torch.Tensor | None:
        return None if self.retain is None else torch.from_numpy(self.retain.batch(step))

    def reference(self) -> torch.nn.Module:
        if self._ref is None:
            if self.start is None:
                raise ValueError(f"{type(self).__name__} needs the starting checkpoint (start=...)")
            self._ref = _frozen(self.start)
        return self._ref

    def _retain_loss(self, model: torch.nn.Module, retain: torch.Tensor | None) -> torch.Tensor:
        return torch.zeros(()) if retain is None else self.retain_weight * lm_loss(model, retain)

    def _config(self, kind: str, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "retain": None if self.retain is None else self.retain.config(),
                "retain_weight": self.retain_weight, **extra}


@dataclass(eq=False)
class GradientAscent(_WithRetain):
    def config(self) -> dict[str, Any]:
        return self._config("gradient_ascent")

    def prepare(self, order: TrainingOrder, step: int) -> None:
        return None  # forget only, even if a retain order was given

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, extra: Any) -> torch.Tensor:
        return -lm_loss(model, batch)


@dataclass(eq=False)
class GradientDifference(_WithRetain):
    def config(self) -> dict[str, Any]:
        return self._config("gradient_difference")

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        return -lm_loss(model, batch) + self._retain_loss(model, extra)


@dataclass(eq=False)
class NPO(_WithRetain):
    beta: float = 0.1

    def config(self) -> dict[str, Any]:
        return self._config("npo", beta=self.beta)

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            ref = target_logprobs(self.reference(), batch).sum(-1)
        ratio = target_logprobs(model, batch).sum(-1) - ref
        return (2.0 / self.beta) * F.softplus(self.beta * ratio).mean() + self._retain_loss(model, extra)


@dataclass(eq=False)
class RMU(_WithRetain):
    # the residual stream after block ``layer`` (hidden_states[layer + 1]); an inner block: HF's last
    # hidden state comes after the final layer norm, whose output cannot take an arbitrary norm
    layer: int = 0
    steering: float = 20.0  # c: the norm the forget activations are pushed to (WMDP used 6.5-300 by model)
    alpha: float = 100.0  # weight of the retain term
    seed: int = 0  # the random direction u

    def config(self) -> dict[str, Any]:
        return self._config("rmu", layer=self.layer, steering=self.steering, alpha=self.alpha, seed=self.seed)

    def direction(self, width: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        u = torch.rand(width, generator=g)
        return u / u.norm()

    def hidden(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        out = model(input_ids=batch[:, :-1], output_hidden_states=True)
        return out.hidden_states[self.layer + 1].float()

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        h = self.hidden(model, batch)
        target = self.steering * self.direction(h.shape[-1])
        forget = ((h - target) ** 2).mean()
        if extra is None:
            return forget
        with torch.no_grad():
            anchor = self.hidden(self.reference(), extra)
        return forget + self.alpha * ((self.hidden(model, extra) - anchor) ** 2).mean()


METHODS: dict[str, type[_WithRetain]] = {"gradient_ascent": GradientAscent, "gradient_difference": GradientDifference,
                                         "npo": NPO, "rmu": RMU}
