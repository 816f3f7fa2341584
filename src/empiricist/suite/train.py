"""The trainer: one readable loop (nanoGPT style) that trains one suite model on the recorded order.

Properties the rest of empiricist relies on:
- deterministic: same config, seed, store and thread count give byte-identical weights;
- resumable: a snapshot (weights, optimiser, step) is written atomically every ``resume_every`` steps
  and at each checkpoint; a killed run restarts from it and ends with the same weights as an
  uninterrupted one, because the data order and LR schedule are pure functions of the step;
- open: checkpoints are plain HF folders (safetensors) at Pythia-style log-spaced steps.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from empiricist.artifacts import (
    artifact_lock,
    atomic_write_json,
    building,
    is_complete,
    recover,
    write_manifest,
)
from empiricist.data.order import TrainingOrder
from empiricist.errors import EmpiricistError
from empiricist.suite.config import ModelSize, TrainConfig
from empiricist.suite.model import build_model, quiet_transformers

StepCallback = Callable[[int, float], None]


def configure_threads(threads: int) -> int:
    """Pin torch's intra-op threads (0 = all cores): results depend on it, so it is part of the config."""
    import os

    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU (AVX-512 bf16 / AMX use it); master weights and optimiser stay fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lm_loss(model: torch.nn.Module, batch: torch.Tensor, precision: str) -> torch.Tensor:
    """Mean next-token cross-entropy of a (B, T+1) token batch; logits upcast to fp32 for the loss."""
    with autocast(precision):
        logits = model(input_ids=batch[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not biases, norms), as in GPT-NeoX."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=True)


def make_step_fns(model: torch.nn.Module, opt: torch.optim.Optimizer, precision: str, compile: bool
                  ) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[], None]]:
    """The loss and optimiser-step functions. With ``compile`` the forward+loss is compiled with inductor,
    which fuses the many small elementwise ops that dominate small models on CPU; the optimiser step stays
    eager (compiling it would recompile whenever the scheduled learning rate, a Python float, changes)."""
    def loss_fn(batch: torch.Tensor) -> torch.Tensor:
        return lm_loss(model, batch, precision)

    if not compile:
        return loss_fn, opt.step
    return torch.compile(loss_fn), opt.step


# ---------------------------------------------------------------- snapshots and checkpoints
def _save_snapshot(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    with building(folder, overwrite=True) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {"step": step})
        write_manifest(tmp, kind="resume_snapshot", config={"step": step})


