"""Per-example gradients, randomly projected, cached on disk: the shared engine of TracIn, TrackStar
and TRAK.

Why a loop: ``torch.func.vmap`` over an HF model fails on data-dependent masking code, and the batched
per-sample trick (kronfluence's) is internal to kronfluence. One forward/backward per example costs
≈10 ms for a micro model here (measured in ``benchmarks/bench_attribution.py``), and every example's
features are computed once and cached, so a second query set costs only its own gradients.

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


def per_example_grads(model: torch.nn.Module, rows: Rows, indices: Iterable[int], fn: RowFn = summed_nll,
                      params: list[torch.nn.Parameter] | None = None) -> torch.Tensor:
    """Flattened gradients of ``fn`` (a per-row scalar) for the given rows, shape [n, P]."""
    params = params if params is not None else [p for _, p in linear_params(model)]
    out = []
    for i in (int(j) for j in indices):
        value = fn(model, pad_batch([rows.ids[i]], [rows.masks[i]]))[0]
        grads = torch.autograd.grad(value, params, allow_unused=True)
        out.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                              for g, p in zip(grads, params, strict=True)]))
    return torch.stack(out)


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
