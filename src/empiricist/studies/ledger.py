"""The claims ledger: every claim with the studies that tested it, their verdicts, and open challenges.

A study names the claim it tests (``study.claim``) and may cite studies it ``replicates`` or
``challenges`` (by study id). ``ledger(folder)`` scans the folder for study specs (``*.toml`` with a
``[study]`` table) and their results (``<spec>.results/results.json``). A challenge is *open* until the
challenging study has a result that counts (its controls passed) and decides every party; a
replication *agrees* when each party's final verdict matches the original's.

External evidence (``studies.external``: published results we did not run, ``[external]`` TOML files
anywhere under the folder, e.g. ``ledger/external/``) is listed beside the studies under its claim, and a
study may name an external entry in ``replicates``/``challenges``. A link to an id that is neither a study
nor an external entry is an error naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from empiricist.errors import EmpiricistError, InputError
from empiricist.studies import lock as locking
from empiricist.studies.fields import read_toml
from empiricist.studies.integrity import verified_status
from empiricist.studies.protocol import parse_spec
from empiricist.studies.run import results_dir


def _entry(spec: Path, results: Path | None = None) -> dict[str, Any] | None:
    """One study as the ledger shows it (None: not a study spec); its results beside the spec, or else in
    ``results`` (``<results>/<spec stem>.results``, where the main job writes a packaged spec's results)."""
    try:
        doc = read_toml(spec)
    except EmpiricistError as e:
        return {"id": spec.stem, "spec": str(spec), "error": str(e), "claim": "(unreadable)"}
    if "study" not in doc:
        return None
    try:
        study = parse_spec(doc, spec)
    except EmpiricistError as e:
        head = doc["study"] if isinstance(doc["study"], dict) else {}
        return {"id": str(head.get("id", spec.stem)), "spec": str(spec), "error": str(e),
                "claim": str(head.get("claim", "(invalid spec)"))}
    entry: dict[str, Any] = {"id": study.id, "spec": str(spec), "claim": study.claim, "claim_text": study.claim_text,
                             "replicates": list(study.replicates), "challenges": list(study.challenges),
                             "status": verified_status(spec), "ran": False,
                             "verdicts": {}, "outcome": "not run yet", "decisive": False,
                             "positions": _positions(spec)}
    res_file = results_dir(spec) / "results.json"
    if not res_file.is_file() and results is not None:
        res_file = results / f"{spec.stem}.results" / "results.json"
    if res_file.is_file():
        try:
            res = json.loads(res_file.read_text())
        except json.JSONDecodeError as e:
            entry["error"] = f"{res_file}: {e}"
            return entry
        stale = res.get("spec_sha256") != locking.spec_sha256(doc)
        entry.update(ran=True, status=res.get("status", entry["status"]),
                     outcome=res.get("summary") or res.get("outcome", ""),
                     verdicts={p["name"]: p["final"] for p in res.get("parties", [])},
                     decisive=bool(res.get("decisive")), controls_passed=res.get("controls_passed"),
                     stale=stale)
        if stale:
            entry["outcome"] = "STALE: the spec changed after this result; " + entry["outcome"]
            entry["decisive"] = False
    return entry


def _positions(spec: Path) -> dict[str, dict[str, Any]]:
    """Each party's record of whether the result changed its position (studies.blinding), from the lock's
    hash chain; none when the lock cannot be read (its status says why)."""
    from empiricist.studies.blinding import positions

    try:
        return {p: {"changed": b["changed"], "note": b["note"], "time": b["time"]}
                for p, b in positions(locking.read_lock(spec)).items()}
    except EmpiricistError:
        return {}


def _specs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.toml") if not p.name.endswith(".amendments.toml")
                  and not any(part.endswith((".results", ".bundle")) for part in p.parts))


def scan(folder: str | Path, results: Path | None = None) -> list[dict[str, Any]]:
    return [e for e in (_entry(p, results) for p in _specs(Path(folder))) if e is not None]


def scan_external(folder: str | Path) -> list[dict[str, Any]]:
    """Every ``[external]`` entry under ``folder`` (a malformed one is an error naming file and field)."""
    from empiricist.studies.external import is_external, parse_external

    out = []
    for p in _specs(Path(folder)):
        try:
            doc = read_toml(p)
        except EmpiricistError:
            continue  # listed by scan() as an unreadable spec
        if is_external(doc):
            out.append(parse_external(doc, p))
    return out


def _check_links(entries: list[dict[str, Any]], known: set[str]) -> None:
    for e in entries:
        for rel in ("replicates", "challenges"):
            for target in e.get(rel, []):
                if target not in known:
                    raise InputError(f"{e['id']!r} {rel} {target!r}, which is neither a study nor an external "
                                     "entry in the ledger", path=e.get("spec") or None,
                                     field=f"{'external' if e.get('kind') == 'external' else 'study'}.{rel}")


def ledger(folder: str | Path | Sequence[str | Path], results: str | Path | None = None) -> dict[str, Any]:
    """Claims -> studies and external evidence, plus the relations (replications and challenges).

    ``folder``: one folder of specs and external entries, or several; ``results``: where results of specs
    without a ``<spec>.results`` beside them live (a workspace's ``studies/``)."""
    folders = [folder] if isinstance(folder, (str, Path)) else list(folder)
    res = Path(results) if results is not None else None
    studies = [{**s, "kind": "study"} for f in folders for s in scan(f, res)]
    external = [e for f in folders for e in scan_external(f)]
    by_id = {s["id"]: s for s in studies}
    for e in external:
        if e["id"] in by_id:
            raise InputError(f"id {e['id']!r} is used by both {by_id[e['id']]['spec']} and {e['spec']}",
                             path=e["spec"], field="external.id")
        by_id[e["id"]] = e
    _check_links(studies + external, set(by_id))
    relations, open_challenges = [], []
    for s in studies:
        for target in s.get("replicates", []):
            orig = by_id[target]
            if orig.get("kind") == "external":
                # a published result has no verdicts to compare: the study's own outcome is the answer
                state = "pending" if not s["ran"] else "decided" if s["decisive"] else "inconclusive"
            elif not (orig["ran"] and s["ran"]):
                state = "pending"
            else:
                same = orig["verdicts"] == s["verdicts"]
                state = "agrees" if same and s["decisive"] else "disagrees" if s["decisive"] else "inconclusive"
            relations.append({"study": s["id"], "relation": "replicates", "target": target, "state": state})
        for target in s.get("challenges", []):
            state = "resolved" if s["decisive"] else "open"
            rel = {"study": s["id"], "relation": "challenges", "target": target, "state": state,
                   "outcome": s["outcome"]}
            relations.append(rel)
            if s["decisive"] is False:
                open_challenges.append(rel)
    for e in external:
        for relation in ("replicates", "challenges"):
            for target in e[relation]:
                relations.append({"study": e["id"], "relation": relation, "target": target,
                                  "state": "published", "outcome": e["summary"]})
    claims: dict[str, list[dict[str, Any]]] = {}
    for s in studies + external:
        claims.setdefault(s["claim"], []).append(s)
    return {"claims": claims, "relations": relations, "open_challenges": open_challenges, "external": external,
            "folder": str(folder)}
