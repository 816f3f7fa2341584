"""MAGIC-style exact attribution: metagradients of a query's loss with respect to per-document weights,
through the whole recorded training run (Ilyas & Engstrom 2025).

Training is a function of per-document weights ``w`` (1 = as trained, 0 = the document's tokens count
for nothing, in the same order and packing): each step's loss is Σ_tokens w[doc(token)] · ℓ / N. The
metagradient ∂Q(θ_T)/∂w_d is computed by reverse-mode through every step:

1. **Replay** the recorded run from its seed-determined init with the same recipe (``training_run.json``
   beside the model, written by ``retrain.train_on_docs``), keeping the optimiser state (θ, m, v) every
   ``segment`` steps; the replay's final weights must match the recorded model's (checked, the
   difference reported).
2. **Reverse**: for each segment from the last, recompute its states from the kept one (memory: √T
   states instead of T), then step back through it with one vector–Jacobian product of the whole step —
   gradient (a double backward), clipping and AdamW — per step, for every query at once (``vmap`` over
   the queries' cotangents).

Why not a library: torchopt / higher differentiate through optimisers but not through our Stepper's
recipe (AdamW with decoupled decay on matrices only, global-norm clipping, warm-up schedule), and the
released MAGIC code targets its own trainer; the step written here is the same arithmetic as
``torch.optim.AdamW`` (tests check one step against it) and everything else is ``torch.func``.

Score = −∂Q/∂w_d, in **nats of the query's NLL**: removing document d is predicted to raise the query's
NLL by ``score`` (first order). Positive = the document lowers the measurement, like every method here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.func import functional_call, grad, vjp, vmap

from empiricist.attribution.data import Rows, pad_batch, summed_nll
from empiricist.attribution.retrain import RUN_FILE, tokens_fingerprint
from empiricist.errors import EmpiricistError

if TYPE_CHECKING:
    from empiricist.attribution.data import Documents
    from empiricist.suite.config import ModelSize, TrainConfig

State = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]


def read_run(folder: Path, docs: Documents) -> dict[str, Any]:
    """``Replay``'s arguments (after the documents) for the run recorded in ``folder``."""
    from empiricist.suite.config import ModelSize, TrainConfig

    path = folder / RUN_FILE
    if not path.exists():
        raise EmpiricistError(f"magic needs the recorded training run ({path} is missing): it replays training, so "
                              "it works on models trained by empiricist.attribution.retrain.train_on_docs (e.g. "
                              "attribute-validate's base model); use another --method for other models")
    run = json.loads(path.read_text())
    given = tokens_fingerprint(docs.tokens)
    if run["docs"] != given:
        raise EmpiricistError(f"{path}: the model was trained on documents {run['docs']}, not the ones given "
                              f"({given}); magic attributes to the training set itself, in its order")
    return {"size": ModelSize(**run["size"]), "cfg": TrainConfig(**run["train"]), "vocab_size": int(run["vocab_size"]),
            "seed": int(run["seed"]), "environment": run["environment"]}


