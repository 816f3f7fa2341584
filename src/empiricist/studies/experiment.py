"""Experiment studies: the data come from a registered experiment (a training grid), not from evals.

Why a second kind: an eval study's predictions are contrasts of per-item model scores, decided by
``decide``; an experiment (the probe-evasion grid, ``empiricist.experiments.probe_evasion``) carries its
own pre-registered rule and produces runs, not items. So the spec names the experiment (``[experiment]
kind``), its grid and config overrides, and which of the rule's tests each party predicts in which cell;
parties combine them with the same and/or/not logic, and the lock, sign-offs, amendments, results folder
and ledger are every study's. What the lock pins in place of data artifacts is the experiment itself:
the full config, its hash, the rule's text and a sha256 of the rule's source, so a changed default or a
changed rule is named.

An experiment is a subclass of ``Experiment`` registered with ``@experiment`` from its own package
(docs/design.md, "Experiments: the plug-in interface"); this package never imports one.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import math
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from empiricist.artifacts import atomic_write_json, building, config_hash, sha256_bytes, write_manifest
from empiricist.errors import ArtifactError, InputError
from empiricist.studies import lock as locking
from empiricist.studies import logic
from empiricist.studies.experiment_report import NUMBERS, render_experiment_report
from empiricist.studies.fields import Fields
from empiricist.studies.protocol import (
    Outcome,
    RunOptions,
    StudyBase,
    StudyKind,
    decide_parties,
    parse_controls,
    parse_parties,
    study_kind,
    unused_predictions,
)
from empiricist.world import WorldConfig

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor


@dataclass
class GridRun:
    """An experiment's output: its artifact folder, per-run rows, and whether a cached grid was reused."""

    path: Path
    rows: list[dict[str, Any]]
    reused: bool
    runtime_s: float
    identity_hash: str


@dataclass
class Plan:
    """What ``study check`` says of a grid without running it: its size in words, and its own flags."""

    n_runs: int
    text: str
    flags: list[str] = field(default_factory=list)


