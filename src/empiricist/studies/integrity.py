"""Checking a lock on every read: its party set, its stored spec copy, its hash chain, its signatures.

Why: a lock is the study's promise that the predictions were fixed before the data were seen; a lock one
party can rewrite alone is worth nothing. ``check_lock`` runs every check and says, one line each, what
holds and what broke, naming the party, sign-off or amendment; ``checked_lock`` is what ``study run``,
``bundle``, ``lock`` and ``migrate-lock`` read a lock through (a broken lock is refused, naming what
broke). The chain (``keys.chain_append``) is: entry 0 the stored spec copy (its sha256, the party set and
the pinned artifacts' hash), then every sign-off, migration and amendment in the order they were made.
A signed sign-off's signature covers ``signoff_payload``: the study, the party, the signer, the time, the
spec's sha256 and the hash of the chain before it (so everything signed before it too).

Locks written before signed locks (no ``chain``) still load: the party set and the stored spec copy are
checked, and the lock is reported as ``lock.NO_CHAIN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empiricist.artifacts import config_hash
from empiricist.errors import EmpiricistError, InputError
from empiricist.studies import lock as locking
from empiricist.studies.keys import KeyRegistry, SignatureError, fingerprint, verify_chain, verify_signature

SIGNOFF_KEYS = ("party", "signer", "time", "key")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAILED'}  {self.name}: {self.detail}"


class LockBroken(locking.LockMismatch):
    """A lock that fails its own checks (tampered or damaged); ``checks`` holds every check's result."""

    def __init__(self, path: Path, checks: list[Check]) -> None:
        self.checks = checks
        super().__init__(f"{path}: the lock fails verification", [c.line() for c in checks if not c.ok])


def spec_entry(lock: dict[str, Any]) -> dict[str, Any]:
    """Body of chain entry 0: what the stored spec copy and the pinned artifacts hash to, and the parties."""
    return {"type": "spec", "spec_sha256": lock["spec_sha256"], "parties": list(lock["parties"]),
            "artifacts_sha256": config_hash(lock["artifacts"], 64)}


def signoff_payload(lock: dict[str, Any], body: dict[str, Any], prev: str) -> dict[str, Any]:
    """What a party signs: who, when, which spec, and the chain so far (``prev``: the previous entry's hash)."""
    return {"study": lock["study"], "party": body["party"], "signer": body["signer"], "time": body["time"],
            "spec_sha256": lock["spec_sha256"], "prev": prev}


def spec_parties(doc: dict[str, Any]) -> list[str]:
    parties = doc.get("parties", [])
    return [p.get("name") for p in parties if isinstance(p, dict)] if isinstance(parties, list) else []


def _check_parties(lock: dict[str, Any]) -> Check:
    want, have = spec_parties(lock.get("spec", {})), list(lock.get("parties", []))
    missing = [p for p in want if p not in have]
    extra = [p for p in have if p not in want]
    if missing or extra or len(set(have)) != len(have):
        parts = ([f"party {', '.join(missing)} of the spec is missing from the lock"] if missing else []) + \
            ([f"{', '.join(extra)} is not a party of the spec"] if extra else []) + \
            (["a party is listed twice"] if len(set(have)) != len(have) else [])
        return Check("parties", False, "; ".join(parts))
    bad = [s.get("party") for s in lock.get("signoffs", []) if s.get("party") not in want]
    seen = [s.get("party") for s in lock.get("signoffs", [])]
    twice = sorted({p for p in seen if seen.count(p) > 1})
    if bad or twice:
        return Check("parties", False, "; ".join(([f"sign-off by {', '.join(map(str, bad))}, not a party"] if bad
                                                  else []) + ([f"{', '.join(twice)} signed twice"] if twice else [])))
    return Check("parties", True, f"the lock's parties are the spec's ({', '.join(want)})")


def _check_copy(lock: dict[str, Any]) -> Check:
    if locking.spec_sha256(lock.get("spec", {})) != lock.get("spec_sha256"):
        return Check("spec copy", False, "the lock's stored spec copy does not hash to its recorded spec_sha256 "
                                         "(the copy or the hash was edited)")
    return Check("spec copy", True, f"stored spec copy matches its sha256 {lock['spec_sha256'][:16]}")


