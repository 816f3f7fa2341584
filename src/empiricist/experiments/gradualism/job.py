"""The gradualism grid end to end: worlds → suites (the size sweep and the families) → every checkpoint
the rule reads, evaluated → one grid folder.

Suites are ordinary content-addressed suites in the workspace (trained on the executor, resumed after a
kill, reused when finished), and every measurement is an eval run with every answer kept. The grid folder
(``<workspace>/gradualism/<grid>-<config hash>/``) is written last, under a temporary name:
``results.json`` (every row the rule decides on), the figures, pointers to the eval runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import Workspace, artifact_lock, is_complete
from empiricist.experiments.gradualism import measure
from empiricist.studies.experiment import write_grid

if TYPE_CHECKING:
    from empiricist.execute import Executor
    from empiricist.experiments.gradualism.config import GradualismConfig

GRID_KIND = "gradualism_grid"


def sweep_label(dose: float | None) -> str:
    return "size sweep" if dose is None else f"family rate {dose:g}"


def run_grid(cfg: GradualismConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
             executor: Executor | None = None) -> tuple[Path, dict[str, Any], bool]:
    """Build (or reuse) the whole grid: (its folder, its results, reused?)."""
    from empiricist.data.store import TokenStore
    from empiricist.pipeline import build_families, prepare
    from empiricist.suite.config import get_preset
    from empiricist.suite.suite import train_suite

    ws = Workspace.at(workspace)
    folder = ws.dir("gradualism") / f"{cfg.name}-{cfg.hash}"
    say = print if progress else lambda *_: None
    with artifact_lock(folder):
        if is_complete(folder):
            return folder, json.loads((folder / "results.json").read_text()), True
        t0 = time.perf_counter()
        preset = get_preset(cfg.suite)
        prep = prepare(cfg.world_config(), preset.vocab_size, ws, progress)
        say(f"gradualism: the size sweep ({cfg.suite}: {', '.join(s.name for s in preset.sizes)})")
        sweeps = [(sweep_label(None), Path(train_suite(preset, TokenStore.open(prep.store), workspace=ws,
                                                       progress=progress, executor=executor)), prep.world)]
        say(f"gradualism: {len(cfg.doses)} families ({cfg.family_suite})")
        fams = build_families([(d, cfg.family_world_config(d)) for d in cfg.doses], cfg.family_suite, ws, progress,
                              executor)
        sweeps += [(sweep_label(f.dose), f.suite, f.world) for f in fams]
        t_train = time.perf_counter() - t0
        rows, runs = [], {}
        for label, suite, world in sweeps:
            say(f"gradualism: evaluating {label}")
            got, runs[label] = measure.evaluate_sweep(label, suite, world, cfg, ws, progress)
            rows += got
        results = {"config": cfg.to_dict(), "rows": rows, "eval_runs": runs, "suites": {label: str(s) for label, s, _ in sweeps},
                   "runtime_s": round(time.perf_counter() - t0, 1),
                   "timings": {"train_s": round(t_train, 1), "evaluate_s": round(time.perf_counter() - t0 - t_train, 1)}}
        from empiricist.experiments.gradualism import plots

        write_grid(folder, GRID_KIND, results, cfg.to_dict(), {"world": prep.world.name},
                   lambda res, out: plots.plot_grid(res, out, cfg))
    return folder, results, False
