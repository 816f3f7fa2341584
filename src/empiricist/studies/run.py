"""``study run``: check the lock, run the evals (cached), decide, and write the study's results folder.

The folder (``<spec>.results/`` by default; an artifact, built under a temporary name with its manifest
written last) holds ``results.json`` (every number behind every verdict), ``report.html`` and the eval
runs with all transcripts (``evals/seed<N>/``).
"""

from __future__ import annotations

import dataclasses
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from empiricist.artifacts import (
    Workspace,
    atomic_write_json,
    building,
    check_replaceable,
    config_hash,
    package_versions,
    write_manifest,
)
from empiricist.errors import ArtifactError, InputError
from empiricist.evals.results import Results
from empiricist.studies import lock as locking
from empiricist.studies.analysis import analyse
from empiricist.studies.inputs import Inputs, check_files, load_tasks, resolve_inputs
from empiricist.studies.spec import Study, parse_spec, read_toml

KIND = "study_run"


@dataclass
class StudyRun:
    results: dict[str, Any]
    folder: Path
    report: Path


def results_dir(spec: str | Path) -> Path:
    spec = Path(spec)
    return spec.with_name(f"{spec.stem}.results")


def environment() -> dict[str, Any]:
    return {"packages": package_versions(), "python": sys.version, "platform": platform.platform(),
            "machine": platform.machine()}


def prepare_run(spec: str | Path, workspace: Workspace | str | Path | None = None, prepare: bool = False, progress: bool = False,
                enforce_lock: bool = True) -> tuple[Study, dict[str, Any], dict[str, Any] | None, Inputs]:
    """Read and check everything a run needs before any model runs: spec vs lock, inputs vs lock."""
    spec = Path(spec)
    doc = read_toml(spec)
    if "experiment" in doc:
        raise InputError(f"{spec} is an experiment study: its inputs are checked by "
                         "studies.experiment.prepare_experiment")
    lock = locking.read_lock(spec)
    if lock is not None:
        locking.check_spec(doc, lock, spec)  # before validation: an edit is named even if it broke the spec
    study = parse_spec(doc, spec)
    inputs = resolve_inputs(study, workspace, prepare=prepare, progress=progress)
    if lock is not None and enforce_lock:
        locking.check_artifacts(lock, inputs.artifacts)
    problems = check_files(inputs.artifacts)
    if problems:
        raise locking.LockMismatch("artifacts no longer match their own manifests", problems)
    return study, doc, lock, inputs


def run_study(spec: str | Path, *, out: str | Path | None = None, workspace: Workspace | str | Path | None = None,
              prepare: bool = False, progress: bool = False, max_items: int | None = None,
              enforce_lock: bool = True) -> StudyRun:
    """Run a study end to end; ``max_items`` (a smoke run) is recorded as a deviation from the plan."""
    from empiricist.evals import make_scorer, run_eval
    from empiricist.studies.report import write_study_report

    spec = Path(spec)
    if "experiment" in read_toml(spec):  # data from a registered experiment, not from evals
        from empiricist.studies.experiment import run_experiment_study

        if max_items is not None:
            raise InputError("--max-items applies to eval studies; an experiment study runs its grid",
                             field="max_items")
        return run_experiment_study(spec, out=out, workspace=workspace, progress=progress, enforce_lock=enforce_lock)
    study, doc, lock, inputs = prepare_run(spec, workspace, prepare, progress, enforce_lock)
    amendments = locking.read_amendments(spec)
    tasks = load_tasks(study, inputs)
    deviations = _deviations(study, tasks, max_items)
    if max_items is not None:
        tasks = {a: dataclasses.replace(t, items=t.items[:max_items]) for a, t in tasks.items()}
    s = study.sampling
    scorer = make_scorer(s.scoring, **({"metric": s.metric} if s.metric else {}))
    specs = list(dict.fromkeys(inputs.models.values()))
    folder = Path(out) if out else results_dir(spec)
    check_replaceable(folder, KIND)
    with building(folder, overwrite=True) as tmp:
        tables = []
        for seed in s.seeds:
            run = run_eval(list(tasks.values()), specs, scorer, out=tmp / "evals" / f"seed{seed}", workspace=workspace,
                           seed=seed, progress=progress, title=f"study {study.id}: evals (seed {seed})")
            tables.append(run.results.table)
        results = Results(pa.concat_tables(tables))
        labels = _labels(results, inputs)
        status = f"exploratory: smoke run on {max_items} items per task" if max_items is not None else None
        out_json = results_document(
            study, doc, results, labels, lock=lock, amendments=amendments, deviations=deviations, status=status,
            models={a: {"spec": s.models[a], "pinned": inputs.models[a], "label": labels[a]} for a in s.models},
            tasks={a: {"source": s.tasks[a], "n_items": len(t.items), "hash": t.hash} for a, t in tasks.items()},
            artifacts={k: {"what": v["what"], "path": v["path"], "identity_hash": config_hash(v["identity"])}
                       for k, v in inputs.artifacts.items()})
        atomic_write_json(tmp / "results.json", out_json)
        write_study_report(out_json, tmp / "report.html")
        write_manifest(tmp, kind=KIND, config={"study": study.id, "spec_sha256": out_json["spec_sha256"],
                                               "max_items": max_items},
                       inputs={k: config_hash(v["identity"]) for k, v in inputs.artifacts.items()})
    return StudyRun(out_json, folder, folder / "report.html")


def results_document(study: Study, doc: dict[str, Any], results: Results, labels: dict[str, str], *,
                     lock: dict[str, Any] | None = None, amendments: list[dict[str, Any]] | None = None,
                     deviations: list[str] | None = None, status: str | None = None,
                     models: dict[str, Any] | None = None, tasks: dict[str, Any] | None = None,
                     artifacts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``results.json`` and the report hold: the plan, its provenance and the verdicts."""
    s = study.sampling
    return {
        "study": study.id, "title": study.title, "question": study.question, "claim": study.claim,
        "claim_text": study.claim_text, "replicates": list(study.replicates), "challenges": list(study.challenges),
        "hypotheses": study.hypotheses, "status": status or locking.lock_status(lock),
        "spec_file": study.path.name if study.path else None, "spec_sha256": locking.spec_sha256(doc), "spec": doc,
        "lock": _lock_summary(lock), "amendments": amendments or [], "deviations": deviations or [],
        "warnings": list(study.warnings), "analysis_plan": dataclasses.asdict(study.analysis),
        "models": models or {a: {"spec": s.models[a], "pinned": s.models[a], "label": labels[a]} for a in s.models},
        "tasks": tasks or {a: {"source": s.tasks[a], "n_items": None, "hash": None} for a in s.tasks},
        "artifacts": artifacts or {}, "expected": {p.name: p.expected for p in study.parties},
        "environment": environment(), "code": locking.code_version(), "created": locking.now(),
        **analyse(study, results, labels),
    }


def _labels(results: Results, inputs: Inputs) -> dict[str, str]:
    """Model alias -> the label the results table uses for it (matched by the spec it was run as)."""
    by_spec = {info["model_spec"]: label for label, info in results.model_info().items()}
    missing = [a for a, spec in inputs.models.items() if spec not in by_spec]
    if missing:
        raise ArtifactError(f"internal: no results for model(s) {missing}")
    return {a: by_spec[spec] for a, spec in inputs.models.items()}


def _lock_summary(lock: dict[str, Any] | None) -> dict[str, Any] | None:
    if lock is None:
        return None
    return {k: lock.get(k) for k in ("spec_sha256", "signoffs", "complete", "created", "code", "parties")}


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
