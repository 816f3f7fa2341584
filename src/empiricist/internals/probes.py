"""Linear (and small MLP) probes with k-fold cross-validation and Hewitt & Liang control tasks.

Everything is batched: a probe problem is (feature group g, training mask b, regularisation), and all
problems of a cross-validation — every outer fold, every inner fold, every regularisation strength, every
layer (or every run of an experiment) — are solved in one call on stacked tensors. For convex probes the
sum of independent objectives has the per-problem optima as its optimum, so one L-BFGS run over the
stack gives what a loop of sklearn fits would, in a few torch matmuls (no sklearn dependency).

Shapes: ``X`` is (G, n, d) (or (n, d) for G = 1), labels ``y`` (n,) or (G, n) integer classes 0..m-1,
training masks (B, n). Features are standardised per group over all n rows (unsupervised, as a
preprocessing step; labels are never used outside a training mask).

Why a control task: a probe that scores well may be reading a property the layer encodes, or may be
memorising labels of inputs it has seen. ``control_labels`` gives each input *type* (a word, an entity)
a random label with the real task's class balance, fixed per type; accuracy on it is what memorising
alone buys, and selectivity = task accuracy − control accuracy (Hewitt & Liang, 2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike

from empiricist.errors import InputError

DEFAULT_REGS = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 strengths on the per-example mean loss
KINDS = ("logistic", "ridge")


# ------------------------------------------------------------------ data plumbing
def _as_groups(X: ArrayLike | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X, dtype=torch.float32)
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3:
        raise InputError(f"features must be (n, d) or (groups, n, d), got shape {tuple(x.shape)}")
    return x


def standardise(x: torch.Tensor) -> torch.Tensor:
    mu = x.mean(1, keepdim=True)
    sd = x.std(1, keepdim=True).clamp_min(1e-6)
    return (x - mu) / sd


def encode_labels(labels: ArrayLike) -> tuple[np.ndarray, list]:
    """Any labels (strings, ints) → codes 0..m-1 and the sorted class list."""
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.astype(np.int64), classes.tolist()


def stratified_folds(strata: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id per row, each stratum spread evenly over the folds (rows shuffled within strata)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.permutation(len(strata)), strata))
    folds = np.empty(len(strata), dtype=np.int64)
    folds[order] = np.arange(len(strata)) % k
    return folds


def fold_ids(y: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Stratified folds, or grouped folds (every row of a group in one fold) when ``groups`` is given."""
    if groups is None:
        return stratified_folds(y, k, seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    if len(uniq) < k:
        raise InputError(f"{len(uniq)} groups cannot fill {k} folds")
    first_label = np.zeros(len(uniq), dtype=np.int64)
    first_label[inv[::-1]] = y[::-1]
    return stratified_folds(first_label, k, seed)[inv]


# ------------------------------------------------------------------ batched fitting
def _reg4(regs: torch.Tensor, G: int, B: int) -> torch.Tensor:
    """Strengths given per problem (B,) or per group and problem (G, B), shaped to broadcast on W."""
    return regs.expand(G, B).reshape(G, B, 1, 1)


@dataclass
class LinearProbe:
    """Fitted probes for G groups × B problems: scores = x·W + b on standardised features."""

    W: torch.Tensor  # (G, B, d, m)
    b: torch.Tensor  # (G, B, m)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("gnd,gbdm->gbnm", x, self.W) + self.b[:, :, None, :]


def fit_logistic(x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor, regs: torch.Tensor, m: int,
                 max_iter: int = 100) -> LinearProbe:
    """Multinomial logistic regression for every (group, problem): mean CE over the mask + reg/2·‖W‖²."""
    G, n, d = x.shape
    B = masks.shape[0]
    W = torch.zeros(G, B, d, m, requires_grad=True)
    b = torch.zeros(G, B, m, requires_grad=True)
    yy = y.expand(G, n) if y.dim() == 1 else y
    w = masks.float() / masks.float().sum(1, keepdim=True).clamp_min(1)
    onehot = torch.nn.functional.one_hot(yy, m).float()  # (G, n, m)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-6,
                            tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logp = torch.log_softmax(torch.einsum("gnd,gbdm->gbnm", x, W) + b[:, :, None, :], -1)
        ce = -(logp * onehot[:, None]).sum(-1)  # (G, B, n)
        loss = (ce * w).sum() + 0.5 * (_reg4(regs, G, B) * W.pow(2)).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(W.detach(), b.detach())


def fit_ridge(x: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, regs: torch.Tensor) -> LinearProbe:
    """Closed-form ridge for every (group, problem); ``targets`` (G or 1, n, t) continuous or one-hot."""
    G, _, d = x.shape
    w = masks.float()[None].expand(G, -1, -1)  # (G, B, n)
    tot = w.sum(-1).clamp_min(1)[..., None, None]  # (G, B, 1, 1)
    tg = targets.expand(G, *targets.shape[1:])
    mx = torch.einsum("gbn,gnd->gbd", w, x) / tot[..., 0]
    my = torch.einsum("gbn,gnt->gbt", w, tg) / tot[..., 0]
    xtx = torch.einsum("gbn,gnd,gne->gbde", w, x, x) - tot * mx[..., :, None] * mx[..., None, :]
    xty = torch.einsum("gbn,gnd,gnt->gbdt", w, x, tg) - tot * mx[..., :, None] * my[..., None, :]
    eye = torch.eye(d).expand_as(xtx)
    W = torch.linalg.solve(xtx + _reg4(regs, G, masks.shape[0]) * tot * eye, xty)
    return LinearProbe(W, my - torch.einsum("gbd,gbdt->gbt", mx, W))


def fit_linear(kind: str, x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor, regs: torch.Tensor, m: int,
               max_iter: int = 100) -> LinearProbe:
    if kind == "logistic":
        return fit_logistic(x, y, masks, regs, m, max_iter)
    if kind == "ridge":
        return fit_ridge(x, torch.nn.functional.one_hot(y if y.dim() == 2 else y[None], m).float(), masks, regs)
    raise InputError(f"unknown probe kind {kind!r}; choose from {KINDS}")


def _correct(probe: LinearProbe, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(G, B, n) bool: does problem b's probe classify row i of group g right."""
    yy = y.expand(x.shape[0], -1) if y.dim() == 1 else y
    return probe.scores(x).argmax(-1) == yy[:, None, :]


# ------------------------------------------------------------------ cross-validation
@dataclass
class CVResult:
    """Out-of-fold results per group: accuracy, the per-row correctness behind it, the chosen strengths."""

    acc: np.ndarray  # (G,)
    fold_acc: np.ndarray  # (G, k)
    correct: np.ndarray  # (G, n) bool, each row scored by the probe that did not train on it
    reg: np.ndarray  # (G, k) chosen regularisation per outer fold
    chance: np.ndarray  # (G,) majority-class share


def _masks_from_folds(folds: np.ndarray, k: int) -> torch.Tensor:
    """(k, n) training masks: every row outside fold f."""
    return torch.as_tensor(np.stack([folds != f for f in range(k)]))


def _chunks(G: int, cost_per_group: int, budget: int = 8_000_000) -> list[slice]:
    """Groups per batch so that the largest intermediate (groups × problems × rows × classes) stays ~32 MB."""
    step = max(1, budget // max(cost_per_group, 1))
    return [slice(i, min(G, i + step)) for i in range(0, G, step)]


def _labels(y: ArrayLike, G: int, n: int) -> torch.Tensor:
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if yt.shape[-1] != n or yt.dim() > 2 or (yt.dim() == 2 and yt.shape[0] != G):
        raise InputError(f"labels of shape {tuple(yt.shape)} do not match {G} group(s) of {n} rows")
    return yt.expand(G, n) if yt.dim() == 1 else yt


def _chance(yg: torch.Tensor) -> np.ndarray:
    return np.array([np.bincount(row.numpy()).max() / row.numel() for row in yg])


def cross_validate(
    X: ArrayLike | torch.Tensor,
    y: ArrayLike,
    *,
    kind: str = "logistic",
    k: int = 5,
    regs: Sequence[float] = DEFAULT_REGS,
    inner_k: int = 3,
    seed: int = 0,
    groups: ArrayLike | None = None,
    max_iter: int = 100,
) -> CVResult:
    """k-fold accuracy of a linear probe per feature group, with the strength chosen by inner CV.

    Folds are stratified on the first group's labels (grouped by ``groups`` when given) and shared by all
    groups, so accuracies of layers / label sets are paired row by row.
    """
    x = standardise(_as_groups(X))
    G, n, _ = x.shape
    yg = _labels(y, G, n)
    m = int(yg.max()) + 1
    if n < 2 * k:
        raise InputError(f"too few rows ({n}) for {k}-fold cross-validation")
    grp = None if groups is None else np.asarray(groups)
    folds = fold_ids(yg[0].numpy(), k, seed, grp)
    outer = _masks_from_folds(folds, k)
    test = ~outer
    inner_tr, inner_va = [], []
    for f in range(k):
        sub = fold_ids(yg[0].numpy(), inner_k, seed + 1 + f, grp)
        inner_tr += [(folds != f) & (sub != j) for j in range(inner_k)]
        inner_va += [(folds != f) & (sub == j) for j in range(inner_k)]
    regs_t = torch.tensor(list(regs), dtype=torch.float32)
    R, n_in = len(regs_t), k * inner_k
    tr = torch.as_tensor(np.stack(inner_tr)).repeat_interleave(R, 0)  # (n_in * R, n), strength fastest
    va = torch.as_tensor(np.stack(inner_va)).float()
    correct = torch.zeros(G, n, dtype=torch.bool)
    chosen = torch.zeros(G, k)
    fold_acc = torch.zeros(G, k)
    for sl in _chunks(G, n * tr.shape[0] * max(m, 2)):
        xs, ys = x[sl], yg[sl]
        hit = _correct(fit_linear(kind, xs, ys, tr, regs_t.repeat(n_in), m, max_iter), xs, ys).float()
        va_acc = (hit.view(-1, n_in, R, n) * va[None, :, None]).sum(-1) / va.sum(-1)[None, :, None]
        va_acc = va_acc.view(-1, k, inner_k, R).mean(2)  # (g, k, R)
        reg_sel = regs_t[R - 1 - va_acc.flip(-1).argmax(-1)]  # ties → the strongest regularisation
        hit_o = _correct(fit_linear(kind, xs, ys, outer, reg_sel, m, max_iter), xs, ys)  # (g, k, n)
        correct[sl] = (hit_o & test[None]).any(1)
        fold_acc[sl] = (hit_o & test[None]).sum(-1) / test.sum(-1)
        chosen[sl] = reg_sel
    return CVResult(correct.float().mean(1).numpy(), fold_acc.numpy(), correct.numpy(), chosen.numpy(), _chance(yg))


def _fit_mlp(x: torch.Tensor, yg: torch.Tensor, train: torch.Tensor, m: int, hidden: int, steps: int, lr: float,
             weight_decay: float, gen: torch.Generator) -> torch.Tensor:
    """Train one ReLU MLP per (group, mask) by full-batch AdamW; return its predictions (G, k, n)."""
    G, n, d = x.shape
    k = train.shape[0]
    W1 = (torch.randn(G, k, d, hidden, generator=gen) / d**0.5).requires_grad_()
    b1 = torch.zeros(G, k, 1, hidden, requires_grad=True)
    W2 = (torch.randn(G, k, hidden, m, generator=gen) / hidden**0.5).requires_grad_()
    b2 = torch.zeros(G, k, 1, m, requires_grad=True)
    opt = torch.optim.AdamW([W1, b1, W2, b2], lr=lr, weight_decay=weight_decay)
    target = yg[:, None, :].expand(G, k, n).reshape(-1)
    w = (train / train.sum(-1, keepdim=True))[None].expand(G, k, n).reshape(-1)

    def logits() -> torch.Tensor:
        return torch.relu(torch.einsum("gnd,gkdh->gknh", x, W1) + b1) @ W2 + b2

    for _ in range(steps):
        ce = torch.nn.functional.cross_entropy(logits().reshape(-1, m), target, reduction="none")
        opt.zero_grad()
        (ce * w).sum().backward()
        opt.step()
    with torch.no_grad():
        return logits().argmax(-1)


def cross_validate_mlp(X: ArrayLike | torch.Tensor, y: ArrayLike, *, k: int = 5, hidden: int = 64, steps: int = 300,
                       lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0) -> CVResult:
    """k-fold accuracy of a one-hidden-layer ReLU probe per group — the nonlinear check on a linear null."""
    x = standardise(_as_groups(X))
    G, n, _ = x.shape
    yg = _labels(y, G, n)
    m = int(yg.max()) + 1
    folds = fold_ids(yg[0].numpy(), k, seed)
    train = _masks_from_folds(folds, k)
    test = ~train
    gen = torch.Generator().manual_seed(seed)
    correct = torch.zeros(G, n, dtype=torch.bool)
    fold_acc = torch.zeros(G, k)
    for sl in _chunks(G, 4 * k * n * hidden):
        hit = _fit_mlp(x[sl], yg[sl], train.float(), m, hidden, steps, lr, weight_decay, gen) == yg[sl, None, :]
        correct[sl] = (hit & test[None]).any(1)
        fold_acc[sl] = (hit & test[None]).sum(-1) / test.sum(-1)
    return CVResult(correct.float().mean(1).numpy(), fold_acc.numpy(), correct.numpy(), np.zeros((G, k)), _chance(yg))


# ------------------------------------------------------------------ control task and the usual report
def control_labels(types: ArrayLike, labels: ArrayLike, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang control task: each input type gets a random label, fixed for every occurrence.

    The labels of the types are shuffled among the types, so the class balance over types is exactly the
    real task's, and a probe can only score above chance on it by memorising type → label.
    """
    types = np.asarray(types)
    labels = np.asarray(labels)
    _, first, inv = np.unique(types, return_index=True, return_inverse=True)
    type_label = labels[first]
    return np.random.default_rng(seed).permutation(type_label)[inv]


@dataclass(frozen=True)
class ProbeScore:
    """One probe's accuracy with a CI over examples (clustered by type when types repeat)."""

    acc: float
    lo: float
    hi: float
    chance: float
    n: int
    reg: float


def score_of(cv: CVResult, g: int, types: np.ndarray | None) -> ProbeScore:
    from empiricist.stats import mean_ci

    c = cv.correct[g].astype(float)
    repeated = types is not None and len(np.unique(types)) < len(types)
    est = mean_ci(c, clusters=types if repeated else None, method="clustered" if repeated else "clt")
    return ProbeScore(float(cv.acc[g]), est.lo, est.hi, float(cv.chance[g]), len(c), float(np.median(cv.reg[g])))


def probe_with_control(
    X: ArrayLike | torch.Tensor,
    labels: ArrayLike,
    types: ArrayLike | None = None,
    *,
    kind: str = "logistic",
    k: int = 5,
    regs: Sequence[float] = DEFAULT_REGS,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Per feature group: task accuracy, control accuracy and selectivity (one row per group)."""
    codes, _ = encode_labels(labels)
    x = _as_groups(X)
    G = x.shape[0]
    t = np.asarray(types) if types is not None else np.arange(len(codes))
    ctrl = control_labels(t, codes, seed)
    both = torch.cat([x, x])  # task on groups 0..G-1, control on G..2G-1
    y = np.concatenate([np.broadcast_to(codes, (G, len(codes))), np.broadcast_to(ctrl, (G, len(codes)))])
    cv = cross_validate(both, y, kind=kind, k=k, regs=regs, seed=seed)
    rows = []
    for g in range(G):
        task, control = score_of(cv, g, t), score_of(cv, G + g, t)
        rows.append({"acc": task.acc, "acc_lo": task.lo, "acc_hi": task.hi, "control_acc": control.acc,
                     "selectivity": task.acc - control.acc, "chance": task.chance, "reg": task.reg, "n": task.n})
    return rows