def _check_chain(lock: dict[str, Any], amendments: list[dict[str, Any]]) -> list[Check]:
    chain = lock["chain"]
    try:
        verify_chain(chain)
    except SignatureError as e:
        return [Check("hash chain", False, f"{e}{_what(chain, str(e))}")]
    problems = []
    if not chain or chain[0]["body"] != spec_entry({**lock, "artifacts": _locked_artifacts(lock)}):
        problems.append("entry 0 (the stored spec copy) no longer matches the lock's spec_sha256, parties or "
                        "pinned artifacts (the lock was edited after the chain was written)")
    migrations = [e["body"] for e in chain if e["body"].get("type") == "migration"]
    if migrations and migrations[-1]["artifacts_sha256"] != config_hash(lock["artifacts"], 64):
        problems.append("the pinned artifacts differ from the last recorded migration (edited)")
    chained = [{k: e["body"].get(k) for k in SIGNOFF_KEYS} for e in chain if e["body"].get("type") == "signoff"]
    listed = [{k: s.get(k) for k in SIGNOFF_KEYS} for s in lock.get("signoffs", [])]
    for i in range(max(len(chained), len(listed))):
        if i >= len(listed):
            problems.append(f"sign-off of {chained[i]['party']} ({chained[i]['signer']}) is in the chain but was "
                            "deleted from the lock's sign-offs")
        elif i >= len(chained):
            problems.append(f"sign-off of {listed[i]['party']} ({listed[i]['signer']}) is not in the hash chain "
                            "(added or edited after signing)")
        elif chained[i] != listed[i]:
            problems.append(f"sign-off {i} was edited: the chain records {chained[i]['party']} "
                            f"({chained[i]['signer']}, {chained[i]['time']}), the lock says {listed[i]['party']} "
                            f"({listed[i]['signer']}, {listed[i]['time']})")
    out = [Check("hash chain", not problems, "; ".join(problems) or
                 f"{len(chain)} entries (spec, {len(chained)} sign-offs, {len(migrations)} migrations, "
                 f"{sum(e['body'].get('type') == 'amendment' for e in chain)} amendments), head {chain[-1]['hash'][:12]}")]
    return out + [_check_amendments(chain, amendments)]


def _locked_artifacts(lock: dict[str, Any]) -> dict[str, Any]:
    """The artifacts entry 0 recorded: the ones before the first migration, if any."""
    migrations = lock.get("migrations") or []
    chained = [e for e in lock["chain"] if e["body"].get("type") == "migration"]
    if not chained:
        return lock["artifacts"]
    if len(migrations) < len(chained):
        return {"(migrations were deleted from the lock)": {}}
    return migrations[-len(chained)]["previous_artifacts"]


def _what(chain: list[dict[str, Any]], message: str) -> str:
    """Name the chain entry a chain error points at (``hash chain entry 3: ...`` -> the sign-off of X)."""
    import re

    m = re.match(r"hash chain entry (\d+)", message)
    if not m or int(m.group(1)) >= len(chain):
        return ""
    body = chain[int(m.group(1))].get("body", {})
    kind = body.get("type")
    if kind == "signoff":
        return f" [the sign-off of {body.get('party')} ({body.get('signer')})]"
    if kind == "amendment":
        return f" [the amendment by {body.get('author')} of {body.get('date')}: {body.get('what')!r}]"
    return f" [the {kind} entry]"


def _check_amendments(chain: list[dict[str, Any]], amendments: list[dict[str, Any]]) -> Check:
    chained = [{k: v for k, v in e["body"].items() if k != "type"} for e in chain if e["body"].get("type") == "amendment"]
    for i in range(max(len(chained), len(amendments))):
        if i >= len(amendments):
            c = chained[i]
            return Check("amendments", False, f"amendment[{i}] ({c['author']}, {c['date']}: {c['what']!r}) is in "
                                              "the lock's chain but was deleted from the amendments file")
        if i >= len(chained):
            continue  # amended before the lock had a chain (or before the spec was locked)
        if chained[i] != amendments[i]:
            fields = [k for k in locking.AMENDMENT_KEYS if chained[i].get(k) != amendments[i].get(k)]
            return Check("amendments", False, f"amendment[{i}] was edited after it was recorded in the lock "
                                              f"({', '.join(fields)} differ{'s' if len(fields) == 1 else ''})")
    return Check("amendments", True, f"{len(amendments)} amendments, {len(chained)} recorded in the chain, unchanged")


