"""Training objectives beyond next-token MLE: the interface, and pretraining with feedback (docs/safeguards.md).

The trainer's default is plain MLE (``suite/step.py: lm_loss``). Any other loss is an ``Objective``: each
step the loop asks it to ``prepare`` what that step needs beyond the batch (labels, a second batch), then
asks it for the ``loss`` of the model on both; ``config`` is what the manifest records. The unlearning
methods (``empiricist.unlearn``) are objectives too. ``Unlikelihood`` is Korbak et al.
2023's unlikelihood objective: MLE on the tokens of documents a scorer marks good, and ``alpha`` ×
−log(1 − p(token)) on the tokens of documents it marks bad, so the model is pushed away from producing
them. The labels are per store document (``bad_docs``); the loop maps them onto each batch through the
training order (``TrainingOrder.doc_index``), so the data order stays the recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from empiricist.artifacts import sha256_bytes

if TYPE_CHECKING:
    from empiricist.data.order import TrainingOrder


def target_logprobs(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """log p(token) of every target of a (B, T+1) batch under ``model``: (B, T), logits upcast to fp32."""
    logits = model(input_ids=batch[:, :-1]).logits
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, batch[:, 1:, None]).squeeze(-1)


class Objective(Protocol):
    """A loss the shared trainer optimises in place of MLE (one step = ``prepare`` then ``loss``)."""

    def config(self) -> dict[str, Any]: ...

    def prepare(self, order: TrainingOrder, step: int) -> Any:
        """What step ``step`` needs besides its batch (on the trainer's side of any process boundary)."""

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, extra: Any) -> torch.Tensor:
        """The scalar to minimise for ``batch`` (B, T+1 tokens) and ``extra`` (from ``prepare``)."""


_MIN_REST = 1e-6  # 1 − p is clamped here: the unlikelihood of a token the model is certain of stays finite


@dataclass(frozen=True, eq=False)
class Unlikelihood:
    """MLE on good documents' tokens, ``alpha`` × unlikelihood on bad ones' (``bad_docs``: bool per doc)."""

    bad_docs: np.ndarray
    alpha: float = 1.0

    def config(self) -> dict[str, Any]:
        """What the manifest records: the kind, alpha and a hash of the labels (which documents were bad)."""
        bad = np.asarray(self.bad_docs, dtype=bool)
        return {"kind": "unlikelihood", "alpha": self.alpha, "n_bad_docs": int(bad.sum()),
                "bad_docs_sha256": sha256_bytes(np.packbits(bad).tobytes())}

    def prepare(self, order: TrainingOrder, step: int) -> torch.Tensor:
        """True at every target position (``batch[:, 1:]``) whose token belongs to a bad document."""
        docs = order.doc_index(step)[:, 1:]
        return torch.from_numpy(np.asarray(self.bad_docs, dtype=bool)[docs])

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """Mean over all target tokens of CE (good) or ``alpha`` × −log(1 − p) (bad); logits in fp32."""
        bad, logp = extra, target_logprobs(model, batch)
        rest = torch.clamp(-torch.expm1(logp), min=_MIN_REST)  # 1 − p, computed without cancellation
        per_token = torch.where(bad, -self.alpha * torch.log(rest), -logp)
        return per_token.mean()
