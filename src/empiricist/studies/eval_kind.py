"""Eval studies as a study kind: models x tasks through the eval runner, decided by ``analysis``.

The default kind (a spec without another kind's marker table). Its lock pins the world, token store,
models and task files (``inputs``); its run evaluates every model on every task once per seed into the
results folder's ``evals/seed<N>/`` (cached by the eval runner), and decides with ``analysis.analyse``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from empiricist.errors import ArtifactError, InputError
from empiricist.evals.results import Results
from empiricist.studies.analysis import analyse
from empiricist.studies.fields import Fields
from empiricist.studies.inputs import Inputs, load_tasks, resolve_inputs
from empiricist.studies.power import check_power
from empiricist.studies.protocol import Outcome, RunOptions, StudyKind, study_kind
from empiricist.studies.report import render_study_report
from empiricist.studies.spec import Study, parse_eval_study

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace


def eval_body(study: Study, labels: dict[str, str], models: dict[str, Any] | None = None,
              tasks: dict[str, Any] | None = None) -> dict[str, Any]:
    """An eval study's part of results.json: the analysis plan, the pinned models and tasks, the expectations."""
    s = study.sampling
    return {
        "analysis_plan": dataclasses.asdict(study.analysis),
        "models": models or {a: {"spec": s.models[a], "pinned": s.models[a], "label": labels[a]} for a in s.models},
        "tasks": tasks or {a: {"source": s.tasks[a], "n_items": None, "hash": None} for a in s.tasks},
        "artifacts": {}, "expected": {p.name: p.expected for p in study.parties},
    }


def _labels(results: Results, inputs: Inputs) -> dict[str, str]:
    """Model alias -> the label the results table uses for it (matched by the spec it was run as)."""
    by_spec = {info["model_spec"]: label for label, info in results.model_info().items()}
    missing = [a for a, spec in inputs.models.items() if spec not in by_spec]
    if missing:
        raise ArtifactError(f"internal: no results for model(s) {missing}")
    return {a: by_spec[spec] for a, spec in inputs.models.items()}


def _deviations(study: Study, tasks: dict[str, Any], max_items: int | None) -> list[str]:
    """Where the run departs from the plan (reported beside the amendments)."""
    out = []
    planned = study.sampling.n_items
    for alias, task in tasks.items():
        if planned is not None and len(task.items) < planned:
            out.append(f"task {alias}: planned {planned} items, the task has only {len(task.items)}")
    if max_items is not None:
        out.append(f"smoke run: only the first {max_items} items of each task were evaluated (planned "
                   f"{planned if planned is not None else 'all'}); this is not the pre-registered design")
    return out


@study_kind
class EvalKind(StudyKind):
    name = "eval"
    marker = None
    transcripts = "evals"

    def parse(self, top: Fields, header: dict[str, Any], path: Path | None) -> Study:
        return parse_eval_study(top, header, path)

    def resolve(self, study: Study, workspace: Workspace | None, prepare: bool = False,
                progress: bool = False) -> Inputs:
        return resolve_inputs(study, workspace, prepare=prepare, progress=progress)

    def check(self, study: Study, n_sims: int | None = None) -> dict[str, Any]:
        """The power simulation, after refusing a task file that is not there (it would fail only at run)."""
        for alias, source in study.sampling.tasks.items():
            if ":" in source:
                continue
            path = Path(source) if Path(source).is_absolute() or study.path is None else study.path.parent / source
            if not path.is_file():
                raise InputError(f"task file {source!r} not found (looked at {path})", path=study.path,
                                 field=f"sampling.tasks.{alias}")
        return {"kind": self.name, **check_power(study, n_sims=n_sims)}

    def run(self, study: Study, resolved: Inputs, into: Path, options: RunOptions) -> Outcome:
        """Evaluate every model on every task once per seed; ``max_items`` is a smoke run (a deviation)."""
        from empiricist.evals import make_scorer, run_eval

        max_items = options.max_items
        tasks = load_tasks(study, resolved)
        deviations = _deviations(study, tasks, max_items)
        if max_items is not None:
            tasks = {a: dataclasses.replace(t, items=t.items[:max_items]) for a, t in tasks.items()}
        s = study.sampling
        scorer = make_scorer(s.scoring, **({"metric": s.metric} if s.metric else {}))
        specs = list(dict.fromkeys(resolved.models.values()))
        tables = []
        for seed in s.seeds:
            run = run_eval(list(tasks.values()), specs, scorer, out=into / "evals" / f"seed{seed}",
                           workspace=options.workspace, seed=seed, progress=options.progress,
                           title=f"study {study.id}: evals (seed {seed})")
            tables.append(run.results.table)
        results = Results(pa.concat_tables(tables))
        labels = _labels(results, resolved)
        body = eval_body(
            study, labels,
            models={a: {"spec": s.models[a], "pinned": resolved.models[a], "label": labels[a]} for a in s.models},
            tasks={a: {"source": s.tasks[a], "n_items": len(t.items), "hash": t.hash} for a, t in tasks.items()})
        status = f"exploratory: smoke run on {max_items} items per task" if max_items is not None else None
        return Outcome(body, analyse(study, results, labels), deviations, status)

    def redecide(self, study: Study, bundle: Path, original: dict[str, Any]) -> dict[str, Any]:
        tables = [Results.read(p.parent).table for p in sorted((bundle / "transcripts").glob("*/results.parquet"))]
        labels = {a: m["label"] for a, m in original["models"].items()}
        return analyse(study, Results(pa.concat_tables(tables)), labels)

    def render(self, results: dict[str, Any], folder: Path) -> str:
        return render_study_report(results)
