"""The attribution audit (issue 22, part): gradients twice bit for bit, robust outlier norms, and the
settings that break determinism, agreement of kronfluence with our own gradients and of EK-FAC with an
exact Gauss–Newton solve, on a tiny GPT-NeoX; a planted non-determinism, a planted reduction mismatch and
a planted missing preconditioner are caught."""

from __future__ import annotations

import numpy as np
import pytest
import test_attribution
import torch

from empiricist.attribution.audit import agreement, audit, determinism, environment, gauss_newton, outliers
from empiricist.attribution.data import document_rows, summed_nll

planted = test_attribution.planted  # the tiny model trained on a synthetic corpus (a module fixture)


@pytest.fixture(scope="module")
def handle(planted):
    from empiricist.suite.handles import load_model

    return load_model(str(planted[0]))


def test_a_clean_cpu_float32_model_passes_every_check(planted, handle):
    findings = audit(handle, planted[1], n=12)
    assert [f.check for f in findings] == ["TF32 matmuls", "deterministic algorithms", "float32 weights",
                                           "attention kernel", "bitwise determinism", "gradient outliers",
                                           "kronfluence vs own gradients"]
    assert all(f.ok for f in findings), [f for f in findings if not f.ok]


def test_a_planted_non_determinism_is_caught(planted, handle):
    rows = document_rows(planted[1], 64)

    def noisy(model, batch):  # randomness in the loss: a different gradient every pass
        return summed_nll(model, batch) * (1 + 1e-4 * torch.rand(()))

    f = determinism(handle.model, rows, [0, 1, 2], noisy)
    assert not f.ok and "differ between two passes" in f.detail and f.fix
    assert determinism(handle.model, rows, [0, 1, 2]).ok


def test_a_planted_reduction_mismatch_breaks_agreement(planted, handle):
    """kronfluence sums token losses; a per-token mean on our side (the bergson/kronfluence mismatch)
    reweights each document by 1/length, which the agreement check must catch."""
    def mean_nll(model, batch):
        return summed_nll(model, batch) / batch["loss_mask"][:, 1:].sum(1)

    idx = list(range(0, 60, 3))
    assert agreement(handle, planted[1], idx).ok
    f = agreement(handle, planted[1], idx, fn=mean_nll)
    assert not f.ok and "reduction" in f.fix, f


def test_an_outlier_gradient_is_named(planted, handle):
    from transformers import AutoTokenizer

    from empiricist.attribution.data import Documents

    texts = list(test_attribution.synthetic_texts(24, seed=5))
    rng = np.random.default_rng(0)
    junk = " ".join("".join(rng.choice(list("qxzjkvwy"), 7)) for _ in range(40))  # nothing like the corpus
    tok = AutoTokenizer.from_pretrained(planted[0])
    docs = Documents.from_texts([*texts, junk], tok, [f"d{i}" for i in range(len(texts) + 1)])
    rows = document_rows(docs, 64)
    f, norms = outliers(handle.model, rows, list(range(len(texts) + 1)), z=4.0)
    assert int(np.argmax(norms)) == len(texts)
    assert not f.ok and str(len(texts)) in f.detail


def test_environment_flags_tf32_and_low_precision(handle):
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        tf32 = next(f for f in environment(handle.model) if f.check == "TF32 matmuls")
        assert not tf32.ok and "highest" in tf32.fix
    finally:
        torch.set_float32_matmul_precision(before)
    half = type(handle.model)(handle.model.config).to(torch.bfloat16)
    assert not next(f for f in environment(half) if f.check == "float32 weights").ok