class Replay:
    """The recorded run as a pure function of document weights: ``step(state, w, t)`` is one AdamW step."""

    def __init__(self, docs: list[np.ndarray], size: ModelSize, cfg: TrainConfig, vocab_size: int, seed: int,
                 dtype: torch.dtype = torch.float32, environment: dict[str, Any] | None = None) -> None:
        from empiricist.attribution.retrain import ArrayStore
        from empiricist.data.order import TrainingOrder
        from empiricist.suite.model import build_model

        self.cfg, self.n_docs, self.dtype, self._build = cfg, len(docs), dtype, (size, vocab_size, cfg.seq_len, seed)
        self.environment = environment  # the recorded run's (suite.environment.fingerprint); None: not known
        self.threads = int(environment["torch_threads"]) if environment else 0  # 0: whatever is set
        self.order = TrainingOrder(ArrayStore(docs), cfg.seq_len, cfg.batch_size, seed)
        self.model = build_model(size, vocab_size, cfg.seq_len, seed=seed)
        self.model.config._attn_implementation = "eager"  # double backward under vmap: plain ops only
        self.model.to(dtype)  # float64: the tests' finite differences
        self.init = {k: v.detach().clone() for k, v in self.model.named_parameters()}
        self.decay = {k: v.dim() >= 2 for k, v in self.init.items()}

    def start(self) -> State:
        zeros = {k: torch.zeros_like(v) for k, v in self.init.items()}
        return dict(self.init), zeros, {k: v.clone() for k, v in zeros.items()}

    def batch(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.order.batch(t)), torch.from_numpy(self.order.doc_index(t)[:, 1:])

    def loss(self, params: dict[str, torch.Tensor], w: torch.Tensor, tokens: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        logits = functional_call(self.model, params, (tokens[:, :-1],)).logits
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
        return (w[owner.flatten()] * nll).sum() / nll.numel()

    def step(self, state: State, w: torch.Tensor, t: int) -> State:
        """θ, m, v after step ``t`` (0-based) — the Stepper's recipe: clip to the global norm, then AdamW."""
        theta, m, v = state
        cfg = self.cfg
        tokens, owner = self.batch(t)
        g = grad(self.loss)(theta, w, tokens, owner)
        if cfg.grad_clip > 0:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in g.values()]))
            scale = torch.clamp(cfg.grad_clip / (norm + 1e-6), max=1.0)
            g = {k: x * scale for k, x in g.items()}
        lr, n = cfg.lr_at(t), t + 1
        b1, b2 = cfg.beta1, cfg.beta2
        out_t, out_m, out_v = {}, {}, {}
        for k in theta:
            p = theta[k] * (1 - lr * cfg.weight_decay) if self.decay[k] else theta[k]
            mk = m[k] * b1 + g[k] * (1 - b1)
            vk = v[k] * b2 + g[k] * g[k] * (1 - b2)
            # √v with a zero derivative where v = 0 (never-seen embedding rows): √'(0) = ∞ would make NaNs
            root = torch.where(vk > 0, vk, torch.ones_like(vk)).sqrt() * (vk > 0)
            denom = root / math.sqrt(1 - b2 ** n) + 1e-8
            out_t[k] = p - (lr / (1 - b1 ** n)) * mk / denom
            out_m[k], out_v[k] = mk, vk
        return out_t, out_m, out_v

    def run(self, w: torch.Tensor | None = None, state: State | None = None, t0: int = 0, t1: int | None = None,
            keep_every: int = 0, progress: Callable[[int], None] | None = None) -> tuple[State, dict[int, State]]:
        """Steps ``t0``..``t1 − 1`` (default: the whole run from the init) of the pure ``step`` with
        weights ``w`` (None: all 1); ``keep_every``: the states before every k-th step are kept too."""
        w = torch.ones(self.n_docs, dtype=self.dtype) if w is None else w
        state, kept = state or self.start(), {}
        with torch.no_grad():
            for t in range(t0, self.cfg.steps if t1 is None else t1):
                if keep_every and (t - t0) % keep_every == 0:
                    kept[t] = _detach(state)
                state = _detach(self._step_nograd(state, w, t))
                if progress:
                    progress(t)
        return state, kept

    def trainer(self, state: State, t0: int, t1: int, keep_every: int = 1,
                progress: Callable[[int], None] | None = None) -> tuple[State, dict[int, State]]:
        """Steps ``t0``..``t1 − 1`` from ``state`` with the trainer itself (``Stepper``: torch's AdamW and
        the recorded attention kernel), so the linearisation points are the recorded run's bit for bit;
        the states before every ``keep_every``-th step are kept. Float32 only (the recorded arithmetic);
        other dtypes use the pure ``step``."""
        if self.dtype != torch.float32:
            return self.run(None, state, t0, t1, keep_every, progress)
        from empiricist.suite.model import build_model
        from empiricist.suite.step import Stepper, deterministic

        model = build_model(*self._build[:3], seed=self._build[3])
        stepper = Stepper(model, self.cfg, "fp32")
        params = dict(model.named_parameters())
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(state[0][k])
                if t0 > 0:
                    stepper.opt.state[p] = {"step": torch.tensor(float(t0)), "exp_avg": state[1][k].clone(),
                                            "exp_avg_sq": state[2][k].clone()}

        def snapshot() -> State:
            st = stepper.opt.state
            return ({k: p.detach().clone() for k, p in params.items()},
                    {k: st[p]["exp_avg"].clone() if p in st else torch.zeros_like(p) for k, p in params.items()},
                    {k: st[p]["exp_avg_sq"].clone() if p in st else torch.zeros_like(p) for k, p in params.items()})

        kept = {}
        model.train()
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads or before)
        try:
            with deterministic():
                for t in range(t0, t1):
                    if (t - t0) % keep_every == 0:
                        kept[t] = snapshot()
                    stepper(self.batch(t)[0], self.cfg.lr_at(t))
                    if progress:
                        progress(t)
        finally:
            torch.set_num_threads(before)
        return snapshot(), kept

    def _step_nograd(self, state: State, w: torch.Tensor, t: int) -> State:
        with torch.enable_grad():  # grad() inside the step needs autograd on
            return self.step(state, w, t)


