"""empiricist.studies: studies that put a hypothesis at risk.

A study is one TOML spec (see docs/studies.md): the question and the claim it tests, one or more parties
(two or more: an adversarial collaboration) each with machine-checkable predictions combined by an
and/or/not expression, the plan, positive and negative controls. Its *kind* says where the data come
from: an eval study (``[sampling]``: models x tasks) or an experiment study (``[experiment]``: a grid
from a registered experiment). Every command takes the kind from the spec and never asks which it is.

Protocol (``protocol``)
    StudyBase (the header every study has), StudyKind + @study_kind (the registry), kind_for(doc),
    kind_of(study), parse_spec(dict, path) -> StudyBase, load_spec(path), decide_parties, results_document
Eval studies (``spec``, ``inputs``, ``analysis``, ``decide``, ``power``, ``report``, ``eval_kind``)
    Study ; check_power(study, n_sims=None) -> {"worlds", "extreme", "flags", ...}: each party's predicted
    world simulated through the exact decision rule ; analysis.analyse(study, results_table, labels)
Experiment studies (``experiment``, ``experiment_report``)
    Experiment + @experiment (the plug-in interface; experiments live in ``empiricist.experiments``),
    ExperimentStudy, decide_study ; docs/design.md, "Experiments: the plug-in interface"
Lock (``lock``, ``signing``, ``integrity``, ``keys``)
    sign(spec, party, signer=None, workspace=None, key=None) -> lock (signed with ``key``, else name-only) ;
    keygen(spec, party, signer=None, out=None) -> (KeyPair, registry path) ; read_lock(spec) ;
    check_lock(spec, lock=None, doc=None) -> [Check] ; checked_lock(spec) (refuses a broken lock: LockBroken) ;
    check_spec(doc, lock, spec)
    diff(old, new) -> ["path: old -> new"] ; amend(spec, author, what, why) ; read_amendments(spec)
    migrate_lock(spec) (an old lock whose pinned code only moved) ; LockMismatch (with .changes)
Run (``run``)
    run_study(spec, out=None, workspace=None, prepare=False, max_items=None) -> StudyRun(results, folder, report)
    prepare_run(spec, workspace=None) -> Prepared (everything checked against the lock, nothing run)
Bundles and the ledger (``bundle``, ``ledger``)
    bundle(spec) -> (folder, tar.gz) ; replicate(bundle, workspace=None, fast=False, tolerance=1e-6)
    ledger(folder) -> {"claims", "relations", "open_challenges", "external"} ; external entries (``external``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

# the built-in kinds register themselves on import
from empiricist.studies import eval_kind, experiment  # noqa: F401
from empiricist.studies.bundle import bundle  # eager: a function named like its module
from empiricist.studies.ledger import ledger  # eager: a function named like its module

if TYPE_CHECKING:
    from empiricist.studies.bundle import replicate
    from empiricist.studies.fields import read_toml
    from empiricist.studies.integrity import LockBroken, check_lock, checked_lock
    from empiricist.studies.lock import LockMismatch, amend, diff, read_amendments, read_lock
    from empiricist.studies.power import check_power
    from empiricist.studies.protocol import StudyBase, kind_for, kind_of, load_spec, parse_spec
    from empiricist.studies.run import StudyRun, prepare_run, run_study
    from empiricist.studies.signing import keygen, migrate_lock, sign
    from empiricist.studies.spec import Party, Prediction, Study

_EXPORTS = {
    "replicate": "bundle",
    "read_toml": "fields",
    "LockBroken": "integrity",
    "check_lock": "integrity",
    "checked_lock": "integrity",
    "LockMismatch": "lock",
    "amend": "lock",
    "diff": "lock",
    "read_amendments": "lock",
    "read_lock": "lock",
    "check_power": "power",
    "StudyBase": "protocol",
    "kind_for": "protocol",
    "kind_of": "protocol",
    "load_spec": "protocol",
    "parse_spec": "protocol",
    "StudyRun": "run",
    "prepare_run": "run",
    "run_study": "run",
    "keygen": "signing",
    "migrate_lock": "signing",
    "sign": "signing",
    "Party": "spec",
    "Prediction": "spec",
    "Study": "spec",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "LockBroken", "LockMismatch", "Party", "Prediction", "Study", "StudyBase", "StudyRun", "amend", "bundle",
    "check_lock", "check_power", "checked_lock", "diff", "keygen", "kind_for", "kind_of", "ledger", "load_spec",
    "migrate_lock", "parse_spec", "prepare_run", "read_amendments", "read_lock", "read_toml", "replicate",
    "run_study", "sign",
]
