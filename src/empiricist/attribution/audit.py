"""Before attribution scores are trusted: are the gradients they are made of deterministic, sane, and
computed the way the method assumes?

An independent comparison of bergson and kronfluence found the two agreed at only ρ ≈ 0.73 until
non-deterministic attention kernels, TF32 matmuls and mean-vs-sum reductions were pinned (then
ρ = 0.9986). Each check here returns a finding with the fix:

- ``environment``: TF32 allowed for matmuls or cuDNN, deterministic algorithms off, cuDNN autotuning on,
  a model not in float32, an attention kernel without a deterministic backward on a GPU.
- ``determinism``: the same per-example gradients computed twice must be equal bit for bit.
- ``outliers``: per-example gradient norms far from the rest (robust z = (‖g‖ − median) / (1.4826 MAD)),
  which dominate every inner-product method.
- ``agreement``: two computations that must agree. kronfluence with ``strategy="identity"`` is a plain
  query·document gradient product; our own per-example gradients give the same product independently. A
  Spearman ρ below 0.99 (per query, over documents) means the two disagree about what is being
  differentiated — a mean-vs-sum reduction, a different loss mask, padding counted as tokens. And on
  small models, kronfluence's EK-FAC against an exact Gauss–Newton solve by conjugate gradients
  (``gauss_newton``): the preconditioner must bring the scores closer to the exact ones than no
  preconditioner does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from empiricist.attribution.data import context_len, summed_nll
from empiricist.attribution.grads import RowFn, linear_params, per_example_grads

if TYPE_CHECKING:
    from empiricist.attribution.data import Documents, Rows
    from empiricist.attribution.methods import Context
    from empiricist.suite.handles import ModelHandle

OUTLIER_Z = 6.0


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""
    value: float | None = None  # the measured statistic, where there is one (a Spearman ρ)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def environment(model: torch.nn.Module) -> list[Finding]:
    """Settings that make gradients differ between runs, machines or libraries."""
    out = []
    precision = torch.get_float32_matmul_precision()
    tf32 = precision != "highest" or (torch.cuda.is_available() and torch.backends.cuda.matmul.allow_tf32)
    out.append(Finding("TF32 matmuls", not tf32, f"float32 matmul precision {precision!r}",
                       "torch.set_float32_matmul_precision('highest')" if tf32 else ""))
    cudnn_tf32 = torch.cuda.is_available() and torch.backends.cudnn.allow_tf32
    if torch.cuda.is_available():
        out.append(Finding("cuDNN TF32", not cudnn_tf32, f"torch.backends.cudnn.allow_tf32={cudnn_tf32}",
                           "torch.backends.cudnn.allow_tf32 = False" if cudnn_tf32 else ""))
        bench = torch.backends.cudnn.benchmark
        out.append(Finding("cuDNN autotuning", not bench, f"torch.backends.cudnn.benchmark={bench}",
                           "torch.backends.cudnn.benchmark = False" if bench else ""))
    det = torch.are_deterministic_algorithms_enabled()
    on_gpu = next(model.parameters()).device.type != "cpu"
    out.append(Finding("deterministic algorithms", det or not on_gpu,
                       f"torch.are_deterministic_algorithms_enabled()={det} on {next(model.parameters()).device}",
                       "" if det or not on_gpu else "torch.use_deterministic_algorithms(True) "
                                                    "(and CUBLAS_WORKSPACE_CONFIG=:4096:8)"))
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    out.append(Finding("float32 weights", dtypes == ["float32"], f"parameter dtypes {dtypes}",
                       "" if dtypes == ["float32"] else "load the model in float32 for attribution "
                                                         "(bf16 sums round differently in every kernel)"))
    attn = getattr(getattr(model, "config", None), "_attn_implementation", None)
    risky = on_gpu and attn in ("sdpa", "flash_attention_2")
    out.append(Finding("attention kernel", not risky, f"attention implementation {attn!r} on "
                       f"{'GPU' if on_gpu else 'CPU'}", "load with attn_implementation='eager'" if risky else ""))
    return out


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode (no dropout) for the block; its own mode afterwards."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def determinism(model: torch.nn.Module, rows: Rows, indices: Sequence[int], fn: RowFn = summed_nll) -> Finding:
    """The per-example gradients of ``indices`` twice: equal bit for bit, or how far apart."""
    params = [p for _, p in linear_params(model)]
    with evaluating(model):
        a = per_example_grads(model, rows, indices, fn, params)
        b = per_example_grads(model, rows, indices, fn, params)
    differ = int((a != b).sum())
    if differ == 0:
        return Finding("bitwise determinism", True, f"{len(indices)} examples' gradients ({a.shape[1]:,} "
                       "coordinates each) identical across two passes")
    rel = float((a - b).norm() / max(float(a.norm()), 1e-30))
    rows_off = int(((a != b).any(dim=1)).sum())
    return Finding("bitwise determinism", False, f"{differ:,} coordinates of {rows_off} of {len(indices)} examples "
                   f"differ between two passes (relative difference {rel:.2e})",
                   "find the non-deterministic op: seeded dropout left on (model.eval()), a non-deterministic "
                   "kernel (torch.use_deterministic_algorithms(True)), or randomness in the loss")


def outliers(model: torch.nn.Module, rows: Rows, indices: Sequence[int], fn: RowFn = summed_nll,
             z: float = OUTLIER_Z) -> tuple[Finding, np.ndarray]:
    """(a finding naming examples whose gradient norm is a robust outlier, every norm)."""
    params = [p for _, p in linear_params(model)]
    with evaluating(model):
        norms = per_example_grads(model, rows, indices, fn, params).norm(dim=1).numpy()
    med = float(np.median(norms))
    mad = float(np.median(np.abs(norms - med))) * 1.4826
    scores = (norms - med) / mad if mad > 0 else np.zeros_like(norms)
    far = [int(indices[i]) for i in np.flatnonzero(np.abs(scores) > z)]
    detail = (f"gradient norms median {med:.3g}, robust spread {mad:.3g}; "
              + (f"{len(far)} beyond |z| > {z:g}: rows {far[:10]}" if far else f"none beyond |z| > {z:g}"))
    return Finding("gradient outliers", not far, detail, "inspect those documents (duplicates, "
                   "junk, extreme length) and drop or cap them before scoring" if far else ""), norms


AGREE_RHO = 0.99


def _probe(handle: ModelHandle, documents: Documents, indices: Sequence[int], n_queries: int) -> Context:
    """The sampled documents, and queries made from the first ``n_queries`` of them (second half given the
    first, within half the context so that re-tokenising cannot overflow it)."""
    from empiricist.attribution.data import Query
    from empiricist.attribution.methods import Context

    docs = documents.subset(list(indices))
    context = context_len(handle.model)
    tok, queries = handle.tokenizer, []
    for i, t in enumerate(docs.tokens[:n_queries]):
        t = [int(x) for x in t[:max(2, context // 2)]]
        queries.append(Query(tok.decode(t[:len(t) // 2]), tok.decode(t[len(t) // 2:]), None, f"q{i}"))
    return Context(handle, queries, docs, None, {}, progress=False)


def _rhos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman ρ per query (row), over documents."""
    from scipy.stats import spearmanr

    return np.array([float(spearmanr(x, y).statistic) for x, y in zip(a, b, strict=True)])