class Experiment(ABC):
    """A training grid whose runs a study decides by the experiment's own locked rule.

    ``rule``: the module whose docstring states the rule and whose source is hashed into the lock.
    ``tests`` / ``control_tests``: what a prediction (in a cell) or a control may name. ``parts``: for a
    combined test, the tests whose numbers the report shows. ``formerly``: module renames (new -> old)
    since locks were written, which ``study migrate-lock`` may verify and rewrite.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    rule: ClassVar[ModuleType]
    grid_kind: ClassVar[str]
    tests: ClassVar[dict[str, str]]
    control_tests: ClassVar[dict[str, str]]
    parts: ClassVar[dict[str, tuple[str, ...]]] = {}
    control_cell: ClassVar[str] = ""
    grid_files: ClassVar[tuple[str, ...]] = ()  # copied from the grid folder into the results' grid/
    formerly: ClassVar[dict[str, str]] = {}
    numbers_caption: ClassVar[str] = NUMBERS  # the report's heading for a test's numbers (what its intervals are)

    @abstractmethod
    def grids(self) -> tuple[str, ...]:
        """The named grids a spec may choose."""

    @abstractmethod
    def config(self, grid: str, overrides: dict[str, Any]) -> Any:
        """The grid's config with the spec's overrides (an InputError names a bad key)."""

    @abstractmethod
    def cell(self, f: Fields, cfg: Any) -> dict[str, Any]:
        """Read a prediction's cell (its coordinates in the grid) from its table."""

    @abstractmethod
    def describe_cell(self, cell: Mapping[str, Any]) -> str: ...

    @abstractmethod
    def study_spec(self, cfg: Any) -> dict[str, Any]:
        """What the lock pins besides the rule's source: at least ``config``, ``config_hash``, ``decision_rule``."""

    @abstractmethod
    def plan(self, cfg: Any) -> Plan: ...

    @abstractmethod
    def run(self, cfg: Any, workspace: Workspace | str | Path | None, progress: bool,
            executor: Executor | None = None) -> GridRun:
        """Train the grid (or reuse an intact one with the same config) and return its runs; its
        independent units go to ``executor`` (None: this machine). A plug-in that computes inline may
        leave ``executor`` out of its signature (the study run then does not pass it)."""

    @abstractmethod
    def decide(self, rows: list[dict[str, Any]], cfg: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """(cells, controls): per cell its coordinates, ``verdicts`` (test -> verdict) and ``tests`` (test ->
        numbers); per control test its numbers and ``verdict``."""

    @abstractmethod
    def report_section(self, results: dict[str, Any], grid: Path) -> str:
        """The experiment's own part of the report page (HTML, every string escaped)."""

    def numbers(self, cell: dict[str, Any], test: str) -> dict[str, Any]:
        """The numbers a prediction record carries: the parts its test is made of."""
        return {"parts": [cell["tests"][t] for t in self.parts.get(test, (test,)) if t in cell["tests"]]}


EXPERIMENTS: dict[str, Experiment] = {}
E = TypeVar("E", bound=type[Experiment])


def experiment(cls: E) -> E:
    """Register an experiment under its name and aliases (a class decorator)."""
    inst = cls()
    for name in (cls.name, *cls.aliases):
        EXPERIMENTS[name] = inst
    return cls


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise InputError(f"unknown experiment {name!r}; registered: {', '.join(sorted(EXPERIMENTS)) or 'none'} "
                         "(an experiment registers when its package is imported, e.g. "
                         "import empiricist.experiments.probe_evasion; the CLI imports the shipped ones)",
                         field="experiment.kind")
    return EXPERIMENTS[name]


def write_grid(folder: Path, kind: str, results: dict[str, Any], config: dict[str, Any], inputs: dict[str, Any],
               plot: Callable[[dict[str, Any], Path], object]) -> None:
    """An experiment's grid folder, written once under a temporary name: its figures (``plot``),
    ``results.json`` and the manifest; a reader sees the whole folder or none of it."""
    with building(folder, overwrite=True, kind=kind) as tmp:
        plot(results, tmp)
        atomic_write_json(tmp / "results.json", results)
        write_manifest(tmp, kind=kind, config=config, inputs=inputs)


class GridConfig:
    """What every experiment's config dataclass shares: plain data, hashed to name its grid and pinned
    in the lock; ``world`` (when the dataclass has one) is a generated world's config."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())

    def world_config(self) -> WorldConfig:
        return WorldConfig.from_dict(self.world)  # type: ignore[attr-defined]


C = TypeVar("C")


def grid_config(grids: Mapping[str, C], name: str, overrides: Mapping[str, Any] | None = None,
                tuples: tuple[str, ...] = ()) -> C:
    """A named grid's config (a dataclass with ``to_dict``) with a spec's overrides: an unknown grid or
    key is one error naming the spec field; ``tuples`` are the fields TOML gives as lists."""
    if name not in grids:
        raise InputError(f"unknown grid {name!r}; choose from {sorted(grids)}", field="experiment.grid")
    base = grids[name]
    d = base.to_dict()  # type: ignore[attr-defined]
    for key, value in (overrides or {}).items():
        if key not in d:
            raise InputError(f"unknown config key {key!r}; known: {', '.join(sorted(d))}",
                             field=f"experiment.config.{key}")
        d[key] = value
    for key in tuples:
        d[key] = tuple(d[key])
    return type(base)(**d)


def finite(x: Any) -> Any:
    """``x`` with every non-finite float replaced by None: a rule writes an unbounded interval (fewer
    than two informative seeds) as ±inf, and results are strict JSON."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def identity(exp: Experiment, cfg: Any, renames: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the lock pins of an experiment: its study spec and a sha256 of the rule's source.

    With ``renames`` (new module name -> old), the identity the same code had before those modules moved.
    """
    source, spec = inspect.getsource(exp.rule), exp.study_spec(cfg)
    for new, old in (renames or {}).items():
        source = source.replace(new, old)
        spec = json.loads(json.dumps(spec, ensure_ascii=False).replace(new, old))
    return json.loads(json.dumps({"kind": exp.grid_kind, **spec,
                                  "rule_source_sha256": sha256_bytes(source.encode("utf-8"))}))


# ---------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Check:
    """One prediction (a test of the rule in a cell) or control (a control test, no cell)."""

    id: str
    test: str
    cell: dict[str, Any] | None = None
    description: str = ""
    kind: str = ""
    where: str = ""


@dataclass(frozen=True)
class ExperimentParty:
    name: str
    position: str
    predictions: tuple[Check, ...]
    combine: logic.Tree


@dataclass(frozen=True, kw_only=True)
class ExperimentStudy(StudyBase[ExperimentParty, Check]):
    """An ``[experiment]`` spec: which experiment, which grid, which overrides, and the parsed config."""

    kind: ClassVar[str] = "experiment"
    experiment: str
    grid: str
    overrides: dict[str, Any]
    config: Any

    @property
    def adapter(self) -> Experiment:
        return get_experiment(self.experiment)


def _check(data: Any, where: str, exp: Experiment, cfg: Any, path: Path | None, control: bool) -> Check:
    f = Fields(data, where, path)
    tests = exp.control_tests if control else exp.tests
    test = f.get("test", str)
    if test not in tests:
        f.fail(f"unknown test {test!r}; this experiment's {'control' if control else 'cell'} tests: "
               f"{', '.join(tests)}", "test")
    cell = None if control else exp.cell(f, cfg)
    kind = f.choice("kind", ("positive", "negative")) if control else ""
    out = Check(id=f.ident("id"), test=test, cell=cell, kind=kind, where=where,
                description=f.get("description", str, "") or tests[test])
    f.done()
    return out


@dataclass
class Pinned:
    artifacts: dict[str, dict[str, Any]]


def decide_study(study: ExperimentStudy, cells: list[dict[str, Any]], controls: dict[str, dict[str, Any]]
                 ) -> dict[str, Any]:
    """Controls first (each must be corroborated), then every prediction and each party's combination."""
    exp = study.adapter
    codes = {v: k for k, v in logic.VERDICTS.items()}
    ctrl = [{"id": c.id, "kind": c.kind, "test": c.test, "description": c.description, "cell": exp.control_cell,
             "verdict": controls[c.test]["verdict"], "parts": [controls[c.test]],
             "passed": controls[c.test]["verdict"] == "corroborated"} for c in study.controls]
    preds = []
    for party in study.parties:
        for q in party.predictions:
            where = q.cell or {}
            cell = next((c for c in cells if all(c.get(k) == v for k, v in where.items())), None)
            if cell is None:
                raise ArtifactError(f"the grid has no runs for {exp.describe_cell(where)} ({q.where})")
            verdict = cell["verdicts"][q.test]
            preds.append({"party": party.name, "id": q.id, "test": q.test, **where, "cell": exp.describe_cell(where),
                          "description": q.description, "verdict": verdict, "code": codes[verdict],
                          **exp.numbers(cell, q.test)})
    return {**decide_parties(study, ctrl, preds), "notes": []}


@study_kind
class ExperimentKind(StudyKind):
    name = "experiment"
    marker = "experiment"
    transcripts = "grid"

    def parse(self, top: Fields, header: dict[str, Any], path: Path | None) -> ExperimentStudy:
        ex = Fields(top.table("experiment"), "experiment", path)
        name = ex.get("kind", str)
        if name not in EXPERIMENTS:
            ex.fail(f"unknown kind {name!r}; registered experiments: {', '.join(sorted(EXPERIMENTS)) or 'none'}",
                    "kind")
        exp = EXPERIMENTS[name]
        grid = ex.get("grid", str)
        overrides = ex.table("config", {})
        try:
            cfg = exp.config(grid, overrides)
        except InputError as e:
            where = e.field if (e.field or "").startswith("experiment.") else \
                "experiment.grid" if grid not in exp.grids() else "experiment.config"
            raise InputError(str(e).split(": ", 1)[-1], path=path, field=where) from None
        ex.done()
        parties = parse_parties(top, path, lambda d, w: _check(d, w, exp, cfg, path, control=False),
                                lambda f, n, pos, preds, tree: ExperimentParty(n, pos, preds, tree))
        controls = parse_controls(top, lambda d, w: _check(d, w, exp, cfg, path, control=True), lambda c: c.kind)
        return ExperimentStudy(**header, experiment=name, grid=grid, overrides=dict(overrides), config=cfg,
                               parties=parties, controls=controls, warnings=unused_predictions(parties))

    def resolve(self, study: ExperimentStudy, workspace: Workspace | str | Path | None, prepare: bool = False,
                progress: bool = False) -> Pinned:
        """The lock's pinned "artifact" of an experiment study: the experiment's config and rule."""
        exp = study.adapter
        ident = identity(exp, study.config)
        return Pinned({f"experiment:{study.experiment}": {
            "what": f"{study.experiment} grid {study.grid} (config {ident.get('config_hash')}) and its rule",
            "path": exp.rule.__name__.rpartition(".")[0] or exp.rule.__name__, "identity": ident}})

    def before_renames(self, study: ExperimentStudy, workspace: Workspace | str | Path | None
                       ) -> tuple[dict[str, dict[str, Any]], str] | None:
        exp = study.adapter
        if not exp.formerly:
            return None
        old = {name: {**rec, "identity": identity(exp, study.config, exp.formerly)}
               for name, rec in self.resolve(study, workspace).artifacts.items()}
        return old, "moved: " + ", ".join(f"{o} -> {n}" for n, o in exp.formerly.items())

    def check(self, study: ExperimentStudy, n_sims: int | None = None) -> dict[str, Any]:
        """The grid's size, and whether every party is at risk: every combination of its tests' verdicts is
        tried (a logic-level check; the grid is too costly to simulate): a party no combination falsifies
        is NOT AT RISK, one no combination corroborates CANNOT WIN."""
        plan = study.adapter.plan(study.config)
        flags = []
        for p in study.parties:
            ids = sorted(logic.refs(p.combine))
            outcomes = {int(logic.evaluate(p.combine, dict(zip(ids, combo, strict=True))))
                        for combo in itertools.product((-1, 0, 1), repeat=len(ids))}
            if logic.FALSIFIED not in outcomes:
                flags.append(f"NOT AT RISK: party {p.name}: no outcome of its tests falsifies it")
            if logic.CORROBORATED not in outcomes:
                flags.append(f"CANNOT WIN: party {p.name}: no outcome of its tests corroborates it")
        exp = study.adapter
        parties = [{"name": p.name, "position": p.position, "combine": logic.to_text(p.combine),
                    "predicts": ", ".join(f"{q.id} = {q.test} at {exp.describe_cell(q.cell or {})}"
                                          for q in p.predictions)} for p in study.parties]
        return {"kind": self.name, "experiment": study.experiment, "grid": study.grid, "n_runs": plan.n_runs,
                "plan": plan.text, "config_hash": exp.study_spec(study.config)["config_hash"], "parties": parties,
                "flags": flags + plan.flags}

    def run(self, study: ExperimentStudy, resolved: Pinned, into: Path, options: RunOptions) -> Outcome:
        """Run (or reuse) the grid, decide, and keep the grid's figures and rows beside the results."""
        if options.max_items is not None:
            raise InputError("--max-items applies to eval studies; an experiment study runs its grid",
                             field="max_items")
        exp, cfg = study.adapter, study.config
        takes = "executor" in inspect.signature(exp.run).parameters  # plug-ins without units need not
        grid = exp.run(cfg, options.workspace, options.progress, **({"executor": options.executor} if takes else {}))
        cells, controls = exp.decide(grid.rows, cfg)
        (into / "grid").mkdir()
        for name in exp.grid_files:
            if (grid.path / name).is_file():
                shutil.copy2(grid.path / name, into / "grid" / name)
        spec = exp.study_spec(cfg)
        body = {"experiment": study.experiment, "grid_name": study.grid, "config": spec["config"],
                "config_hash": spec["config_hash"],
                "grid": {"path": str(grid.path), "reused": grid.reused, "runtime_s": grid.runtime_s,
                         "identity_hash": grid.identity_hash, "n_runs": len(grid.rows)},
                "decision_rule": spec.get("decision_rule", ""), "cells": cells, "control_checks": controls}
        return Outcome(body, decide_study(study, cells, controls), inputs={"grid": grid.identity_hash})

    def redecide(self, study: ExperimentStudy, bundle: Path, original: dict[str, Any]) -> dict[str, Any]:
        rows = json.loads((bundle / "transcripts" / "results.json").read_text())["rows"]
        return decide_study(study, *study.adapter.decide(rows, study.config))

    def render(self, results: dict[str, Any], folder: Path) -> str:
        exp = get_experiment(results["experiment"])
        return render_experiment_report(results, exp.report_section(results, folder / "grid"), exp.numbers_caption)

    def extra_artifacts(self, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The grid, for a bundle's manifests: its manifest travels with the runs."""
        g = results["grid"]
        return {"grid": {"what": f"{results['experiment']} grid", "identity_hash": g["identity_hash"],
                         "path": g["path"]}}


def grid_identity_hash(folder: Path) -> str:
    """The identity hash of a grid artifact (what its manifest says it holds)."""
    return config_hash(locking.identity(folder))
