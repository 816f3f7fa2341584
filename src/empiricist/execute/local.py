"""This machine's executor: independent trainings side by side in a process pool.

Small models use two threads badly (m1/m2 gain little from the second core), so two of them trained at
once with one thread each finish sooner than one after another with two; each job runs with exactly
its configured threads, so a scheduled model is byte-identical to the same config trained alone
(tests/test_schedule.py).

Packing: jobs start in order while the threads in flight fit in ``cores``; a job needing all cores runs
alone. Workers are "spawn" processes (forking a process that already ran torch is unsafe), kept for the
next call in the same process: starting one costs 3-7 s of imports, more than a CI-sized training (a
two-model tiny suite took 9-10 s through a fresh pool, 1.6-2.2 s inline, 2 cores). A pool is reused only
while the worker count, environment, working directory and ``sys.path`` it was started with still hold,
and is dropped after a worker dies. When at most one job can run at a time everything runs inline.
``EMPIRICIST_MAX_WORKERS`` caps concurrency (1 turns the pool off).
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing
import os
import sys
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from empiricist.errors import EmpiricistError
from empiricist.execute.jobs import Job, available_cores, call, failure, job_threads, raise_failures

MAX_WORKERS_ENV = "EMPIRICIST_MAX_WORKERS"


def _max_workers(cores: int) -> int:
    raw = os.environ.get(MAX_WORKERS_ENV)
    if raw is None:
        return cores
    try:
        return max(1, int(raw))
    except ValueError:
        raise EmpiricistError(f"${MAX_WORKERS_ENV} must be a whole number, got {raw!r}") from None


class LocalExecutor:
    """Jobs on this machine's ``cores`` (default: all this process may use)."""

    name = "local"

    def run(self, jobs: Sequence[Job], *, cores: int | None = None, progress: bool = True,
            desc: str = "jobs") -> list[Any]:
        cores = cores or available_cores()
        need = [job_threads(j, cores) for j in jobs]
        workers = min(_max_workers(cores), len(jobs), max((cores // n for n in need), default=1))
        results: list[Any] = [None] * len(jobs)
        errors: dict[int, BaseException] = {}
        with tqdm(total=len(jobs), desc=desc, unit="job", disable=not progress or len(jobs) < 2) as bar:
            if workers <= 1:
                for i, job in enumerate(jobs):
                    try:
                        results[i] = call(job.fn, job.kwargs, need[i])
                    except Exception as e:  # noqa: BLE001  (reported below; the rest still run, their artifacts kept)
                        errors[i] = e
                    bar.update(1)
            else:
                self._pooled(jobs, need, cores, workers, results, errors, bar)
        raise_failures(jobs, errors)
        return results

    @staticmethod
    def _pooled(jobs: Sequence[Job], need: list[int], cores: int, workers: int, results: list[Any],
                errors: dict[int, BaseException], bar: tqdm) -> None:
        pool = _pool(workers)
        running: dict[cf.Future, int] = {}
        nxt = 0
        try:
            while nxt < len(jobs) or running:
                in_use = sum(need[i] for i in running.values())
                while nxt < len(jobs) and len(running) < workers and (not running or in_use + need[nxt] <= cores):
                    running[pool.submit(call, jobs[nxt].fn, jobs[nxt].kwargs, need[nxt])] = nxt
                    in_use += need[nxt]
                    nxt += 1
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    i = running.pop(fut)
                    try:
                        results[i] = fut.result()
                    except cf.process.BrokenProcessPool as e:  # a worker died (killed, out of memory):
                        raise failure(jobs[i], e) from e     # the pool is gone, nothing more runs in it
                    except Exception as e:  # noqa: BLE001  (reported by raise_failures, naming the job)
                        errors[i] = e
                    bar.update(1)
        except BaseException:
            _drop_pool(wait=True)  # the jobs in flight finish (they write artifacts atomically); none start
            raise


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
        atexit.register(_drop_pool, True)  # shut down while the interpreter can still run its callbacks
    return _POOL[1]


def _drop_pool(wait: bool) -> None:
    global _POOL
    atexit.unregister(_drop_pool)
    if _POOL is not None:
        _POOL[1].shutdown(wait=wait, cancel_futures=True)
        _POOL = None
