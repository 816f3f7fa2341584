"""Issue 12, "a lock one party can fake": each attack on a lock, reproduced, and caught and named.

The study is the CI-sized probe-evasion spec (an experiment study: locking it resolves the experiment's
config and rule, nothing trains). Two parties get keys (``study keygen``), sign, and then the lock, the
spec, the amendments or the registry are tampered with the way the issue describes; ``study verify``,
``study run`` (``prepare_run``) and ``bundle`` read the lock through ``integrity.checked_lock``.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from test_studies import EXAMPLES, dump_toml

import empiricist.experiments.probe_evasion  # noqa: F401  (registers the experiment)
from empiricist.studies import amend, read_toml
from empiricist.studies import lock as locking
from empiricist.studies.integrity import LockBroken, check_lock, checked_lock, signoff_payload
from empiricist.studies.keys import chain_append, fingerprint, load_private_key, sign
from empiricist.studies.report import status_html
from empiricist.studies.run import prepare_run
from empiricist.studies.signing import keygen
from empiricist.studies.signing import sign as sign_off

CI_SPEC = EXAMPLES / "probe_evasion_ci.toml"


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """The real entry point in-process: (exit code, stdout + stderr with runs of white space as one space)."""
    code, out, err = run_cli(capsys, *args)
    return code, " ".join((out + err).split())  # rich wraps lines at the terminal's width


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "study" / CI_SPEC.name
    path.parent.mkdir()
    shutil.copy(CI_SPEC, path)
    return path


@pytest.fixture
def keys(spec: Path, tmp_path: Path) -> dict[str, Path]:
    return {party: keygen(spec, party, signer, out=tmp_path / "keys")[0].private_path
            for party, signer in (("P1", "Ada"), ("not-P1", "Bob"))}


@pytest.fixture
def signed(spec: Path, keys: dict[str, Path]) -> Path:
    sign_off(spec, "P1", key=keys["P1"])
    assert sign_off(spec, "not-P1", key=keys["not-P1"])["complete"]
    return spec


def read(spec: Path) -> dict[str, Any]:
    return json.loads(locking.lock_path(spec).read_text())


def write(spec: Path, lock: dict[str, Any]) -> None:
    locking.lock_path(spec).write_text(json.dumps(lock))


def rechain(lock: dict[str, Any]) -> None:
    """What a careful forger does after an edit: recompute every chain hash so the chain itself holds."""
    entries: list[dict[str, Any]] = []
    for e in lock["chain"]:
        entries.append(chain_append(entries, e["body"]))
    lock["chain"] = entries


def failures(spec: Path) -> str:
    """The failed checks of ``spec``'s lock, as ``study verify`` prints them; ``checked_lock`` must refuse."""
    with pytest.raises(LockBroken) as e:
        checked_lock(spec)
    return "\n".join(e.value.changes)


# ---------------------------------------------------------------- the happy and the unsigned paths
def test_two_signed_sign_offs_verify_and_the_run_says_signed(signed: Path, tmp_path: Path, capsys) -> None:
    registry = locking.keys_path(signed)
    assert registry.parent == signed.parent and "ssh-ed25519" in registry.read_text()
    for key in (tmp_path / "keys").glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600
    checks = check_lock(signed, doc=read_toml(signed))
    assert all(c.ok for c in checks), checks
    lock = read(signed)
    assert locking.signature_state(lock) == locking.SIGNED_ALL
    assert [s["key"] for s in lock["signoffs"]] == [fingerprint(line.split(" = ")[1].strip('"'))
                                                  for line in registry.read_text().splitlines() if " = " in line]
    prepared = prepare_run(signed)  # what `study run` checks before anything trains
    assert locking.lock_summary(prepared.lock)["signatures"] == "signed by all parties"
    code, out = cli(capsys, "study", "verify", signed)
    assert code == 0 and "FAILED" not in out and "2 signatures verify" in out and "signed by all parties" in out
    code, out = cli(capsys, "study", "verify", locking.lock_path(signed))  # the lock file works as well
    assert code == 0 and "signed by all parties" in out
    html = status_html({"status": "pre-registered", "spec_sha256": lock["spec_sha256"], "replicates": [],
                        "challenges": [], "lock": locking.lock_summary(lock)})
    assert "signatures: signed by all parties" in html


def test_name_only_sign_offs_are_allowed_and_reported_unsigned(spec: Path, capsys) -> None:
    code, out = cli(capsys, "study", "lock", spec, "--party", "P1", "--signer", "Ada")
    assert code == 0 and "UNSIGNED (name-only)" in out
    sign_off(spec, "not-P1", "Bob")
    lock = read(spec)
    assert locking.signature_state(lock) == "UNSIGNED (name-only) sign-offs: P1 (Ada), not-P1 (Bob)"
    assert locking.lock_status(lock) == "pre-registered"
    code, out = cli(capsys, "study", "verify", spec)
    assert code == 0 and "UNSIGNED (name-only) sign-offs: P1 (Ada), not-P1 (Bob)" in out
    prepare_run(spec)


