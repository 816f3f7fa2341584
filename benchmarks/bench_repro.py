"""Do two environments train the same bytes? Short micro trainings, sha256 per size, then `suite verify`.

Run on demand (never in tests), once per environment (e.g. the dev venv and a fresh clone's CI venv):
    python benchmarks/bench_repro.py --workspace DIR --out env-a.json [--steps 60]
    python benchmarks/bench_repro.py --workspace DIR --out env-b.json --compare env-a.json

Every micro size trains ``--steps`` steps with the micro recipe (precision, threads, scheduler, seed) into
a fresh suite folder under this environment's own name, so two environments never share a model. It
writes the sha256 of every final ``model.safetensors``, the environment fingerprint of each, and what
``suite verify`` says (replaying the span from the kept snapshot). ``--compare`` prints both side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

from empiricist.artifacts import sha256_file
from empiricist.data.store import TokenStore
from empiricist.pipeline import prepare_preset
from empiricist.suite.config import get_preset
from empiricist.suite.environment import fingerprint_diff
from empiricist.suite.suite import Suite, train_suite
from empiricist.suite.verify import verify_suite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True, help="where the micro world and store are (built if absent)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare", default=None, help="another environment's --out file")
    args = ap.parse_args()
    micro = get_preset("micro")
    cfg = dataclasses.replace(micro, name=f"repro-{args.steps}",
                              train=dataclasses.replace(micro.train, steps=args.steps,
                                                        resume_every=max(1, args.steps // 3),
                                                        warmup_steps=min(micro.train.warmup_steps, args.steps // 4)))
    store = TokenStore.open(prepare_preset("micro", args.workspace).store)
    with tempfile.TemporaryDirectory(dir=args.workspace) as tmp:
        path = train_suite(cfg, store, Path(tmp) / "suite", progress=False)
        suite = Suite(path)
        sizes = {}
        for s in suite.sizes:
            final = suite.checkpoint_path(s, cfg.train.steps) / "model.safetensors"
            sizes[s] = {"sha256": sha256_file(final),
                        "environment": suite.model_manifest(s).get("info", {}).get("environment")}
        for r in verify_suite(path, progress=False):
            sizes[r.size]["verify"] = r.status
    record = {"python": sys.executable, "steps": args.steps, "pid": os.getpid(), "sizes": sizes}
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"{sys.executable}: {args.steps} steps per size\n")
    other = json.loads(Path(args.compare).read_text()) if args.compare else None
    head = "| size | sha256 (this env) | suite verify |" + (" sha256 (other env) | same bytes | fingerprints differ in |"
                                                           if other else "")
    print(head + "\n|---|---|---|" + ("---|---|---|" if other else ""))
    for s, v in sizes.items():
        row = f"| {s} | `{v['sha256'][:16]}…` | {v['verify']} |"
        if other:
            o = other["sizes"][s]["sha256"]
            diff = fingerprint_diff(other["sizes"][s]["environment"], v["environment"])
            row += f" `{o[:16]}…` | {o == v['sha256']} | {', '.join(diff) or 'nothing'} |"
        print(row)


if __name__ == "__main__":
    main()
