"""Run independent trainings side by side: one mechanism for suites, retraining grids and experiments.

Small models use two threads badly (m1/m2 gain little from the second core), so two of them trained at
once with one thread each finish sooner than one after another with two. Results depend on the thread
count, so a job states the threads it was configured with and runs with exactly those: a scheduled model
is byte-identical to the same config trained alone (tests/test_schedule.py).

Packing: jobs start in order while the threads in flight fit in ``cores``; a job needing all cores runs
alone. Workers are "spawn" processes (forking a process that already ran torch is unsafe), kept for the
next ``run_jobs`` call in the same process: starting one costs 3-7 s of imports, more than a CI-sized
training (a two-model tiny suite took 9-10 s through a fresh pool, 1.6-2.2 s inline, 2 cores). A pool is
reused only while the worker count, environment, working directory and ``sys.path`` it was started with
still hold, and is dropped after a failure. When at most one job can run at a time everything runs
inline.
``EMPIRICIST_MAX_WORKERS`` caps concurrency (1 turns the scheduler off). A Ray backend (issue 16) can
slot in behind ``run_jobs``; a process pool is what one machine needs and adds no dependency.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from empiricist._malloc import keep_freed_memory
from empiricist.errors import EmpiricistError

MAX_WORKERS_ENV = "EMPIRICIST_MAX_WORKERS"


@dataclass(frozen=True)
class Job:
    """``fn(**kwargs)`` needing ``threads`` cores (0: all). ``fn`` must be a module-level function."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    threads: int = 1


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def _max_workers(cores: int) -> int:
    raw = os.environ.get(MAX_WORKERS_ENV)
    if raw is None:
        return cores
    try:
        return max(1, int(raw))
    except ValueError:
        raise EmpiricistError(f"${MAX_WORKERS_ENV} must be a whole number, got {raw!r}") from None


def _call(fn: Callable[..., Any], kwargs: dict[str, Any], threads: int) -> Any:
    import torch

    keep_freed_memory()  # each worker process, before its first big tensor
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(**kwargs)
    finally:
        torch.set_num_threads(before)  # inline runs leave the caller's setting as it was


def run_jobs(jobs: Sequence[Job], *, cores: int | None = None, progress: bool = True, desc: str = "jobs") -> list[Any]:
    """Each job's result, in job order. A failing job stops the rest and re-raises, naming the job."""
    cores = cores or available_cores()
    need = [min(j.threads or cores, cores) for j in jobs]
    workers = min(_max_workers(cores), len(jobs), max((cores // n for n in need), default=1))
    results: list[Any] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=desc, unit="job", disable=not progress or len(jobs) < 2)
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = _run_named(job, lambda j=job, n=need[i]: _call(j.fn, j.kwargs, n))
            bar.update(1)
        bar.close()
        return results
    pool = _pool(workers)
    running: dict[cf.Future, int] = {}
    nxt = 0
    try:
        while nxt < len(jobs) or running:
            in_use = sum(need[i] for i in running.values())
            while nxt < len(jobs) and len(running) < workers and (not running or in_use + need[nxt] <= cores):
                running[pool.submit(_call, jobs[nxt].fn, jobs[nxt].kwargs, need[nxt])] = nxt
                in_use += need[nxt]
                nxt += 1
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                results[i] = _run_named(jobs[i], fut.result)
                bar.update(1)
    except BaseException:
        _drop_pool(wait=True)  # the jobs in flight finish (they write artifacts atomically); none start
        raise
    finally:
        bar.close()
    return results


_POOL: tuple[tuple[Any, ...], cf.ProcessPoolExecutor] | None = None


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    """The process's worker pool for this many workers, started once and reused while its key holds."""
    global _POOL
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"))  # set per test
    key = (workers, env, os.getcwd(), tuple(sys.path))
    if _POOL is not None and _POOL[0] != key:
        _drop_pool(wait=True)
    if _POOL is None:
        _POOL = key, cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    return _POOL[1]


def _drop_pool(wait: bool) -> None:
    global _POOL
    if _POOL is not None:
        _POOL[1].shutdown(wait=wait, cancel_futures=True)
        _POOL = None


def _run_named(job: Job, get: Callable[[], Any]) -> Any:
    try:
        return get()
    except EmpiricistError:
        raise
    except Exception as e:
        raise EmpiricistError(f"job {job.name} failed: {type(e).__name__}: {e}") from e
