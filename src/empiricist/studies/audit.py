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
    return hidden.read_jsonl(path, "rows")


def _write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in rows))


def stats(rows: Sequence[Mapping[str, Any]], metric: str = "score") -> dict[str, Any]:
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


def declared_public(c: hidden.Commitment, fields: Sequence[str]) -> tuple[str, ...]:
    """The item fields declared public: in the commitment's metadata (``<field>_counts``) or when
    publishing the rows."""
    return tuple(dict.fromkeys([*fields, *(k.removesuffix("_counts") for k in c.metadata if k.endswith("_counts"))]))


def write_private(folder: str | Path, items: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                  public_fields: Sequence[str] = ()) -> hidden.Commitment:
    """The private bundle: the committed items with their salts and every row as it was run."""
    out = Path(folder)
    c = hidden.write(out, items, public_fields)
    _write_rows(out / PRIVATE_ROWS, rows)
    return c


def _stage_public(private: Path, out: Path, public_fields: Sequence[str], metric: str) -> list[str]:
    """Write one public bundle into ``out`` (unscanned); the hidden texts it must not contain."""
    c = hidden.read_public(private)
    items = [it for it, _ in hidden.read_private(private)]
    rows = _read_rows(private / PRIVATE_ROWS)
    public = redact_rows(rows, c.leaves, public_fields)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / hidden.PUBLIC, c.to_json())
    _write_rows(out / ROWS, public)
    atomic_write_json(out / STATS, stats(public, metric))
    return hidden_texts(items, rows, public=declared_public(c, public_fields))


def _publish(staging: Path, dest: Path, texts: Sequence[str], replace: bool = False) -> Path:
    """Move a staged public bundle to ``dest`` (``replace``: an earlier one there first removed) if the
    scan finds none of ``texts`` in it; else remove it and refuse (nothing is written)."""
    import shutil

    leaks = scan(staging, texts)
    if leaks:
        shutil.rmtree(staging)
        raise ArtifactError(f"the public bundle would contain hidden text ({len(leaks)} leaks; first: "
                            f"{leaks[0].file} holds {leaks[0].found!r}); nothing was written")
    if replace and dest.exists():
        shutil.rmtree(dest)
    staging.replace(dest)
    return dest


def write_public(private: str | Path, out: str | Path, public_fields: Sequence[str] = (), metric: str = "score"
                 ) -> Path:
    """The public bundle from a private one; refused (nothing written) if any hidden text would appear."""
    dest = Path(out)
    staging = dest.with_name(dest.name + ".staging")
    return _publish(staging, dest, _stage_public(Path(private), staging, public_fields, metric))


