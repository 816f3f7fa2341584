"""Kill -9 and tamper matrices for docs/reliability.md.

    PYTHONPATH=src python benchmarks/reliability_matrix.py [--out DIR]

Kill matrix: a tiny pipeline (world -> tokenizer -> store -> one-size suite, 12 steps) runs in a child
process that is sent SIGKILL at a point: after N training steps, or inside the snapshot swap (before,
between and after its renames, by a real SIGKILL from a patched ``os.replace``), or after a delay that
lands in the world/tokenizer/store stages. The pipeline is then re-run to the end; a case passes when the
final weights are byte-identical to an uninterrupted run, every artifact verifies and no temp folder is
left. Tamper matrix: each kind of damage to each artifact of a finished workspace; a case passes when
``empiricist verify`` flags it (exit 1), and for stores and indexes we also record whether the cheap
check on open refuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import dataclasses, os, signal, sys
    from pathlib import Path
    from empiricist import artifacts
    from empiricist.data.store import TokenStore
    from empiricist.pipeline import prepare
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import train_suite
    from empiricist.world import WorldConfig

    ws, point = sys.argv[1], sys.argv[2]
    if point.startswith("swap-"):
        real, where, seen = os, point[5:], {"n": 0}

        class KillingOs:
            def __getattr__(self, name):
                return getattr(real, name)

            def replace(self, src, dst):
                src, dst = Path(src), Path(dst)
                aside = src.name == "resume" and ".old-" in dst.name
                swap = dst.name == "resume" and dst.with_name(f".resume.old-{real.getpid()}").exists()
                if aside or swap:
                    seen["n"] += 1
                if where == "before" and aside and seen["n"] >= 3:
                    real.kill(real.getpid(), signal.SIGKILL)
                real.replace(src, dst)
                if (where == "between" and aside or where == "after" and swap) and seen["n"] >= 3:
                    real.kill(real.getpid(), signal.SIGKILL)

        artifacts.os = KillingOs()
    p = prepare(WorldConfig.preset("tiny", target_tokens=100_000), 300, ws, progress=False)
    print("prepared", flush=True)
    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, vocab_size=300, sizes=cfg.sizes[:1],
                              train=dataclasses.replace(cfg.train, steps=12, resume_every=3, threads=1))
    train_suite(cfg, TokenStore.open(p.store), root=ws, progress=False,
                on_step=lambda s, _: print("step", s, flush=True))
    print("done", flush=True)
""")


