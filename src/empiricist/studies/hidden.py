"""Hidden items with commitments: an eval whose items stay private, published as a commitment.

Each item gets a fresh random 32-byte salt; its commitment is sha256(salt ‖ canonical JSON of the item),
and the commitments are the leaves of a Merkle tree (pymerkle's RFC 9162 tree: domain-separated leaf
and node hashes) whose root the study's lock pins. The public file (``commitment.json``) holds the root,
the per-item commitments and the declared public metadata (count, and the counts of each declared
public field such as a category or cluster); the private file (``items.private.jsonl``) holds each item
with its salt. Whoever holds the private file can later

- prove that an item was in the set (an inclusion proof checks against the root alone), and
- show that the set was not changed after the lock (every commitment and the root recomputed).

The salt is what keeps a short item (a yes/no question) from being found by hashing guesses.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_json, atomic_write_text, canonical_json
from empiricist.errors import InputError

PUBLIC = "commitment.json"
PRIVATE = "items.private.jsonl"
SCHEME = "sha256(salt || canonical_json(item)); pymerkle InmemoryTree sha256 (RFC 9162 prefixes)"


def private_dir(results_dir: str | Path) -> Path:
    """Where a run's private side lives (per hidden task its private bundle; the blinding labels): beside
    the results folder, never inside it (the results folder is a finished artifact with a manifest)."""
    run = Path(results_dir)
    return run.with_name(run.name + ".private")


def item_commitment(item: Mapping[str, Any], salt: str) -> str:
    """The hex commitment of one item under its hex salt."""
    return hashlib.sha256(bytes.fromhex(salt) + canonical_json(dict(item)).encode()).hexdigest()


def _tree(leaves: Sequence[str]) -> Any:
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        tree.append_entry(bytes.fromhex(leaf))
    return tree


def merkle_root(leaves: Sequence[str]) -> str:
    if not leaves:
        raise InputError("a commitment needs at least one item", field="items")
    return _tree(leaves).get_root().hex()


@dataclass(frozen=True)
class Commitment:
    """The public part: what a study locks and anyone may read."""

    root: str
    leaves: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    scheme: str = SCHEME

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "leaves": list(self.leaves), "metadata": self.metadata, "scheme": self.scheme}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = PUBLIC) -> Commitment:
        try:
            return cls(str(d["root"]), tuple(str(x) for x in d["leaves"]), dict(d.get("metadata", {})),
                       str(d.get("scheme", SCHEME)))
        except (KeyError, TypeError) as e:
            raise InputError(f"{where} is not a commitment (needs root and leaves): {e}", field="commitment") from None


def public_metadata(items: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> dict[str, Any]:
    """What is declared about the hidden set: its size and the counts of each public field's values."""
    out: dict[str, Any] = {"n_items": len(items)}
    for f in fields:
        missing = [i for i, it in enumerate(items) if f not in it]
        if missing:
            raise InputError(f"public field {f!r} is missing from item {missing[0]}", field="public_fields")
        out[f"{f}_counts"] = dict(sorted(Counter(str(it[f]) for it in items).items()))
    return out


def commit(items: Sequence[Mapping[str, Any]], public_fields: Sequence[str] = (),
           salt: Callable[[], str] = lambda: secrets.token_hex(32)) -> tuple[Commitment, list[str]]:
    """(the public commitment, each item's salt). ``salt`` is injectable for tests only: real salts must be
    secret and random, or a short item can be found by hashing guesses."""
    salts = [salt() for _ in items]
    leaves = tuple(item_commitment(it, s) for it, s in zip(items, salts))
    return Commitment(merkle_root(leaves), leaves, public_metadata(items, public_fields)), salts


