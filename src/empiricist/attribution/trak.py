"""TRAK through traker: our causal-LM model output and a per-example gradient computer.

traker's own gradient computers either ``vmap`` the model (fails on HF's masking code) or loop over a
batch's examples with ``retain_graph`` (backward through the whole batch per example, and gradients for
every parameter, ignoring ``grad_wrt``). Ours runs one small forward/backward per example over the
``nn.Linear`` parameters, like the other gradient methods. traker keeps features in its ``save_dir``
(``<cache>/trak/<model>-<docs>-<config>``): a second query set costs only its own gradients.

The model output of a continuation is Σ_t log(p_t / (1 − p_t)) over its tokens — TRAK's margin applied
per token — and the out-to-loss term is the mean of (1 − p_t).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from empiricist.artifacts import config_hash
from empiricist.attribution.checkpoints import load_state
from empiricist.attribution.data import Rows, combine_rows, pad_batch
from empiricist.attribution.grads import linear_params, make_projector, per_example_grads


def _token_logp(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    return logp, batch["loss_mask"][:, 1:]


def margin(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per row: Σ over counted tokens of log p − log(1 − p)."""
    logp, mask = _token_logp(model, batch)
    return ((logp - torch.log1p(-torch.exp(logp).clamp(max=1 - 1e-6))) * mask).sum(1)


def _batch(rows: Rows, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return pad_batch([rows.ids[int(i)] for i in idx], [rows.masks[int(i)] for i in idx])


def _classes() -> tuple[Any, Any]:
    from trak.gradient_computers import AbstractGradientComputer
    from trak.modelout_functions import AbstractModelOutput

    class CausalLMOutput(AbstractModelOutput):
        def __init__(self, rows: Rows) -> None:
            self.rows = rows

        def get_output(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return margin(model, batch)

        def get_out_to_loss_grad(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.no_grad():
                logp, mask = _token_logp(model, batch)
                q = ((1 - torch.exp(logp)) * mask).sum(1) / mask.sum(1).clamp(min=1)
            return q[:, None]

    class PerExampleGradients(AbstractGradientComputer):
        """Batches are index tensors into ``task.rows``; one forward/backward per example."""

        def __init__(self, model: Any, task: Any, grad_dim: int, dtype: Any, device: Any, grad_wrt: Any = None) -> None:
            super().__init__(model, task, grad_dim, dtype, device)
            self.load_model_params(model)

        def load_model_params(self, model: Any) -> None:
            self.model = model
            self.params = [p for _, p in linear_params(model)]

        def compute_per_sample_grad(self, batch: Any) -> torch.Tensor:
            return per_example_grads(self.model, self.modelout_fn.rows, batch[0], fn=margin, params=self.params)

        def compute_loss_grad(self, batch: Any) -> torch.Tensor:
            return self.modelout_fn.get_out_to_loss_grad(self.model, _batch(self.modelout_fn.rows, batch[0]))

    return CausalLMOutput, PerExampleGradients


def trak_scores(ctx: Any, checkpoints: list[tuple[str, float]], *, proj_dim: int = 1024, seed: int = 0,
                batch_size: int = 32, damping: float = 1.0) -> np.ndarray:
    """TRAK scores [n_queries, n_docs], averaged over ``checkpoints`` (traker's ensemble average).

    ``damping`` is relative: λ = damping × mean eigenvalue of ΦᵀΦ (traker's ``lambda_reg`` is absolute,
    and the scale of Φ depends on the model). Without it (λ ≈ 0), on small document sets (n of the order of
    the projection dimension), the inverse amplifies poorly covered directions and documents duplicated
    many times are pushed to the middle of the ranking (tests/test_attribution.py).
    """
    import tempfile
    from pathlib import Path

    from trak import TRAKer

    logging.getLogger("TRAK").setLevel(logging.WARNING)
    qrows, drows = ctx.query_rows(), ctx.doc_rows()
    n = len(drows.ids)
    proj_dim = int(min(proj_dim, max(8, n // 2)))  # (ΦᵀΦ)⁻¹ needs more documents than dimensions
    output_cls, grad_cls = _classes()
    params = linear_params(ctx.handle.model)
    dim = sum(p.numel() for _, p in params)
    key = config_hash({"model": ctx.handle.model_hash, "docs": ctx.docs.fingerprint(), "proj": proj_dim, "seed": seed,
                       "ckpts": [c for c, _ in checkpoints], "damping": damping})  # finalised features depend on it
    save_dir = (ctx.cache / "trak" / key) if ctx.cache else Path(tempfile.mkdtemp(prefix="empiricist-trak-"))
    model = ctx.handle.model
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    task = output_cls(drows)
    traker = TRAKer(model=model, task=task, train_set_size=n, save_dir=str(save_dir), device="cpu",
                    gradient_computer=grad_cls, projector=make_projector(dim, proj_dim, seed), proj_dim=proj_dim,
                    use_half_precision=False, grad_wrt=[name for name, _ in params], lambda_reg=0.0,
                    logging_level=logging.WARNING)
    try:
        states = [load_state(c, ctx.handle) for c, _ in checkpoints]
        for mid, state in enumerate(states):
            traker.load_checkpoint(state, model_id=mid)
            task.rows = drows
            for a in range(0, n, batch_size):
                traker.featurize(batch=(torch.arange(a, min(n, a + batch_size)),), num_samples=min(n, a + batch_size) - a)
        grads = [np.asarray(traker.saver.current_store["grads"], dtype=np.float64)]  # last model id's store
        traker.score_computer.lambda_reg = float(damping * (grads[0] ** 2).sum() / proj_dim)
        traker.finalize_features()
        exp = "q-" + config_hash([r.tolist() for r in qrows.ids])
        nq = len(qrows.ids)
        for mid, state in enumerate(states):  # the query side is always recomputed: it is the cheap side
            traker.start_scoring_checkpoint(exp_name=exp, checkpoint=state, model_id=mid, num_targets=nq)
            task.rows = qrows
            for a in range(0, nq, batch_size):
                traker.score(batch=(torch.arange(a, min(nq, a + batch_size)),), num_samples=min(nq, a + batch_size) - a)
        scores = traker.finalize_scores(exp_name=exp)
        s = np.asarray(scores, dtype=np.float64).T  # traker: [n_train, n_targets]
    finally:
        model.load_state_dict(original)
    return combine_rows(s, qrows, len(ctx.queries))