def run_child(ws: Path, point: str, kill_at: str | None = None, delay: float | None = None) -> str:
    """Run the pipeline; SIGKILL it when it prints ``kill_at`` or after ``delay`` s. Returns how it ended."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ws), point], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    start = time.monotonic()
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    elif kill_at is not None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == kill_at:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    return f"rc={proc.returncode} after {time.monotonic() - start:.1f}s"


def weights(ws: Path) -> bytes:
    suite = next(p for p in (ws / "suites").iterdir() if not p.name.startswith("."))
    step = max(int(p.name[4:]) for p in (suite / "models" / "t1" / "checkpoints").iterdir()
               if p.name.startswith("step"))
    return (suite / "models" / "t1" / "checkpoints" / f"step{step}" / "model.safetensors").read_bytes()


def leftovers(ws: Path) -> list[str]:
    return [str(p.relative_to(ws)) for p in ws.rglob("*") if ".building-" in p.name or ".old-" in p.name
            or (p.name.endswith(".tmp") and p.name.startswith("."))]


def kill_matrix(tmp: Path, reference: bytes) -> list[dict]:
    points = [("train step 1", "none", "step 1", None), ("train step 2", "none", "step 2", None),
              ("train step 5", "none", "step 5", None), ("train step 8", "none", "step 8", None),
              ("train step 11", "none", "step 11", None),
              ("snapshot swap: before renames", "swap-before", None, None),
              ("snapshot swap: between renames", "swap-between", None, None),
              ("snapshot swap: after renames", "swap-after", None, None)]
    points += [(f"after {d:.1f} s (world/tokenizer/store)", "none", None, d) for d in (0.5, 1.0, 1.5, 2.5, 4.0)]
    rows = []
    from empiricist.artifacts import verify_tree

    for name, point, at, delay in points:
        ws = tmp / f"kill-{len(rows)}"
        how = run_child(ws, point, kill_at=at, delay=delay)
        run_child(ws, "none")
        bad = [str(f) for f, b in verify_tree(ws) if b]
        same = weights(ws) == reference
        rows.append({"case": name, "killed": how, "identical": same, "verify": not bad, "temp_left": leftovers(ws),
                     "pass": same and not bad and not leftovers(ws)})
    return rows


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def tamper_matrix(tmp: Path, good: Path) -> list[dict]:
    from empiricist.artifacts import verify_tree
    from empiricist.data.store import TokenStore
    from empiricist.errors import ArtifactError
    from empiricist.lookup import NgramIndex, build_ngram_index

    store_dir = next(p for p in (good / "stores").iterdir() if not p.name.startswith("."))
    build_ngram_index(TokenStore.open(store_dir), progress=False)
    targets = {
        "world docs.jsonl": lambda ws: ws / "worlds" / _one(ws / "worlds") / "docs.jsonl",
        "tokenizer.json": lambda ws: ws / "tokenizers" / _one(ws / "tokenizers") / "tokenizer.json",
        "store shard": lambda ws: next((ws / "stores" / _one(ws / "stores") / "shards").iterdir()),
        "store docs.parquet": lambda ws: ws / "stores" / _one(ws / "stores") / "docs.parquet",
        "n-gram table.0": lambda ws: ws / "indexes" / _one(ws / "indexes") / "table.0",
        "n-gram tokenized.0": lambda ws: ws / "indexes" / _one(ws / "indexes") / "tokenized.0",
        "checkpoint weights": lambda ws: ws / "suites" / _one(ws / "suites") / "models" / "t1" / "checkpoints"
        / "step12" / "model.safetensors",
    }
    damages = {
        "flip 1 byte (first block)": lambda f: _flip(f, 10),
        "flip 1 byte (middle)": lambda f: _flip(f, f.stat().st_size // 2),
        "zero a quarter": lambda f: _zero(f),
        "truncate by 1 byte": lambda f: f.write_bytes(f.read_bytes()[:-1]),
        "delete": lambda f: f.unlink(),
    }
    rows = []
    for tname, target in targets.items():
        for dname, damage in damages.items():
            ws = tmp / f"tamper-{len(rows)}"
            shutil.copytree(good, ws)
            f = target(ws)
            damage(f)
            flagged = any(b for _, b in verify_tree(ws))
            on_open = "-"
            if tname.startswith(("store", "n-gram")):
                try:
                    s = TokenStore.open(ws / "stores" / _one(ws / "stores"))
                    NgramIndex.open(None, s).count("the")
                    on_open = "missed"
                except ArtifactError:
                    on_open = "refused"
            rows.append({"case": f"{tname}: {dname}", "verify": flagged, "on_open": on_open, "pass": flagged})
    ws = tmp / "tamper-extra"
    shutil.copytree(good, ws)
    (ws / "stores" / _one(ws / "stores") / "planted.txt").write_text("x")
    rows.append({"case": "store: file added", "verify": any(b for _, b in verify_tree(ws)), "on_open": "-",
                 "pass": any(b for _, b in verify_tree(ws))})
    return rows


def _one(folder: Path) -> str:
    return next(p.name for p in sorted(folder.iterdir()) if not p.name.startswith("."))


def _zero(f: Path) -> None:
    data = bytearray(f.read_bytes())
    q = len(data) // 4
    data[q: 2 * q] = bytes(q)
    f.write_bytes(bytes(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    tmp = args.out or Path(tempfile.mkdtemp(prefix="reliability-"))
    ref = tmp / "reference"
    run_child(ref, "none")
    reference = weights(ref)
    kills = kill_matrix(tmp, reference)
    tampers = tamper_matrix(tmp, ref)
    print(json.dumps({"kill": kills, "tamper": tampers}, indent=1))
    print("\n| kill -9 point | resumed byte-identical | verifies | temp left |\n|---|---|---|---|")
    for r in kills:
        print(f"| {r['case']} | {r['identical']} | {r['verify']} | {len(r['temp_left'])} |")
    print("\n| damage | `verify` flags it | cheap check on open |\n|---|---|---|")
    for r in tampers:
        print(f"| {r['case']} | {r['verify']} | {r['on_open']} |")
    print(f"\nkill -9: {sum(r['pass'] for r in kills)}/{len(kills)} passed; "
          f"tamper: {sum(r['pass'] for r in tampers)}/{len(tampers)} flagged by verify")


if __name__ == "__main__":
    main()
