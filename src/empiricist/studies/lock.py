"""Locking a spec before the data are seen, signing it per party, and append-only amendments.

``<spec>.lock.json`` holds the canonical spec (the parsed TOML as canonical JSON) and its sha256, the
code version, the identities of the data and model artifacts, and one sign-off per party. A lock is
complete once every party has signed. Afterwards any difference is refused and named, field by field
(``parties.skeptic.predictions[0].threshold: 0.05 -> 0.06``) and artifact by artifact. Deviations from
the plan go in ``<spec>.amendments.toml``: entries chained by hash, so editing or deleting an earlier
entry is detected; each is also appended to the lock's hash chain (``chain``: the stored spec copy,
every sign-off, every amendment; see ``integrity``), so the last one cannot be edited or dropped either.
Sign-offs may carry an ed25519 signature checked against ``<spec>.keys.toml`` (``keys``).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from empiricist.artifacts import (
    atomic_write_json,
    atomic_write_text,
    canonical_json,
    package_versions,
    read_manifest,
    sha256_bytes,
)
from empiricist.errors import ArtifactError, EmpiricistError, InputError
from empiricist.studies.fields import read_toml
from empiricist.studies.keys import chain_append, verify_chain

AMENDMENT_KEYS = ("date", "author", "what", "why", "prev")
IDENTITY_KEYS = ("kind", "config", "inputs", "files")


class LockMismatch(EmpiricistError):
    """The spec or an artifact differs from what was locked; ``changes`` names each difference."""

    def __init__(self, what: str, changes: list[str]) -> None:
        self.changes = changes
        shown = changes[:40] + ([f"... and {len(changes) - 40} more"] if len(changes) > 40 else [])
        super().__init__(f"{what}:\n  " + "\n  ".join(shown))


def identity(folder: str | Path) -> dict[str, Any]:
    """The parts of an artifact's manifest that say what it holds: what a lock pins of it.

    Timestamps, argv, versions and paths are left out, so a re-generated, byte-identical artifact has
    the same identity; any change to what it holds does not.
    """
    manifest = read_manifest(folder)
    return {k: manifest.get(k) for k in IDENTITY_KEYS}


def lock_path(spec: str | Path) -> Path:
    spec = Path(spec)
    return spec.with_name(f"{spec.stem}.lock.json")


def keys_path(spec: str | Path) -> Path:
    """The study's key registry (parties' public keys), beside the spec in its repository."""
    spec = Path(spec)
    return spec.with_name(f"{spec.stem}.keys.toml")


def amendments_path(spec: str | Path) -> Path:
    spec = Path(spec)
    return spec.with_name(f"{spec.stem}.amendments.toml")


def spec_sha256(doc: dict[str, Any]) -> str:
    return sha256_bytes(canonical_json(doc).encode("utf-8"))


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- naming differences
def _label(items: list[Any], i: int) -> str:
    x = items[i]
    return f".{x['name']}" if isinstance(x, dict) and isinstance(x.get("name"), str) else f"[{i}]"


def _names(items: list[Any]) -> list[str] | None:
    names = [x.get("name") if isinstance(x, dict) else None for x in items]
    return names if all(isinstance(n, str) for n in names) and len(set(names)) == len(names) else None


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Every difference between two JSON documents as ``path: old -> new`` lines.

    Tables of a list that carry a ``name`` (parties) are labelled by it: ``parties.skeptic.combine``.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in new:
                out.append(f"{sub}: removed (was {_show(old[k])})")
            elif k not in old:
                out.append(f"{sub}: added ({_show(new[k])})")
            else:
                out += diff(old[k], new[k], sub)
        return out
    if isinstance(old, list) and isinstance(new, list):
        names_old, names_new = _names(old), _names(new)
        if names_old and names_new and set(names_old) == set(names_new) and names_old != names_new:
            out = [f"{path}: order changed ({names_old} -> {names_new})"]
            by_new = dict(zip(names_new, new, strict=True))
            return out + [d for n, x in zip(names_old, old, strict=True) for d in diff(x, by_new[n], f"{path}.{n}")]
        out = []
        for i in range(max(len(old), len(new))):
            if i >= len(new):
                out.append(f"{path}{_label(old, i)}: removed (was {_show(old[i])})")
            elif i >= len(old):
                out.append(f"{path}{_label(new, i)}: added ({_show(new[i])})")
            else:
                out += diff(old[i], new[i], f"{path}{_label(old, i)}")
        return out
    if old != new or type(old) is not type(new):
        return [f"{path}: {_show(old)} -> {_show(new)}"]
    return []


def _show(x: Any, limit: int = 80) -> str:
    text = json.dumps(x, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def artifact_changes(locked: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """Named differences between the locked artifacts and the current ones."""
    out = []
    for name, rec in locked.items():
        cur = current.get(name)
        label = f"artifact {name} ({rec.get('what')}, locked at {rec.get('path')})"
        if cur is None:
            out.append(f"{label}: no longer among the study's inputs")
            continue
        if rec.get("pinned") != cur.get("pinned"):
            out.append(f"{label}: now resolves to {cur.get('pinned')}, locked {rec.get('pinned')}")
        out += [f"{label}: {d}" for d in diff(rec["identity"], cur["identity"])]
    out += [f"artifact {name} ({cur.get('what')}): not in the lock" for name, cur in current.items()
            if name not in locked]
    return out


# ---------------------------------------------------------------- the lock
def code_version() -> dict[str, Any]:
    """Package version and, when the package runs from a git checkout, its commit (read-only git call)."""
    import empiricist

    out: dict[str, Any] = {"empiricist": package_versions().get("empiricist"), "git_commit": None}
    repo = Path(empiricist.__file__).resolve().parents[2]
    if (repo / ".git").exists():
        try:
            res = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                 timeout=10, check=False)
            out["git_commit"] = res.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    return out


def read_lock(spec: str | Path) -> dict[str, Any] | None:
    path = lock_path(spec)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: corrupted lock ({e})") from None


def check_spec(doc: dict[str, Any], lock: dict[str, Any], spec: str | Path) -> None:
    """Refuse a spec that differs from the locked one, naming every changed field."""
    if spec_sha256(doc) != lock["spec_sha256"]:
        raise LockMismatch(f"{spec} changed since it was locked ({lock_path(spec).name}); amend the plan in "
                           f"{amendments_path(spec).name} instead of editing the spec",
                           diff(lock["spec"], doc) or ["(canonical form differs)"])


def check_artifacts(lock: dict[str, Any], current: dict[str, dict[str, Any]]) -> None:
    changes = artifact_changes(lock.get("artifacts", {}), current)
    if changes:
        raise LockMismatch("the data or models changed since the study was locked", changes)


def lock_summary(lock: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a lock a results file repeats (what was signed, by whom, when, and any migration)."""
    if lock is None:
        return None
    out = {k: lock.get(k) for k in ("spec_sha256", "signoffs", "complete", "created", "code", "parties")}
    out["signatures"] = signature_state(lock)
    if lock.get("chain"):
        out["chain_head"] = lock["chain"][-1]["hash"]
    if lock.get("migrations"):
        out["migrations"] = [{"time": m["time"], "why": m["why"]} for m in lock["migrations"]]
    return out


