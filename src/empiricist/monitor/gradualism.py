"""Gradualism, tested on a suite: forecast the largest size (and each size's final checkpoint) from the
smaller sizes (earlier checkpoints), then score the forecasts against what was measured.

For each task, on the eval runner's rows of every checkpoint (``p_gold``: the probability of the right
answer, so the continuous metric comes from the same run as the accuracy):
- *across sizes*: at each size's final checkpoint, the line of the smaller sizes' means against log10
  parameters forecasts the largest (``stats.forecast_next``), for the accuracy and for the mean log
  probability of the right answer; the discontinuity verdict compares the two;
- *across checkpoints*: per size, the checkpoints from step 1 to the one before the final, against
  log10 step, forecast the final one;
- *per item*: do the items the smallest size (or a size's checkpoint at an eighth of training) gets
  right predict the ones the largest (its final checkpoint) gets right (precision, recall, base rate)?
Coverage over all forecasts is reported with the level they were made at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.stats.forecast import discontinuity, forecast_next, item_predictability

if TYPE_CHECKING:
    from empiricist.evals.results import Results


def _by_model(results: Results, task: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results.rows():
        if r["task"] == task:
            out.setdefault(r["model_spec"], []).append(r)
    return {k: sorted(v, key=lambda r: r["item_index"]) for k, v in out.items()}


def _point(rows: list[dict[str, Any]]) -> dict[str, float]:
    p = np.clip(np.array([r["p_gold"] for r in rows], dtype=float), 1e-12, 1.0)
    return {"acc": float(np.mean([r["score"] for r in rows])), "logp": float(np.mean(np.log(p)))}


def _pair(xs: Sequence[float], pts: Sequence[dict[str, float]], x_new: float, actual: dict[str, float],
          level: float, what: str) -> dict[str, Any]:
    fa = forecast_next(xs, [p["acc"] for p in pts], x_new, level=level)
    fl = forecast_next(xs, [p["logp"] for p in pts], x_new, level=level)
    return {"what": what, "acc": {**fa.to_json(), "actual": actual["acc"], "covered": fa.covers(actual["acc"]),
                                  "error": actual["acc"] - fa.mean},
            "logp": {**fl.to_json(), "actual": actual["logp"], "covered": fl.covers(actual["logp"]),
                     "error": actual["logp"] - fl.mean},
            "verdict": discontinuity(fa, actual["acc"], fl, actual["logp"])}


def gradualism(results: Results, task: str, models: Sequence[tuple[str, str, int, int]], level: float = 0.95
               ) -> dict[str, Any]:
    """``models``: (spec, size, step, n_params) of every evaluated checkpoint. Forecasts that cannot be
    made (fewer than three earlier points) are listed in ``skipped`` with the reason."""
    rows = _by_model(results, task)
    sizes: dict[str, list[tuple[int, str, int]]] = {}
    for spec, size, step, n_params in models:
        if spec in rows:
            sizes.setdefault(size, []).append((step, spec, n_params))
    order = sorted(sizes, key=lambda s: max(n for _, _, n in sizes[s]))
    final = {s: max(sizes[s]) for s in order}
    out: dict[str, Any] = {"task": task, "level": level, "forecasts": [], "items": [], "skipped": []}
    if len(order) >= 4:
        xs = [final[s][2] for s in order[:-1]]
        pts = [_point(rows[final[s][1]]) for s in order[:-1]]
        big = order[-1]
        out["forecasts"].append(_pair(xs, pts, final[big][2], _point(rows[final[big][1]]), level,
                                      f"{big} from {', '.join(order[:-1])} (final checkpoints)"))
        out["items"].append({"what": f"{order[0]} → {big} (final checkpoints)",
                             **item_predictability([r["score"] for r in rows[final[order[0]][1]]],
                                                   [r["score"] for r in rows[final[big][1]]], level)})
    else:
        out["skipped"].append(f"across sizes: {len(order)} sizes; forecasting the largest needs 3 smaller ones")
    for s in order:
        steps = sorted(sizes[s])
        early = [(k, spec) for k, spec, _ in steps[:-1] if k >= 1]
        last_step, last_spec, _ = steps[-1]
        if len(early) < 3:
            out["skipped"].append(f"{s} across checkpoints: {len(early)} checkpoints from step 1 before the final")
        else:
            out["forecasts"].append(_pair([k for k, _ in early], [_point(rows[spec]) for _, spec in early],
                                          last_step, _point(rows[last_spec]), level,
                                          f"{s}@step{last_step} from steps {early[0][0]}–{early[-1][0]}"))
        eighth = [(k, spec) for k, spec, _ in steps if 1 <= k <= last_step / 8]
        if eighth:
            k, spec = eighth[-1]
            out["items"].append({"what": f"{s}@step{k} → {s}@step{last_step}",
                                 **item_predictability([r["score"] for r in rows[spec]],
                                                       [r["score"] for r in rows[last_spec]], level)})
    accs = [f["acc"]["covered"] for f in out["forecasts"]]
    out["coverage"] = {"acc": float(np.mean(accs)) if accs else None,
                       "logp": float(np.mean([f["logp"]["covered"] for f in out["forecasts"]])) if accs else None,
                       "n": len(accs)}
    return out


def suite_gradualism(suite: str, tasks: Sequence[str], *, workspace: Any = None, level: float = 0.95
                     ) -> list[dict[str, Any]]:
    """Evaluate every checkpoint of ``suite`` (cached: what a watcher already scored is read back) and
    test gradualism on each task."""
    from pathlib import Path

    from empiricist.evals import run_eval
    from empiricist.evals.runner import resolve_tasks
    from empiricist.monitor.watch import checkpoints
    from empiricist.suite.handles import resolve_suite
    from empiricist.suite.suite import Suite

    folder = resolve_suite(suite, workspace)
    named = [t if ":" in t or t.endswith(".jsonl") else f"world:{Suite(folder).world_path()}:{t}" for t in tasks]
    task_list = resolve_tasks(named, workspace=workspace)
    found = checkpoints(Path(folder))
    specs = [f"suite:{folder}/{size}@step{step}" for size, step, _ in found]
    run = run_eval(task_list, specs, workspace=workspace, contamination=False, progress=False,
                   title=f"gradualism {Path(folder).name}")
    info = run.results.model_info()
    by_spec = {r["model_spec"]: r["model"] for r in run.results.rows()}
    models = [(spec, size, step, int(info[by_spec[spec]]["n_params"])) for (size, step, _), spec in
              zip(found, specs, strict=True) if spec in by_spec]
    return [{**gradualism(run.results, t.name, models, level), "eval_run": str(run.folder)} for t in task_list]
