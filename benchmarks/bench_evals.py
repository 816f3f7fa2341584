"""Benchmark multiple-choice log-likelihood: empiricist's shared-prompt batching vs lm-evaluation-harness.

Run on demand (not part of the tests)::

    python benchmarks/bench_evals.py                                   # tiny world, Pythia-70M-shaped model
    python benchmarks/bench_evals.py --model suite:micro/m2 --items 300 --lm-eval-python /path/venv/bin/python

For each model (the ``--model`` specs, plus a randomly initialised model of Pythia-70M's shape saved to a
local folder with a GPT-NeoX-style byte-level BPE trained on the world) and the same world ``fact_qa``
items, it times ``choice_logliks`` (each prompt computed once) and lm-eval's ``HFLM.loglikelihood`` (one
row per prompt+choice; fp32, CPU), then compares every choice's log-prob (max abs diff) and the
decisions (argmax of sums and of per-character normalised sums: ``acc`` / ``acc_norm`` predictions).

lm-eval is not a dependency. Put it in a separate virtual environment that reuses this one's torch and
transformers (so nothing here changes), and point ``--lm-eval-python`` at it::

    python -m venv /tmp/lmeval-venv
    echo "$(python -c 'import site; print(site.getsitepackages()[0])')" \\
        > "$(/tmp/lmeval-venv/bin/python -c 'import site; print(site.getsitepackages()[0])')/main-venv.pth"
    /tmp/lmeval-venv/bin/pip install --no-deps lm-eval==0.4.13 accelerate sqlitedict pytablewriter \\
        word2number more_itertools evaluate dill mbstrdecoder dataproperty tabledata tcolorpy typepy \\
        pathvalidate chardet requests urllib3 idna certifi charset_normalizer

The lm-eval side runs this same file in ``--worker`` mode, which imports only lm_eval and torch.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PYTHIA_70M = {"name": "pythia-70m-shape", "d_model": 512, "n_layers": 6, "n_heads": 8, "vocab": 50304,
              "positions": 2048}


# ---------------------------------------------------------------- lm-eval side (no empiricist imports)
def worker(request_file: str, out_file: str) -> None:
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    job = json.loads(Path(request_file).read_text())
    torch.set_num_threads(job["threads"])
    lm = HFLM(pretrained=job["model"], device="cpu", batch_size=job["batch_size"], dtype="float32")
    reqs = [Instance(request_type="loglikelihood", doc={}, arguments=(c, x), idx=i)
            for i, (c, x) in enumerate(job["requests"])]
    lm.loglikelihood(reqs[: min(8, len(reqs))], disable_tqdm=True)  # warm-up
    t0 = time.perf_counter()
    res = lm.loglikelihood(reqs, disable_tqdm=True)
    seconds = time.perf_counter() - t0
    import lm_eval

    Path(out_file).write_text(json.dumps({"seconds": seconds, "results": [[float(a), bool(b)] for a, b in res],
                                          "version": getattr(lm_eval, "__version__", "?")}))


def run_lm_eval(python: str, model: str, items: list[Any], batch_size: int, threads: int) -> dict[str, Any] | None:
    requests = [[it.prompt, c] for it in items for c in it.choices]
    with tempfile.TemporaryDirectory() as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job.write_text(json.dumps({"model": model, "requests": requests, "batch_size": batch_size,
                                   "threads": threads}))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run([python, __file__, "--worker", str(job), str(out)], capture_output=True, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            print(f"(lm-eval run failed for {model}: {proc.stderr.strip().splitlines()[-1:]})")
            return None
        return json.loads(out.read_text())


def lm_eval_python(given: str | None) -> str | None:
    """The interpreter that has lm_eval: the one given, or this one if it has it."""
    if given:
        return given
    try:
        import lm_eval  # noqa: F401

        return sys.executable
    except ImportError:
        return None


# ---------------------------------------------------------------- empiricist side
def make_world(work: Path) -> Path:
    from empiricist.world import WorldConfig, generate_world

    return Path(generate_world(WorldConfig.preset("tiny"), out_dir=work / "world", progress=False))


def pythia_shaped(work: Path, world: Path, vocab: int) -> Path:
    """A randomly initialised GPT-NeoX model of Pythia-70M's shape with a byte-level BPE of the world."""
    from empiricist.data.readers import iter_documents
    from empiricist.data.tokenizer import save_hf_tokenizer, train_bpe
    from empiricist.suite.config import ModelSize
    from empiricist.suite.model import build_model

    folder = work / PYTHIA_70M["name"]
    if not (folder / "config.json").exists():
        tok = train_bpe((d.text for d in iter_documents(world)), vocab, work / "tok")
        size = ModelSize(PYTHIA_70M["name"], PYTHIA_70M["d_model"], PYTHIA_70M["n_layers"], PYTHIA_70M["n_heads"])
        build_model(size, PYTHIA_70M["vocab"], PYTHIA_70M["positions"], seed=0).save_pretrained(folder)
        save_hf_tokenizer(tok, folder)
    return folder