def lock_status(lock: dict[str, Any] | None) -> str:
    if lock is None:
        return "exploratory: not locked"
    missing = [p for p in lock["parties"] if p not in {s["party"] for s in lock["signoffs"]}]
    if missing:
        return f"exploratory: lock incomplete (no sign-off from {', '.join(missing)})"
    return "pre-registered"


NO_CHAIN = "unsigned, no chain (written before signed locks)"
SIGNED_ALL = "signed by all parties"


def signature_state(lock: dict[str, Any] | None) -> str | None:
    """Whether the sign-offs are signed: what every report and bundle repeats beside the status."""
    if lock is None:
        return None
    if not lock.get("chain"):
        return NO_CHAIN
    unsigned = [f"{s['party']} ({s['signer']})" for s in lock["signoffs"] if not s.get("key")]
    if unsigned:
        return f"UNSIGNED (name-only) sign-offs: {', '.join(unsigned)}"
    if lock.get("complete"):
        return SIGNED_ALL
    return f"signed by {', '.join(s['party'] for s in lock['signoffs']) or 'no party yet'} (not yet by all parties)"


def append_entry(lock: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Append one entry to the lock's hash chain (after checking the chain so far) and return it."""
    verify_chain(lock["chain"])
    entry = chain_append(lock["chain"], body)
    lock["chain"].append(entry)
    return entry


# ---------------------------------------------------------------- amendments
def read_amendments(spec: str | Path) -> list[dict[str, Any]]:
    """The amendments, checked: known keys, and the hash chain unbroken (append-only)."""
    path = amendments_path(spec)
    if not path.exists():
        return []
    doc = read_toml(path)
    extra = sorted(set(doc) - {"amendment"})
    if extra:
        raise InputError(f"unknown key {extra[0]!r}: the file holds [[amendment]] entries only", path=path,
                         field=extra[0])
    entries = doc.get("amendment", [])
    for i, e in enumerate(entries):
        where = f"amendment[{i}]"
        if not isinstance(e, dict) or set(e) != set(AMENDMENT_KEYS):
            raise InputError(f"an amendment has exactly the keys {', '.join(AMENDMENT_KEYS)}", path=path, field=where)
        if e["prev"] != _chain(entries[:i]):
            raise InputError("the amendments were edited: this entry no longer follows the ones before it "
                             "(amendments are append-only: add a new entry instead)", path=path, field=where)
    return entries


def _chain(entries: list[dict[str, Any]]) -> str:
    return sha256_bytes(canonical_json(entries).encode("utf-8"))[:16]


def amend(spec: str | Path, author: str, what: str, why: str) -> dict[str, Any]:
    """Append one amendment (date, author, what, why) and return it; a lock with a hash chain records it too."""
    for key, value in (("author", author), ("what", what), ("why", why)):
        if not value.strip():
            raise InputError("must not be empty", field=key)
    entries = read_amendments(spec)
    entry = {"date": now(), "author": author, "what": what, "why": why, "prev": _chain(entries)}
    path = amendments_path(spec)
    old = path.read_text(encoding="utf-8") if path.exists() else \
        "# Append-only: each entry's prev is a hash of the entries before it.\n"
    block = "\n[[amendment]]\n" + "".join(f"{k} = {toml_string(entry[k])}\n" for k in AMENDMENT_KEYS)
    lock = read_lock(spec)
    if lock is not None and lock.get("chain"):
        append_entry(lock, {"type": "amendment", **entry})
    atomic_write_text(path, old + block)
    if lock is not None and lock.get("chain"):
        atomic_write_json(lock_path(spec), lock)
    return entry


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, except that TOML also forbids a raw DEL)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