def audit(private: str | Path, public: str | Path, root: str | None = None, metric: str = "score",
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


# ---------------------------------------------------------------- a study run with hidden tasks


def _hidden_sources(res: Mapping[str, Any], spec: Path) -> dict[str, Path]:
    """Hidden task alias -> its commitment folder; a task derived from a hidden one (``shuffled:<alias>``:
    the same items) is hidden too, under the same commitment."""
    out = {}
    tasks = res.get("tasks", {})
    for alias, t in tasks.items():
        source = str(t.get("source", ""))
        if source.startswith("hidden:"):
            folder = Path(source.partition(":")[2])
            out[alias] = folder if folder.is_absolute() else spec.parent / folder
    for alias, t in tasks.items():
        kind, _, base = str(t.get("source", "")).partition(":")
        if kind == "shuffled" and base in out:
            out[alias] = out[base]
    return out


def run_rows(results_dir: Path) -> list[dict[str, Any]]:
    """Every eval row of a study run, over its seeds."""
    from empiricist.evals.results import Results

    return [r for p in sorted((results_dir / "evals").glob("seed*")) for r in Results.read(p).rows()]


def public_results(res: Mapping[str, Any], hidden_tasks: Sequence[str]) -> dict[str, Any]:
    """The study's results.json as the public may see it: the report's worked examples of hidden tasks
    (an item's prompt, answer and the models' outputs) removed; every number and verdict kept."""
    return {**res, "examples": [e for e in res.get("examples", []) if e.get("task") not in hidden_tasks]}


def publish_run(spec: str | Path, results_dir: str | Path | None = None, out: str | Path | None = None,
                public_fields: Sequence[str] = ("cluster",)) -> Path:
    """The public bundle of a study run whose tasks include hidden ones: per hidden task its commitment,
    redacted rows and statistics, plus the study's ``results.json`` (verdicts, every number); a private
    bundle per hidden task goes beside the run (``<results>.private/<task>``). Refused if anything of a
    hidden item or of a model's output on one would appear."""
    from empiricist.studies.run import results_dir as default_results

    spec = Path(spec)
    run = Path(results_dir) if results_dir else default_results(spec)
    res = json.loads((run / "results.json").read_text())
    sources = _hidden_sources(res, spec)
    if not sources:
        raise InputError(f"{spec.name} has no hidden task (a task source hidden:<folder>)", field="sampling.tasks")
    dest = Path(out) if out else spec.with_name(f"{spec.stem}.public")
    staging = dest.with_name(dest.name + ".staging")
    staging.mkdir(parents=True, exist_ok=True)
    rows = run_rows(run)
    texts: list[str] = []
    for alias, folder in sources.items():
        private = hidden.read_private(folder)
        ids = {str(item.get("id", i)): i for i, (item, _) in enumerate(private)}
        mine = [dict(r, item_index=ids[str(r["item_id"])]) for r in rows if r["task"] == alias]
        bundle = hidden.private_dir(run) / alias
        bundle.mkdir(parents=True, exist_ok=True)
        for name in (hidden.PUBLIC, hidden.PRIVATE):
            atomic_write_text(bundle / name, (folder / name).read_text())
        _write_rows(bundle / PRIVATE_ROWS, mine)
        texts += _stage_public(bundle, staging / alias, public_fields, "score")
    atomic_write_json(staging / "results.json", public_results(res, list(sources)))
    return _publish(staging, dest, texts, replace=True)  # one scan of the whole bundle


def audit_run(spec: str | Path, public: str | Path, results_dir: str | Path | None = None,
              public_fields: Sequence[str] = ("cluster",)) -> list[str]:
    """Every mismatch between a study's private run, its public bundle and the roots its lock pinned."""
    from empiricist.studies.lock import read_lock
    from empiricist.studies.run import results_dir as default_results

    spec, pub = Path(spec), Path(public)
    run = Path(results_dir) if results_dir else default_results(spec)
    res = json.loads((run / "results.json").read_text())
    locked = (read_lock(spec) or {}).get("artifacts", {})
    problems = []
    sources = _hidden_sources(res, spec)
    if json.loads((pub / "results.json").read_text()) != json.loads(json.dumps(public_results(res, list(sources)))):
        problems.append("the public results.json is not the run's (less its hidden examples)")
    problems += replicate_public(spec, pub)
    for alias, folder in sources.items():
        base = next(a for a, f in sources.items() if f == folder)  # the hidden task the lock pins
        root = locked.get(f"task:{base}", {}).get("identity", {}).get("root")
        if root is None:
            problems.append(f"task {alias}: the lock pins no commitment root")
        problems += [f"task {alias}: {p}" for p in audit(hidden.private_dir(run) / alias, pub / alias, root=root,
                                                       public_fields=public_fields)]
    return problems


def _placeholders(r: Mapping[str, Any]) -> dict[str, Any]:
    """A public row as an eval row: the commitment as the item id, the texts empty (counts kept)."""
    return {**r, "item_id": r["item"], "prompt": "", "choices": [""] * int(r["n_choices"]),
            "gold": list(range(int(r["n_gold"]))), "answer": "", "meta": "{}"}


def replicate_public(spec: str | Path, public: str | Path) -> list[str]:
    """Re-decide the study from the public rows alone (anyone can: no item is needed) and name every
    prediction, control or party verdict that differs from the published results."""
    from empiricist.evals.results import Results
    from empiricist.studies.analysis import analyse
    from empiricist.studies.protocol import load_spec

    pub = Path(public)
    res = json.loads((pub / "results.json").read_text())
    rows = [_placeholders(r) for p in sorted(pub.glob(f"*/{ROWS}")) for r in _read_rows(p)]
    study = load_spec(spec)
    try:
        again = analyse(study, Results.from_rows(rows), {a: m["label"] for a, m in res["models"].items()})
    except Exception as e:  # noqa: BLE001 - any failure to re-decide is a finding of the audit, reported
        return [f"the verdicts cannot be re-decided from the public rows: {e}"]
    problems = []
    for kind in ("controls", "predictions"):
        shown = {(p.get("party"), p["id"]): p["verdict"] for p in res.get(kind, [])}
        for p in again.get(kind, []):
            if shown.get((p.get("party"), p["id"])) != p["verdict"]:
                problems.append(f"{kind[:-1]} {p['id']}: the public rows decide {p['verdict']}, the results say "
                                f"{shown.get((p.get('party'), p['id']))}")
    finals = {p["name"]: p.get("final") for p in res.get("parties", [])}
    for p in again.get("parties", []):
        if finals.get(p["name"]) != p.get("final"):
            problems.append(f"party {p['name']}: the public rows decide {p.get('final')}, the results say "
                            f"{finals.get(p['name'])}")
    return problems
