"""After training: which frequency a run uses, and the real test — fresh probes on the frozen network.

Elazar & Goldberg (2018) showed adversarially "removed" attributes are usually still recoverable by a
probe trained afresh after training; the training-time probe only shows the network fooled *that*
probe. So every run gets, on all p² pairs with k-fold cross-validation: a fresh linear probe for S_k* and
for its control at each layer (emb, h1, h2), a small MLP probe at the chosen layers, and the R² of a
ridge fit of the frequency-k* Fourier pair (how linearly present the feature itself is).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from empiricist.experiments.probe_evasion.config import LAYERS, StegoConfig
from empiricist.experiments.probe_evasion.model import control_of, sector_labels, task_tensors
from empiricist.experiments.probe_evasion.train import Trained
from empiricist.internals.probes import cross_validate, cross_validate_mlp, fit_ridge, standardise


def fourier_r2(rep: torch.Tensor, p: int, reg: float = 1e-3) -> torch.Tensor:
    """(R, F): in-sample R² of a ridge fit of (cos, sin)(2πkc/p) on a layer, for every frequency k."""
    _, _, c = task_tensors(p)
    k = torch.arange(1, (p - 1) // 2 + 1, dtype=torch.float32)[:, None]
    ang = 2 * math.pi * k * c[None].float() / p  # (F, N)
    targets = torch.stack([ang.cos(), ang.sin()], -1)  # (F, N, 2)
    x = standardise(rep.float())
    R, N, _ = x.shape
    Fq = targets.shape[0]
    xs = x.repeat_interleave(Fq, 0)  # (R·F, N, d)
    ts = targets.repeat(R, 1, 1)
    probe = fit_ridge(xs, ts, torch.ones(1, N, dtype=torch.bool), torch.tensor([reg]))
    pred = probe.scores(xs)[:, 0]  # (R·F, N, 2)
    resid = ((pred - ts) ** 2).sum((1, 2))
    total = ((ts - ts.mean(1, keepdim=True)) ** 2).sum((1, 2))
    return (1 - resid / total).view(R, Fq)


def dominant_frequency(rep: torch.Tensor, p: int) -> np.ndarray:
    """1-based frequency whose Fourier pair a layer encodes most linearly, per run."""
    return fourier_r2(rep, p).argmax(1).numpy() + 1


def _padded(reps: dict[str, torch.Tensor], layers: tuple[str, ...]) -> torch.Tensor:
    """Stack layers (R, N, d_l) into (len(layers)·R, N, d_max), zero-padding narrower ones."""
    d = max(reps[layer].shape[-1] for layer in layers)
    return torch.cat([torch.nn.functional.pad(reps[layer], (0, d - reps[layer].shape[-1])) for layer in layers])


def posthoc(cfg: StegoConfig, trained: Trained, k_star: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-run post-hoc measurements (each value an (R,) array), keyed ``lin_<layer>``, ``ctrl_<layer>``,
    ``mlp_<layer>``, ``r2_<layer>`` (Fourier R² of k*), ``k_after`` (the run's own dominant frequency)."""
    R = len(trained.runs)
    S = sector_labels(cfg.p, cfg.n_sectors)
    task = S[torch.as_tensor(k_star) - 1]  # (R, N)
    ctrl = torch.stack([control_of(t, cfg.p, seed + i) for i, t in enumerate(task)])
    L = len(LAYERS)
    x = _padded(trained.reps, LAYERS)  # (L·R, N, d)
    labels = torch.cat([task.repeat(L, 1), ctrl.repeat(L, 1)])
    # 50 L-BFGS iterations: accuracies within ±0.02 of 150 on these problems, at a third of the time
    cv = cross_validate(torch.cat([x, x]), labels, k=cfg.posthoc_k, regs=cfg.posthoc_regs, inner_k=2, seed=seed,
                        max_iter=50)
    acc = cv.acc.reshape(2, L, R)
    out: dict[str, np.ndarray] = {"chance": cv.chance[:R]}
    for i, layer in enumerate(LAYERS):
        out[f"lin_{layer}"] = acc[0, i]
        out[f"ctrl_{layer}"] = acc[1, i]
        r2 = fourier_r2(trained.reps[layer], cfg.p)
        out[f"r2_{layer}"] = r2[torch.arange(R), torch.as_tensor(k_star) - 1].numpy()
    if cfg.mlp_probe_layers:
        xm = _padded(trained.reps, cfg.mlp_probe_layers)
        mlp = cross_validate_mlp(xm, task.repeat(len(cfg.mlp_probe_layers), 1), k=cfg.mlp_probe_k,
                                 hidden=cfg.mlp_probe_hidden, steps=cfg.mlp_probe_steps, seed=seed)
        for i, layer in enumerate(cfg.mlp_probe_layers):
            out[f"mlp_{layer}"] = mlp.acc[i * R:(i + 1) * R]
    out["k_after"] = dominant_frequency(trained.reps[cfg.probe_layer], cfg.p)
    return out


def generalisation_step(steps: np.ndarray, test_acc: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """First evaluated step with held-out accuracy ≥ threshold, per run; censored runs get the budget."""
    hit = test_acc >= threshold  # (T, R)
    reached = hit.any(0)
    first = np.where(reached, steps[hit.argmax(0)], steps[-1])
    return first, ~reached
