"""Studies whose data come from a registered experiment (a training grid), not from evals.

Why a second spec kind: an eval study's predictions are contrasts of per-item model scores, decided by
``decide``; an experiment like the probe-evasion grid (``empiricist.internals.stego``) already carries
its own pre-registered rule (paired with λ = 0 twins, intervals over seeds) and produces runs, not
items. So the spec names the experiment (``[experiment] kind``), its grid and config overrides, and
which of the rule's tests each party predicts in which cell; parties combine them with the same
and/or/not logic, and the lock, sign-offs, amendments, results folder and ledger are the eval studies'
own. What the lock pins in place of data artifacts is the experiment itself: the full config, its hash,
the rule's text and a hash of the rule's source, so a changed default or a changed rule is named.

An experiment registers an adapter in ``EXPERIMENTS`` (here: ``stego``); ``internals`` never imports
this package.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empiricist.artifacts import (
    Workspace,
    atomic_write_json,
    building,
    check_replaceable,
    config_hash,
    is_complete,
    read_manifest,
    sha256_bytes,
    verify,
    write_manifest,
)
from empiricist.errors import ArtifactError, InputError
from empiricist.studies import lock as locking
from empiricist.studies import logic
from empiricist.studies.fields import Fields, read_toml
from empiricist.studies.spec import HasParties


@dataclass
class GridRun:
    """An experiment's output: its artifact folder, per-run rows, and whether a cached grid was reused."""

    path: Path
    rows: list[dict[str, Any]]
    reused: bool
    runtime_s: float
    identity_hash: str


