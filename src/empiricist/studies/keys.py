"""Signing primitives for study locks (used by ``signing``): ed25519 keys, a per-study key registry, signed payloads, hash chains.

Why: a pre-registration is only worth something if no single party can change it afterwards. Each party
signs with its own private key; the public keys live in a registry file next to the spec in the spec's
repository, so a reviewer checks signatures against keys that were published with the spec. The
cryptography is the maintained ``cryptography`` package (ed25519), never hand-written.

API (the lock/run/verify code wires these together):

* ``generate_keypair(private_path, public_path=None)`` -> ``KeyPair``: a new ed25519 key; the private key
  is written as unencrypted OpenSSH PEM with mode 0600, the public key in OpenSSH one-line form
  (``ssh-ed25519 AAAA... comment``), so researchers can use the same files with ``ssh-keygen -Y``.
* ``load_private_key(path)`` / ``load_public_key(text_or_path)``.
* ``KeyRegistry.load(path)`` / ``KeyRegistry.save(path)``: a TOML file ``[parties.<party>] <signer> =
  "ssh-ed25519 ..."``; ``registry.public_key(party, signer)`` raises ``SignatureError`` for unknown ones.
* ``canonical_payload(obj)`` -> bytes: the canonical JSON that is signed (sorted keys, no whitespace).
* ``sign(private_key, obj)`` -> base64 signature; ``verify_signature(public_key, obj, signature)`` raises
  ``SignatureError`` on a tampered payload or a wrong key; ``verify_signed(registry, party, signer, obj,
  signature)`` also requires the key to be in the registry.
* ``chain_append(entries, body)`` -> the new entry ``{"index", "prev", "body", "hash"}``, where ``prev`` is
  the previous entry's ``hash`` (``GENESIS`` for the first) and ``hash`` the sha256 of the entry's
  canonical payload without ``hash``; ``verify_chain(entries)`` raises ``SignatureError`` naming the first
  broken link (edited, reordered, deleted or inserted entry). A study's chain is: stored spec copy ->
  sign-offs -> amendments, each body carrying what it records (and, for sign-offs, a signature).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.errors import EmpiricistError, InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64


class SignatureError(EmpiricistError):
    """A signature, key or hash chain that does not check out; the message names what broke."""


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    public_key: str  # OpenSSH one-line form


# ---------------------------------------------------------------- keys
def generate_keypair(private_path: str | Path, public_path: str | Path | None = None, comment: str = "",
                     overwrite: bool = False) -> KeyPair:
    """Create an ed25519 key pair; the private key file is created with mode 0600 (never world-readable)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(private_path)
    public_path = Path(public_path) if public_path is not None else private_path.with_name(private_path.name + ".pub")
    for p in (private_path, public_path):
        if p.exists() and not overwrite:
            raise InputError("exists; refusing to overwrite a key (pass overwrite=True)", path=p)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(private_path, 0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = public.decode() + (f" {comment}" if comment else "")
    public_path.write_text(line + "\n")
    return KeyPair(private_path, public_path, line)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An ed25519 private key from an OpenSSH or PKCS#8 PEM file (unencrypted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    try:
        data = path.read_bytes()
        key = (serialization.load_ssh_private_key(data, password=None) if b"OPENSSH" in data
               else serialization.load_pem_private_key(data, password=None))
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"not a readable unencrypted ed25519 private key ({e})", path=path) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("is not an ed25519 key", path=path)
    return key


def load_public_key(key: str | Path) -> Ed25519PublicKey:
    """An ed25519 public key from its OpenSSH line (``ssh-ed25519 AAAA...``) or a file holding one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = str(key)
    if not text.startswith("ssh-"):
        text = Path(key).read_text().strip()
    try:
        pub = serialization.load_ssh_public_key(" ".join(text.split()[:2]).encode())
    except (ValueError, TypeError, IndexError) as e:
        raise SignatureError(f"not an OpenSSH public key: {text[:40]!r} ({e})") from None
    if not isinstance(pub, Ed25519PublicKey):
        raise SignatureError(f"not an ed25519 public key: {text[:40]!r}")
    return pub


def fingerprint(public_key: str) -> str:
    """SHA256 fingerprint of an OpenSSH public key line, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# ---------------------------------------------------------------- the registry
