"""The task, the statistic S, and R independent MLPs trained as one batched model.

Task: c = (a + b) mod p, p prime, every pair (a, b) one example. For each frequency k = 1..(p-1)/2 the
pair (cos 2πkc/p, sin 2πkc/p) determines c (k is invertible mod p), so each frequency is a sufficient
statistic for the answer, and networks trained on this task are known to compute it through a few such
Fourier features (Nanda et al. 2023). S_k discretises the phase of frequency k into ``n_sectors`` equal
arcs: S_k = floor(((k·c) mod p) · n_sectors / p). It is linearly decodable from a layer that carries the
frequency-k features, and (by orthogonality of the Fourier basis) not from one that only carries other
frequencies — so a network *can* hide S_k from a linear probe while still solving the task, by routing
the computation through other frequencies or through nonlinear codes. Whether it does, and at what cost,
is the experiment.

Batched weights: every parameter has a leading run dimension R and the loss is the sum of per-run losses,
so with an elementwise optimiser (Adam) the R runs are exactly independent trainings in one set of
matmuls (no vmap needed).
"""

from __future__ import annotations

import torch
from torch import nn


def task_tensors(p: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All p² pairs: a, b and the answer c, each (p²,) long, row index = a·p + b."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b, (a + b) % p


def sector_labels(p: int, n_sectors: int) -> torch.Tensor:
    """(F, p²): S_k for k = 1..F, F = (p-1)/2 (integer arithmetic: exactly balanced up to one)."""
    _, _, c = task_tensors(p)
    k = torch.arange(1, (p - 1) // 2 + 1)[:, None]
    return (k * c[None] % p) * n_sectors // p


def control_of(labels: torch.Tensor, p: int, seed: int) -> torch.Tensor:
    """Hewitt & Liang control with type = the answer c: S's values shuffled across answers.

    Same class balance as S, a fixed function of c, but with no Fourier structure: a linear probe
    decodes it only as far as the layer encodes c itself (e.g. one-hot-like near the output).
    """
    _, _, c = task_tensors(p)
    per_answer = torch.zeros(p, dtype=torch.long)
    per_answer[c] = labels
    perm = torch.randperm(p, generator=torch.Generator().manual_seed(seed))
    return per_answer[perm][c]


def train_split(p: int, frac: float, seed: int) -> torch.Tensor:
    """Bool (p²,) training mask; nested across fractions for one seed (same permutation)."""
    n = p * p
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_007 * seed + 1))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[perm[: round(frac * n)]] = True
    return mask


class BatchedMLP(nn.Module):
    """R two-hidden-layer ReLU MLPs on [E_a; E_b]; run r is initialised from its own seed."""

    def __init__(self, seeds: list[int], p: int, d_embed: int, d_hidden: int, init_scale: float) -> None:
        super().__init__()
        self.p, self.d = p, d_embed

        R, H = len(seeds), d_hidden
        shapes = {"E": ((p, d_embed), 1), "W1": ((2 * d_embed, H), 2 * d_embed), "W2": ((H, H), H), "W3": ((H, p), H)}
        draws: dict[str, list[torch.Tensor]] = {name: [] for name in shapes}
        for s in seeds:  # one generator per run, drawn in a fixed order: run r's weights depend on its seed only
            gen = torch.Generator().manual_seed(7919 * s + 1)
            for name, (shape, fan_in) in shapes.items():
                draws[name].append(torch.randn(*shape, generator=gen) * init_scale / fan_in**0.5)
        self.E, self.W1, self.W2, self.W3 = (nn.Parameter(torch.stack(draws[n])) for n in shapes)
        self.b1 = nn.Parameter(torch.zeros(R, 1, H))
        self.b2 = nn.Parameter(torch.zeros(R, 1, H))
        self.b3 = nn.Parameter(torch.zeros(R, 1, p))

    @property
    def runs(self) -> int:
        return self.E.shape[0]

    def forward(self, ia: torch.Tensor, ib: torch.Tensor, with_emb: bool = False) -> dict[str, torch.Tensor]:
        """``ia``, ``ib``: (R, n) operand indices per run. Returns h1, h2, logits (and emb) as (R, n, ·)."""
        r = torch.arange(self.runs)[:, None]
        u = self.E @ self.W1[:, : self.d]  # (R, p, H): first-layer contribution of each a
        v = self.E @ self.W1[:, self.d:]
        h1 = torch.relu(u[r, ia] + v[r, ib] + self.b1)
        h2 = torch.relu(h1 @ self.W2 + self.b2)
        out = {"h1": h1, "h2": h2, "logits": h2 @ self.W3 + self.b3}
        if with_emb:
            out["emb"] = torch.cat([self.E[r, ia], self.E[r, ib]], -1)
        return out
