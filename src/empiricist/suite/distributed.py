"""Data-parallel training of one suite model: torch.distributed ranks under Ray Train (issue 16).

Every rank runs the trainer's own loop (train.py) on its slice of each global batch: the order's batch
for step ``s`` is split row-wise, rank ``r`` taking rows ``r·B/W … (r+1)·B/W``, so the documents of every
global batch are exactly those of a single-process run. Each rank's loss is the mean over its rows; the
gradients are averaged over ranks, which is the gradient of the global batch's mean loss. The ranks then
take the same optimiser step and hold the same weights. Only rank 0 writes (checkpoints, loss log, resume
snapshots, the manifest); every rank resumes from the same snapshot.

Not byte-identical to one process: a rank's matmuls see B/W rows and the gradient sum is taken in another
order, so floats round differently and the runs drift apart slowly. The stated tolerance (the final loss
within ``LOSS_TOLERANCE`` of the single-process run's) is what tests/test_ray.py checks and
docs/execute.md reports. Two runs with the same world size and threads gave the same bytes (checked
once; docs/execute.md).

The process group is whatever launched the ranks: Ray Train's ``TorchTrainer`` (suite.py:
``train_data_parallel``, gloo: the trainer runs on CPU), or torchrun (call ``train_model(...,
parallel=DataParallel.current())``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from empiricist.errors import EmpiricistError, InputError

# |final loss (data parallel) - final loss (one process)|; measured on the tiny preset at 2 ranks: equal to
# 7 digits after 40 steps, 1.2e-7 after 200 (benchmarks/bench_ray.py). Drift grows with steps: 1e-3 is the
# stated bound, not the expected difference.
LOSS_TOLERANCE = 1e-3
RETRIES = 3  # restarts of the whole worker group after a dead worker (each resumes from the last snapshot)


@dataclass(frozen=True)
class DataParallel:
    """This process's place in an initialised torch.distributed group."""

    rank: int
    world: int

    @classmethod
    def current(cls) -> DataParallel:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise EmpiricistError("data-parallel training needs an initialised torch.distributed process group "
                                  "(Ray Train's TorchTrainer or torchrun starts one)")
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch."""
        if batch.shape[0] % self.world:
            raise InputError(f"batch size {batch.shape[0]} does not split over {self.world} data-parallel workers",
                             field="train.batch_size")
        rows = batch.shape[0] // self.world
        return batch[self.rank * rows:(self.rank + 1) * rows]

    def average(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor with its mean over ranks, in one all-reduce.

        Hand-written rather than DistributedDataParallel: DDP's hooks sit on the module that runs the
        backward, which under ``bf16-master`` is the bf16 compute copy (so it would average bf16
        gradients), and it wraps the model (renaming the state dict the checkpoints are written from).
        One all-reduce of the fp32 master gradients after the backward keeps every precision's step the
        single-process step."""
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        flat = _flatten_dense_tensors(tensors)
        dist.all_reduce(flat)
        flat /= self.world
        for t, avg in zip(tensors, _unflatten_dense_tensors(flat, tensors), strict=True):
            t.copy_(avg)

    def gather(self, shard: torch.Tensor) -> torch.Tensor:
        """Every rank's ``shard``, concatenated in rank order (the global batch again)."""
        import torch.distributed as dist

        parts = [torch.empty_like(shard) for _ in range(self.world)]
        dist.all_gather(parts, shard.contiguous())
        return torch.cat(parts)

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()