def test_attribute_audit_command(planted):
    import json

    from typer.testing import CliRunner

    from empiricist.cli import app

    folder = planted[0]
    docs = folder.parent / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                                for i, t in enumerate(test_attribution.synthetic_texts(20, seed=3))))
    r = CliRunner().invoke(app, ["attribute-audit", "--model", str(folder), "--docs", str(docs), "--n", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert {f["check"]: f["ok"] for f in json.loads(r.output)}["bitwise determinism"] is True


def test_gauss_newton_products_match_finite_differences_and_autograd(planted, handle):
    """G v = Jᵀ H J v, with J v by central differences of the logits (float64), H u by autograd's
    Hessian-vector product of the cross-entropy in the logits, Jᵀ w by reverse mode: none of the
    forward-mode and closed-form softmax Hessian the implementation uses."""
    from empiricist.attribution.data import pad_batch
    from empiricist.attribution.gauss_newton import GaussNewton

    rows = document_rows(planted[1].subset([0, 5, 9]), 64)
    gn = GaussNewton(handle.model, rows)
    v = np.random.default_rng(0).standard_normal(gn.size)
    model, params = gn.model, [p for _, p in gn.named]
    ref = torch.zeros(gn.size, dtype=torch.float64)
    eps, shift = 1e-4, gn._unflatten(v)
    for i in range(len(rows.ids)):
        batch = pad_batch([rows.ids[i]], [rows.masks[i]])

        def logits(batch: dict[str, torch.Tensor] = batch) -> torch.Tensor:
            return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0, :-1]

        with torch.no_grad():
            for n, p in gn.named:
                p += eps * shift[n]
            up = logits()
            for n, p in gn.named:
                p -= 2 * eps * shift[n]
            down = logits()
            for n, p in gn.named:
                p += eps * shift[n]
        jv = (up - down) / (2 * eps)
        target, mask = batch["input_ids"][0, 1:], batch["loss_mask"][0, 1:].double()

        def ce(z: torch.Tensor, target: torch.Tensor = target, mask: torch.Tensor = mask) -> torch.Tensor:
            return (torch.nn.functional.cross_entropy(z, target, reduction="none") * mask).sum()

        hu = torch.autograd.functional.hvp(ce, logits().detach(), jv)[1]
        out = logits()
        grads = torch.autograd.grad((out * hu).sum(), params)
        ref += torch.cat([g.reshape(-1) for g in grads])
    got = gn.matvec(v)
    # HF's eager attention takes its softmax in float32, so differences of the float64 logits carry a
    # rounding error of ~1e-7 / eps; at eps = 1e-4 it and the O(eps²) truncation error are both ~1e-6
    assert np.linalg.norm(got - ref.numpy()) <= 1e-5 * np.linalg.norm(ref.numpy())
    assert v @ got > 0  # positive semi-definite along a random direction


def test_the_exact_gauss_newton_solve_meets_the_gradient_product_in_the_large_damping_limit(planted, handle):
    """(G/N + λI)⁻¹ → I/λ as λ grows: the exact solve, its signs and its row bookkeeping must then rank
    documents as kronfluence's plain gradient product does (at 1e4 × the mean eigenvalue the largest
    eigenvalues still bend the ranking, ρ 0.98; at 1e8 they do not)."""
    (limit,) = gauss_newton(handle, planted[1], list(range(0, 36, 3)), strategies=("identity",), damping_scale=1e8)
    assert limit.value is not None and limit.value > 0.99, limit.detail


def test_ekfac_moves_toward_the_exact_gauss_newton_solve(planted, handle):
    """EK-FAC is reported against the exact solve; on this tiny model and 12 documents it is closer than no
    preconditioner but not by the audit's bar (docs/attribution.md), and a run is reproducible (the true
    Fisher's sampled targets are seeded)."""
    idx = list(range(0, 36, 3))
    ekfac, identity = gauss_newton(handle, planted[1], idx, strategies=("ekfac", "identity"))
    assert ekfac.value is not None and identity.value is not None
    assert ekfac.value > identity.value, (ekfac.detail, identity.detail)
    assert not identity.ok and "Gauss–Newton" in identity.fix  # no preconditioner never passes the bar


def test_the_exact_check_refuses_a_model_too_large_for_it(planted, handle, monkeypatch):
    from empiricist.attribution import gauss_newton as gn
    from empiricist.errors import InputError

    monkeypatch.setattr(gn, "MAX_PARAMS", 1000)
    with pytest.raises(InputError, match="drop --exact"):
        audit(handle, planted[1], n=4, agree=False, exact=True)
