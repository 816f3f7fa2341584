"""Signing a spec per party, and migrating an old lock whose pinned code only moved.

These need a study's kind (to resolve what the lock pins), so they sit above ``lock`` (which only reads,
writes and compares locks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import atomic_write_json, package_versions
from empiricist.errors import InputError
from empiricist.studies import lock as locking
from empiricist.studies.fields import read_toml
from empiricist.studies.protocol import kind_of, parse_spec

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace

MIGRATE_COMMAND = "empiricist study migrate-lock"


def sign(spec: str | Path, party: str, signer: str, workspace: Workspace | str | Path | None = None,
         prepare: bool = False) -> dict[str, Any]:
    """Add ``party``'s sign-off (creating the lock on the first one); returns the lock."""
    spec = Path(spec)
    doc = read_toml(spec)
    study = parse_spec(doc, spec)
    study.party(party)
    if not signer.strip():
        raise InputError("a sign-off needs the signer's name", field="signer")
    lock = locking.read_lock(spec)
    current = kind_of(study).resolve(study, workspace, prepare=prepare).artifacts
    if lock is None:
        lock = {"study": study.id, "spec_file": spec.name, "spec_sha256": locking.spec_sha256(doc), "spec": doc,
                "code": locking.code_version(), "environment": package_versions(), "artifacts": current,
                "parties": [p.name for p in study.parties], "signoffs": [], "created": locking.now()}
    else:
        locking.check_spec(doc, lock, spec)
        locking.check_artifacts(lock, current)
        done = [s for s in lock["signoffs"] if s["party"] == party]
        if done:
            raise InputError(f"party {party!r} already signed ({done[0]['signer']}, {done[0]['time']})",
                             field="party")
    lock["signoffs"].append({"party": party, "signer": signer, "time": locking.now()})
    signed = {s["party"] for s in lock["signoffs"]}
    lock["complete"] = all(p in signed for p in lock["parties"])
    atomic_write_json(locking.lock_path(spec), lock)
    return lock


def migrate_lock(spec: str | Path, workspace: Workspace | str | Path | None = None) -> dict[str, Any]:
    """Rewrite a lock whose pinned artifacts differ only by code moves the study's kind declares.

    The check is exact: the locked identities must equal what the current code gives with the declared
    renames reverted (for an experiment: its rule's source with the new module names written back,
    hashed). Then the lock pins the current identities, keeps the old ones, and records the migration
    (time, command, code version, what changed and why); the spec and the sign-offs are untouched. Any
    other difference is refused, naming it, exactly as ``study run`` would.
    Returns ``{"migrated": bool, "lock": lock, "changes": [...]}``.
    """
    spec = Path(spec)
    doc = read_toml(spec)
    lock = locking.read_lock(spec)
    if lock is None:
        raise InputError(f"{spec} has no lock ({locking.lock_path(spec).name}) to migrate")
    locking.check_spec(doc, lock, spec)
    study = parse_spec(doc, spec)
    kind = kind_of(study)
    current = kind.resolve(study, workspace).artifacts
    changes = locking.artifact_changes(lock["artifacts"], current)
    if not changes:
        return {"migrated": False, "lock": lock, "changes": []}
    before = kind.before_renames(study, workspace)
    if before is None:
        raise locking.LockMismatch("the lock cannot be migrated: this study declares no code moves", changes)
    old, why = before
    left = locking.artifact_changes(lock["artifacts"], old)
    if left:
        raise locking.LockMismatch("the lock cannot be migrated: the pinned artifacts differ beyond the declared "
                                   f"code moves ({why})", left)
    lock.setdefault("migrations", []).append({
        "time": locking.now(), "command": f"{MIGRATE_COMMAND} {spec.name}", "code": locking.code_version(),
        "why": why, "changes": changes, "previous_artifacts": lock["artifacts"]})
    lock["artifacts"] = current
    atomic_write_json(locking.lock_path(spec), lock)
    return {"migrated": True, "lock": lock, "changes": changes}
