"""Signing primitives: each way of faking a sign-off or a chain is detected and named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from empiricist.errors import InputError
from empiricist.studies.keys import (
    KeyRegistry,
    SignatureError,
    chain_append,
    fingerprint,
    generate_keypair,
    load_private_key,
    sign,
    verify_chain,
    verify_signature,
    verify_signed,
)

PAYLOAD = {"study": "s1", "spec_sha256": "ab" * 32, "party": "proposer", "predictions": ["P1: d > 0.2"]}


@pytest.fixture()
def keys(tmp_path: Path):
    a = generate_keypair(tmp_path / "alice", comment="alice@lab")
    b = generate_keypair(tmp_path / "bob")
    reg = KeyRegistry()
    reg.add("proposer", "alice", a.public_key)
    reg.add("reviewer", "bob", b.public_key)
    reg.save(tmp_path / "keys.toml")
    return a, b, KeyRegistry.load(tmp_path / "keys.toml")


def test_private_key_is_0600_and_key_files_are_openssh(keys) -> None:
    a, _, _ = keys
    assert stat.S_IMODE(a.private_path.stat().st_mode) == 0o600
    assert a.private_path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert a.public_key.startswith("ssh-ed25519 ") and a.public_key.endswith("alice@lab")
    assert fingerprint(a.public_key).startswith("SHA256:")
    with pytest.raises(InputError, match="refusing to overwrite"):
        generate_keypair(a.private_path)


def test_good_signature_verifies_and_tampering_is_detected(keys) -> None:
    a, b, reg = keys
    sig = sign(load_private_key(a.private_path), PAYLOAD)
    verify_signed(reg, "proposer", "alice", PAYLOAD, sig)  # no exception
    tampered = {**PAYLOAD, "predictions": ["P1: d > 0.1"]}
    with pytest.raises(SignatureError, match="tampered payload or wrong key"):
        verify_signed(reg, "proposer", "alice", tampered, sig)
    with pytest.raises(SignatureError, match="tampered payload or wrong key"):
        verify_signature(b.public_key, PAYLOAD, sig)  # wrong key
    forged = sign(load_private_key(b.private_path), PAYLOAD)  # bob signs as alice
    with pytest.raises(SignatureError, match="proposer/alice"):
        verify_signed(reg, "proposer", "alice", PAYLOAD, forged)
    with pytest.raises(SignatureError):
        verify_signature(a.public_key, PAYLOAD, "not base64!")


def test_signer_not_in_registry_is_refused(keys) -> None:
    a, _, reg = keys
    sig = sign(load_private_key(a.private_path), PAYLOAD)
    with pytest.raises(SignatureError, match="'mallory' of party 'proposer' is not in the key registry"):
        verify_signed(reg, "proposer", "mallory", PAYLOAD, sig)
    with pytest.raises(SignatureError, match="party 'reviewer'"):
        verify_signed(reg, "reviewer", "alice", PAYLOAD, sig)


def test_bad_registry_files_are_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "keys.toml"
    bad.write_text('[parties.proposer]\nalice = "ssh-ed25519 notakey"\n')
    with pytest.raises(InputError, match=r"field 'parties.proposer.alice'"):
        KeyRegistry.load(bad)
    bad.write_bytes(b"[parties]\nx = \xff\n")
    with pytest.raises(InputError, match="UTF-8"):
        KeyRegistry.load(bad)


def _chain() -> list[dict]:
    entries: list[dict] = []
    for body in ({"type": "spec", "sha256": "cd" * 32}, {"type": "signoff", "party": "proposer"},
                 {"type": "signoff", "party": "reviewer"}, {"type": "amendment", "text": "n = 200"}):
        entries.append(chain_append(entries, body))
    return entries


def test_intact_chain_verifies() -> None:
    entries = _chain()
    verify_chain(entries, head=entries[-1]["hash"])


def test_edited_entry_is_named() -> None:
    entries = _chain()
    entries[3]["body"]["text"] = "n = 20"
    with pytest.raises(SignatureError, match="entry 3: its content does not match its hash"):
        verify_chain(entries)


def test_reordered_entries_are_detected() -> None:
    entries = _chain()
    entries[1], entries[2] = entries[2], entries[1]
    with pytest.raises(SignatureError, match="entry 1"):
        verify_chain(entries)


def test_deleted_entries_are_detected() -> None:
    entries = _chain()
    with pytest.raises(SignatureError, match="entry 1"):
        verify_chain([entries[0], *entries[2:]])
    with pytest.raises(SignatureError, match="entries removed at the end"):
        verify_chain(entries[:-1], head=entries[-1]["hash"])


def test_recomputed_hash_after_edit_breaks_the_next_link() -> None:
    """An adversary who edits an entry and recomputes its own hash still breaks the following entry."""
    entries = _chain()
    entries[0]["body"]["sha256"] = "ee" * 32
    entries[0] = chain_append([], entries[0]["body"])
    with pytest.raises(SignatureError, match="entry 1: does not follow entry 0"):
        verify_chain(entries)
