"""A Ray cluster as the executor: each job a Ray task asking for exactly its threads as CPUs.

The same ``call`` runs the job as on this machine, with the thread count resolved on the driver (a job
configured for "all cores" gets the driver's core count, not the node's), so the bytes do not depend on
which node ran it. Ray retries a task whose worker or node died (``max_retries``); an exception raised
by the job itself is not retried and is reported, naming the job, after the other jobs finished.
Workers read and write the workspace at the same paths as the driver: on more than one machine that is a
shared filesystem mounted at the same path on every node (docs/execute.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from empiricist.errors import EmpiricistError
from empiricist.execute.jobs import Job, available_cores, call, job_threads, raise_failures

RETRIES = 3  # per task, for dead workers and nodes (Ray's own default for tasks)


class RayExecutor:
    """Jobs as tasks on the Ray cluster at ``address`` (``auto``: the one this machine has joined)."""

    name = "ray"

    def __init__(self, address: str = "auto") -> None:
        self.address = address

    def connect(self) -> Any:
        try:
            import ray
        except ImportError:
            raise EmpiricistError('the Ray executor needs Ray: pip install "empiricist[ray]"') from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR",
                         runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise EmpiricistError(f"cannot reach a Ray cluster at {self.address!r} ({e}): start one with "
                                      "`ray start --head`, or give its address with --address HOST:PORT "
                                      "(or $EMPIRICIST_RAY_ADDRESS)") from None
        return ray

    def run(self, jobs: Sequence[Job], *, cores: int | None = None, progress: bool = True,
            desc: str = "jobs") -> list[Any]:
        if not jobs:
            return []
        ray = self.connect()
        cores = cores or available_cores()
        task = ray.remote(call)
        refs = {}
        for i, j in enumerate(jobs):
            threads = job_threads(j, cores)
            refs[task.options(num_cpus=threads, max_retries=RETRIES, retry_exceptions=False,
                              name=j.name).remote(j.fn, j.kwargs, threads)] = i
        results: list[Any] = [None] * len(jobs)
        errors: dict[int, BaseException] = {}
        pending = list(refs)
        with tqdm(total=len(jobs), desc=desc, unit="job", disable=not progress or len(jobs) < 2) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = refs[ref]
                    try:
                        results[i] = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:  # the job raised: its own error, unwrapped
                        errors[i] = getattr(e, "cause", None) or e
                    except ray.exceptions.RayError as e:  # retries used up: the worker or node kept dying
                        errors[i] = e
                    bar.update(1)
        raise_failures(jobs, errors)
        return results