def _detach(state: State) -> State:
    return tuple({k: v.detach() for k, v in part.items()} for part in state)  # type: ignore[return-value]


def query_gradients(replay: Replay, params: dict[str, torch.Tensor], rows: Rows, n_queries: int) -> dict[str, torch.Tensor]:
    """∂Q_q/∂θ at the final weights for every query, stacked on a leading query axis (contrast rows signed)."""
    out = {k: torch.zeros((n_queries, *v.shape), dtype=v.dtype) for k, v in params.items()}
    for r in range(len(rows.ids)):
        b = pad_batch([rows.ids[r]], [rows.masks[r]])

        def q_loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor] = b) -> torch.Tensor:
            return summed_nll(_Bound(replay.model, p), b).sum()

        g = grad(q_loss)(params)
        for k, acc in out.items():
            acc[rows.owner[r]] += float(rows.sign[r]) * g[k]
    return out


class _Bound(torch.nn.Module):
    """The replay's model with given parameters, callable like the model (for ``summed_nll``)."""

    def __init__(self, model: torch.nn.Module, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._model, self._params = [model], params

    def forward(self, **kwargs: Any) -> Any:
        return functional_call(self._model[0], self._params, (), kwargs)


def metagradients(replay: Replay, rows: Rows, n_queries: int, *, segment: int = 0, chunk: int = 16,
                  progress: bool = True, recorded: torch.nn.Module | None = None) -> tuple[np.ndarray, State]:
    """[query, document] ∂Q/∂w at w = 1, and the replay's final state. ``recorded``: the model the run
    made — the replay is checked against it before the (long) reverse pass."""
    from tqdm.auto import tqdm

    T = replay.cfg.steps
    segment = segment or max(1, math.isqrt(T))
    w = torch.ones(replay.n_docs, dtype=replay.dtype)
    chunks = [slice(a, min(a + chunk, n_queries)) for a in range(0, n_queries, chunk)]
    bar = tqdm(total=T * (1 + 2 * len(chunks)), desc="magic: replay, then recompute + reverse per query chunk",
               disable=not progress, leave=False)
    final, kept = replay.trainer(replay.start(), 0, T, keep_every=segment, progress=lambda _t: bar.update(1))
    if recorded is not None:
        check_replay(final[0], recorded, environment=replay.environment)
    gq = query_gradients(replay, final[0], rows, n_queries)
    out = np.zeros((n_queries, replay.n_docs))
    for qs in chunks:
        cot = ({k: v[qs].clone() for k, v in gq.items()},
               {k: torch.zeros_like(v[qs]) for k, v in gq.items()},
               {k: torch.zeros_like(v[qs]) for k, v in gq.items()})
        wbar = torch.zeros((qs.stop - qs.start, replay.n_docs), dtype=replay.dtype)
        for s0 in sorted(kept, reverse=True):
            end = min(s0 + segment, T)
            _, seg = replay.trainer(kept[s0], s0, end, progress=lambda _t: bar.update(1))  # recompute the segment
            states = [seg[t] for t in range(s0, end)]
            for t in range(end - 1, s0 - 1, -1):  # and step back through it
                _, pull = vjp(lambda th, m, v, ww, t=t: replay.step((th, m, v), ww, t), *states[t - s0], w)
                th_b, m_b, v_b, w_b = vmap(pull)(cot)
                cot, wbar = (th_b, m_b, v_b), wbar + w_b
                bar.update(1)
        out[qs] = wbar.double().numpy()
    bar.close()
    return out, final


def query_loss(replay: Replay, params: dict[str, torch.Tensor], rows: Rows, n_queries: int) -> np.ndarray:
    """Q per query (summed NLL, contrast rows signed) of the replay's model with ``params``."""
    out = np.zeros(n_queries)
    with torch.no_grad():
        for r in range(len(rows.ids)):
            b = pad_batch([rows.ids[r]], [rows.masks[r]])
            out[rows.owner[r]] += float(rows.sign[r]) * float(summed_nll(_Bound(replay.model, params), b).sum())
    return out


def check_replay(final: dict[str, torch.Tensor], model: torch.nn.Module, tol: float = 1e-4,
                 environment: dict[str, Any] | None = None) -> float:
    """Largest |replayed − recorded| weight; an error when the replay did not reproduce the run, naming
    what differs from the recorded ``environment`` when one is given."""
    recorded = dict(model.named_parameters())
    diff = max(float((final[k].double() - recorded[k].detach().double()).abs().max()) for k in final)
    if not diff <= tol:
        hint = "the recipe, data or software differ from the run's"
        if environment is not None:
            from empiricist.suite.environment import fingerprint, fingerprint_diff

            now = fingerprint(int(environment["torch_threads"]), bool(environment["compile"]), environment["precision"])
            changed = fingerprint_diff(environment, now)
            hint = f"environment differs: {changed}" if changed else hint
        raise EmpiricistError(f"magic: replaying the recorded run did not reproduce the model (largest weight "
                              f"difference {diff:.3g} > {tol:g}): {hint}")
    return diff


def metasmoothness(replay: Replay, rows: Rows, n_queries: int, mg: np.ndarray, *, scales: tuple[float, ...] = (0.1, 0.5, 1.0),
                   n_directions: int = 4, fraction: float = 0.5, seed: int = 0) -> list[dict[str, float]]:
    """How far the first-order picture holds (Engstrom et al. 2025's metasmoothness, measured directly):
    per scale ε, retrain (replay) with w = 1 − ε·1[d ∈ S] for random halves S, and compare the actual
    change of each query's loss with the metagradient's prediction −ε·Σ_{d∈S} ∂Q/∂w_d. ``slope`` 1 and
    ``r`` 1 mean the loss is linear in the weights up to ε; ε = 1 is LDS's own perturbation (in the same
    order and packing)."""
    rng = np.random.default_rng([seed, 7])
    base = query_loss(replay, replay.run()[0][0], rows, n_queries)
    out = []
    for eps in scales:
        pred, act = [], []
        for _ in range(n_directions):
            drop = np.zeros(replay.n_docs)
            drop[rng.choice(replay.n_docs, round(fraction * replay.n_docs), replace=False)] = 1.0
            w = torch.from_numpy(1.0 - eps * drop).to(replay.dtype)
            act.append(query_loss(replay, replay.run(w)[0][0], rows, n_queries) - base)
            pred.append(-eps * (mg @ drop))
        p, a = np.concatenate(pred), np.concatenate(act)
        out.append({"scale": eps, "r": float(np.corrcoef(p, a)[0, 1]), "slope": float(p @ a / max(p @ p, 1e-300)),
                    "mean_abs_actual": float(np.abs(a).mean())})
    return out
