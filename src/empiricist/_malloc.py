"""Keep freed heap memory for reuse instead of handing it back to the kernel (glibc malloc tuning).

Why: torch's CPU tensors come from ``malloc``. glibc serves large blocks (above its mmap threshold:
128 KB, rising to at most 32 MB) with fresh ``mmap`` pages and returns freed memory to the kernel, so
each training step faults its activations, logits and gradients in again, one 4 KB page at a time. In
the VMs we run on a fault costs microseconds: micro's bf16 steps took 35,000–43,000 faults each, and
m1–m3 trained 1.16–1.35× faster without them (``EMPIRICIST_MALLOC=default python
benchmarks/bench_train.py`` against the same without the variable; docs/benchmarks.md). jemalloc or tcmalloc
preloaded with ``LD_PRELOAD`` fix the same thing (Intel's PyTorch CPU guide recommends them), but a
preload must happen before the process starts, which an installed library cannot arrange; ``mallopt``
is glibc's run-time form of ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_``.

What it costs: a process keeps its peak heap until it exits (the peak itself does not grow). Results
are unchanged (allocation never changes arithmetic). ``EMPIRICIST_MALLOC=default`` leaves malloc alone;
on a C library other than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Tune glibc once per process (no mmap'd blocks, never trim, grow the heap 64 MB at a time);
    True when it is in effect."""
    if "applied" in _state:
        return _state["applied"]
    applied = False
    if os.environ.get("EMPIRICIST_MALLOC", "").lower() not in ("default", "off", "0"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            mallopt = None
        if mallopt is not None:
            applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)) \
                and bool(mallopt(_M_TOP_PAD, 64 << 20))
    _state["applied"] = applied
    return applied