def test_the_shipped_lock_written_before_signed_locks_still_loads() -> None:
    shipped = EXAMPLES / "probe_evasion.toml"
    checks = check_lock(shipped, doc=read_toml(shipped))
    assert all(c.ok for c in checks) and any(locking.NO_CHAIN in c.detail for c in checks)
    assert locking.signature_state(checked_lock(shipped)) == locking.NO_CHAIN


def test_a_key_the_registry_does_not_hold_cannot_sign(spec: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    from empiricist.errors import InputError
    from empiricist.studies.keys import generate_keypair

    stranger = generate_keypair(tmp_path / "stranger.key").private_path
    with pytest.raises(InputError, match="not registered for party 'P1'"):
        sign_off(spec, "P1", key=stranger)
    with pytest.raises(InputError, match="not registered for party 'not-P1'"):
        sign_off(spec, "not-P1", key=keys["P1"])  # P1's key claimed for the other party


# ---------------------------------------------------------------- the attacks of the issue
def test_a_lock_cut_down_to_one_party_is_refused_naming_the_missing_party(signed: Path, capsys) -> None:
    lock = read(signed)
    lock["parties"] = ["P1"]
    lock["signoffs"] = lock["signoffs"][:1]
    write(signed, lock)
    assert "party not-P1 of the spec is missing from the lock" in failures(signed)
    with pytest.raises(LockBroken, match="not-P1"):
        prepare_run(signed)  # the run never prints "pre-registered"
    code, out = cli(capsys, "study", "verify", signed)
    assert code == 2 and "FAILED parties: party not-P1 of the spec is missing" in out
    from empiricist.studies import ledger

    (entry,) = ledger(signed.parent)["claims"]["networks-evade-linear-probes-at-a-cost"]
    assert entry["status"].startswith("LOCK BROKEN: parties: party not-P1")


def test_a_deleted_sign_off_is_named(signed: Path) -> None:
    lock = read(signed)
    lock["signoffs"] = lock["signoffs"][:1]  # the list only: the chain still holds it
    write(signed, lock)
    assert "sign-off of not-P1 (Bob) is in the chain but was deleted" in failures(signed)
    lock = read(signed)  # P1's sign-off deleted from the chain and the list alike
    lock["chain"] = [lock["chain"][0], lock["chain"][2]]
    lock["signoffs"] = lock["signoffs"][1:]
    write(signed, lock)
    assert "hash chain entry 1: index 2 (reordered, deleted or inserted entry)" in failures(signed)


def test_an_edited_spec_with_its_hash_recomputed_in_the_lock_is_refused(signed: Path) -> None:
    doc = read_toml(signed)
    doc["experiment"]["config"]["seeds"] = 2
    signed.write_text(dump_toml(doc))
    lock = read(signed)
    lock["spec_sha256"] = locking.spec_sha256(doc)
    write(signed, lock)
    assert "stored spec copy does not hash to its recorded spec_sha256" in failures(signed)
    lock["spec"] = doc  # the copy too: then the chain's first entry (and every signature) disagrees
    write(signed, lock)
    assert "entry 0 (the stored spec copy) no longer matches" in failures(signed)
    lock["chain"][0]["body"]["spec_sha256"] = lock["spec_sha256"]
    rechain(lock)
    write(signed, lock)
    out = failures(signed)
    assert "sign-off of P1 (Ada): signature does not match" in out and "not-P1 (Bob): signature does not" in out
    with pytest.raises(LockBroken):
        prepare_run(signed)


def test_an_edited_stored_spec_copy_is_refused(signed: Path) -> None:
    lock = read(signed)
    lock["spec"]["parties"][1]["combine"] = "evades and cost"
    write(signed, lock)
    assert "spec copy: the lock's stored spec copy does not hash" in failures(signed)
    assert not all(c.ok for c in check_lock(signed, doc=read_toml(signed)))


def test_a_forged_signer_name_is_refused(spec: Path, keys: dict[str, Path], capsys) -> None:
    """P1's key holder writes the other party's sign-off: a valid signature, by the wrong party's key."""
    lock = sign_off(spec, "P1", key=keys["P1"])
    private = load_private_key(keys["P1"])
    p1 = lock["signoffs"][0]["key"]
    for signer, expected in (("Bob", f"signed with key {p1}, which the registry holds for P1 (Ada)"),
                             ("Ada", "signer 'Ada' of party 'not-P1' is not in the key registry")):
        forged = json.loads(json.dumps(lock))
        body = {"type": "signoff", "party": "not-P1", "signer": signer, "time": locking.now(), "key": p1}
        body["signature"] = sign(private, signoff_payload(forged, body, forged["chain"][-1]["hash"]))
        forged["chain"].append(chain_append(forged["chain"], body))
        forged["signoffs"].append({k: body[k] for k in ("party", "signer", "time", "key")})
        forged["complete"] = True
        write(spec, forged)
        assert expected in failures(spec)
    code, out = cli(capsys, "study", "verify", spec)
    assert code == 2 and "FAILED signatures: sign-off of not-P1 (Ada)" in out


def test_a_structurally_damaged_lock_is_one_named_failure(signed: Path) -> None:
    lock = read(signed)
    del lock["chain"][1]["body"]
    write(signed, lock)
    assert "is malformed" in failures(signed)


def test_flipped_signature_bytes_are_refused(signed: Path) -> None:
    lock = read(signed)
    sig = bytearray(base64.b64decode(lock["chain"][2]["body"]["signature"]))
    sig[5] ^= 0x01
    lock["chain"][2]["body"]["signature"] = base64.b64encode(bytes(sig)).decode()
    write(signed, lock)
    assert "hash chain entry 2: its content does not match its hash (edited) [the sign-off of not-P1 (Bob)]" \
        in failures(signed)
    rechain(lock)
    write(signed, lock)
    assert "sign-off of not-P1 (Bob): signature does not match" in failures(signed)


def test_a_replaced_registry_key_is_refused(signed: Path, tmp_path: Path) -> None:
    from empiricist.studies.keys import KeyRegistry, generate_keypair

    registry = KeyRegistry.load(locking.keys_path(signed))
    registry.add("P1", "Ada", generate_keypair(tmp_path / "other.key").public_key)
    registry.save()
    assert "sign-off of P1 (Ada): signed with key" in failures(signed)
    locking.keys_path(signed).unlink()
    assert "no usable key registry" in failures(signed)


def test_the_last_amendment_cannot_be_edited_or_deleted(signed: Path, capsys) -> None:
    amend(signed, "Ada", "seeds 3 -> 4", "one run diverged")
    amend(signed, "Bob", "report the median too", "skewed runs")
    assert all(c.ok for c in check_lock(signed))
    path = locking.amendments_path(signed)
    original = path.read_text()
    path.write_text(original.replace("report the median too", "drop the cost prediction"))
    assert "amendment[1] was edited after it was recorded in the lock (what differs)" in failures(signed)
    code, out = cli(capsys, "study", "verify", signed)
    assert code == 2 and "FAILED amendments: amendment[1] was edited" in out
    path.write_text(original[:original.rindex("[[amendment]]")])
    assert "amendment[1] (Bob, " in failures(signed) and "deleted from the amendments file" in failures(signed)
    path.write_text(original)
    lock = read(signed)
    lock["chain"][-1]["body"]["what"] = "drop the cost prediction"  # the lock's record of it, edited
    write(signed, lock)
    assert "hash chain entry 4: its content does not match its hash (edited) [the amendment by Bob" \
        in failures(signed)


# ---------------------------------------------------------------- keys and designs that cannot settle their question
def test_keygen_keeps_the_private_key_outside_the_repository(spec: Path, tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    code, out = cli(capsys, "study", "keygen", spec, "--party", "P1")
    key = tmp_path / "home" / ".config" / "empiricist" / "keys" / "probe-evasion-ci-P1-P1.key"
    assert code == 0 and key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE" not in locking.keys_path(spec).read_text() and '[parties."P1"]' in locking.keys_path(spec).read_text()
    code, out = cli(capsys, "study", "keygen", spec, "--party", "P1")
    assert code == 2 and "already has a key" in out
    code, out = cli(capsys, "study", "lock", spec, "--party", "P1", "--key", key)
    assert code == 0 and "signed with key SHA256:" in out


def test_a_spec_inside_the_package_folder_gets_its_registry_beside_it(tmp_path: Path) -> None:
    import empiricist.experiments.sycophancy.study  # noqa: F401  (registers the experiment)
    from empiricist.experiments.sycophancy.main import spec_path

    spec = tmp_path / "specs" / spec_path(True).name
    spec.parent.mkdir()
    shutil.copy(spec_path(True), spec)
    party = read_toml(spec)["parties"][0]["name"]
    pair, registry = keygen(spec, party, out=tmp_path / "keys")
    assert registry == spec.with_name("sycophancy_quick.keys.toml")
    lock = sign_off(spec, party, key=pair.private_path)
    assert lock["signoffs"][0]["key"] and locking.signature_state(lock).startswith("signed by")


def test_an_experiment_design_nobody_can_lose_is_refused_by_check_and_lock(spec: Path, capsys) -> None:
    from empiricist.errors import InputError

    doc = read_toml(spec)
    doc["parties"][1]["combine"] = "evades or not evades"
    spec.write_text(dump_toml(doc))
    code, out = cli(capsys, "study", "check", spec)
    assert code == 2 and out.index("NOT AT RISK: party not-P1") < out.index("cannot be locked")
    with pytest.raises(InputError, match="refusing to lock .*NOT AT RISK: party not-P1"):
        sign_off(spec, "P1", "Ada")
    assert not locking.lock_path(spec).exists()


def test_study_check_names_a_missing_task_file(tmp_path: Path, capsys) -> None:
    doc = read_toml(EXAMPLES / "fact_scaling_micro.toml")
    doc["sampling"]["tasks"] = {"facts": "tasks/missing.jsonl", "facts_shuffled": "shuffled:facts"}
    spec = tmp_path / "s.toml"
    spec.write_text(dump_toml(doc))
    code, out = cli(capsys, "study", "check", spec)
    assert code == 2 and "Traceback" not in out
    assert str(spec) in out and "sampling.tasks.facts" in out and "tasks/missing.jsonl" in out