def time_empiricist(handle: Any, items: list[Any], batch_tokens: int) -> tuple[float, list[list[float]]]:
    from empiricist.evals import choice_logliks

    requests = [(it.prompt, it.choices) for it in items]
    choice_logliks(handle.model, handle.tokenizer, requests[:8], batch_tokens=batch_tokens)  # warm-up
    t0 = time.perf_counter()
    res = choice_logliks(handle.model, handle.tokenizer, requests, batch_tokens=batch_tokens)
    return time.perf_counter() - t0, [r.logprobs for r in res]


def compare(items: list[Any], ours: list[list[float]], theirs: list[float]) -> dict[str, Any]:
    import numpy as np

    diffs, flips, flips_norm, k = [], 0, 0, 0
    for it, lp in zip(items, ours, strict=True):
        other = np.array(theirs[k:k + len(lp)])
        k += len(lp)
        mine = np.array(lp)
        diffs.append(np.abs(mine - other).max())
        chars = np.array([len(c) for c in it.choices], dtype=float)
        flips += int(np.argmax(mine) != np.argmax(other))
        flips_norm += int(np.argmax(mine / chars) != np.argmax(other / chars))
    return {"max_abs_diff": float(max(diffs)), "flipped_acc": flips, "flipped_acc_norm": flips_norm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[], help="extra model spec (suite:..., folder, hub id)")
    ap.add_argument("--world", type=Path, help="world folder for the items (default: generate the tiny world)")
    ap.add_argument("--task", action="append", choices=["fact_qa", "sycophancy"],
                    help="world eval(s) to time (default: both)")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--lm-eval-batch", type=int, default=32)
    ap.add_argument("--lm-eval-python", help="python of a venv with lm-eval (see module doc)")
    ap.add_argument("--tokenizer-vocab", type=int, default=4096)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_evals")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker)

    import torch

    from empiricist.evals import world_tasks
    from empiricist.suite.handles import load_model

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.work.mkdir(parents=True, exist_ok=True)
    world = args.world or make_world(args.work)
    tasks = world_tasks(world, args.task or ["fact_qa", "sycophancy"])
    specs = [*args.model, str(pythia_shaped(args.work, world, args.tokenizer_vocab))]
    python = lm_eval_python(args.lm_eval_python)
    print(f"up to {args.items} items per task; torch threads {args.threads}; lm-eval: {python or 'not available'}\n")
    print("| model | params | task (items, choices) | empiricist items/s | lm-eval items/s | speed-up | "
          "max abs diff | flipped acc | flipped acc_norm |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for spec in specs:
        handle = load_model(spec)
        params = sum(p.numel() for p in handle.model.parameters())
        for name, task in tasks.items():
            items = list(task.items[: args.items])
            secs, ours = time_empiricist(handle, items, args.batch_tokens)
            row = [handle.name, f"{params / 1e6:.1f}M", f"{name} ({len(items)}, {sum(len(i.choices) for i in items)})",
                   f"{len(items) / secs:.1f}"]
            theirs = run_lm_eval(python, handle.provenance.get("path", spec), items, args.lm_eval_batch,
                                 args.threads) if python else None
            if theirs:
                cmp = compare(items, ours, [r[0] for r in theirs["results"]])
                row += [f"{len(items) / theirs['seconds']:.1f}", f"{theirs['seconds'] / secs:.1f}x",
                        f"{cmp['max_abs_diff']:.2e}", str(cmp["flipped_acc"]), str(cmp["flipped_acc_norm"])]
            else:
                row += ["-"] * 5
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
