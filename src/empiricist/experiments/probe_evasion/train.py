"""Train a batch of runs with the probe penalty: loss_r = task_r + λ_r · success_r(probe on S_k*).

The probe's *success* is its cross-entropy gain over the best constant guess on the run's training rows,
``relu(H(S) − CE_probe)`` in nats: zero when the probe does no better than the class prior, so the
network is pushed to make S unreadable, not to make the probe confidently wrong (which would still
encode S, and which maximising the probe's loss rewards without bound).

Every run carries a bank of online linear probes, one per frequency k, trained on the detached layer
activations (``probe_steps`` Adam steps per model step). They are monitors for every run, and
- variant ``adversarial``: the penalty uses the live head for k* — a min-max game, the probe re-fitting
  as the network moves;
- variant ``frozen``: at ``freeze_step`` the k* head is copied and never updated again; the penalty
  (from then on) uses that snapshot — a probe trained once on an early model.
λ = 0 runs are the unpenalised twins; k* is not known while they train, which is why every head is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from empiricist.experiments.probe_evasion.config import StegoConfig
from empiricist.experiments.probe_evasion.model import BatchedMLP, sector_labels, task_tensors, train_split


@dataclass(frozen=True)
class RunSpec:
    """One training run of the grid. ``k_star`` is 1-based; 0 while unknown (λ = 0 runs)."""

    seed: int
    frac: float
    lam: float
    variant: str  # "none" (λ = 0), "adversarial" or "frozen"
    k_star: int = 0


@dataclass
class Trained:
    """What a batch of runs leaves: curves, final representations on all p² pairs, the train masks."""

    runs: list[RunSpec]
    steps: np.ndarray  # (T,)
    curves: dict[str, np.ndarray]  # name -> (T, R) or (T, R, F)
    reps: dict[str, torch.Tensor]  # emb/h1/h2/logits -> (R, p², ·)
    train_mask: torch.Tensor  # (R, p²)


def _weighted_ce(logits: torch.Tensor, labels: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Sum over the last row axis of w · CE; logits (..., n, m), labels and w (..., n)."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return (ce.view(labels.shape) * w).sum(-1)


def _entropy(labels: torch.Tensor, w: torch.Tensor, m: int) -> torch.Tensor:
    """Entropy (nats) of the weighted label distribution per run: the loss of the best constant guess."""
    q = torch.zeros(labels.shape[0], m).scatter_add_(1, labels, w)
    return -(q * q.clamp_min(1e-12).log()).sum(1)


def padded_rows(cfg: StegoConfig, runs: list[RunSpec]) -> int:
    """Training rows every run is padded to: the most any run has (zero-weighted padding)."""
    return max(int(train_split(cfg.p, r.frac, r.seed).sum()) for r in runs)


def train_runs(cfg: StegoConfig, runs: list[RunSpec], progress: bool = True, desc: str = "stego",
               pad_to: int | None = None) -> Trained:
    """Train every run in ``runs`` together (full-batch AdamW on each run's training pairs).

    Runs never interact (per-run losses summed; per-parameter optimiser), so a batch split into parts
    trains the same bytes as a whole when every part pads to the same ``pad_to`` (``padded_rows`` of the
    whole batch): tests/test_experiment_probe_evasion.py checks it, and ``run_stego_grid`` trains the parts
    side by side."""
    R, p, m, Fq = len(runs), cfg.p, cfg.n_sectors, cfg.n_freqs
    a, b, c = task_tensors(p)
    S = sector_labels(p, m)  # (F, N)
    masks = torch.stack([train_split(p, r.frac, r.seed) for r in runs])  # (R, N)
    n_max = int(masks.sum(1).max()) if pad_to is None else pad_to
    idx = torch.zeros(R, n_max, dtype=torch.long)
    w = torch.zeros(R, n_max)
    for i, mk in enumerate(masks):
        rows = mk.nonzero().squeeze(1)
        idx[i, : len(rows)], w[i, : len(rows)] = rows, 1.0 / len(rows)
    ia, ib, ic = a[idx], b[idx], c[idx]
    lab_tr = S[:, idx].permute(1, 0, 2)  # (R, F, n)
    kidx = torch.tensor([max(r.k_star, 1) - 1 for r in runs])
    ar = torch.arange(R)
    pen_lab = lab_tr[ar, kidx]  # (R, n)
    h_prior = _entropy(pen_lab, w, m)
    lam = torch.tensor([r.lam for r in runs])
    frozen = torch.tensor([r.variant == "frozen" for r in runs])

    model = BatchedMLP([r.seed for r in runs], p, cfg.d_embed, cfg.d_hidden, cfg.init_scale)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    H = cfg.d_hidden
    heads = torch.zeros(R, Fq, H, m, requires_grad=True)
    heads_b = torch.zeros(R, Fq, m, requires_grad=True)
    opt_p = torch.optim.Adam([heads, heads_b], lr=cfg.probe_lr, weight_decay=cfg.probe_l2)
    snap_w, snap_b = torch.zeros(R, H, m), torch.zeros(R, m)

    steps, log = [], {k: [] for k in ("train_acc", "test_acc", "pen_probe_acc", "head_acc", "task_loss", "penalty")}
    all_a, all_b = a.expand(R, -1), b.expand(R, -1)
    for s in tqdm(range(cfg.steps + 1), desc=desc, disable=not progress, mininterval=2):
        if s == cfg.freeze_step:
            snap_w, snap_b = heads[ar, kidx].detach().clone(), heads_b[ar, kidx].detach().clone()
        out = model(ia, ib)
        rep = out[cfg.probe_layer]
        task = _weighted_ce(out["logits"], ic, w)  # (R,)
        hd = rep.detach()
        for _ in range(cfg.probe_steps):
            logits_p = torch.einsum("rnh,rfhm->rfnm", hd, heads) + heads_b[:, :, None, :]
            opt_p.zero_grad()
            _weighted_ce(logits_p, lab_tr, w[:, None]).sum().backward()
            opt_p.step()
        pen_w = torch.where(frozen[:, None, None], snap_w, heads[ar, kidx].detach())
        pen_b = torch.where(frozen[:, None], snap_b, heads_b[ar, kidx].detach())
        ce_pen = _weighted_ce(torch.einsum("rnh,rhm->rnm", rep, pen_w) + pen_b[:, None], pen_lab, w)
        penalty = torch.relu(h_prior - ce_pen)
        if s % cfg.eval_every == 0 or s == cfg.steps:
            steps.append(s)
            log["task_loss"].append(task.detach())
            log["penalty"].append(penalty.detach())
            _evaluate(model, all_a, all_b, c, S, masks, heads, heads_b, pen_w, pen_b, kidx, cfg.probe_layer, log)
        if s == cfg.steps:
            break
        active = (lam > 0) & (~frozen | (s >= cfg.freeze_step))
        opt.zero_grad()
        (task + lam * active * penalty).sum().backward()
        opt.step()
    with torch.no_grad():
        reps = {k: v.detach() for k, v in model(all_a, all_b, with_emb=True).items()}
    curves = {k: torch.stack(v).numpy() for k, v in log.items()}
    return Trained(runs, np.asarray(steps), curves, reps, masks)


@torch.no_grad()
def _evaluate(model: BatchedMLP, all_a: torch.Tensor, all_b: torch.Tensor, c: torch.Tensor, S: torch.Tensor,
              masks: torch.Tensor, heads: torch.Tensor, heads_b: torch.Tensor, pen_w: torch.Tensor,
              pen_b: torch.Tensor, kidx: torch.Tensor, layer: str, log: dict[str, list]) -> None:
    """Accuracies on every pair: task (train / held-out rows), each online head and the penalised probe."""
    out = model(all_a, all_b)
    test = (~masks).float()
    train = masks.float()
    hit = (out["logits"].argmax(-1) == c).float()
    log["train_acc"].append((hit * train).sum(1) / train.sum(1))
    log["test_acc"].append((hit * test).sum(1) / test.sum(1).clamp_min(1))
    rep = out[layer]
    head_hit = ((torch.einsum("rnh,rfhm->rfnm", rep, heads) + heads_b[:, :, None]).argmax(-1) == S[None]).float()
    log["head_acc"].append((head_hit * test[:, None]).sum(-1) / test.sum(1)[:, None].clamp_min(1))  # (R, F)
    pen_lab = S[kidx]  # (R, N)
    pen_hit = ((torch.einsum("rnh,rhm->rnm", rep, pen_w) + pen_b[:, None]).argmax(-1) == pen_lab).float()
    log["pen_probe_acc"].append((pen_hit * test).sum(1) / test.sum(1).clamp_min(1))


def merge(parts: list[Trained]) -> Trained:
    """One ``Trained`` from parts of a batch, in part order (they share steps)."""
    first = parts[0]
    return Trained([r for t in parts for r in t.runs], first.steps,
                   {k: np.concatenate([t.curves[k] for t in parts], axis=1) for k in first.curves},
                   {k: torch.cat([t.reps[k] for t in parts]) for k in first.reps},
                   torch.cat([t.train_mask for t in parts]))
