"""The trainer: one readable loop (nanoGPT style) that trains one suite model on the recorded order.

Properties the rest of empiricist relies on:
- deterministic: same config, seed, store and thread count give byte-identical weights;
- resumable: a snapshot (weights, optimiser, step) is written atomically every ``resume_every`` steps
  and at each checkpoint; a killed run restarts from it and ends with the same weights as an
  uninterrupted one, because the data order and LR schedule are pure functions of the step;
- open: checkpoints are plain HF folders (safetensors) at Pythia-style log-spaced steps.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    sha256_bytes,
    sha256_file,
    write_manifest,
)
from empiricist.data.order import TrainingOrder
from empiricist.errors import EmpiricistError
from empiricist.suite.config import ModelSize, TrainConfig
from empiricist.suite.environment import fingerprint
from empiricist.suite.model import build_model, load_checkpoint_model, quiet_transformers
from empiricist.suite.step import Stepper, configure_threads, deterministic

if TYPE_CHECKING:
    from empiricist.suite.distributed import DataParallel
    from empiricist.suite.objective import Objective

StepCallback = Callable[[int, float], None]
STOP_FILE = "STOP"  # present in a model folder: the trainer stops before its next step (monitor/ writes it)


def step_batch(order: TrainingOrder, step: int, parallel: DataParallel | None = None) -> torch.Tensor:
    """The rows step ``step`` trains on: its batch from the order (data parallel: this rank's share)."""
    batch = torch.from_numpy(order.batch(step))
    return batch if parallel is None else parallel.shard(batch)


def train_step(stepper: Stepper, cfg: TrainConfig, order: TrainingOrder, step: int) -> float:
    """Step ``step`` of the recipe: its batch, its scheduled learning rate; the loss."""
    return float(stepper(step_batch(order, step, stepper.parallel), cfg.lr_at(step)))


def batch_digest(batch: torch.Tensor, parallel: DataParallel | None = None) -> str:
    """A hash of the global batch a step trained on (data parallel: every rank's rows, gathered; a
    collective call). Logged with the loss, so two runs' data orders can be compared step by step."""
    if parallel is not None:
        batch = parallel.gather(batch)
    return sha256_bytes(batch.numpy().tobytes())[:16]


# ---------------------------------------------------------------- snapshots and checkpoints
def _save_snapshot(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    with building(folder, overwrite=True) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {"step": step})
        write_manifest(tmp, kind="resume_snapshot", config={"step": step})


def _keep_for_verify(snapshot: Path, verify: Path) -> None:
    """Keep the last snapshot before the end as ``verify/``: ``suite verify`` replays from it to the end."""
    if is_complete(snapshot) and not is_complete(verify):
        import shutil

        with building(verify, overwrite=True) as tmp:
            for f in snapshot.iterdir():
                shutil.copy2(f, tmp / f.name)


def load_snapshot(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> int:
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
    parallel: DataParallel | None = None,
    init_from: Path | None = None,
    objective: Objective | None = None,
) -> Path:
    """Train one model into ``out_dir`` (resuming if a snapshot is there); returns ``out_dir``.

    ``out_dir`` gets ``checkpoints/step{N}/`` (HF folders), ``loss.jsonl`` and, when done, a manifest.
    One process trains a model at a time (a lock per model folder): a second one waits, then reuses it.
    ``parallel``: this process is one rank of a data-parallel run (suite/distributed.py); rank 0 holds
    the lock and writes, the other ranks only compute. ``init_from``: a checkpoint folder whose weights
    the run starts from (fine-tuning; its sha256 is recorded); ``objective``: a loss other than MLE
    (suite/objective.py), recorded in the manifest.
    """
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    if parallel is not None and not parallel.writer:
        return _train_locked(out_dir, size, cfg, order, vocab_size, tokenizer_path=tokenizer_path, info=info,
                             progress=progress, on_step=on_step, parallel=parallel, init_from=init_from,
                             objective=objective)
    with artifact_lock(out_dir):
        if is_complete(out_dir):
            return out_dir
        return _train_locked(out_dir, size, cfg, order, vocab_size, tokenizer_path=tokenizer_path, info=info,
                             progress=progress, on_step=on_step, parallel=parallel, init_from=init_from,
                             objective=objective)


def _train_locked(out_dir: Path, size: ModelSize, cfg: TrainConfig, order: TrainingOrder, vocab_size: int, *,
                  tokenizer_path: Path | None, info: dict[str, Any] | None, progress: bool,
                  on_step: StepCallback | None, parallel: DataParallel | None = None, init_from: Path | None = None,
                  objective: Objective | None = None) -> Path:
    if order.seq_len != cfg.seq_len or order.batch_size != cfg.batch_size:
        raise EmpiricistError("training order does not match the training config (seq_len/batch_size)")
    threads = configure_threads(cfg.threads_for(size))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    model = build_model(size, vocab_size, cfg.seq_len, seed=cfg.seed)
    extra_info: dict[str, Any] = {}
    if init_from is not None:  # before the Stepper copies the model; a resume snapshot still overrides it
        weights = Path(init_from) / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: the checkpoint to fine-tune from is missing")
        model.load_state_dict(load_checkpoint_model(init_from).state_dict())
        extra_info["init_from"] = {"path": str(init_from), "sha256": sha256_file(weights)}
    if objective is not None:
        extra_info["objective"] = objective.config()
    precision = cfg.precision_for(size)
    stepper = Stepper(model, cfg, precision, cfg.compile, parallel, objective)
    opt = stepper.opt
    writer = parallel is None or parallel.writer
    snapshot = out_dir / "resume"
    if writer:
        recover(snapshot)  # a kill between the swap's two renames left the previous snapshot aside: restore it
    if parallel is not None:
        parallel.barrier()  # every rank reads the snapshot rank 0 has recovered
    start = load_snapshot(snapshot, model, opt) if is_complete(snapshot) else 0
    stepper.sync()
    log_path = out_dir / "loss.jsonl"
    log = _read_log(log_path, before=start)
    ckpt_steps = set(cfg.checkpoint_steps())
    info = {**(info or {}), "precision": precision, "size": size.name, "n_params": size.n_params(vocab_size),
            "n_non_embedding_params": size.n_non_embedding_params(vocab_size), "threads": threads,
            "environment": fingerprint(threads, cfg.compile, precision), **extra_info}
    if parallel is not None:
        info["data_parallel"] = parallel.world  # not the single-process bytes: suite/distributed.py

    def checkpoint(step: int, loss: float | None) -> None:
        folder = out_dir / "checkpoints" / f"step{step}"
        if writer and not is_complete(folder):
            save_checkpoint(folder, model, step, {**info, "tokens_seen": step * cfg.tokens_per_step,
                                                  "train_loss": loss}, tokenizer_path)

    if start == 0:
        checkpoint(0, None)
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {size.name}", disable=not progress or not writer,
               unit="step")
    t0, loss_val = time.perf_counter(), math.nan
    with deterministic():
        for step in range(start, cfg.steps):
            if parallel is None and (out_dir / STOP_FILE).exists():  # a threshold policy's stop (monitor/)
                _stop(out_dir, snapshot, model, opt, step, log_path, log)
                bar.close()
                return out_dir
            batch = step_batch(order, step, parallel)
            extra = None
            if objective is not None:
                extra = objective.prepare(order, step)
                if parallel is not None:  # a per-row tensor splits like the batch; anything else cannot
                    if not isinstance(extra, torch.Tensor):
                        raise EmpiricistError(f"objective {objective.config().get('kind')} does not run data parallel")
                    extra = parallel.shard(extra)
            loss_val = float(stepper(batch, cfg.lr_at(step), extra))
            if not math.isfinite(loss_val):
                raise EmpiricistError(f"{size.name}: loss became {loss_val} at step {step}; lower the learning rate")
            done = step + 1
            logged = done % cfg.log_every == 0 or done == cfg.steps
            digest = batch_digest(batch, parallel) if logged else None  # every rank: a collective
            if not writer:
                continue
            if logged:
                log.append({"step": done, "loss": loss_val, "lr": cfg.lr_at(step), "tokens": done * cfg.tokens_per_step,
                            "batch_sha256": digest, "elapsed_s": round(time.perf_counter() - t0, 3)})
                _write_log(log_path, log)
            if done in ckpt_steps:
                checkpoint(done, loss_val)
            if done % cfg.resume_every == 0 or done in ckpt_steps:
                _write_log(log_path, log)
                if done == cfg.steps:
                    _keep_for_verify(snapshot, out_dir / "verify")
                _save_snapshot(snapshot, model, opt, done)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.3f}")
            if on_step is not None:
                on_step(done, loss_val)
    bar.close()
    if not writer:
        return out_dir
    final_loss = log[-1]["loss"] if log else loss_val
    write_manifest(out_dir, kind="suite_model", config={"size": size.__dict__, "train": cfg.__dict__},
                   inputs={"order": json.dumps(order.config(), sort_keys=True)},
                   extra={"final_loss": final_loss, "steps": cfg.steps, "tokens": cfg.steps * cfg.tokens_per_step,
                          "checkpoints": sorted(ckpt_steps), "info": info})
    return out_dir


def _stop(out_dir: Path, snapshot: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int,
          log_path: Path, log: list[dict[str, Any]]) -> None:
    """Stop before ``step`` because ``STOP`` is there: keep a snapshot to resume from once a person removes
    it, record why in ``stopped.json``, and leave the model without its completion manifest."""
    _write_log(log_path, log)
    if step > 0:
        _save_snapshot(snapshot, model, opt, step)
    reason = (out_dir / STOP_FILE).read_text(encoding="utf-8", errors="replace")
    atomic_write_json(out_dir / "stopped.json", {"step": step, "reason": reason,
                                                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    tqdm.write(f"{out_dir.name}: stopped before step {step} ({STOP_FILE} is present; remove it to resume)")


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
