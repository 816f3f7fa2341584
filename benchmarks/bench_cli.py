"""The CLI as a user feels it: whole-process latency of `--help` and `count`, and both index levels' cost.

Run on demand (never in tests):
    python benchmarks/bench_cli.py --store STORE_DIR --workspace DIR [--phrase "born in"] [--runs 7]

Builds (or reuses) the store's text index (characters, fm-index) and n-gram index (tokens, infini-gram),
prints each one's size and build time per million characters / tokens (from their manifests), then times
``empiricist --help``, ``empiricist count PHRASE`` and ``empiricist count PHRASE --tokens`` as fresh
processes (median and min of ``--runs``), beside ``python -c pass`` for the interpreter's own start-up,
and where one fresh ``count`` spends its time (imports, opening each index, counting; median of the runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

from empiricist.data.store import TokenStore
from empiricist.lookup.ngram import open_default_ngram
from empiricist.lookup.text import TextIndex


def wall(cmd: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


SPLIT = """
import json, sys, time
t0 = time.perf_counter()
from empiricist.cli import main
from empiricist.data.store import TokenStore
t1 = time.perf_counter()
store = TokenStore.open(sys.argv[1])
from empiricist.lookup.text import TextIndex
text = TextIndex.open(store, progress=False, workspace=sys.argv[2])
t2 = time.perf_counter()
text.count(sys.argv[3])
t3 = time.perf_counter()
from empiricist.lookup.ngram import open_default_ngram
ngram = open_default_ngram(store, sys.argv[2], progress=False)
ngram.count(sys.argv[3])
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "open store + text index": t2 - t1, "text count": t3 - t2,
                  "open n-gram index + token count": t4 - t3}))
"""


def split(store: str, workspace: str, phrase: str, runs: int) -> dict[str, float]:
    """Median seconds of each phase of one count, each run a fresh interpreter."""
    got = [json.loads(subprocess.run([sys.executable, "-c", SPLIT, store, workspace, phrase], check=True,
                                     capture_output=True, text=True).stdout) for _ in range(runs)]
    return {k: statistics.median(g[k] for g in got) for k in got[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--phrase", default="born in")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    store = TokenStore.open(args.store)
    text = TextIndex.open(store, workspace=args.workspace, progress=False)
    ngram = open_default_ngram(store, args.workspace, progress=False)
    ts, ns = text.manifest["stats"], ngram.manifest["stats"]
    chars = text.manifest["chars"]
    print(f"store: {store.num_docs:,} documents, {chars:,} characters, {store.num_tokens:,} tokens\n")
    print("| index | package | size | bytes per char / token | build s | build s per million |")
    print("|---|---|---:|---:|---:|---:|")
    print(f"| text (characters) | fm-index {text.manifest['package']} | {ts['bytes'] / 2**20:.1f} MiB | "
          f"{ts['bytes_per_char']:.2f} / char | {ts['build_seconds']:.1f} | {ts['seconds_per_million_chars']:.2f} "
          "per M chars |")
    print(f"| n-gram (tokens) | infini-gram {ngram.manifest['engine']['package_version']} | "
          f"{ns['bytes'] / 2**20:.1f} MiB | {ns['bytes_per_token']:.2f} / token | {ns['build_seconds']:.1f} | "
          f"{ns['build_seconds'] / store.num_tokens * 1e6:.2f} per M tokens |")
    exe = shutil.which("empiricist") or "empiricist"
    where = ["--store", args.store, "--workspace", args.workspace]
    rows = [("python -c pass", [sys.executable, "-c", "pass"]),
            ("empiricist --help", [exe, "--help"]),
            (f"empiricist count {args.phrase!r}", [exe, "count", args.phrase, *where]),
            (f"empiricist count {args.phrase!r} --tokens", [exe, "count", args.phrase, "--tokens", *where])]
    print(f"\n| command (fresh process, {args.runs} runs) | median s | min s |\n|---|---:|---:|")
    for label, cmd in rows:
        med, best = wall(cmd, args.runs)
        print(f"| `{label}` | {med:.2f} | {best:.2f} |", flush=True)
    print(f"\ncount {args.phrase!r}: text {text.count(args.phrase):,}, tokens {ngram.count(args.phrase):,}")
    phases = split(args.store, args.workspace, args.phrase, args.runs)
    print("one count, in-process (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()))


if __name__ == "__main__":
    main()
