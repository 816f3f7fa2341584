"""An exact Gauss–Newton influence solve, the reference EK-FAC is checked against on small models.

EK-FAC (kronfluence) approximates G, the Gauss–Newton matrix of the documents' loss, by a
block-diagonal, Kronecker-factored, eigenvalue-corrected matrix. Here G is never formed: G·v is
computed exactly as Jᵀ H J v (forward-mode J v, the softmax cross-entropy Hessian H = diag(p) − ppᵀ
on each counted token, reverse-mode Jᵀ), and (G/N + λI) x = g_q is solved by conjugate gradients
(scipy). G/N matches kronfluence's normalisation: its corrected eigenvalues are averaged over the N
fitted documents, and the true Fisher it fits (targets sampled from the model) has G/N as its
expectation. Everything runs in float64 on a copy of the model. Cost: one forward-mode and one
reverse pass over all documents per CG iteration, so this is for models of up to a few million
parameters (``MAX_PARAMS``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from empiricist.attribution.data import pad_batch
from empiricist.attribution.grads import linear_params, per_example_grads

if TYPE_CHECKING:
    from empiricist.attribution.data import Rows

MAX_PARAMS = 5_000_000


class GaussNewton:
    """G·v over ``rows`` for the model's ``nn.Linear`` parameters (the ones kronfluence tracks)."""

    def __init__(self, model: torch.nn.Module, rows: Rows, batch: int = 16) -> None:
        size = sum(p.numel() for _, p in linear_params(model))
        if size > MAX_PARAMS:
            from empiricist.errors import InputError

            raise InputError(f"the exact Gauss–Newton check is for models of at most {MAX_PARAMS:,} parameters "
                             f"(this one tracks {size:,}); drop --exact")
        self.model = copy.deepcopy(model).double().eval()
        self.model.config._attn_implementation = "eager"  # SDPA's CPU kernel has no forward-mode derivative
        self.named = linear_params(self.model)
        tracked = {id(p) for _, p in self.named}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in tracked)  # no graph through the embeddings and norms
        self.size = size
        self.rows = rows
        self.batches = [pad_batch(rows.ids[a:a + batch], rows.masks[a:a + batch])
                        for a in range(0, len(rows.ids), batch)]
        self._cache: list[tuple[Callable, Callable, torch.Tensor, torch.Tensor]] | None = None

    def _logits(self, params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from torch.func import functional_call

        out = functional_call(self.model, params, (), {"input_ids": batch["input_ids"],
                                                        "attention_mask": batch["attention_mask"]})
        return out.logits[:, :-1]

    def _unflatten(self, v: np.ndarray) -> dict[str, torch.Tensor]:
        flat, out, at = torch.from_numpy(v), {}, 0
        for name, p in self.named:
            out[name] = flat[at:at + p.numel()].view_as(p)
            at += p.numel()
        return out

    def _linearised(self) -> list[tuple[Callable, Callable, torch.Tensor, torch.Tensor]]:
        """Per batch, once: (J·, Jᵀ·, softmax of the logits, loss mask); every product reuses them."""
        if self._cache is None:
            from torch.func import linearize, vjp

            base = {n: p.detach() for n, p in self.named}
            self._cache = []
            for batch in self.batches:
                def f(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor] = batch) -> torch.Tensor:
                    return self._logits(params, batch)

                with warnings.catch_warnings():  # torch.fx's constant folding, harmless, once per batch
                    warnings.filterwarnings("ignore", message="Attempted to insert a get_attr Node")
                    logits, jv = linearize(f, base)
                _, back = vjp(f, base)
                self._cache.append((jv, back, torch.softmax(logits.detach(), -1),
                                    batch["loss_mask"][:, 1:, None].double()))
        return self._cache

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """G v, summed over every counted token of every row."""
        tangent = self._unflatten(np.ascontiguousarray(v, dtype=np.float64))
        total = torch.zeros(self.size, dtype=torch.float64)
        for jv, back, p, mask in self._linearised():
            u = jv(tangent)
            grads = back((p * u - p * (p * u).sum(-1, keepdim=True)) * mask)[0]
            total += torch.cat([grads[n].reshape(-1) for n, _ in self.named])
        return total.detach().numpy()

    def gradients(self, rows: Rows) -> np.ndarray:
        """[n_rows, P] float64 gradients of each row's summed NLL (the loss kronfluence's task uses)."""
        return per_example_grads(self.model, rows, range(len(rows.ids)),
                                 params=[p for _, p in self.named]).numpy()

    def trace(self, probes: int = 16, seed: int = 0) -> float:
        """Hutchinson's estimate of tr(G) (seeded Rademacher probes)."""
        rng = np.random.default_rng(seed)
        zs = rng.choice([-1.0, 1.0], size=(probes, self.size))
        return float(np.mean([z @ self.matvec(z) for z in zs]))

    def solver(self, damping: float, rtol: float = 1e-6, maxiter: int = 2000) -> Callable[[np.ndarray], np.ndarray]:
        """x ↦ (G/N + damping·I)⁻¹ x by conjugate gradients (N: the number of rows). ``rtol`` 1e-6: the
        products themselves are good to ~1e-7 (HF's eager attention takes its softmax in float32)."""
        from scipy.sparse.linalg import LinearOperator, cg

        n = len(self.rows.ids)
        op = LinearOperator((self.size, self.size), dtype=np.float64,
                            matvec=lambda v: self.matvec(v) / n + damping * v)

        def solve(b: np.ndarray) -> np.ndarray:
            x, info = cg(op, b, rtol=rtol, maxiter=maxiter)
            if info != 0:
                from empiricist.errors import EmpiricistError

                raise EmpiricistError(f"conjugate gradients did not converge in {maxiter} iterations "
                                      f"(damping {damping:.3g}); raise the damping")
            return x

        return solve
