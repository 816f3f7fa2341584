"""The results table: one row per (model, task, item), as first-class data.

Every row carries the full transcript (prompt, each choice with its log-prob, or the completion), the
grade, and the provenance needed to trust it (model spec, weights hash, checkpoint step, scoring config,
item hash). ``Results`` wraps a pyarrow table and offers the few views the report and CLI need; writers
emit Parquet, JSONL and lm-evaluation-harness's ``samples_<task>_<date>.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from empiricist.artifacts import atomic_path, atomic_write_text
from empiricist.errors import ArtifactError

SCHEMA = pa.schema([
    ("task", pa.string()), ("task_hash", pa.string()), ("item_id", pa.string()), ("item_index", pa.int64()),
    ("item_hash", pa.string()), ("cluster", pa.string()), ("split", pa.string()), ("meta", pa.string()),
    ("model", pa.string()), ("model_spec", pa.string()), ("model_hash", pa.string()), ("source", pa.string()),
    ("suite", pa.string()), ("size", pa.string()), ("step", pa.int64()), ("n_params", pa.int64()),
    ("tokens_seen", pa.int64()), ("scorer", pa.string()), ("scoring", pa.string()), ("scoring_hash", pa.string()),
    ("metric", pa.string()), ("seed", pa.int64()),
    ("prompt", pa.string()), ("choices", pa.list_(pa.string())), ("gold", pa.list_(pa.int64())),
    ("answer", pa.string()), ("logprobs", pa.list_(pa.float64())), ("n_tokens", pa.list_(pa.int64())),
    ("greedy", pa.list_(pa.bool_())), ("prompt_tokens", pa.int64()), ("truncated", pa.int64()),
    ("completion", pa.string()), ("extracted", pa.string()), ("pred", pa.int64()),
    ("acc", pa.float64()), ("acc_norm", pa.float64()), ("acc_bytes", pa.float64()), ("acc_token", pa.float64()),
    ("p_gold", pa.float64()), ("exact_match", pa.float64()), ("score", pa.float64()),
    ("contaminated", pa.bool_()),
])


class Results:
    """Rows of an eval run (``SCHEMA``), in model then task then item order."""

    def __init__(self, table: pa.Table) -> None:
        missing = [n for n in SCHEMA.names if n not in table.column_names]
        if missing:
            raise ArtifactError(f"results table lacks columns {missing}")
        self.table = table

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> Results:
        return cls(pa.Table.from_pylist([{k: r.get(k) for k in SCHEMA.names} for r in rows], schema=SCHEMA))

    @classmethod
    def read(cls, path: str | Path) -> Results:
        """From a run folder (its ``results.parquet``) or a Parquet file."""
        path = Path(path)
        file = path / "results.parquet" if path.is_dir() else path
        if not file.is_file():
            raise ArtifactError(f"no results table at {file}")
        return cls(pq.read_table(file))

    def __len__(self) -> int:
        return self.table.num_rows

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    @cached_property
    def _by_task_model(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Rows grouped once (the table is immutable), so per-model views do not re-convert it."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in self.rows():
            groups.setdefault((r["task"], r["model"]), []).append(r)
        return {k: sorted(v, key=lambda r: r["item_index"]) for k, v in groups.items()}

    def _unique(self, column: str) -> list[Any]:
        return list(dict.fromkeys(self.table.column(column).to_pylist()))

    def models(self) -> list[str]:
        return self._unique("model")

    def tasks(self) -> list[str]:
        return self._unique("task")

    def model_info(self) -> dict[str, dict[str, Any]]:
        """Per model: spec, hash, suite, size, step, n_params (from its first row)."""
        keys = ("model_spec", "model_hash", "source", "suite", "size", "step", "n_params", "tokens_seen")
        out: dict[str, dict[str, Any]] = {}
        for r in self.table.select(["model", *keys]).to_pylist():
            out.setdefault(r["model"], {k: r[k] for k in keys})
        return out

    def select(self, task: str, model: str | None = None) -> list[dict[str, Any]]:
        """Rows of one task (and model), in item order."""
        if model is not None:
            return list(self._by_task_model.get((task, model), []))
        return [r for m in self.models() for r in self._by_task_model.get((task, m), [])]

    def groups(self, model_first: bool = True) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
        """(task, model, rows in item order) for every pair that has rows; models outer unless told."""
        pairs = ([(t, m) for m in self.models() for t in self.tasks()] if model_first else
                 [(t, m) for t in self.tasks() for m in self.models()])
        for task, model in pairs:
            rows = self.select(task, model)
            if rows:
                yield task, model, rows

    def scores(self, task: str, model: str) -> tuple[list[str], np.ndarray, list[str | None]]:
        """(item ids, scores, clusters) of one model on one task, in item order."""
        rows = self.select(task, model)
        return [r["item_id"] for r in rows], np.array([r["score"] for r in rows], dtype=float), \
            [r["cluster"] for r in rows]

    # ------------------------------------------------------------ writers
    def write(self, folder: str | Path) -> dict[str, Path]:
        """``results.parquet`` and ``results.jsonl`` (the same rows) in ``folder``."""
        folder = Path(folder)
        with atomic_path(folder / "results.parquet") as tmp:
            pq.write_table(self.table, tmp)
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in self.rows())
        atomic_write_text(folder / "results.jsonl", text)
        return {"parquet": folder / "results.parquet", "jsonl": folder / "results.jsonl"}

    def write_lm_eval_samples(self, folder: str | Path, date_id: str | None = None) -> list[Path]:
        """lm-eval's per-sample logs: ``<folder>/<model>/samples_<task>_<date>.jsonl`` per model and task."""
        date_id = date_id or dt.datetime.now().isoformat().replace(":", "-")
        paths = []
        for task, model, rows in self.groups():
            task_name = re.sub(r"\W", "_", task)  # lm-eval's sanitize_task_name
            path = Path(folder) / _sanitize_model(model) / f"samples_{task_name}_{date_id}.jsonl"
            text = "".join(json.dumps(lm_eval_sample(r), ensure_ascii=False) + "\n" for r in rows)
            paths.append(atomic_write_text(path, text))
        return paths