class StegoExperiment:
    """The probe-evasion grid as a study's data source: cells are (variant, λ > 0)."""

    name = "stego"
    figures = ("phase.png", "curves.png", "layers.png")
    copied = ("summary.md", "runs.csv", "cells.csv", "results.json")  # results.json: the rows, for re-deciding

    def config(self, grid: str, overrides: dict[str, Any]) -> Any:
        from empiricist.internals.stego import get_grid

        base = get_grid(grid)
        known = {f.name for f in dataclasses.fields(base)}
        for key in overrides:
            if key not in known:
                raise InputError(f"unknown config key {key!r}; the grid's keys: {', '.join(sorted(known))}",
                                 field=f"experiment.config.{key}")
        return base.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})

    def grids(self) -> tuple[str, ...]:
        from empiricist.internals.stego import GRIDS

        return tuple(GRIDS)

    def tests(self) -> tuple[dict[str, str], dict[str, str]]:
        from empiricist.internals.stego.predictions import CELL_TESTS, CONTROL_TESTS

        return CELL_TESTS, CONTROL_TESTS

    def cells(self, cfg: Any) -> list[tuple[str, float]]:
        return [(v, float(lam)) for v in cfg.variants for lam in cfg.lambdas if lam > 0]

    def identity(self, cfg: Any) -> dict[str, Any]:
        """What the lock pins: the experiment's study spec (config, hash, rule text) and the rule's source."""
        from empiricist.internals.stego import predictions

        source = inspect.getsource(predictions).encode("utf-8")
        return json.loads(json.dumps({"kind": "stego_grid", **predictions.study_spec(cfg),
                                      "rule_source_sha256": sha256_bytes(source)}))

    def run(self, cfg: Any, workspace: Workspace | str | Path | None, progress: bool) -> GridRun:
        """Reuse the workspace's grid with this config hash when it is intact, else train it there."""
        from empiricist.internals.stego import StegoConfig, run_stego_grid
        from empiricist.internals.stego.run import default_out

        folder = default_out(cfg, workspace)
        if is_complete(folder):
            manifest = read_manifest(folder, kind="stego_grid")
            if StegoConfig.from_dict(manifest["config"]) != cfg:
                raise ArtifactError(f"{folder}: holds a different config than its name says")
            bad = verify(folder)
            if bad:
                raise locking.LockMismatch(f"the cached grid {folder} no longer matches its own manifest", bad)
            res = json.loads((folder / "results.json").read_text())
            return GridRun(folder, res["rows"], True, float(res["runtime_s"]), _identity_hash(folder))
        res = run_stego_grid(cfg, folder, progress, workspace=workspace, command="empiricist study run")
        return GridRun(folder, res.rows, False, res.runtime_s, _identity_hash(folder))

    def decide(self, rows: list[dict[str, Any]], cfg: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        from empiricist.internals.stego import control_checks, evaluate_predictions

        return evaluate_predictions(rows, cfg), control_checks(rows, cfg)


def _identity_hash(folder: Path) -> str:
    from empiricist.studies.inputs import identity

    return config_hash(identity(folder))


EXPERIMENTS: dict[str, StegoExperiment] = {"stego": StegoExperiment()}


# ---------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Check:
    """One prediction or control: a test of the experiment's rule, in a cell (predictions) or not (controls)."""

    id: str
    test: str
    variant: str | None = None
    lam: float | None = None
    description: str = ""
    kind: str = ""
    where: str = ""


@dataclass(frozen=True)
class ExperimentParty:
    name: str
    position: str
    predictions: tuple[Check, ...]
    combine: logic.Tree


@dataclass(frozen=True)
class ExperimentStudy(HasParties):
    """An ``[experiment]`` spec, with the header fields the ledger and the lock read from any study."""

    id: str
    title: str
    question: str
    claim: str
    experiment: str
    grid: str
    overrides: dict[str, Any]
    config: Any
    parties: tuple[ExperimentParty, ...]
    controls: tuple[Check, ...]
    claim_text: str = ""
    hypotheses: dict[str, str] = field(default_factory=dict)
    replicates: tuple[str, ...] = ()
    challenges: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def adapter(self) -> StegoExperiment:
        return EXPERIMENTS[self.experiment]


def parse_experiment_spec(data: dict[str, Any], path: Path | None = None) -> ExperimentStudy:
    """Validate an ``[experiment]`` spec; the first problem raises an InputError naming its field."""
    top = Fields(data, "", path)
    head = Fields(top.table("study"), "study", path)
    ex = Fields(top.table("experiment"), "experiment", path)
    kind = ex.choice("kind", tuple(EXPERIMENTS))
    adapter = EXPERIMENTS[kind]
    grid = ex.get("grid", str)
    overrides = ex.table("config", {})
    try:
        cfg = adapter.config(grid, overrides)
    except InputError as e:
        where = e.field if (e.field or "").startswith("experiment.") else \
            "experiment.grid" if grid not in adapter.grids() else "experiment.config"
        raise InputError(str(e).split(": ", 1)[-1], path=path, field=where) from None
    ex.done()
    cell_tests, control_tests = adapter.tests()
    cells = adapter.cells(cfg)
    raw_parties = top.get("parties", list, what="a list of [[parties]] tables")
    if not raw_parties:
        top.fail("a study needs at least one party (two or more make an adversarial collaboration)", "parties")
    parties = []
    for i, p in enumerate(raw_parties):
        name = Fields(p, f"parties[{i}]", path).ident("name")
        if name in [q.name for q in parties]:
            top.fail(f"two parties are called {name!r}", f"parties[{i}].name")
        f = Fields(p, f"parties.{name}", path)
        f.used.add("name")
        raw = f.get("predictions", list, what="a list of [[parties.predictions]] tables")
        if not raw:
            f.fail("a party needs at least one prediction", "predictions")
        preds = tuple(_check(q, f"parties.{name}.predictions[{j}]", cell_tests, cells, path) for j, q in enumerate(raw))
        ids = [q.id for q in preds]
        for j, pid in enumerate(ids):
            if pid in ids[:j]:
                f.fail(f"duplicate prediction id {pid!r}", f"predictions[{j}].id")
        tree = logic.parse_expression(f.get("combine", str, " and ".join(ids)), ids, f.name("combine"))
        parties.append(ExperimentParty(name, f.text("position", ""), preds, tree))
        f.done()
    controls = tuple(_check(c, f"controls[{i}]", control_tests, None, path)
                     for i, c in enumerate(top.get("controls", list, [], "a list of [[controls]] tables")))
    for kind_needed in ("positive", "negative"):
        if kind_needed not in {c.kind for c in controls}:
            top.fail(f"no {kind_needed} control: a study needs a check that must come out a known way for its "
                     "verdicts to count", "controls")
    hypotheses = top.table("hypotheses", {})
    study = ExperimentStudy(
        id=head.ident("id"), title=head.text("title", ""), question=head.text("question"), claim=head.ident("claim"),
        claim_text=head.text("claim_text", ""), replicates=head.strings("replicates", ()),
        challenges=head.strings("challenges", ()), authors=head.strings("authors", ()), experiment=kind, grid=grid,
        overrides=dict(overrides), config=cfg, parties=tuple(parties), controls=controls,
        hypotheses={k: str(v) for k, v in hypotheses.items()}, path=path, raw=data,
        warnings=tuple(f"parties.{p.name}: prediction {q.id!r} is not used in combine" for p in parties
                       for q in p.predictions if q.id not in logic.refs(p.combine)))
    head.done()
    top.done()
    return study


def _check(data: Any, where: str, tests: dict[str, str], cells: list[tuple[str, float]] | None,
           path: Path | None) -> Check:
    f = Fields(data, where, path)
    test = f.get("test", str)
    if test not in tests:
        f.fail(f"unknown test {test!r}; this experiment's {'cell' if cells is not None else 'control'} tests: "
               f"{', '.join(tests)}", "test")
    variant = lam = None
    kind = ""
    if cells is not None:
        variant = f.choice("variant", tuple(dict.fromkeys(v for v, _ in cells)))
        lam = float(f.number("lam", lo=0.0))
        if (variant, lam) not in cells:
            f.fail(f"λ = {lam:g} is not a penalised λ of the grid ({sorted({x for _, x in cells})})", "lam")
    else:
        kind = f.choice("kind", ("positive", "negative"))
    out = Check(id=f.ident("id"), test=test, variant=variant, lam=lam, kind=kind, where=where,
                description=f.get("description", str, "") or tests[test])
    f.done()
    return out


# ---------------------------------------------------------------- lock, check, run
def experiment_artifacts(study: ExperimentStudy) -> dict[str, dict[str, Any]]:
    """The lock's pinned "artifact" of an experiment study: the experiment's config and rule."""
    ident = study.adapter.identity(study.config)
    return {f"experiment:{study.experiment}": {
        "what": f"{study.experiment} grid {study.config.name} (config {ident.get('config_hash')}) and its rule",
        "path": f"empiricist.internals.{study.experiment}", "identity": ident}}


def experiment_check(study: ExperimentStudy) -> dict[str, Any]:
    """What ``study check`` can say without running the grid: its size, and whether every party is at risk.

    Every combination of its tests' verdicts is tried (a logic-level check; the grid is too costly to
    simulate): a party no combination falsifies is NOT AT RISK, one no combination corroborates CANNOT WIN.
    """
    cfg = study.config
    n_runs = len(cfg.train_fracs) * cfg.seeds * (1 + len(study.adapter.cells(cfg)))
    flags = []
    for p in study.parties:
        ids = sorted(logic.refs(p.combine))
        outcomes = {int(logic.evaluate(p.combine, dict(zip(ids, combo, strict=True))))
                    for combo in itertools.product((-1, 0, 1), repeat=len(ids))}
        if logic.FALSIFIED not in outcomes:
            flags.append(f"NOT AT RISK: party {p.name}: no outcome of its tests falsifies it")
        if logic.CORROBORATED not in outcomes:
            flags.append(f"CANNOT WIN: party {p.name}: no outcome of its tests corroborates it")
    if cfg.seeds < 3:
        flags.append(f"UNDERPOWERED: {cfg.seeds} seeds leave a t-interval with {cfg.seeds - 1} degree(s) of freedom")
    return {"n_runs": n_runs, "steps": cfg.steps, "seeds": cfg.seeds, "config_hash": config_hash(cfg.to_dict()),
            "flags": flags}


def prepare_experiment(spec: str | Path, enforce_lock: bool = True
                       ) -> tuple[ExperimentStudy, dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """Read and check everything before the grid runs: spec vs lock, the experiment's config and rule vs lock."""
    spec = Path(spec)
    doc = read_toml(spec)
    lock = locking.read_lock(spec)
    if lock is not None:
        locking.check_spec(doc, lock, spec)  # before validation: an edit is named even if it broke the spec
    study = parse_experiment_spec(doc, spec)
    artifacts = experiment_artifacts(study)
    if lock is not None and enforce_lock:
        locking.check_artifacts(lock, artifacts)
    return study, doc, lock, artifacts


def run_experiment_study(spec: str | Path, *, out: str | Path | None = None, workspace: Workspace | str | Path | None = None,
                         progress: bool = False, enforce_lock: bool = True) -> Any:
    """Check spec and experiment against the lock, run (or reuse) the grid, decide, write results and report."""
    from empiricist.studies.experiment_report import write_experiment_report
    from empiricist.studies.run import KIND, StudyRun, results_dir

    spec = Path(spec)
    study, doc, lock, artifacts = prepare_experiment(spec, enforce_lock)
    amendments = locking.read_amendments(spec)
    folder = Path(out) if out else results_dir(spec)
    check_replaceable(folder, KIND)
    grid = study.adapter.run(study.config, workspace, progress)
    cells, controls = study.adapter.decide(grid.rows, study.config)
    result = results_document(study, doc, cells, controls, grid, lock=lock, amendments=amendments,
                              artifacts=artifacts)
    with building(folder, overwrite=True) as tmp:
        (tmp / "grid").mkdir()
        for name in study.adapter.figures + study.adapter.copied:
            if (grid.path / name).is_file():
                shutil.copy2(grid.path / name, tmp / "grid" / name)
        atomic_write_json(tmp / "results.json", result)
        write_experiment_report(result, tmp / "report.html", tmp / "grid")
        write_manifest(tmp, kind=KIND, config={"study": study.id, "spec_sha256": result["spec_sha256"],
                                               "max_items": None},
                       inputs={"grid": grid.identity_hash,
                               **{k: config_hash(v["identity"]) for k, v in artifacts.items()}})
    return StudyRun(result, folder, folder / "report.html")


def decide_study(study: ExperimentStudy, cells: list[dict[str, Any]], controls: dict[str, dict[str, Any]]
                 ) -> dict[str, Any]:
    """Controls first (each must be corroborated), then every prediction and each party's combination."""
    by_cell = {(c["variant"], float(c["lam"])): c for c in cells}
    ctrl = [{"id": c.id, "kind": c.kind, "test": c.test, "description": c.description,
             "verdict": controls[c.test]["verdict"], "parts": [controls[c.test]],
             "passed": controls[c.test]["verdict"] == "corroborated"} for c in study.controls]
    failed = [c["id"] for c in ctrl if not c["passed"]]
    preds, parties = [], []
    for party in study.parties:
        codes = {}
        for q in party.predictions:
            cell = by_cell.get((q.variant, q.lam))
            if cell is None:
                raise ArtifactError(f"the grid has no runs for {q.variant}, λ = {q.lam:g} ({q.where})")
            verdict = cell["verdicts"][q.test]
            parts = [cell["tests"][t] for t in _parts(q.test) if t in cell["tests"]]
            codes[q.id] = {v: k for k, v in logic.VERDICTS.items()}[verdict]
            preds.append({"party": party.name, "id": q.id, "test": q.test, "variant": q.variant, "lam": q.lam,
                          "description": q.description, "verdict": verdict, "code": codes[q.id], "parts": parts,
                          "n_runs": cell["n_runs"], "chance": cell["chance"]})
        code = int(logic.evaluate(party.combine, codes))
        parties.append({"name": party.name, "position": party.position, "combine": logic.to_text(party.combine),
                        "verdict": logic.verdict_name(code), "counted": not failed,
                        "final": logic.verdict_name(code) if not failed else "inconclusive"})
    if failed:
        outcome = (f"INCONCLUSIVE: control(s) {', '.join(failed)} did not come out as required, so no "
                   "prediction counts (the verdicts below are shown for the record only)")
        summary = f"inconclusive (failed control: {', '.join(failed)})"
    else:
        outcome = "; ".join(f"{p['name']}: {p['final']}" for p in parties)
        summary = ", ".join(f"{p['name']} {p['final']}" for p in parties)
    return {"controls": ctrl, "controls_passed": not failed, "failed_controls": failed, "predictions": preds,
            "parties": parties, "outcome": outcome, "summary": summary, "notes": [],
            "decisive": not failed and all(p["final"] != "inconclusive" for p in parties),
            "falsified": [p["name"] for p in parties if p["final"] == "falsified"]}


def _parts(test: str) -> tuple[str, ...]:
    return {"cost": ("slower", "worse"), "P1": ("evades", "slower", "worse")}.get(test, (test,))


def results_document(study: ExperimentStudy, doc: dict[str, Any], cells: list[dict[str, Any]],
                     controls: dict[str, dict[str, Any]], grid: GridRun, *, lock: dict[str, Any] | None = None,
                     amendments: list[dict[str, Any]] | None = None,
                     artifacts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``results.json`` and the report hold, with the keys the ledger reads from any study."""
    from empiricist.studies.run import _lock_summary, environment

    cfg = study.config
    return {
        "kind": "experiment", "experiment": study.experiment, "grid_name": study.grid,
        "study": study.id, "title": study.title, "question": study.question, "claim": study.claim,
        "claim_text": study.claim_text, "replicates": list(study.replicates), "challenges": list(study.challenges),
        "hypotheses": study.hypotheses, "status": locking.lock_status(lock),
        "spec_file": study.path.name if study.path else None, "spec_sha256": locking.spec_sha256(doc), "spec": doc,
        "lock": _lock_summary(lock), "amendments": amendments or [], "deviations": [],
        "warnings": list(study.warnings), "config": cfg.to_dict(), "config_hash": config_hash(cfg.to_dict()),
        "grid": {"path": str(grid.path), "reused": grid.reused, "runtime_s": grid.runtime_s,
                 "identity_hash": grid.identity_hash, "n_runs": len(grid.rows)},
        "artifacts": {k: {"what": v["what"], "path": v["path"], "identity_hash": config_hash(v["identity"])}
                      for k, v in (artifacts or {}).items()},
        "decision_rule": study.adapter.identity(cfg).get("decision_rule", ""),
        "cells": cells, "control_checks": controls, "environment": environment(), "code": locking.code_version(),
        "created": locking.now(), **decide_study(study, cells, controls),
    }
