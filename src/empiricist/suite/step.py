"""One optimiser step of a suite model, in each precision the trainer offers.

Every caller that trains (the suite trainer, retraining for attribution, ``suite verify``, the benchmarks)
goes through ``Stepper`` so that "the same config" means the same arithmetic everywhere.

Precisions (``TrainConfig.precision``):
- ``fp32``: plain fp32 weights and compute;
- ``bf16``: fp32 weights, bf16 autocast (every matmul casts its weights each step);
- ``bf16-master``: a bf16 compute copy of the model with fp32 master weights in the optimiser. The copy's
  weights are the bf16 rounding of the master weights at every step, so checkpoints, snapshots and
  resumes see only the fp32 model. It uses HF's eager attention: on CPU, SDPA's flash kernel in bf16
  spent half the step in its backward (benchmarks/bench_train.py; docs/benchmarks.md).

Determinism: inductor's CPU code sums the embedding gradient with atomic adds when it runs on more than
one thread, so two runs of the same compiled config gave different weights (measured: only
``embed_in.weight`` differed, by ~5e-8 after 3 steps). ``deterministic()`` turns on torch's deterministic
algorithms for the span of a training run, which makes inductor emit ordered code; it cost no measurable
speed.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from empiricist._malloc import keep_freed_memory

if TYPE_CHECKING:
    from empiricist.suite.config import TrainConfig
    from empiricist.suite.distributed import DataParallel
    from empiricist.suite.objective import Objective

PRECISIONS = ("fp32", "bf16", "bf16-master")


def configure_threads(threads: int) -> int:
    """Pin torch's intra-op threads (0 = all cores): results depend on it, so it is part of the config."""
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels (incl. inductor's) for a training span; restores the caller's setting."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU (AVX-512 bf16 / AMX use it); master weights and optimiser stay fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lm_loss(model: torch.nn.Module, batch: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
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


class Stepper:
    """Forward, backward, clip and AdamW step of ``model`` (the fp32 master) under one precision.

    With ``compile`` the forward+loss is compiled with inductor (fuses the small elementwise ops of small
    models); the optimiser step stays eager (compiling it recompiles whenever the scheduled learning rate,
    a Python float, changes). ``bf16-master`` runs eager: compiling it gained nothing and hit an inductor
    codegen error with SDPA (docs/benchmarks.md).
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, precision: str, compile: bool = False,
                 parallel: DataParallel | None = None, objective: Objective | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
        keep_freed_memory()  # a step re-faults its activations' pages otherwise: empiricist/_malloc.py
        self.model, self.precision, self.grad_clip = model, precision, cfg.grad_clip
        self.parallel = parallel  # data parallel: this rank's share of the batch; gradients averaged over ranks
        self.opt = make_optimizer(model, cfg)
        self._master = [p for p in model.parameters()]
        if precision == "bf16-master":
            self.compute = copy.deepcopy(model).to(torch.bfloat16)
            self.compute.config._attn_implementation = "eager"
            self._compute_params = list(self.compute.parameters())
            self.compute.train()
        else:
            self.compute = model
        loss_precision = "fp32" if precision == "bf16-master" else precision

        def loss_fn(batch: torch.Tensor) -> torch.Tensor:
            return lm_loss(self.compute, batch, loss_precision)

        self._loss = torch.compile(loss_fn) if compile and precision != "bf16-master" else loss_fn
        self.objective = objective

    def _objective_loss(self, batch: torch.Tensor, extra: Any) -> torch.Tensor:
        """The objective's loss (eager): what it needs varies each step, which compiling would not pay for."""
        assert self.objective is not None
        with autocast("fp32" if self.precision == "bf16-master" else self.precision):
            return self.objective.loss(self.compute, batch, extra)

    def sync(self) -> None:
        """Make the compute copy the bf16 rounding of the master weights (after a load or a step)."""
        if self.compute is not self.model:
            with torch.no_grad():
                torch._foreach_copy_(self._compute_params, self._master)

    def __call__(self, batch: torch.Tensor, lr: float, extra: Any = None) -> torch.Tensor:
        """One step at learning rate ``lr``; returns the (detached) loss before the step (data parallel:
        ``batch`` is this rank's rows, and the loss returned is the global batch's). ``extra``: what the
        objective prepared for this step (with an objective only)."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss = self._loss(batch) if self.objective is None else self._objective_loss(batch, extra)
        loss.backward()
        if self.compute is not self.model:
            for master, p in zip(self._master, self._compute_params, strict=True):
                master.grad = p.grad.float()
                p.grad = None
        loss = loss.detach()
        if self.parallel is not None:
            self.parallel.average([p.grad for p in self._master] + [loss.view(1)])
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self._master, self.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sync()
        return loss
