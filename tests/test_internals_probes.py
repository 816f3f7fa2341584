"""Probes recover a planted linear feature; the control task stays near chance; selectivity separates them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empiricist.errors import InputError
from empiricist.internals.probes import (
    control_labels,
    cross_validate,
    cross_validate_mlp,
    fit_logistic,
    probe_with_control,
)


def planted(n: int = 480, d: int = 24, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activations with the label written along known directions (one per class) plus noise; 4 rows per type."""
    rng = np.random.default_rng(seed)
    types = np.arange(n) // 4
    labels = rng.integers(0, n_classes, types.max() + 1)[types]
    directions = rng.normal(size=(n_classes, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    X = rng.normal(size=(n, d)) + 3.0 * directions[labels]
    return X, labels, types


def test_probe_recovers_planted_feature_and_control_stays_near_chance():
    X, labels, types = planted()
    noise = np.random.default_rng(1).normal(size=X.shape)
    rows = probe_with_control(np.stack([X, noise]), labels, types, k=5)
    signal, null = rows
    assert signal["acc"] > 0.9 and signal["acc_lo"] > 0.85
    assert signal["control_acc"] < signal["chance"] + 0.15  # a linear probe cannot memorise 120 random types
    assert signal["selectivity"] > 0.5
    assert null["acc"] < null["chance"] + 0.1 and abs(null["selectivity"]) < 0.15


def test_control_labels_are_fixed_per_type_with_the_same_balance():
    types = np.repeat(np.arange(50), 3)
    labels = np.repeat(np.arange(50) % 5, 3)
    ctrl = control_labels(types, labels, seed=3)
    assert all(len(set(ctrl[types == t])) == 1 for t in range(50))
    assert np.array_equal(np.bincount(ctrl), np.bincount(labels))
    assert not np.array_equal(ctrl, labels)


def test_batched_logistic_fit_is_at_the_optimum():
    """Every problem of the stack reaches its own optimum: the gradient of its objective is ~0."""
    X, labels, _ = planted(n=200)
    x = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)[None]
    y = torch.tensor(labels)
    masks = torch.stack([torch.arange(200) % 2 == 0, torch.ones(200, dtype=torch.bool)])
    regs = torch.tensor([1e-1, 1e-2])
    probe = fit_logistic(x, y, masks, regs, 3)
    for b in range(2):
        W = probe.W[0, b].clone().requires_grad_()
        bias = probe.b[0, b].clone().requires_grad_()
        mk = masks[b]
        loss = torch.nn.functional.cross_entropy(x[0, mk] @ W + bias, y[mk]) + 0.5 * regs[b] * W.pow(2).sum()
        loss.backward()
        assert W.grad.abs().max() < 1e-3 and bias.grad.abs().max() < 1e-3


def test_ridge_and_inner_choice_of_strength():
    X, labels, _ = planted()
    cv = cross_validate(X, labels, kind="ridge", k=4)
    assert cv.acc[0] > 0.85 and cv.fold_acc.shape == (1, 4) and cv.correct.shape == (1, len(labels))
    # 120 rows, 100 dims, a weak signal in every dim: an unregularised fit interpolates noise, so the
    # inner CV must pick the strong penalty in every outer fold, and beat the weak one
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    X = rng.normal(size=(120, 100)) + 0.35 * (2 * y[:, None] - 1)
    chosen = cross_validate(X, y, kind="ridge", k=4, regs=(1e-4, 1.0))
    weak = cross_validate(X, y, kind="ridge", k=4, regs=(1e-4,))
    assert (chosen.reg == 1.0).all() and chosen.acc[0] > weak.acc[0] + 0.1


def test_mlp_probe_reads_what_a_linear_probe_cannot():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR of signs: no linear direction carries it
    lin = cross_validate(X, y, k=4)
    mlp = cross_validate_mlp(X, y, k=4, hidden=32, steps=300)
    assert lin.acc[0] < 0.65 and mlp.acc[0] > 0.85


def test_bad_shapes_are_input_errors():
    with pytest.raises(InputError, match="do not match"):
        cross_validate(np.zeros((10, 3)), np.zeros(9, dtype=int))
    with pytest.raises(InputError, match="too few rows"):
        cross_validate(np.zeros((6, 3)), np.arange(6) % 2, k=5)
