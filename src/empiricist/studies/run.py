"""``study run``: check the lock, let the study's kind run and decide, and write the results folder.

The folder (``<spec>.results/`` by default; an artifact, built under a temporary name with its manifest
written last) holds ``results.json`` (every number behind every verdict), ``report.html`` and what the
kind ran (an eval study's runs with all transcripts in ``evals/seed<N>/``, an experiment's ``grid/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import (
    atomic_write_json,
    atomic_write_text,
    building,
    check_replaceable,
    config_hash,
    verify,
    write_manifest,
)
from empiricist.studies import lock as locking
from empiricist.studies.fields import read_toml
from empiricist.studies.integrity import checked_lock
from empiricist.studies.protocol import (
    RunOptions,
    StudyBase,
    StudyKind,
    kind_of,
    parse_spec,
    results_document,
)

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.studies.protocol import Resolved

KIND = "study_run"


@dataclass
class StudyRun:
    results: dict[str, Any]
    folder: Path
    report: Path


@dataclass
class Prepared:
    """Everything a run needs, checked against the lock before anything runs."""

    study: StudyBase[Any, Any]
    kind: StudyKind
    doc: dict[str, Any]
    lock: dict[str, Any] | None
    resolved: Resolved


def results_dir(spec: str | Path) -> Path:
    spec = Path(spec)
    return spec.with_name(f"{spec.stem}.results")


def check_files(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Artifacts whose files on disk no longer match their own manifest (those pinned by a manifest)."""
    problems = []
    for name, rec in artifacts.items():
        folder = Path(rec["path"])
        if set(rec["identity"]) == set(locking.IDENTITY_KEYS) and folder.is_dir():
            bad = verify(folder)
            if bad:
                problems.append(f"{name} ({rec['what']}, {folder}): files changed on disk since its manifest was "
                                f"written: {', '.join(bad[:5])}")
    return problems


def prepare_run(spec: str | Path, workspace: Workspace | str | Path | None = None, prepare: bool = False,
                progress: bool = False, enforce_lock: bool = True) -> Prepared:
    """Read and check everything a run needs before anything runs: spec vs lock, artifacts vs lock."""
    spec = Path(spec)
    doc = read_toml(spec)
    lock = locking.read_lock(spec)
    if lock is not None:
        locking.check_spec(doc, lock, spec)  # before validation: an edit is named even if it broke the spec
        checked_lock(spec)  # the lock itself: parties, spec copy, hash chain, signatures
    study = parse_spec(doc, spec)
    kind = kind_of(study)
    resolved = kind.resolve(study, workspace, prepare=prepare, progress=progress)
    if lock is not None and enforce_lock:
        locking.check_artifacts(lock, resolved.artifacts)
    problems = check_files(resolved.artifacts)
    if problems:
        raise locking.LockMismatch("artifacts no longer match their own manifests", problems)
    return Prepared(study, kind, doc, lock, resolved)


def run_study(spec: str | Path, *, out: str | Path | None = None, workspace: Workspace | str | Path | None = None,
              prepare: bool = False, progress: bool = False, max_items: int | None = None,
              enforce_lock: bool = True, executor: Executor | None = None) -> StudyRun:
    """Run a study of any kind end to end; ``max_items`` (a smoke run) is recorded as a deviation;
    ``executor``: where an experiment's trainings run (None: this machine)."""
    spec = Path(spec)
    p = prepare_run(spec, workspace, prepare, progress, enforce_lock)
    amendments = locking.read_amendments(spec)
    folder = Path(out) if out else results_dir(spec)
    check_replaceable(folder, KIND)
    with building(folder, overwrite=True) as tmp:
        outcome = p.kind.run(p.study, p.resolved, tmp, RunOptions(workspace, prepare, progress, max_items, executor))
        artifacts = {k: {"what": v["what"], "path": v["path"], "identity_hash": config_hash(v["identity"])}
                     for k, v in p.resolved.artifacts.items()}
        result = results_document(p.study, p.doc, {**outcome.body, "artifacts": artifacts}, outcome.decision,
                                  lock=p.lock, amendments=amendments, deviations=outcome.deviations,
                                  status=outcome.status)
        atomic_write_json(tmp / "results.json", result)
        atomic_write_text(tmp / "report.html", p.kind.render(result, tmp))
        write_manifest(tmp, kind=KIND, config={"study": p.study.id, "spec_sha256": result["spec_sha256"],
                                               "max_items": max_items},
                       inputs={**outcome.inputs, **{k: config_hash(v["identity"])
                                                    for k, v in p.resolved.artifacts.items()}})
    return StudyRun(result, folder, folder / "report.html")
