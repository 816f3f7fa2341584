"""Per-example gradients, randomly projected, cached on disk: the shared engine of TracIn, TrackStar
and TRAK.

How: one forward/backward over a padded batch of rows, with hooks on every ``nn.Linear`` that keep its
input x and output gradient δ; example b's weight gradient is Σ_t δ[b,t]ᵀ x[b,t] (Goodfellow 2015's
trick, what kronfluence and opacus do inside). Why our own 30 lines: ``torch.func.vmap`` over an HF
model fails on its data-dependent masking code; kronfluence's version is internal to it; torch's
``ExpandedWeights`` and opacus compute every parameter's per-example gradient (the input embedding's is
vocabulary × width per example) and opacus would bring its own dependencies. Where the trick does not
hold — a Linear called twice in one forward, or a weight shared with another module (tied embeddings)
— ``per_example_grads`` falls back to one forward/backward per example, which is always exact.
``tests/test_attribution_grads.py`` checks the two agree.

The projection is traker's ``BasicProjector`` (a seeded Rademacher matrix). Only the weights of
``nn.Linear`` modules are used — the modules kronfluence tracks — so every gradient method looks at the
same parameters (for GPT-NeoX: attention, MLP and the output embedding, not the input embedding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from empiricist.artifacts import atomic_path, config_hash
from empiricist.attribution.data import Rows, pad_batch, summed_nll
from empiricist.errors import EmpiricistError

MAX_PROJECTION_BYTES = 6 << 30


def linear_params(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every ``nn.Linear`` weight and bias, in module order."""
    out = []
    for mname, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            for pname, p in mod.named_parameters(recurse=False):
                out.append((f"{mname}.{pname}", p))
    if not out:
        raise EmpiricistError("the model has no nn.Linear modules to attribute through")
    return out


AUTO_PROJ_DIM = 1024


def fit_proj_dim(proj_dim: int | str, grad_dim: int) -> int:
    """``"auto"``: 1024 columns, halved until the projection matrix takes at most half the memory limit
    (a 50k-vocabulary model's untied head alone made 1024 need 12.7 GiB); an explicit number is kept."""
    if proj_dim != "auto":
        return int(proj_dim)
    dim = AUTO_PROJ_DIM
    while dim > 16 and grad_dim * dim * 4 > MAX_PROJECTION_BYTES // 2:
        dim //= 2
    return dim


def grad_dim(model: torch.nn.Module) -> int:
    """Length of the gradient the projection methods project: every Linear weight (``linear_params``)."""
    return sum(p.numel() for _, p in linear_params(model))


def make_projector(grad_dim: int, proj_dim: int, seed: int) -> Any:
    """traker's CPU projector with the whole matrix kept (one block; traker frees it between phases)."""
    from trak.projectors import BasicProjector, ProjectionType

    need = grad_dim * proj_dim * 4
    if need > MAX_PROJECTION_BYTES:
        raise EmpiricistError(f"a {grad_dim:,}×{proj_dim} projection needs {need / 2**30:.1f} GiB; lower proj_dim "
                              "(--option proj_dim=N, or options={'<method>': {'proj_dim': N}}; proj_dim 'auto', the default, fits it)")

    class KeptProjector(BasicProjector):
        def free_memory(self) -> None:  # keep the matrix: we score after finalising
            pass

    return KeptProjector(grad_dim=grad_dim, proj_dim=proj_dim, seed=seed, proj_type=ProjectionType.rademacher,
                         device=torch.device("cpu"), block_size=proj_dim, dtype=torch.float32)


RowFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]


BATCH_GRAD_BYTES = 256 << 20  # per-example gradients held at once by the batched path


def per_example_grads(model: torch.nn.Module, rows: Rows, indices: Iterable[int], fn: RowFn = summed_nll,
                      params: list[torch.nn.Parameter] | None = None, batched: bool = True) -> torch.Tensor:
    """Flattened gradients of ``fn`` (a per-row scalar) for the given rows, shape [n, P], in
    ``linear_params`` order (or ``params``' order, which must be Linear weights/biases for ``batched``)."""
    idx = [int(j) for j in indices]
    params = params if params is not None else [p for _, p in linear_params(model)]
    dim = sum(p.numel() for p in params)
    chunk = max(1, BATCH_GRAD_BYTES // max(1, 4 * dim))
    if batched and len(idx) > 1 and _hookable(model, params):
        return torch.cat([_batched_grads(model, rows, idx[a:a + chunk], fn, params)
                          for a in range(0, len(idx), chunk)])
    out = []
    for i in idx:
        value = fn(model, pad_batch([rows.ids[i]], [rows.masks[i]]))[0]
        grads = torch.autograd.grad(value, params, allow_unused=True)
        out.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                              for g, p in zip(grads, params, strict=True)]))
    return torch.stack(out)