def agreement(handle: ModelHandle, documents: Documents, indices: Sequence[int], n_queries: int = 4,
              fn: RowFn = summed_nll) -> Finding:
    """kronfluence's identity-preconditioned influence vs our gradient dot products, on the same rows.
    ``fn``: our side's per-row loss (the tests plant a mean-over-tokens one)."""
    from empiricist.attribution.data import combine_rows
    from empiricist.attribution.kron import kronfluence_scores

    ctx = _probe(handle, documents, indices, n_queries)
    theirs = kronfluence_scores(ctx, strategy="identity", damping=1e-8)
    model, params = handle.model, [p for _, p in linear_params(handle.model)]
    q, d = ctx.query_rows(), ctx.doc_rows()
    with evaluating(model):
        gq = per_example_grads(model, q, range(len(q.ids)), fn, params).double()
        gd = per_example_grads(model, d, range(len(d.ids)), fn, params).double()
    rho = float(_rhos(theirs, combine_rows((gq @ gd.T).numpy(), q, len(ctx.queries))).min())
    return Finding("kronfluence vs own gradients", rho >= AGREE_RHO,
                   f"identity-preconditioned scores, {len(ctx.queries)} queries × {len(ctx.docs)} documents: "
                   f"lowest Spearman ρ {rho:.4f} (needs ≥ {AGREE_RHO})",
                   "" if rho >= AGREE_RHO else "the two differentiate different losses: check the task's "
                   "reduction (sum vs mean over tokens), its loss mask and padding")


