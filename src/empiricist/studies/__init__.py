"""empiricist.studies: studies that put a hypothesis at risk.

A study is one TOML spec (see docs/studies.md): the question and the claim it tests, one or more parties
(two or more: an adversarial collaboration) each with machine-checkable predictions combined by an
and/or/not expression, the sampling and analysis plans, positive and negative controls.

Spec (``spec``)
    load_spec(path) -> Study ; parse_spec(dict, path) ; read_toml(path)  (errors name the field / line)
Power (``power``)
    check_power(study, n_sims=None) -> {"worlds", "extreme", "flags", ...}: each party's predicted world
    simulated through the exact decision rule; "not at risk" / underpowered flags
Lock (``lock``)
    sign(spec, party, signer, workspace=None) -> lock ; read_lock(spec) ; check_spec(doc, lock, spec)
    diff(old, new) -> ["path: old -> new"] ; amend(spec, author, what, why) ; read_amendments(spec)
    LockMismatch (an EmpiricistError with .changes)
Run (``run``)
    run_study(spec, out=None, workspace=None, prepare=False, max_items=None) -> StudyRun(results, folder, report)
    analysis.analyse(study, results_table, labels) : controls first, then verdicts with the numbers
Experiment studies (``experiment``)
    a spec with ``[experiment] kind = "stego"`` takes its data from a registered experiment (the
    probe-evasion grid) and its verdicts from that experiment's locked rule: parse_experiment_spec,
    run_experiment_study (reuses a grid with the same config hash), EXPERIMENTS (the registry)
Bundles and the ledger (``bundle``, ``ledger``)
    bundle(spec) -> (folder, tar.gz) ; replicate(bundle, workspace=None, fast=False, tolerance=1e-6)
    ledger(folder) -> {"claims", "relations", "open_challenges"}
"""

from empiricist.studies.bundle import bundle, replicate
from empiricist.studies.ledger import ledger
from empiricist.studies.lock import LockMismatch, amend, diff, read_amendments, read_lock, sign
from empiricist.studies.power import check_power
from empiricist.studies.run import StudyRun, run_study
from empiricist.studies.spec import Party, Prediction, Study, load_spec, parse_spec, read_toml

__all__ = [
    "LockMismatch", "Party", "Prediction", "Study", "StudyRun", "amend", "bundle", "check_power", "diff", "ledger",
    "load_spec", "parse_spec", "read_amendments", "read_lock", "read_toml", "replicate", "run_study", "sign",
]
