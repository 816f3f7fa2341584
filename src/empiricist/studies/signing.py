"""Signing a spec per party, and migrating an old lock whose pinned code only moved.

These need a study's kind (to resolve what the lock pins), so they sit above ``lock`` (which only reads,
writes and compares locks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import atomic_write_json, config_hash, package_versions
from empiricist.errors import InputError
from empiricist.studies import keys
from empiricist.studies import lock as locking
from empiricist.studies.fields import read_toml
from empiricist.studies.integrity import checked_lock, signoff_payload, spec_entry
from empiricist.studies.protocol import kind_of, parse_spec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from empiricist.artifacts import Workspace

MIGRATE_COMMAND = "empiricist study migrate-lock"
BLOCKING = ("UNDERPOWERED", "CANNOT", "NOT AT RISK")


def blocking_flags(report: dict[str, Any]) -> list[str]:
    """The check flags that make an experiment study's design unfit to lock (eval studies only warn)."""
    if report.get("kind") != "experiment":
        return []
    return [f for f in report.get("flags", []) if f.startswith(BLOCKING)]


def sign(spec: str | Path, party: str, signer: str | None = None, workspace: Workspace | str | Path | None = None,
         prepare: bool = False, key: str | Path | None = None) -> dict[str, Any]:
    """Add ``party``'s sign-off (creating the lock on the first one); returns the lock.

    With ``key`` (an ed25519 private key file) the sign-off is signed: its public key must be the one
    ``<spec>.keys.toml`` holds for ``party`` (and ``signer``, which defaults to the registry's name for
    that key). Without it the sign-off is name-only and every report says so.
    """
    spec = Path(spec)
    doc = read_toml(spec)
    study = parse_spec(doc, spec)
    study.party(party)
    kind = kind_of(study)
    if study.kind == "experiment":  # cheap (a logic-level check); an eval study's power simulation only warns
        flags = blocking_flags(kind.check(study))
        if flags:
            raise InputError(f"refusing to lock a design that cannot settle its question: {flags[0]}"
                             " (see 'empiricist study check')", path=spec)
    if key is not None:
        private = keys.load_private_key(key)
        signer = _registered_signer(spec, party, signer, private, Path(key))
    if signer is None or not signer.strip():
        raise InputError("a sign-off needs the signer's name (or a --key registered for the party)", field="signer")
    lock = checked_lock(spec)
    current = kind.resolve(study, workspace, prepare=prepare).artifacts
    if lock is None:
        lock = {"study": study.id, "spec_file": spec.name, "spec_sha256": locking.spec_sha256(doc), "spec": doc,
                "code": locking.code_version(), "environment": package_versions(), "artifacts": current,
                "parties": [p.name for p in study.parties], "signoffs": [], "created": locking.now(), "chain": []}
        locking.append_entry(lock, spec_entry(lock))
    else:
        locking.check_spec(doc, lock, spec)
        locking.check_artifacts(lock, current)
        done = [s for s in lock["signoffs"] if s["party"] == party]
        if done:
            raise InputError(f"party {party!r} already signed ({done[0]['signer']}, {done[0]['time']})",
                             field="party")
    body: dict[str, Any] = {"type": "signoff", "party": party, "signer": signer, "time": locking.now(),
                            "key": None, "signature": None}
    if key is not None and lock.get("chain") is not None:
        body["key"] = keys.fingerprint(_public_line(private))
        body["signature"] = keys.sign(private, signoff_payload(lock, body, lock["chain"][-1]["hash"]))
    elif key is not None:
        raise InputError(f"{locking.lock_path(spec).name} was written before signed locks (no hash chain): it "
                         "cannot take a signed sign-off", field="key")
    if lock.get("chain") is not None:
        locking.append_entry(lock, body)
    lock["signoffs"].append({k: body[k] for k in ("party", "signer", "time", "key")})
    signed = {s["party"] for s in lock["signoffs"]}
    lock["complete"] = all(p in signed for p in lock["parties"])
    atomic_write_json(locking.lock_path(spec), lock)
    return lock


def _public_line(private: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()


def _registered_signer(spec: Path, party: str, signer: str | None, private: Ed25519PrivateKey, key: Path) -> str:
    """The signer name the registry holds for this key and party (refusing a key it does not hold)."""
    registry = keys.KeyRegistry.load(locking.keys_path(spec))
    mine = keys.fingerprint(_public_line(private))
    names = [s for s, k in registry.parties.get(party, {}).items() if keys.fingerprint(k) == mine]
    if not names:
        raise InputError(f"this key ({mine}) is not registered for party {party!r} in {registry.path}; run "
                         f"'empiricist study keygen {spec.name} --party {party}' or add its public key",
                         path=key, field="key")
    if signer is not None and signer not in names:
        raise InputError(f"the registry holds this key for {party!r} as {', '.join(names)}, not {signer!r}",
                         path=key, field="signer")
    return signer or names[0]


def keygen(spec: str | Path, party: str, signer: str | None = None, out: str | Path | None = None,
           overwrite: bool = False) -> tuple[keys.KeyPair, Path]:
    """A new ed25519 key for ``party`` of ``spec``: the private key under ``out`` (default
    ``~/.config/empiricist/keys/``, outside any repository, mode 0600), the public key added to the
    study's registry ``<spec>.keys.toml`` (which the study commits). Returns (key pair, registry path)."""
    spec = Path(spec)
    study = parse_spec(read_toml(spec), spec)
    study.party(party)
    signer = signer or party
    path = locking.keys_path(spec)
    registry = keys.KeyRegistry.load(path) if path.exists() else keys.KeyRegistry(path=path)
    if signer in registry.parties.get(party, {}) and not overwrite:
        raise InputError(f"{party}/{signer} already has a key in the registry (pass --overwrite to replace it)",
                         path=path, field=f"parties.{party}.{signer}")
    folder = Path(out).expanduser() if out is not None else Path.home() / ".config" / "empiricist" / "keys"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{study.id}-{party}-{signer}")
    pair = keys.generate_keypair(folder / f"{stem}.key", comment=f"{study.id}/{party}/{signer}", overwrite=overwrite)
    registry.add(party, signer, pair.public_key)
    registry.save(path)
    return pair, path


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
    lock = checked_lock(spec)
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
    if lock.get("chain"):
        locking.append_entry(lock, {"type": "migration", "why": why, "artifacts_sha256": config_hash(current, 64)})
    atomic_write_json(locking.lock_path(spec), lock)
    return {"migrated": True, "lock": lock, "changes": changes}
