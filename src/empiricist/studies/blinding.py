"""Blinded results, unblinding, and each party's record of whether the result changed their position.

Before unblinding, a party may look at the results per condition under shuffled labels ("condition A",
"condition B", …): the numbers are real, which model each belongs to is not shown. The permutation is
drawn once per run from the operating system's randomness and kept beside the run folder
(``<results>.private/blinding.json``, the holder's), so every party sees the same blinded labels. Each view, each
unblinding and each party's position record is an entry of the lock's hash chain, so the lock says,
checkably, when each party saw what, and a record edited or removed afterwards breaks the chain.
"""

from __future__ import annotations

import json
import secrets
import string
from collections import defaultdict
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_json
from empiricist.errors import InputError
from empiricist.studies.audit import run_rows
from empiricist.studies.hidden import private_dir
from empiricist.studies.lock import append_entry, lock_path, now, read_lock

BLINDING = "blinding.json"


def _locked(spec: Path, party: str) -> dict[str, Any]:
    lock = read_lock(spec)
    if lock is None or not lock.get("chain"):
        raise InputError(f"{spec.name} has no lock with a hash chain: lock it first (empiricist study lock)",
                         field="lock")
    parties = lock.get("parties", [])
    if parties and party not in parties:
        raise InputError(f"unknown party {party!r}; the lock's parties: {', '.join(parties)}", field="party")
    return lock


def _record(spec: Path, lock: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    entry = append_entry(lock, body)
    atomic_write_json(lock_path(spec), lock)
    return entry


def _mapping(run: Path, models: list[str]) -> dict[str, str]:
    """Model -> blinded label, drawn once per run (secret: the OS's randomness, not a seed)."""
    path = private_dir(run) / BLINDING
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        saved = json.loads(path.read_text())
        if sorted(saved) == sorted(models):
            return saved
    order = list(models)
    secrets.SystemRandom().shuffle(order)
    labels = {m: f"condition {string.ascii_uppercase[i % 26]}{i // 26 or ''}" for i, m in enumerate(order)}
    atomic_write_json(path, labels)
    return labels


def blinded_view(spec: str | Path, party: str, results_dir: str | Path | None = None) -> dict[str, Any]:
    """Per task, each condition's mean score and item count under shuffled labels; recorded in the chain."""
    from empiricist.studies.run import results_dir as default_results

    spec = Path(spec)
    lock = _locked(spec, party)
    run = Path(results_dir) if results_dir else default_results(spec)
    rows = run_rows(run)
    if not rows:
        raise InputError(f"no results in {run}: run the study first", field="results")
    labels = _mapping(run, sorted({str(r["model"]) for r in rows}))
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        by[(str(r["task"]), labels[str(r["model"])])].append(float(r["score"]))
    view = {"tasks": defaultdict(dict)}
    for (task, label), xs in sorted(by.items()):
        view["tasks"][task][label] = {"n": len(xs), "mean": sum(xs) / len(xs)}
    view["tasks"] = dict(view["tasks"])
    _record(spec, lock, {"type": "blinded_view", "party": party, "time": now()})
    return view


def unblind(spec: str | Path, party: str, results_dir: str | Path | None = None) -> dict[str, str]:
    """The blinded labels' models, for ``party``; the time is recorded in the chain."""
    from empiricist.studies.run import results_dir as default_results

    spec = Path(spec)
    lock = _locked(spec, party)
    run = Path(results_dir) if results_dir else default_results(spec)
    path = private_dir(run) / BLINDING
    if not path.is_file():
        raise InputError("nothing was shown blinded for this run yet (empiricist study blind)", field="results")
    _record(spec, lock, {"type": "unblind", "party": party, "time": now()})
    return {label: model for model, label in json.loads(path.read_text()).items()}


def record_position(spec: str | Path, party: str, changed: bool, note: str) -> dict[str, Any]:
    """Whether the result changed ``party``'s position (the minds-changed record), after it unblinded."""
    spec = Path(spec)
    lock = _locked(spec, party)
    if not note.strip():
        raise InputError("say in a sentence what the result did to your position", field="note")
    done = [e["body"] for e in lock["chain"] if e["body"].get("party") == party]
    if any(b.get("type") == "blinded_view" for b in done) and not any(b.get("type") == "unblind" for b in done):
        raise InputError(f"{party} looked at blinded results and has not unblinded yet (empiricist study unblind)",
                         field="party")
    return _record(spec, lock, {"type": "position", "party": party, "changed": bool(changed), "note": note,
                                "time": now()})


def history(lock: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every blinded view, unblinding and position record in the lock's chain, in order."""
    kinds = ("blinded_view", "unblind", "position")
    return [e["body"] for e in (lock or {}).get("chain", []) if e["body"].get("type") in kinds]


def positions(lock: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each party's latest position record."""
    return {b["party"]: b for b in history(lock) if b["type"] == "position"}