@dataclass
class KeyRegistry:
    """Public keys by party and signer, kept in the spec's repository (``keys.toml`` next to the spec)."""

    parties: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> KeyRegistry:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise InputError("key registry not found", path=path) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as e:
            raise InputError(f"not a valid UTF-8 TOML key registry ({e})", path=path) from None
        parties = data.get("parties", {})
        if not isinstance(parties, dict) or not all(
                isinstance(v, dict) and all(isinstance(k, str) for k in v.values()) for v in parties.values()):
            raise InputError("expected [parties.<party>] tables of signer = \"ssh-ed25519 ...\"", path=path,
                             field="parties")
        for party, signers in parties.items():
            for signer, key in signers.items():
                try:
                    load_public_key(key)
                except SignatureError as e:
                    raise InputError(str(e), path=path, field=f"parties.{party}.{signer}") from None
        return cls({p: dict(s) for p, s in parties.items()}, path)

    def add(self, party: str, signer: str, public_key: str) -> None:
        load_public_key(public_key)
        self.parties.setdefault(party, {})[signer] = " ".join(public_key.split()[:2])

    def public_key(self, party: str, signer: str) -> str:
        try:
            return self.parties[party][signer]
        except KeyError:
            where = f" ({self.path})" if self.path else ""
            raise SignatureError(f"signer {signer!r} of party {party!r} is not in the key registry{where}") from None

    def save(self, path: str | Path | None = None) -> Path:
        from empiricist.artifacts import atomic_write_text

        target = Path(path) if path is not None else self.path
        if target is None:
            raise InputError("no path to save the key registry to")
        lines = ["# public keys of the parties allowed to sign this study (ed25519, OpenSSH form)"]
        for party in sorted(self.parties):
            lines.append(f"\n[parties.{json.dumps(party)}]")
            lines += [f"{json.dumps(s)} = {json.dumps(k)}" for s, k in sorted(self.parties[party].items())]
        return atomic_write_text(target, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- signatures
def canonical_payload(obj: Any) -> bytes:
    """The exact bytes signed and hashed: canonical JSON (sorted keys, no whitespace, UTF-8)."""
    from empiricist.artifacts import canonical_json

    return canonical_json(obj).encode("utf-8")


def sign(private_key: Ed25519PrivateKey, obj: Any) -> str:
    """Base64 ed25519 signature of ``canonical_payload(obj)``."""
    return base64.b64encode(private_key.sign(canonical_payload(obj))).decode()


def verify_signature(public_key: str | Ed25519PublicKey, obj: Any, signature: str) -> None:
    """Raise ``SignatureError`` unless ``signature`` is ``public_key``'s signature of exactly ``obj``."""
    from cryptography.exceptions import InvalidSignature

    key = load_public_key(public_key) if isinstance(public_key, (str, Path)) else public_key
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical_payload(obj))
    except (InvalidSignature, ValueError) as e:
        raise SignatureError("signature does not match the payload and key (tampered payload or wrong key)"
                             f"{': ' + str(e) if str(e) else ''}") from None


def verify_signed(registry: KeyRegistry, party: str, signer: str, obj: Any, signature: str) -> None:
    """``verify_signature`` with the key the registry holds for ``party``/``signer`` (which must exist)."""
    try:
        verify_signature(registry.public_key(party, signer), obj, signature)
    except SignatureError as e:
        raise SignatureError(f"{party}/{signer}: {e}") from None


# ---------------------------------------------------------------- hash chain
def _entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_payload({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def chain_append(entries: Sequence[Mapping[str, Any]], body: Mapping[str, Any]) -> dict[str, Any]:
    """The next entry of a chain (not appended: the caller stores it): holds the previous entry's hash."""
    prev = entries[-1]["hash"] if entries else GENESIS
    entry: dict[str, Any] = {"index": len(entries), "prev": prev, "body": dict(body)}
    entry["hash"] = _entry_hash(entry)
    return entry


def verify_chain(entries: Sequence[Mapping[str, Any]], head: str | None = None) -> None:
    """Raise ``SignatureError`` naming the first broken link. ``head``: the expected last hash (catches a
    deleted last entry when the head is recorded elsewhere, e.g. signed)."""
    prev = GENESIS
    for i, entry in enumerate(entries):
        if entry.get("index") != i:
            raise SignatureError(f"hash chain entry {i}: index {entry.get('index')!r} (reordered, deleted or "
                                 "inserted entry)")
        if entry.get("prev") != prev:
            raise SignatureError(f"hash chain entry {i}: does not follow entry {i - 1} (its prev hash differs: "
                                 "an entry before it was edited, removed or moved)")
        if _entry_hash(entry) != entry.get("hash"):
            raise SignatureError(f"hash chain entry {i}: its content does not match its hash (edited)")
        prev = entry["hash"]
    if head is not None and prev != head:
        raise SignatureError(f"hash chain ends at {prev[:12]}…, expected {head[:12]}… (entries removed at the end)")
