"""The study protocol: what every kind of study shares, and the one registry of kinds.

A *kind* of study (eval studies in ``studies.eval_kind``, experiment studies in ``studies.experiment``)
is a small object registered with ``@study_kind``: it parses the body of its spec, resolves the
artifacts its lock pins, runs and decides, re-decides from a bundle, and renders its report. Spec,
lock, run, bundle, replication and ledger take a kind from ``kind_for(doc)`` / ``kind_of(study)`` and
never ask which one it is. What is the same for every kind lives here once: the header (``StudyBase``:
the twelve fields the ledger, the lock and the results read), parties with and/or/not combinations,
the controls, the verdict (controls gate, combining each party's predictions, the outcome text) and
the header of ``results.json``.
"""

from __future__ import annotations

import platform
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from empiricist.artifacts import package_versions
from empiricist.errors import InputError
from empiricist.studies import lock as locking
from empiricist.studies import logic
from empiricist.studies.fields import Fields, read_toml

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor


class PartyLike(Protocol):
    """What the verdict needs of a party, whatever its predictions look like."""

    name: str
    position: str
    combine: logic.Tree


class PredictionLike(Protocol):
    id: str


P = TypeVar("P", bound=PartyLike)
C = TypeVar("C", bound=PredictionLike)


@dataclass(frozen=True, kw_only=True)
class StudyBase(Generic[P, C]):
    """Every study: the header fields, its parties and its controls; a kind adds its own fields."""

    kind: ClassVar[str]
    id: str
    title: str
    question: str
    claim: str
    parties: tuple[P, ...]
    controls: tuple[C, ...]
    claim_text: str = ""
    hypotheses: dict[str, str] = field(default_factory=dict)
    replicates: tuple[str, ...] = ()
    challenges: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def party(self, name: str) -> P:
        for p in self.parties:
            if p.name == name:
                return p
        raise InputError(f"no party {name!r}; parties: {[p.name for p in self.parties]}", field="parties")

    @property
    def adversarial(self) -> bool:
        return len(self.parties) >= 2

    def files(self) -> tuple[str, ...]:
        """Files beside the spec that travel with it in a bundle (paths relative to the spec)."""
        return ()


# ---------------------------------------------------------------- parsing what every spec shares
def parse_header(top: Fields, path: Path | None) -> dict[str, Any]:
    """The ``[study]`` table and ``[hypotheses]``: keyword arguments for any ``StudyBase``."""
    head = Fields(top.table("study"), "study", path)
    hypotheses = top.table("hypotheses", {})
    for k, v in hypotheses.items():
        if not isinstance(v, str):
            top.fail("must be a string", f"hypotheses.{k}")
    out = {"id": head.ident("id"), "title": head.text("title", ""), "question": head.text("question"),
           "claim": head.ident("claim"), "claim_text": head.text("claim_text", ""),
           "replicates": head.strings("replicates", ()), "challenges": head.strings("challenges", ()),
           "authors": head.strings("authors", ()), "hypotheses": dict(hypotheses), "path": path, "raw": top.data}
    head.done()
    return out


def parse_parties(top: Fields, path: Path | None, prediction: Callable[[Any, str], C],
                  make: Callable[[Fields, str, str, tuple[C, ...], logic.Tree], P]) -> tuple[P, ...]:
    """``[[parties]]``: unique names, at least one prediction each with unique ids, a ``combine`` expression.

    ``prediction(table, where)`` reads one prediction; ``make(fields, name, position, predictions, tree)``
    builds the kind's party (reading any key of its own from ``fields``).
    """
    raw_parties = top.get("parties", list, what="a list of [[parties]] tables")
    if not raw_parties:
        top.fail("a study needs at least one party (two or more make an adversarial collaboration)", "parties")
    parties: list[P] = []
    for i, data in enumerate(raw_parties):
        name = Fields(data, f"parties[{i}]", path).ident("name")
        if name in [p.name for p in parties]:
            top.fail(f"two parties are called {name!r}", f"parties[{i}].name")
        f = Fields(data, f"parties.{name}", path)
        f.used.add("name")
        raw = f.get("predictions", list, what="a list of [[parties.predictions]] tables")
        if not raw:
            f.fail("a party needs at least one prediction", "predictions")
        preds = tuple(prediction(q, f"parties.{name}.predictions[{j}]") for j, q in enumerate(raw))
        ids = [q.id for q in preds]
        for j, pid in enumerate(ids):
            if pid in ids[:j]:
                f.fail(f"duplicate prediction id {pid!r}", f"predictions[{j}].id")
        tree = logic.parse_expression(f.get("combine", str, " and ".join(ids)), ids, f.name("combine"))
        parties.append(make(f, name, f.text("position", ""), preds, tree))
        f.done()
    return tuple(parties)