def _check_signatures(lock: dict[str, Any], registry_path: Path) -> Check:
    chain = lock["chain"]
    signoffs = [(e["prev"], e["body"]) for e in chain if e["body"].get("type") == "signoff"]
    signed = [(prev, b) for prev, b in signoffs if b.get("signature") or b.get("key")]
    unsigned = [f"{b['party']} ({b['signer']})" for _, b in signoffs if not (b.get("signature") or b.get("key"))]
    if not signed:
        return Check("signatures", True, f"UNSIGNED (name-only) sign-offs: {', '.join(unsigned)}" if unsigned
                     else "no sign-offs yet")
    try:
        registry = KeyRegistry.load(registry_path)
    except InputError as e:
        return Check("signatures", False, f"signed sign-offs but no usable key registry: {e}")
    owners = {fingerprint(k): (p, s) for p, signers in registry.parties.items() for s, k in signers.items()}
    problems = []
    for prev, b in signed:
        who = f"sign-off of {b['party']} ({b['signer']})"
        try:
            key = registry.public_key(b["party"], b["signer"])
        except SignatureError as e:
            problems.append(f"{who}: {e}")
            continue
        if b.get("key") != fingerprint(key):
            owner = owners.get(b.get("key"))
            problems.append(f"{who}: signed with key {b.get('key')}" + (
                f", which the registry holds for {owner[0]} ({owner[1]})" if owner else ", which is not in the registry")
                + f", not {b['party']}'s registered key {fingerprint(key)}")
            continue
        try:
            verify_signature(key, signoff_payload(lock, b, prev), b.get("signature") or "")
        except SignatureError as e:
            problems.append(f"{who}: {e}")
    if problems:
        return Check("signatures", False, "; ".join(problems))
    tail = f"; UNSIGNED (name-only) sign-offs: {', '.join(unsigned)}" if unsigned else ""
    return Check("signatures", True, f"{len(signed)} signatures verify against {registry_path.name}{tail}")


def check_lock(spec: str | Path, lock: dict[str, Any] | None = None, doc: dict[str, Any] | None = None,
               ) -> list[Check]:
    """Every check of ``spec``'s lock (read from disk unless given); ``doc``: the current spec, also compared."""
    spec = Path(spec)
    lock = lock if lock is not None else locking.read_lock(spec)
    if lock is None:
        return [Check("lock", False, f"{spec} has no lock ({locking.lock_path(spec).name})")]
    try:
        return _checks(spec, lock, doc)
    except (KeyError, TypeError, AttributeError) as e:  # a lock whose structure was damaged or hand-edited
        return [Check("lock", False, f"{locking.lock_path(spec).name} is malformed ({type(e).__name__}: {e}); "
                                     "restore it from the study's repository")]


def _checks(spec: Path, lock: dict[str, Any], doc: dict[str, Any] | None) -> list[Check]:
    checks = [_check_parties(lock), _check_copy(lock)]
    if doc is not None:
        try:
            locking.check_spec(doc, lock, spec)
            checks.append(Check("spec file", True, f"{spec.name} is the locked spec"))
        except locking.LockMismatch as e:
            checks.append(Check("spec file", False, f"{spec.name} changed since it was locked: "
                                                    + "; ".join(e.changes[:5])))
    amendments = locking.read_amendments(spec)
    if not lock.get("chain"):
        checks.append(Check("hash chain", True, locking.NO_CHAIN))
    else:
        checks += _check_chain(lock, amendments)
        checks.append(_check_signatures(lock, locking.keys_path(spec)))
    missing = [p for p in lock.get("parties", []) if p not in {s.get("party") for s in lock.get("signoffs", [])}]
    checks.append(Check("sign-offs", True, f"no sign-off yet from {', '.join(missing)} (lock incomplete)" if missing
                        else f"every party signed ({locking.signature_state(lock)})"))
    return checks


def checked_lock(spec: str | Path, doc: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``read_lock`` that refuses a lock failing any check (the spec file itself is compared by the caller)."""
    spec = Path(spec)
    lock = locking.read_lock(spec)
    if lock is None:
        return None
    checks = check_lock(spec, lock, doc)
    if not all(c.ok for c in checks):
        raise LockBroken(locking.lock_path(spec), checks)
    return lock


def verified_status(spec: str | Path) -> str:
    """``lock.lock_status`` of a lock that passes its checks; ``LOCK BROKEN: <first failure>`` otherwise
    (what the ledger and ``study check`` show, so a tampered lock never reads as pre-registered)."""
    lock = locking.read_lock(spec)
    if lock is None:
        return locking.lock_status(None)
    try:
        failed = [c for c in check_lock(spec, lock) if not c.ok]
    except EmpiricistError as e:
        return f"LOCK BROKEN: {e}"
    return f"LOCK BROKEN: {failed[0].name}: {failed[0].detail}" if failed else locking.lock_status(lock)
