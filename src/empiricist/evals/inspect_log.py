"""Eval runs as Inspect logs, written with ``inspect_ai``'s own log API, so ``inspect view`` opens them.

One log per (task, model) in ``<run>/inspect/``: each item a sample (input, choices, target, the model's
answer as its output, our score with the grade's details, the item's metadata, split and contamination
flag), the task and model specs in the eval header, and the run's mean with its standard error as the
results. The numbers are ours (the results table is the source of truth); the log is a view of them.
``inspect_ai`` is an optional dependency (``pip install "empiricist[inspect]"``): without it a run skips
the log and says so in its manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from empiricist.evals.results import Results

INSPECT_DIR = "inspect"


def available() -> bool:
    try:
        import inspect_ai.log  # noqa: F401
    except ImportError:
        return False
    return True


def _value(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


def _sample(row: dict[str, Any]) -> Any:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    gold = list(row.get("gold") or [])
    choices = list(row.get("choices") or [])
    target = [choices[g] for g in gold if 0 <= g < len(choices)] or (row.get("answer") or "")
    answer = row.get("completion") if row["scorer"] == "generate" else (
        choices[row["pred"]] if row.get("pred") is not None and 0 <= row["pred"] < len(choices) else None)
    details = {k: _value(row.get(k)) for k in ("acc", "acc_norm", "acc_bytes", "acc_token", "p_gold", "exact_match",
                                               "logprobs", "n_tokens", "greedy", "truncated", "extracted")
               if row.get(k) is not None}
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    return EvalSample(
        id=row["item_id"], epoch=1, input=row["prompt"], choices=choices or None, target=target,
        output=ModelOutput.from_content(model=row["model"], content=answer or ""),
        scores={row["metric"]: Score(value=float(row["score"]), answer=answer, metadata=details)},
        metadata={**meta, "item_hash": row["item_hash"], "cluster": row.get("cluster"), "split": row.get("split"),
                  "contaminated": row.get("contaminated")})


def _log(rows: list[dict[str, Any]], created: str) -> Any:
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalScore, EvalSpec

    first = rows[0]
    scores = [float(r["score"]) for r in rows]
    n = len(scores)
    mean = sum(scores) / n
    stderr = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1) / n) if n > 1 else 0.0
    model_args = {k: first.get(k) for k in ("model_spec", "model_hash", "source", "suite", "size", "step",
                                            "n_params", "tokens_seen")}
    spec = EvalSpec(
        created=created, task=first["task"], task_id=first["task_hash"][:22], dataset=EvalDataset(
            name=first["task"], samples=n, sample_ids=[r["item_id"] for r in rows]),
        model=f"empiricist/{first['model']}", model_args=model_args, config=EvalConfig(),
        task_args={"scorer": first["scorer"], "scoring": json.loads(first["scoring"] or "{}")},
        metadata={"task_hash": first["task_hash"], "scoring_hash": first["scoring_hash"], "seed": first["seed"],
                  "written_by": "empiricist"})
    results = EvalResults(total_samples=n, completed_samples=n, scores=[EvalScore(
        name=first["metric"], scorer=first["scorer"], metrics={
            "mean": EvalMetric(name="mean", value=mean), "stderr": EvalMetric(name="stderr", value=stderr)})])
    return EvalLog(status="success", eval=spec, results=results, samples=[_sample(r) for r in rows])


def write_inspect_logs(results: Results, folder: str | Path) -> list[Path]:
    """``<folder>/<task>_<model>.json`` per task and model (an Inspect log, via ``write_eval_log``).

    Inspect's JSON log format, not its zipped ``.eval``: ``inspect view`` and ``read_eval_log`` open both,
    and writing .eval added one zip entry per sample, 9.1 s for a 2,040-sample log against 0.27 s as JSON
    (2.2 vs 4.5 MB; measured on the quick sycophancy grid's persona log) — most of an eval run's time."""
    from inspect_ai.log import write_eval_log

    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for task, model, rows in results.groups():
        path = folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', task)}_{re.sub(r'[^A-Za-z0-9._-]', '_', model)}.json"
        write_eval_log(_log(rows, created), str(path), format="json")  # the run folder is atomic
        paths.append(path)
    return paths