def parse_controls(top: Fields, control: Callable[[Any, str], C], kind_of: Callable[[C], str],
                   examples: dict[str, str] | None = None) -> tuple[C, ...]:
    """``[[controls]]``: at least one positive and one negative (``kind_of``), unique ids."""
    controls = tuple(control(c, f"controls[{i}]")
                     for i, c in enumerate(top.get("controls", list, [], "a list of [[controls]] tables")))
    kinds = {kind_of(c) for c in controls}
    for kind in ("positive", "negative"):
        if kind not in kinds:
            example = f" (e.g. {examples[kind]})" if examples and kind in examples else ""
            top.fail(f"no {kind} control: a study needs a check that must come out a known way{example} for its "
                     "verdicts to count", "controls")
    ids = [c.id for c in controls]
    for i, cid in enumerate(ids):
        if cid in ids[:i]:
            top.fail(f"duplicate control id {cid!r}", f"controls[{i}].id")
    return controls


def unused_predictions(parties: Sequence[Any]) -> tuple[str, ...]:
    """Warnings for predictions a party states but its ``combine`` never reads."""
    return tuple(f"parties.{p.name}: prediction {q.id!r} is not used in combine (it is reported but decides "
                 "nothing)" for p in parties for q in p.predictions if q.id not in logic.refs(p.combine))


