"""Units of independent work and the one entry point that runs them, on whichever executor was chosen.

A ``Job`` is ``fn(**kwargs)`` with the threads it was configured with. Results depend on the thread count,
so every executor runs a job with exactly those threads: a model is byte-identical whether it trained
alone, beside others in a local pool, or on a Ray node (tests/test_schedule.py, tests/test_ray.py).
Jobs are content-addressed by their callers (each writes an artifact named by what it computes, and a
caller submits only the jobs whose artifact is missing), so a killed run resumes and no unit is computed
twice whoever ran it.

Executors: ``LocalExecutor`` (execute/local.py, the default: this machine's cores) and ``RayExecutor``
(execute/ray_executor.py: a Ray cluster; ``ray`` is imported only when one is used). The executor is a
value passed down from the CLI (``--executor``, ``--address``) or the library call, never a global.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from empiricist._malloc import keep_freed_memory
from empiricist.errors import EmpiricistError

EXECUTOR_ENV = "EMPIRICIST_EXECUTOR"
RAY_ADDRESS_ENV = "EMPIRICIST_RAY_ADDRESS"


@dataclass(frozen=True)
class Job:
    """``fn(**kwargs)`` needing ``threads`` cores (0: all). ``fn`` must be a module-level function.
    ``artifact``: the folder (with a manifest) the job writes, which the driver verifies when it is done."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    artifact: str | None = None


class Executor(Protocol):
    """Runs jobs and returns their results in job order; raises ``EmpiricistError`` naming every job
    that failed, after the others finished (their artifacts are kept for the re-run). ``cores``: the
    caller's count of this machine's cores (what a job's 0 threads means; locally, also the pool's size)."""

    name: str

    def run(self, jobs: Sequence[Job], *, cores: int | None = None, progress: bool = True,
            desc: str = "jobs") -> list[Any]: ...


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def job_threads(job: Job, cores: int) -> int:
    """The threads a job runs with: its own count, or (0) every core of the machine that configured it,
    so that the count, and with it the bytes, never depend on where the job lands."""
    return min(job.threads or cores, cores)


def call(fn: Callable[..., Any], kwargs: dict[str, Any], threads: int) -> Any:
    """One job in whatever process runs it, with exactly ``threads`` torch threads."""
    import torch

    keep_freed_memory()  # each worker process, before its first big tensor
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(**kwargs)
    finally:
        torch.set_num_threads(before)  # inline runs leave the caller's setting as it was


def failure(job: Job, error: BaseException) -> EmpiricistError:
    if isinstance(error, EmpiricistError):
        return error
    return EmpiricistError(f"job {job.name} failed: {type(error).__name__}: {error}")


def raise_failures(jobs: Sequence[Job], errors: dict[int, BaseException]) -> None:
    """One error naming every failed job (the first one's own message when only one failed). Jobs that
    failed with the same message are one line: a bad input shared by every unit reads once, not per unit."""
    if not errors:
        return
    first = min(errors)
    if len(errors) == 1:
        raise failure(jobs[first], errors[first]) from errors[first]
    groups: dict[str, list[str]] = {}
    for i, e in sorted(errors.items()):
        groups.setdefault(f"{type(e).__name__}: {e}", []).append(jobs[i].name)
    lines = "\n".join(f"  {names[0]}: {message}" if len(names) == 1 else
                      f"  {len(names)} jobs ({', '.join(names[:3])}{', …' if len(names) > 3 else ''}): {message}"
                      for message, names in groups.items())
    raise EmpiricistError(f"{len(errors)} of {len(jobs)} jobs failed (the others finished):\n{lines}") \
        from errors[first]


def verify_artifacts(jobs: Sequence[Job]) -> None:
    """The driver's check when merging: every job's artifact is complete and every file re-hashes to its
    manifest (a worker on another machine could have written a torn or foreign copy). One error naming
    each job whose artifact does not hold."""
    from empiricist.artifacts import is_complete, verify

    bad = []
    for job in jobs:
        if job.artifact is None:
            continue
        if not is_complete(job.artifact):
            bad.append(f"  {job.name}: {job.artifact} has no manifest (is the workspace shared by every node?)")
        elif problems := verify(job.artifact):
            bad.append(f"  {job.name}: {job.artifact}: {', '.join(problems[:5])} do not match the manifest")
    if bad:
        raise EmpiricistError(f"{len(bad)} of {len(jobs)} jobs left an artifact that does not verify "
                              "(re-run to recompute them):\n" + "\n".join(bad))