def _sanitize_model(name: str) -> str:
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)  # lm-eval's sanitize_model_name


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lm_eval_sample(row: dict[str, Any]) -> dict[str, Any]:
    """One row in lm-eval 0.4's sample format (after its ``save_results_samples`` sanitising)."""
    doc = {"id": row["item_id"], "prompt": row["prompt"], "choices": row["choices"], "gold": row["gold"],
           "answer": row["answer"], "cluster": row["cluster"], "meta": json.loads(row["meta"] or "{}")}
    gold = row["gold"] or []
    target: Any = gold[0] if len(gold) == 1 else (gold or row["answer"])
    if row["scorer"] == "generate":
        gen_kwargs = json.loads(row["scoring"])
        gen_kwargs = {"until": gen_kwargs.get("until"), "max_gen_toks": gen_kwargs.get("max_new_tokens"),
                      "do_sample": False}
        arguments = {"gen_args_0": {"arg_0": row["prompt"], "arg_1": gen_kwargs}}
        resps, filtered = [[row["completion"]]], [row["extracted"]]
        metrics = {"exact_match": row["exact_match"]}
    else:
        arguments = {f"gen_args_{i}": {"arg_0": row["prompt"], "arg_1": c} for i, c in enumerate(row["choices"])}
        pairs = [[str(lp), str(g)] for lp, g in zip(row["logprobs"], row["greedy"], strict=True)]
        resps, filtered = [[p] for p in pairs], pairs
        metrics = {k: row[k] for k in ("acc", "acc_norm", "acc_bytes", "exact_match")}
    sample = {
        "doc_id": row["item_index"], "doc": doc, "target": str(target), "arguments": arguments,
        "resps": resps, "filtered_resps": filtered, "filter": "none", "metrics": list(metrics),
        "doc_hash": _sha(json.dumps(doc, indent=2, ensure_ascii=False, default=str)),
        "prompt_hash": _sha(row["prompt"]), "target_hash": _sha(str(target)),
    }
    sample.update(metrics)
    return sample
