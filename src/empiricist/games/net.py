"""Policy-value networks for board games: a small MLP trained in torch, played in numpy.

The network reads a position (OpenSpiel's observation tensor, who is to move, and the Elo it is asked to
play at) and gives a distribution over moves and the mover's expected outcome. It is an MLP, not a
convolutional net: on 5×5 Hex, Jones (2021) found width matters more than shape, and an MLP's FLOPs are
exactly ``2 × parameters`` per position, so the compute axis needs no estimate.

Training (``train``) follows the suite trainer's contract at this scale: seeded batches drawn per step
(``default_rng([seed, step])``), so a run killed after a checkpoint resumes to the same weights; every
checkpoint is a safetensors file (weights, Adam's state, and the metadata naming its data and compute).
Play reads only the weights, in numpy: one position at a time, torch's forward takes 2.5× numpy's
(benchmarks/bench_games.py), and search evaluates one position at a time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.errors import InputError

if TYPE_CHECKING:
    import pyspiel
    import torch

# torch module -> its (weight, bias) names in a checkpoint; weights are stored transposed (x @ w)
MODULES = {"h1": ("w1", "b1"), "h2": ("w2", "b2"), "p": ("wp", "bp"), "v": ("wv", "bv")}
LAYERS = tuple(k for pair in MODULES.values() for k in pair)


@dataclass(frozen=True)
class NetShape:
    obs_dim: int
    n_actions: int
    width: int

    @property
    def in_dim(self) -> int:
        return self.obs_dim + 2  # + who moves, + the scaled Elo condition

    @property
    def params(self) -> int:
        w, i, a = self.width, self.in_dim, self.n_actions
        return i * w + w + w * w + w + w * a + a + w + 1

    @property
    def forward_flops(self) -> int:
        """Multiply-adds × 2 for one position."""
        return 2 * (self.params - 2 * self.width - self.n_actions - 1)


def positions(obs: list[bytes], legal: list[list[int]], obs_dim: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Recorded positions as arrays: observations (stored as uint8 bytes) and the legal-move mask."""
    grid = np.frombuffer(b"".join(obs), dtype=np.uint8).reshape(len(obs), obs_dim)
    mask = np.zeros((len(obs), n_actions), dtype=bool)
    for r, acts in enumerate(legal):
        mask[r, acts] = True
    return grid, mask


def features(obs: np.ndarray, mover: np.ndarray, elo: np.ndarray, center: float, scale: float) -> np.ndarray:
    """The network's input rows: observation, mover (0/1), Elo scaled by the data's centre and spread."""
    return np.concatenate([obs.astype(np.float32), mover.reshape(-1, 1).astype(np.float32),
                           ((elo.reshape(-1, 1) - center) / scale).astype(np.float32)], axis=1)


