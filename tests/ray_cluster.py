"""A Ray cluster of real nodes on this machine, for tests/test_ray.py and benchmarks/bench_ray.py.

Each node is a ``ray start`` with one CPU, its own temp dir (so its own object store and logs) and a
small object store; ``stop`` kills exactly the processes of those nodes (found by their temp dir in
the command line), never another Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
COMMON = ["--num-cpus=1", "--object-store-memory=200000000", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]


def start(n_nodes: int, port: int) -> tuple[str, list[str]]:
    """(the head's address, each node's temp dir, head first)."""
    import ray

    dirs = [tempfile.mkdtemp(prefix="ray0-", dir="/tmp")]  # short: socket paths
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", f"--temp-dir={dirs[0]}",
                        "--include-dashboard=false", *COMMON], check=True, capture_output=True, env=ENV)
        # Ray maps 127.0.0.1 to this machine's address (services.resolve_ip_for_localhost)
        address = f"{ray.util.get_node_ip_address()}:{port}"
        for _ in range(n_nodes - 1):
            join(address, dirs)
    except BaseException:
        stop(dirs)
        raise
    return address, dirs


def join(address: str, dirs: list[str]) -> str:
    """Start one more worker node (one CPU) in the cluster; its temp dir is appended to ``dirs``."""
    d = tempfile.mkdtemp(prefix=f"ray{len(dirs)}-", dir="/tmp")
    dirs.append(d)
    subprocess.run([RAY, "start", f"--address={address}", f"--temp-dir={d}", *COMMON], check=True,
                   capture_output=True, env=ENV)
    return d


def node_pids(temp_dir: str) -> list[int]:
    """Processes of the node whose temp dir is ``temp_dir`` (its raylet, workers, agents, GCS)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if temp_dir in cmd:
                pids.append(int(proc.name))
    return pids


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(dirs: list[str]) -> None:
    """Disconnect this process and kill the nodes (workers first), then remove their temp dirs."""
    import ray

    ray.shutdown()
    for d in reversed(dirs):
        kill(node_pids(d))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