def write(folder: str | Path, items: Sequence[Mapping[str, Any]], public_fields: Sequence[str] = ()) -> Commitment:
    """Commit ``items``: ``commitment.json`` (public) and ``items.private.jsonl`` (never published)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    c, salts = commit(items, public_fields)
    atomic_write_text(out / PRIVATE, "".join(json.dumps({"salt": s, "item": dict(it)}, sort_keys=True) + "\n"
                                           for it, s in zip(items, salts)))
    atomic_write_json(out / PUBLIC, c.to_json())
    return c


def commit_file(items_jsonl: str | Path, out: str | Path, public_fields: Sequence[str] = (), n: int | None = None,
                seed: int = 0) -> Commitment:
    """Commit the records of a JSONL task file (every field of each record is committed), or a seeded
    sample of ``n`` of them, into ``out``."""
    import numpy as np

    src = Path(items_jsonl)
    records = read_jsonl(src, "items")
    if n is not None:
        if not 0 < n <= len(records):
            raise InputError(f"--n {n}: the file holds {len(records)} records", field="n")
        keep = sorted(np.random.default_rng(seed).choice(len(records), n, replace=False))
        records = [records[i] for i in keep]
    return write(out, records, public_fields)


def read_public(path: str | Path) -> Commitment:
    p = Path(path)
    p = p / PUBLIC if p.is_dir() else p
    try:
        return Commitment.from_json(json.loads(p.read_text()), str(p))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the commitment {p}: {e}", field="commitment") from None


def read_jsonl(path: Path, field: str) -> list[Any]:
    """The records of a JSONL file (blank lines skipped), with one clear error naming a bad line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}, line {n}: not JSON ({e})", field=field) from None
    return out


def read_private(path: str | Path) -> list[tuple[dict[str, Any], str]]:
    """(item, salt) per line of a private file, with one clear error naming a bad line."""
    p = Path(path)
    p = p / PRIVATE if p.is_dir() else p
    out = []
    for n, row in enumerate(read_jsonl(p, "items"), 1):
        try:
            out.append((dict(row["item"]), str(row["salt"])))
        except (KeyError, TypeError) as e:
            raise InputError(f"{p}, line {n}: not an item with its salt ({e})", field="items") from None
    return out


def verify_set(private: Sequence[tuple[Mapping[str, Any], str]], public: Commitment) -> list[str]:
    """Every way the private items fail to match the public commitment (empty: they match): a changed,
    added, removed or reordered item, a changed salt, or a root that is not the leaves' root."""
    problems = []
    if len(private) != len(public.leaves):
        problems.append(f"{len(private)} private items against {len(public.leaves)} committed")
    for i, ((item, salt), leaf) in enumerate(zip(private, public.leaves)):
        if item_commitment(item, salt) != leaf:
            problems.append(f"item {i}: its commitment does not match (the item or its salt changed)")
    if public.leaves and merkle_root(public.leaves) != public.root:
        problems.append("the root is not the Merkle root of the committed leaves")
    declared = public.metadata.get("n_items")
    if declared is not None and declared != len(public.leaves):
        problems.append(f"metadata says {declared} items, the commitment holds {len(public.leaves)}")
    return problems


def prove(public: Commitment, index: int) -> dict[str, Any]:
    """An inclusion proof of item ``index`` (0-based) against the root, as JSON."""
    if not 0 <= index < len(public.leaves):
        raise InputError(f"no item {index}: the set holds {len(public.leaves)}", field="index")
    return _tree(public.leaves).prove_inclusion(index + 1).serialize()


def verify_member(item: Mapping[str, Any], salt: str, proof: Mapping[str, Any], root: str) -> bool:
    """Whether ``item`` (with its salt) is in the set whose root is ``root``: needs no other item."""
    from pymerkle import InclusionProof, InvalidProof, verify_inclusion
    from pymerkle.hasher import MerkleHasher

    leaf = MerkleHasher("sha256").hash_buff(bytes.fromhex(item_commitment(item, salt)))
    try:
        verify_inclusion(leaf, bytes.fromhex(root), InclusionProof.deserialize(dict(proof)))
    except InvalidProof:
        return False
    return True