def gauss_newton(handle: ModelHandle, documents: Documents, indices: Sequence[int], n_queries: int = 2,
                 strategies: Sequence[str] = ("ekfac",), damping_scale: float = 0.1) -> list[Finding]:
    """Each kronfluence ``strategy`` against the exact Gauss–Newton solve it approximates, at the same damping
    λ = ``damping_scale`` × the mean eigenvalue of G/N (Hutchinson). A strategy passes when it does a
    preconditioner's job: its rank disagreement with the exact solve, 1 − ρ, is at most half that of no
    preconditioner (``strategy="identity"``, a plain gradient product). The exact solve costs a few hundred
    conjugate-gradient products per query, each a pass over the documents: for small models."""
    from empiricist.attribution.data import combine_rows
    from empiricist.attribution.gauss_newton import GaussNewton
    from empiricist.attribution.kron import kronfluence_scores

    ctx = _probe(handle, documents, indices, n_queries)
    q, d = ctx.query_rows(), ctx.doc_rows()
    gn = GaussNewton(handle.model, d)
    lam = damping_scale * gn.trace() / (gn.size * len(d.ids))
    solve = gn.solver(lam)
    exact = combine_rows(np.stack([solve(g) for g in gn.gradients(q)]) @ gn.gradients(d).T, q, len(ctx.queries))
    rhos = {k: float(_rhos(kronfluence_scores(ctx, strategy=k, damping=lam), exact).mean())
            for k in dict.fromkeys(("identity", *strategies))}
    rho_id, out = rhos["identity"], []
    for strategy in strategies:
        rho = rhos[strategy]
        ok = 1 - rho <= (1 - rho_id) / 2
        out.append(Finding(
            f"{strategy} vs exact Gauss–Newton", ok,
            f"{len(ctx.queries)} queries × {len(ctx.docs)} documents, {gn.size:,} parameters, λ {lam:.3g}: mean "
            f"Spearman ρ with the exact (G/N + λI)⁻¹ solve {rho:.4f}; no preconditioner {rho_id:.4f} (needs "
            f"1 − ρ ≤ (1 − {rho_id:.4f}) / 2)",
            "" if ok else f"the {strategy} factors do not approximate the Gauss–Newton matrix of these documents: "
            "check that they were fitted on the documents being scored, with the same loss (sum over tokens, "
            "true-Fisher sampling), and raise the damping", rho))
    return out


def audit(handle: ModelHandle, documents: Documents, n: int = 32, seed: int = 0, fn: RowFn = summed_nll,
          agree: bool = True, exact: bool = False) -> list[Finding]:
    """Every check on a seeded sample of ``n`` documents (``agree``: with the kronfluence agreement check;
    ``exact``: with EK-FAC against the exact Gauss–Newton solve, minutes even for a small model)."""
    from empiricist.attribution.data import document_rows

    model = handle.model
    context = context_len(model)
    rows = document_rows(documents, context)
    pick = np.random.default_rng(seed).choice(len(rows.ids), min(n, len(rows.ids)), replace=False)
    indices = sorted(int(i) for i in pick)
    found = [*environment(model), determinism(model, rows, indices, fn), outliers(model, rows, indices, fn)[0]]
    if agree:
        found.append(agreement(handle, documents, indices))
    if exact:
        found.extend(gauss_newton(handle, documents, indices))
    return found