# ---------------------------------------------------------------- the verdict
def decide_parties(study: StudyBase[Any, Any], controls: list[dict[str, Any]],
                   predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """Controls gate, then each party's predictions combined, then the outcome in words.

    ``controls``: records with ``id`` and ``passed``; ``predictions``: records with ``party``, ``id`` and
    ``code`` (+1 / 0 / -1). A failed control makes every party's final verdict inconclusive (the
    computed one is kept for the record).
    """
    failed = [c["id"] for c in controls if not c["passed"]]
    parties = []
    for party in study.parties:
        mine = {p["id"]: p["code"] for p in predictions if p["party"] == party.name}
        code = int(logic.evaluate(party.combine, mine))
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
    return {"controls": controls, "controls_passed": not failed, "failed_controls": failed,
            "predictions": predictions, "parties": parties, "outcome": outcome, "summary": summary,
            "decisive": not failed and all(p["final"] != "inconclusive" for p in parties),
            "falsified": [p["name"] for p in parties if p["final"] == "falsified"]}


def environment() -> dict[str, Any]:
    return {"packages": package_versions(), "python": sys.version, "platform": platform.platform(),
            "machine": platform.machine()}


def results_document(study: StudyBase[Any, Any], doc: dict[str, Any], body: dict[str, Any],
                     decision: dict[str, Any], *, lock: dict[str, Any] | None = None,
                     amendments: list[dict[str, Any]] | None = None, deviations: list[str] | None = None,
                     status: str | None = None) -> dict[str, Any]:
    """What ``results.json`` and the report hold: the header every study has, the kind's ``body`` (its
    inputs and numbers) and the ``decision`` (from ``decide_parties``)."""
    return {
        "kind": study.kind, "study": study.id, "title": study.title, "question": study.question,
        "claim": study.claim, "claim_text": study.claim_text, "replicates": list(study.replicates),
        "challenges": list(study.challenges), "hypotheses": study.hypotheses,
        "status": status or locking.lock_status(lock), "spec_file": study.path.name if study.path else None,
        "spec_sha256": locking.spec_sha256(doc), "spec": doc, "lock": locking.lock_summary(lock),
        "signatures": locking.signature_state(lock),
        "amendments": amendments or [], "deviations": deviations or [], "warnings": list(study.warnings),
        **body, "environment": environment(), "code": locking.code_version(), "created": locking.now(),
        **decision,
    }


# ---------------------------------------------------------------- the kinds
class Resolved(Protocol):
    """What a kind resolved before running: at least the artifacts the lock pins (name -> record)."""

    artifacts: dict[str, dict[str, Any]]


@dataclass
class RunOptions:
    workspace: Workspace | str | Path | None = None
    prepare: bool = False
    progress: bool = False
    max_items: int | None = None
    executor: Executor | None = None  # where an experiment's units run (None: this machine)


@dataclass
class Outcome:
    """What a kind's run produced: its part of results.json, the decision, and manifest inputs."""

    body: dict[str, Any]
    decision: dict[str, Any]
    deviations: list[str] = field(default_factory=list)
    status: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # extra manifest inputs (name -> identity hash)


class StudyKind(ABC):
    """One kind of study. ``marker``: the top-level table that makes a spec this kind (None: the default)."""

    name: ClassVar[str]
    marker: ClassVar[str | None]
    transcripts: ClassVar[str]  # the results subfolder a bundle ships as its transcripts

    @abstractmethod
    def parse(self, top: Fields, header: dict[str, Any], path: Path | None) -> StudyBase[Any, Any]:
        """The kind's study from the spec's tables (``header``: ``parse_header``'s keyword arguments)."""

    @abstractmethod
    def resolve(self, study: Any, workspace: Workspace | str | Path | None, prepare: bool = False,
                progress: bool = False) -> Resolved:
        """Pin what the study runs on; ``.artifacts`` is what the lock records and checks."""

    @abstractmethod
    def check(self, study: Any, n_sims: int | None = None) -> dict[str, Any]:
        """``study check`` beyond validation: power, or whether every party is at risk (``flags``)."""

    @abstractmethod
    def run(self, study: Any, resolved: Any, into: Path, options: RunOptions) -> Outcome:
        """Produce the data (written under ``into``, the results folder being built) and decide."""

    @abstractmethod
    def redecide(self, study: Any, bundle: Path, original: dict[str, Any]) -> dict[str, Any]:
        """The decision again from a bundle's transcripts alone (``study replicate --fast``)."""

    @abstractmethod
    def render(self, results: dict[str, Any], folder: Path) -> str:
        """The report page (``folder``: the results folder, for what the kind put there)."""

    def extra_artifacts(self, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Artifacts a run made or used beyond the locked ones, whose manifests a bundle keeps."""
        return {}

    def before_renames(self, study: Any, workspace: Workspace | str | Path | None
                       ) -> tuple[dict[str, dict[str, Any]], str] | None:
        """The artifacts as the code pinned them before the code moves it declares, and those moves in
        words (None: none declared). ``study migrate-lock`` accepts an old lock only if it matches these."""
        return None


KINDS: dict[str, StudyKind] = {}
K = TypeVar("K", bound=type[StudyKind])


def study_kind(cls: K) -> K:
    """Register a study kind (a class decorator; one instance per kind)."""
    KINDS[cls.name] = cls()
    return cls


def kind_named(name: str) -> StudyKind:
    if name not in KINDS:
        raise InputError(f"unknown study kind {name!r}; registered: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def kind_for(doc: dict[str, Any]) -> StudyKind:
    """The kind a spec document is: the one whose marker table it has, else the default kind."""
    marked = [k for k in KINDS.values() if k.marker is not None and k.marker in doc]
    default = [k for k in KINDS.values() if k.marker is None]
    return (marked or default)[0]


def kind_of(study: StudyBase[Any, Any]) -> StudyKind:
    return kind_named(study.kind)


def parse_spec(data: dict[str, Any], path: Path | None = None) -> StudyBase[Any, Any]:
    """Validate a parsed spec of any kind; the first problem raises an InputError naming its field."""
    top = Fields(data, "", path)
    kind = kind_for(data)
    study = kind.parse(top, parse_header(top, path), path)
    top.done()
    return study


def load_spec(path: str | Path) -> StudyBase[Any, Any]:
    path = Path(path)
    return parse_spec(read_toml(path), path)