class PolicyValueNet:
    """Numpy inference over trained weights; ``meta`` says what data and compute made them."""

    def __init__(self, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        missing = [k for k in LAYERS if k not in weights]
        if missing:
            raise InputError(f"network weights lack {missing}", field="net")
        self.w = {k: weights[k].astype(np.float32) for k in LAYERS}
        self.meta = meta
        self.center, self.scale = float(meta["elo_center"]), float(meta["elo_scale"])
        self.default_elo = float(meta["default_elo"])
        self.shape = NetShape(int(meta["obs_dim"]), int(meta["n_actions"]), int(meta["width"]))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        h = np.maximum(x @ w["w1"] + w["b1"], 0)
        h = np.maximum(h @ w["w2"] + w["b2"], 0)
        return h @ w["wp"] + w["bp"], np.tanh(h @ w["wv"] + w["bv"])[:, 0]

    def evaluate(self, state: pyspiel.State, elo: float | None = None) -> tuple[np.ndarray, float]:
        """(move probabilities over every action, zero off the legal ones; the mover's value in [−1, 1])."""
        player = state.current_player()
        x = features(np.asarray(state.observation_tensor(player))[None], np.array([player]),
                     np.array([self.default_elo if elo is None else elo]), self.center, self.scale)
        logits, value = self.forward(x)
        legal = state.legal_actions(player)
        z = logits[0, legal]
        p = np.exp(z - z.max())
        probs = np.zeros(self.shape.n_actions)
        probs[legal] = p / p.sum()
        return probs, float(value[0])

    def policy(self, state: pyspiel.State, elo: float | None = None) -> np.ndarray:
        return self.evaluate(state, elo)[0]


def read_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All tensors and the metadata of a checkpoint file we wrote (safetensors: no code runs on load)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no network file {p}", field="agent.path")
    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get("empiricist", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle, not a dict)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own and OS errors for broken files
        raise InputError(f"{p} is not a network checkpoint: {e}", field="agent.path") from None
    if "width" not in meta:
        raise InputError(f"{p} has no empiricist metadata: not a network this package wrote", field="agent.path")
    return tensors, meta


@lru_cache(maxsize=64)
def _load(path: str, mtime: float) -> PolicyValueNet:
    tensors, meta = read_checkpoint(path)
    return PolicyValueNet(tensors, meta)


def load_net(path: str | Path) -> PolicyValueNet:
    """The network in ``path`` (cached per process: a match loads it once, not once per game)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no network file {p}", field="agent.path")
    return _load(str(p.resolve()), p.stat().st_mtime)


# --- training ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    width: int = 64
    steps: tuple[int, ...] = (64, 256, 1024)  # the checkpoints (the last is the run's length)
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    value_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.batch < 1 or not self.steps or list(self.steps) != sorted(set(self.steps)) \
                or self.steps[0] < 1:
            raise InputError("a network needs width >= 1, batch >= 1 and increasing checkpoint steps >= 1",
                             field="train")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Torch:
    """The torch module (built lazily: importing this package must not import torch)."""

    @staticmethod
    def build(shape: NetShape, seed: int) -> torch.nn.Module:
        import torch

        torch.manual_seed(seed)
        w = shape.width
        return torch.nn.ModuleDict({"h1": torch.nn.Linear(shape.in_dim, w), "h2": torch.nn.Linear(w, w),
                                    "p": torch.nn.Linear(w, shape.n_actions), "v": torch.nn.Linear(w, 1)})

    @staticmethod
    def forward(m: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        h = torch.relu(m["h2"](torch.relu(m["h1"](x))))
        return m["p"](h), torch.tanh(m["v"](h))[:, 0]

    @staticmethod
    def numpy_weights(m: torch.nn.Module) -> dict[str, np.ndarray]:
        out = {}
        for name, (wk, bk) in MODULES.items():
            out[wk] = m[name].weight.T.detach().contiguous().numpy().copy()
            out[bk] = m[name].bias.detach().contiguous().numpy().copy()
        return out


def _save(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    from safetensors.numpy import save_file

    tensors = _Torch.numpy_weights(model)
    for i, group in enumerate(opt.state_dict()["state"].values()):
        for k, v in group.items():
            tensors[f"opt.{i}.{k}"] = np.asarray(v.detach().numpy() if hasattr(v, "numpy") else v, dtype=np.float32)
    tmp = path.with_suffix(".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp),
              metadata={"empiricist": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)


def _restore(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer | None) -> None:
    import torch

    tensors, _ = read_checkpoint(path)
    w = {k: torch.from_numpy(tensors[k]) for k in LAYERS}
    with torch.no_grad():
        for name, (wk, bk) in MODULES.items():
            model[name].weight.copy_(w[wk].T)
            model[name].bias.copy_(w[bk])
    if opt is None:
        return
    state = opt.state_dict()
    params = list(state["param_groups"][0]["params"])
    restored = {}
    for i, pid in enumerate(params):
        keys = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"opt.{i}.")}
        if keys:
            restored[pid] = {k: torch.tensor(float(v.reshape(-1)[0])) if k == "step" else torch.from_numpy(v) for k, v in keys.items()}
    state["state"] = restored
    opt.load_state_dict(state)


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}.safetensors"


def train(data: dict[str, np.ndarray], cfg: TrainConfig, out: str | Path, meta: dict[str, Any],
          init: str | Path | None = None) -> list[Path]:
    """Train on ``data`` (``x`` input rows, ``action``, ``legal`` mask, ``policy`` targets or None,
    ``value``) and write a checkpoint at each of ``cfg.steps`` under ``out``; resumes from the latest
    checkpoint there. ``init``: start from another network's weights (expert iteration)."""
    import torch

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    x, legal, value = data["x"], data["legal"], data["value"]
    n = len(x)
    if n == 0:
        raise InputError("no training positions", field="data")
    shape = NetShape(int(meta["obs_dim"]), int(meta["n_actions"]), cfg.width)
    model = _Torch.build(shape, cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    done = [s for s in cfg.steps if (folder / checkpoint_name(s)).is_file()]
    start = 0
    if done:
        start = done[-1]
        _restore(folder / checkpoint_name(start), model, opt)
    elif init is not None:
        _restore(Path(init), model, None)  # weights only: a fresh optimiser
    tx, tlegal, tvalue = torch.from_numpy(x), torch.from_numpy(legal), torch.from_numpy(value.astype(np.float32))
    target = torch.from_numpy(data["policy"]) if data.get("policy") is not None else None
    ta = torch.from_numpy(data["action"].astype(np.int64))
    base = {**meta, "width": cfg.width, "params": shape.params, "train": cfg.to_dict(),
            "flops_per_sample": 6 * shape.params}
    for step in range(start, cfg.steps[-1]):
        idx = torch.from_numpy(np.random.default_rng([cfg.seed, step]).integers(0, n, cfg.batch))
        logits, v = _Torch.forward(model, tx[idx])
        logits = logits.masked_fill(~tlegal[idx], -1e9)
        logp = torch.log_softmax(logits, dim=1)
        if target is None:
            policy_loss = -logp.gather(1, ta[idx, None]).mean()
        else:
            policy_loss = -(target[idx] * logp).sum(1).mean()
        loss = policy_loss + cfg.value_weight * ((v - tvalue[idx]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step + 1 in cfg.steps:
            samples = (step + 1) * cfg.batch
            _save(folder / checkpoint_name(step + 1), model, opt,
                  {**base, "step": step + 1, "samples": samples, "train_flops": 6 * shape.params * samples,
                   "loss": float(loss.detach())})
    return [folder / checkpoint_name(s) for s in cfg.steps]


def log2_steps(lo: int, hi: int) -> tuple[int, ...]:
    """Checkpoints at every power of two from ``2**lo`` to ``2**hi``."""
    return tuple(2**k for k in range(lo, hi + 1))
