"""Two bundles from one run of hidden items, and the audit that ties them together.

The holder of the items runs the evaluation once and keeps every row (the private bundle: the items
with their salts, the full rows). ``write_public`` writes what everyone may see: the commitment, each row
with its item replaced by the item's commitment (studies.redact), and per-model statistics recomputed
from those public rows alone, so anyone can replicate the numbers; it refuses to write a public bundle
in which the scan finds any hidden text. ``audit``, for someone shown the private bundle, checks that the
private items match the committed root, that the public rows are exactly the redaction of the private
ones, and that the public statistics follow from the public rows.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_json, atomic_write_text
from empiricist.errors import ArtifactError, InputError
from empiricist.studies import hidden
from empiricist.studies.redact import hidden_texts, redact_rows, scan

ROWS = "rows.jsonl"
PRIVATE_ROWS = "rows.private.jsonl"
STATS = "stats.json"


def _read_rows(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}, line {n}: not JSON ({e})", field="rows") from None
    return out


def _write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in rows))


def stats(rows: Sequence[Mapping[str, Any]], metric: str = "correct") -> dict[str, Any]:
    """Per model: items, mean of ``metric`` and its normal 95% interval (the numbers a verdict reads)."""
    by: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by[str(r["model"])].append(float(r[metric]))
    out = {}
    for model, xs in sorted(by.items()):
        n, m = len(xs), sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
        half = 1.96 * sd / math.sqrt(n) if n > 1 else math.nan
        out[model] = {"n": n, "mean": m, "lo": m - half, "hi": m + half}
    return {"metric": metric, "models": out}


def write_private(folder: str | Path, items: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                  public_fields: Sequence[str] = ()) -> hidden.Commitment:
    """The private bundle: the committed items with their salts and every row as it was run."""
    out = Path(folder)
    c = hidden.write(out, items, public_fields)
    _write_rows(out / PRIVATE_ROWS, rows)
    return c


def write_public(private: str | Path, out: str | Path, public_fields: Sequence[str] = (), metric: str = "correct"
                 ) -> Path:
    """The public bundle from a private one; refused (nothing written) if any hidden text would appear."""
    src, dest = Path(private), Path(out)
    c = hidden.read_public(src)
    items = [it for it, _ in hidden.read_private(src)]
    rows = _read_rows(src / PRIVATE_ROWS)
    public = redact_rows(rows, c.leaves, public_fields)
    staging = dest.with_name(dest.name + ".staging")
    staging.mkdir(parents=True, exist_ok=True)
    atomic_write_json(staging / hidden.PUBLIC, c.to_json())
    _write_rows(staging / ROWS, public)
    atomic_write_json(staging / STATS, stats(public, metric))
    leaks = scan(staging, hidden_texts(items, rows))
    if leaks:
        for p in staging.iterdir():
            p.unlink()
        staging.rmdir()
        first = leaks[0]
        raise ArtifactError(f"the public bundle would contain hidden text ({len(leaks)} leaks; first: "
                            f"{first.file} holds {first.found!r}); nothing was written")
    staging.replace(dest)
    return dest


def audit(private: str | Path, public: str | Path, root: str | None = None, metric: str = "correct",
          public_fields: Sequence[str] = ()) -> list[str]:
    """Every mismatch between the private bundle, the public one and the locked root (empty: none)."""
    priv, pub = Path(private), Path(public)
    c_priv, c_pub = hidden.read_public(priv), hidden.read_public(pub)
    problems = []
    if root is not None and c_pub.root != root:
        problems.append(f"the public commitment's root {c_pub.root[:16]}… is not the locked root {root[:16]}…")
    if c_priv != c_pub:
        problems.append("the private and public commitments differ")
    problems += [f"private items: {p}" for p in hidden.verify_set(hidden.read_private(priv), c_pub)]
    expected = redact_rows(_read_rows(priv / PRIVATE_ROWS), c_pub.leaves, public_fields)
    shown = _read_rows(pub / ROWS)
    if len(shown) != len(expected):
        problems.append(f"the public bundle has {len(shown)} rows, the private run {len(expected)}")
    for i, (a, b) in enumerate(zip(expected, shown)):
        if json.loads(json.dumps(a, sort_keys=True)) != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            problems.append(f"public row {i}: differs from the private run in {', '.join(keys)}")
    declared = json.loads((pub / STATS).read_text())
    if declared != json.loads(json.dumps(stats(shown, metric))):
        problems.append("the public statistics do not follow from the public rows")
    return problems
