"""The attribution audit (issue 22, part): gradients twice bit for bit, robust outlier norms, and the
settings that break determinism, agreement of kronfluence with our own gradients, on a tiny GPT-NeoX;
a planted non-determinism and a planted reduction mismatch are caught."""

from __future__ import annotations

import numpy as np
import pytest
import test_attribution
import torch

from empiricist.attribution.audit import agreement, audit, determinism, environment, outliers
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
