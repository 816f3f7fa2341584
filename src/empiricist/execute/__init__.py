"""Run independent units of work on this machine or a Ray cluster, with the same results (issue 16).

``run_jobs(jobs, executor=...)`` is the one entry point: suite training, attribution retrainings, the
sycophancy counterfactuals and experiment grids hand it their units. See execute/jobs.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from empiricist.errors import InputError
from empiricist.execute.jobs import (
    EXECUTOR_ENV,
    RAY_ADDRESS_ENV,
    Executor,
    Job,
    available_cores,
    verify_artifacts,
)
from empiricist.execute.local import LocalExecutor
from empiricist.execute.ray_executor import RayExecutor

__all__ = ["Executor", "Job", "LocalExecutor", "RayExecutor", "available_cores", "executor_from", "run_jobs"]


def executor_from(name: str | None = None, address: str | None = None) -> Executor:
    """The executor a command line or environment names: ``local`` (default) or ``ray``.

    ``name`` falls back to ``$EMPIRICIST_EXECUTOR``; a Ray ``address`` (``auto``, ``HOST:PORT``) to
    ``$EMPIRICIST_RAY_ADDRESS``, then ``auto``. An address (given or in the environment) implies Ray.
    The CLI is the one caller that reads the environment; library calls pass an executor or get local."""
    address = address or os.environ.get(RAY_ADDRESS_ENV)
    name = name or os.environ.get(EXECUTOR_ENV) or ("ray" if address else "local")
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address or "auto")
    raise InputError(f"unknown executor {name!r}: choose local or ray (--executor, ${EXECUTOR_ENV})",
                     field="--executor")


def run_jobs(jobs: Sequence[Job], *, cores: int | None = None, progress: bool = True, desc: str = "jobs",
             executor: Executor | None = None) -> list[Any]:
    """Each job's result, in job order, on ``executor`` (default: this machine, ``cores`` of it); the
    artifacts jobs name are verified against their manifests before the results are handed back."""
    results = (executor or LocalExecutor()).run(jobs, cores=cores, progress=progress, desc=desc)
    verify_artifacts(jobs)
    return results