def _hookable(model: torch.nn.Module, params: list[torch.nn.Parameter]) -> bool:
    """Every parameter belongs to exactly one Linear, and no Linear weight is shared with another module."""
    owner: dict[int, int] = {}
    for mod in model.modules():
        for p in mod.parameters(recurse=False):
            owner[id(p)] = owner.get(id(p), 0) + 1
    linear = {id(p) for m in model.modules() if isinstance(m, torch.nn.Linear) for p in m.parameters(recurse=False)}
    return all(id(p) in linear and owner[id(p)] == 1 for p in params)


def _batched_grads(model: torch.nn.Module, rows: Rows, idx: list[int], fn: RowFn,
                   params: list[torch.nn.Parameter]) -> torch.Tensor:
    """One forward/backward for ``idx``'s rows; per-example Linear gradients from hooked x and δ."""
    wanted = {id(p) for p in params}
    mods = [m for m in model.modules() if isinstance(m, torch.nn.Linear)
            and any(id(p) in wanted for p in m.parameters(recurse=False))]
    inputs: dict[int, torch.Tensor] = {}
    deltas: dict[int, torch.Tensor] = {}
    calls: dict[int, int] = {}

    def forward_hook(mod: torch.nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        key = id(mod)
        calls[key] = calls.get(key, 0) + 1
        inputs[key] = args[0].detach()
        out.register_hook(lambda g: deltas.__setitem__(key, g.detach()))

    handles = [m.register_forward_hook(forward_hook) for m in mods]
    try:
        values = fn(model, pad_batch([rows.ids[i] for i in idx], [rows.masks[i] for i in idx]))
        torch.autograd.grad(values.sum(), params, allow_unused=True)  # fills ``deltas`` through the hooks
    finally:
        for h in handles:
            h.remove()
    if any(calls.get(id(m), 0) != 1 for m in mods):  # a Linear used twice: the trick does not hold
        return per_example_grads(model, rows, idx, fn, params, batched=False)
    per_param: dict[int, torch.Tensor] = {}
    for m in mods:
        x = inputs[id(m)]
        d = deltas.get(id(m), torch.zeros(*x.shape[:-1], m.out_features, dtype=x.dtype))  # not on the loss's path
        x3, d3 = x.reshape(len(idx), -1, x.shape[-1]), d.reshape(len(idx), -1, d.shape[-1])
        per_param[id(m.weight)] = torch.einsum("bto,bti->boi", d3, x3).reshape(len(idx), -1)
        if m.bias is not None:
            per_param[id(m.bias)] = d3.sum(1)
    return torch.cat([per_param[id(p)].float() for p in params], dim=1)


def projected_features(model: torch.nn.Module, rows: Rows, *, proj_dim: int, seed: int,
                       scale: torch.Tensor | None = None, chunk: int = 64, progress: bool = True,
                       desc: str = "gradients") -> np.ndarray:
    """[n_rows, proj_dim] float32: P·(g / scale) for every row (``scale``: a per-coordinate preconditioner)."""
    params = [p for _, p in linear_params(model)]
    dim = sum(p.numel() for p in params)
    proj = make_projector(dim, proj_dim, seed)
    n = len(rows.ids)
    out = np.zeros((n, proj_dim), dtype=np.float32)
    was_training = model.training
    model.eval()
    with tqdm(total=n, desc=desc, disable=not progress, unit="ex") as bar:
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            g = per_example_grads(model, rows, range(a, b), params=params)
            if scale is not None:
                g = g / scale
            out[a:b] = proj.project(g, model_id=0).numpy()
            bar.update(b - a)
    model.train(was_training)
    return out


def second_moment(model: torch.nn.Module, rows: Rows, max_rows: int = 512, seed: int = 0) -> torch.Tensor:
    """Mean squared per-example gradient over ≤ ``max_rows`` rows: the diagonal (empirical) Fisher that
    Adam's second moment estimates; TrackStar divides gradients by its square root."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(rows.ids), size=min(max_rows, len(rows.ids)), replace=False))
    sub = Rows([rows.ids[i] for i in pick], [rows.masks[i] for i in pick], pick, np.ones(len(pick), np.float32))
    total = None
    for a in range(0, len(pick), 64):
        g = per_example_grads(model, sub, range(a, min(len(pick), a + 64)))
        s = (g.double() ** 2).sum(0)
        total = s if total is None else total + s
    v = (total / len(pick)).float()
    return v


def cached(cache: Path | None, key: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()`` once per key; the array is written atomically under ``cache/<hash>.npy``."""
    if cache is None:
        return compute()
    path = Path(cache) / f"{config_hash(key)}.npy"
    if path.exists():
        return np.load(path)
    arr = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)
    return arr
