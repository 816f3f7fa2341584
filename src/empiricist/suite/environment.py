"""The environment that trained a model, recorded with it so that a re-run can say why bytes differ.

What decides a model's bytes, as measured on our machines (docs/benchmarks.md, "Reproducibility"):
- ``torch_threads``: 1 and 2 threads give different weights, eager or compiled (matmul blocking);
- the CPU (``cpu_model``, ``cpu_flags``): oneDNN picks AMX, AVX-512 or AVX2 kernels per CPU;
- ``compile`` and ``precision``: different kernels, different rounding;
- the library versions (``versions``, ``torch_build_sha``: MKL/oneDNN builds).
Run-to-run nondeterminism of compiled multi-thread training (inductor's atomic adds) is removed by
``suite.step.deterministic``; ``deterministic`` records that it was on.
"""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                "amx_tile", "amx_bf16", "amx_int8")
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy")


def _cpuinfo() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    model, flags = "", []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:
            flags = sorted(value.split())
    return model or platform.processor() or platform.machine(), flags


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _sha16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(threads: int, compile: bool, precision: str) -> dict[str, Any]:
    """The fields that can change a trained model's bytes (see the module docstring)."""
    model, flags = _cpuinfo()
    return {
        "cpu_model": model,
        "cpu_flags": [f for f in KERNEL_FLAGS if f in flags],
        "cpu_flags_sha": _sha16(" ".join(flags)),
        "logical_cpus": len(os.sched_getaffinity(0)),
        "torch_threads": threads,
        "compile": compile,
        "precision": precision,
        "deterministic": True,
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "versions": {name: _version(name) for name in LIBRARIES},
        "torch_build_sha": _sha16(torch.__config__.show()),
    }


def fingerprint_diff(recorded: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ (a field missing on one side shows as None there); versions per library."""
    recorded = recorded or {}
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(recorded) | set(now)):
        a, b = recorded.get(key), now.get(key)
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a or {}, b or {}
            out.update({f"{key}.{k}": (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)})
        elif a != b:
            out[key] = (a, b)
    return out
