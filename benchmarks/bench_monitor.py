"""What evaluating every checkpoint as it lands costs training (issue 19).

Run on demand (never in tests):
    python benchmarks/bench_monitor.py [--preset syco-quick] [--steps 120] [--repeats 1]

Trains the same suite (one size after another, in this process, as ``suite train --policy`` does) three
ways, side by side in one run on one token store, each with its own workspace (and eval cache): without a policy; with a policy judged on
every checkpoint before the next step (``share=None``); and with the evaluation budget ``share=0.1``.
The policy evaluates the world's fact QA on every checkpoint (a threshold that is never crossed, so
nothing stops). Prints wall seconds, the slow-down against no policy, the time spent evaluating, and
how many checkpoints were judged during training (the rest waited for ``finish``).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

POLICY = """[policy]
id = "bench"
tasks = ["fact_qa"]

[[thresholds]]
id = "never"
task = "fact_qa"
when = "upper < -1"
action = "alert"
"""


def _one(preset: str, steps: int, share: float | None, watch: bool, store_path: Path, root: Path
         ) -> dict[str, float]:
    from empiricist.artifacts import Workspace
    from empiricist.data.store import TokenStore
    from empiricist.monitor import load_policy
    from empiricist.monitor.watch import TrainingWatch
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import suite_path, train_suite

    ws = Workspace.at(root)  # its own eval cache: no variant reads another's scores
    store = TokenStore.open(store_path)
    cfg = get_preset(preset)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps))
    hook = None
    if watch:
        root.mkdir(parents=True, exist_ok=True)
        (root / "p.toml").write_text(POLICY)
        policy, _ = load_policy(root / "p.toml", require_lock=False)
        hook = TrainingWatch(suite_path(cfg, store, ws), policy, ws, say=lambda _: None, share=share)
    t0 = time.perf_counter()
    train_suite(cfg, store, workspace=ws, progress=False, on_step=hook if hook is not None else lambda s, l: None)
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "eval_s": 0.0, "judged": 0.0, "deferred": 0.0}
    if hook is not None:
        out.update(eval_s=hook.eval_s, deferred=float(hook.deferred),
                   judged=float(len(hook.watcher.metrics_keys()) if hook.watcher else 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="syco-quick")
    ap.add_argument("--steps", type=int, default=120)
    args = ap.parse_args()
    from empiricist.pipeline import prepare_preset

    with tempfile.TemporaryDirectory() as tmp:
        store = prepare_preset(args.preset, Path(tmp) / "data", False).store  # built once, shared
        rows = [("no policy", _one(args.preset, args.steps, None, False, store, Path(tmp) / "a")),
                ("every checkpoint", _one(args.preset, args.steps, None, True, store, Path(tmp) / "b")),
                ("share 0.1", _one(args.preset, args.steps, 0.1, True, store, Path(tmp) / "c"))]
    base = rows[0][1]["wall_s"]
    print(f"| {args.preset}, {args.steps} steps | wall (s) | slow-down | evaluating (s) | judged during training | deferred |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['wall_s']:.1f} | {r['wall_s'] / base - 1:+.1%} | {r['eval_s']:.1f} | "
              f"{r['judged']:.0f} | {r['deferred']:.0f} |")


if __name__ == "__main__":
    main()