def _load_snapshot(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> int:
    model.load_state_dict(load_file(folder / "model.safetensors"))
    # weights_only: never unpickle arbitrary objects, even from our own folders.
    opt.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    return int(json.loads((folder / "state.json").read_text())["step"])


def save_checkpoint(
    folder: Path, model: torch.nn.Module, step: int, info: dict[str, Any], tokenizer_path: Path | None
) -> None:
    """An HF model folder (config.json, model.safetensors, tokenizer) plus our provenance file."""
    quiet_transformers()
    with building(folder, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer_path is not None:
            from empiricist.data.tokenizer import save_hf_tokenizer

            save_hf_tokenizer(tokenizer_path, tmp)
        atomic_write_json(tmp / "empiricist.json", {**info, "step": step})
        write_manifest(tmp, kind="checkpoint", config={"step": step, **info.get("config_ref", {})})


# ---------------------------------------------------------------- the loop
def train_model(
    out_dir: str | Path,
    size: ModelSize,
    cfg: TrainConfig,
    order: TrainingOrder,
    vocab_size: int,
    *,
    tokenizer_path: Path | None = None,
    info: dict[str, Any] | None = None,
    progress: bool = True,
    on_step: StepCallback | None = None,
) -> Path:
    """Train one model into ``out_dir`` (resuming if a snapshot is there); returns ``out_dir``.

    ``out_dir`` gets ``checkpoints/step{N}/`` (HF folders), ``loss.jsonl`` and, when done, a manifest.
    One process trains a model at a time (a lock per model folder): a second one waits, then reuses it.
    """
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    with artifact_lock(out_dir):
        if is_complete(out_dir):
            return out_dir
        return _train_locked(out_dir, size, cfg, order, vocab_size, tokenizer_path=tokenizer_path, info=info,
                             progress=progress, on_step=on_step)


def _train_locked(out_dir: Path, size: ModelSize, cfg: TrainConfig, order: TrainingOrder, vocab_size: int, *,
                  tokenizer_path: Path | None, info: dict[str, Any] | None, progress: bool,
                  on_step: StepCallback | None) -> Path:
    if order.seq_len != cfg.seq_len or order.batch_size != cfg.batch_size:
        raise EmpiricistError("training order does not match the training config (seq_len/batch_size)")
    threads = configure_threads(cfg.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    model = build_model(size, vocab_size, cfg.seq_len, seed=cfg.seed)
    opt = make_optimizer(model, cfg)
    snapshot = out_dir / "resume"
    recover(snapshot)  # a kill between the swap's two renames left the previous snapshot aside: restore it
    start = _load_snapshot(snapshot, model, opt) if is_complete(snapshot) else 0
    log_path = out_dir / "loss.jsonl"
    log = _read_log(log_path, before=start)
    ckpt_steps = set(cfg.checkpoint_steps())
    info = {**(info or {}), "precision": cfg.precision_for(size), "size": size.name, "n_params": size.n_params(vocab_size),
            "n_non_embedding_params": size.n_non_embedding_params(vocab_size), "threads": threads}

    def checkpoint(step: int, loss: float | None) -> None:
        folder = out_dir / "checkpoints" / f"step{step}"
        if not is_complete(folder):
            save_checkpoint(folder, model, step, {**info, "tokens_seen": step * cfg.tokens_per_step,
                                                  "train_loss": loss}, tokenizer_path)

    if start == 0:
        checkpoint(0, None)
    precision = cfg.precision_for(size)
    loss_fn, opt_step = make_step_fns(model, opt, precision, cfg.compile)
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {size.name}", disable=not progress, unit="step")
    t0, loss_val = time.perf_counter(), math.nan
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        batch = torch.from_numpy(order.batch(step))
        loss = loss_fn(batch)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt_step()
        opt.zero_grad(set_to_none=True)
        loss_val = float(loss.detach())
        if not math.isfinite(loss_val):
            raise EmpiricistError(f"{size.name}: loss became {loss_val} at step {step}; lower the learning rate")
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.append({"step": done, "loss": loss_val, "lr": cfg.lr_at(step), "tokens": done * cfg.tokens_per_step,
                        "elapsed_s": round(time.perf_counter() - t0, 3)})
            _write_log(log_path, log)
        if done in ckpt_steps:
            checkpoint(done, loss_val)
        if done % cfg.resume_every == 0 or done in ckpt_steps:
            _write_log(log_path, log)
            _save_snapshot(snapshot, model, opt, done)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_val:.3f}")
        if on_step is not None:
            on_step(done, loss_val)
    bar.close()
    final_loss = log[-1]["loss"] if log else loss_val
    write_manifest(out_dir, kind="suite_model", config={"size": size.__dict__, "train": cfg.__dict__},
                   inputs={"order": json.dumps(order.config(), sort_keys=True)},
                   extra={"final_loss": final_loss, "steps": cfg.steps, "tokens": cfg.steps * cfg.tokens_per_step,
                          "checkpoints": sorted(ckpt_steps), "info": info})
    return out_dir


def _read_log(path: Path, before: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["step"] <= before]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    from empiricist.artifacts import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_loss_curve(model_dir: str | Path) -> np.ndarray:
    """(steps, losses) as a 2×N array from a model folder's ``loss.jsonl``."""
    rows = _read_log(Path(model_dir) / "loss.jsonl", before=10**18)
    return np.array([[r["step"] for r in rows], [r["loss"] for r in rows]], dtype=float)
