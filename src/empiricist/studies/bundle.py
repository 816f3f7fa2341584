"""Replication bundles: everything needed to check a study, in one folder and one .tar.gz.

``bundle`` collects the spec, lock, amendments and task files (``spec/``), the manifests of every
artifact the study ran on and their identity hashes (``manifests/``), the transcripts (``transcripts/``:
what the study's kind ran: an eval study's runs as Parquet and JSONL, an experiment's grid rows and figures), the analysis outputs (``analysis/``: results.json, report.html) and
the environment. ``replicate`` re-runs it: ``fast`` re-analyses the bundled transcripts (is the analysis
reproducible?), otherwise it re-evaluates in a fresh workspace, regenerating a suite preset through the
pipeline (or reusing a workspace whose artifacts it checks by identity), and says which numbers match
within tolerance and which verdicts changed.
"""

from __future__ import annotations

import json
import math
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from empiricist.artifacts import (
    Workspace,
    atomic_write_json,
    building,
    config_hash,
    read_manifest,
    write_manifest,
)
from empiricist.errors import ArtifactError, InputError
from empiricist.studies import lock as locking
from empiricist.studies.integrity import checked_lock
from empiricist.studies.protocol import environment, kind_named, kind_of, load_spec
from empiricist.studies.run import KIND as RUN_KIND
from empiricist.studies.run import prepare_run, results_dir, run_study

KIND = "study_bundle"
NUMBERS = ("estimate", "lo", "hi", "p_hold", "p_fail")


def bundle(spec: str | Path, out: str | Path | None = None, results: str | Path | None = None) -> tuple[Path, Path]:
    """Write the bundle folder and its .tar.gz; returns (folder, archive)."""
    spec = Path(spec)
    run_dir = Path(results) if results else results_dir(spec)
    read_manifest(run_dir, kind=RUN_KIND)
    res = json.loads((run_dir / "results.json").read_text())
    kind = kind_named(res.get("kind", "eval"))  # results written before study kinds were recorded are eval runs
    lock = checked_lock(spec)
    folder = Path(out) if out else spec.with_name(f"{spec.stem}.bundle")
    with building(folder, overwrite=True) as tmp:
        (tmp / "spec").mkdir()
        for f in (spec, locking.lock_path(spec), locking.amendments_path(spec), locking.keys_path(spec)):
            if f.exists():
                shutil.copy2(f, tmp / "spec" / f.name)
        for name in load_spec(spec).files():  # files next to the spec (task files) travel with it
            dest = tmp / "spec" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(spec.parent / name, dest)
        hashes = {}
        (tmp / "manifests").mkdir()
        for name, art in {**res["artifacts"], **kind.extra_artifacts(res)}.items():
            path = Path(art["path"])
            if (path / "manifest.json").is_file():
                shutil.copy2(path / "manifest.json", tmp / "manifests" / f"{_safe(name)}.manifest.json")
            hashes[name] = {"what": art["what"], "identity_hash": art["identity_hash"], "path": art["path"]}
        atomic_write_json(tmp / "manifests" / "hashes.json", {"artifacts": hashes,
                                                              "locked": (lock or {}).get("artifacts")})
        shutil.copytree(run_dir / kind.transcripts, tmp / "transcripts")
        (tmp / "analysis").mkdir()
        for name in ("results.json", "report.html"):
            shutil.copy2(run_dir / name, tmp / "analysis" / name)
        atomic_write_json(tmp / "environment.json", {**environment(), "code": locking.code_version()})
        (tmp / "README.md").write_text(readme(res, lock), encoding="utf-8")
        write_manifest(tmp, kind=KIND, config={"study": res["study"], "spec_sha256": res["spec_sha256"]},
                       inputs={"results": config_hash(res["predictions"])})
    archive = folder.with_name(folder.name + ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return folder, archive


def readme(res: dict[str, Any], lock: dict[str, Any] | None) -> str:
    """The bundle's README: what it holds, the lock's state and whether its sign-offs are signed."""
    signoffs = ", ".join(f"{s['party']} ({s['signer']}{', key ' + s['key'] if s.get('key') else ', name only'})"
                         for s in (lock or {}).get("signoffs", [])) or "none"
    return (f"# Replication bundle: {res['study']}\n\n{res.get('title') or ''}\n\n"
            f"- status: {locking.lock_status(lock)}\n"
            f"- signatures: {locking.signature_state(lock) or 'not locked'}\n"
            f"- sign-offs: {signoffs}\n- spec sha256: {res['spec_sha256']}\n- outcome: {res.get('outcome', '')}\n\n"
            "spec/ holds the spec, its lock, amendments and key registry (check them with `empiricist study verify "
            f"spec/{res['spec_file']}`); manifests/, transcripts/, analysis/ what the study ran on and produced. "
            "Re-run with `empiricist study replicate <this folder>`.\n")


def _safe(name: str) -> str:
    return name.replace(":", "-").replace("/", "_")


def open_bundle(path: str | Path, into: Path) -> Path:
    """A bundle folder, extracting a .tar.gz into ``into`` first (safely: no paths outside it)."""
    path = Path(path)
    if path.is_dir():
        read_manifest(path, kind=KIND)
        return path
    if not tarfile.is_tarfile(path):
        raise InputError(f"{path} is neither a bundle folder nor a .tar.gz bundle")
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    found = [p.parent for p in into.glob("*/manifest.json")]
    if len(found) != 1:
        raise ArtifactError(f"{path}: expected one bundle folder inside, found {len(found)}")
    read_manifest(found[0], kind=KIND)
    return found[0]


def replicate(path: str | Path, *, workspace: Workspace | str | Path | None = None, fast: bool = False,
              tolerance: float = 1e-6, out: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Re-run a bundled study and compare every number and verdict with the original.

    ``fast``: the study's kind re-decides from the bundled transcripts alone (is the analysis
    reproducible?); otherwise it runs again in ``workspace`` (default: a fresh one under the working
    folder), preparing what it needs, and the artifacts it ran on are compared with the locked ones.
    """
    work = Path(out) if out else Path(tempfile.mkdtemp(prefix="empiricist-replicate-"))
    work.mkdir(parents=True, exist_ok=True)
    folder = open_bundle(path, work / "bundle")
    original = json.loads((folder / "analysis" / "results.json").read_text())
    spec_dir = work / "spec"
    if spec_dir.exists():
        shutil.rmtree(spec_dir)
    shutil.copytree(folder / "spec", spec_dir)
    spec = spec_dir / original["spec_file"]
    artifacts: list[dict[str, Any]] = []
    if fast:
        study = load_spec(spec)
        new = kind_of(study).redecide(study, folder, original)
        mode = "re-analysis of the bundled transcripts"
    else:
        ws = Workspace.at(workspace if workspace is not None else work / "workspace")
        prepared = prepare_run(spec, ws, prepare=True, progress=progress, enforce_lock=False)
        locked = (prepared.lock or {}).get("artifacts", {})
        for name, rec in prepared.resolved.artifacts.items():
            changes = locking.diff(locked[name]["identity"], rec["identity"]) if name in locked else ["not locked"]
            artifacts.append({"artifact": name, "what": rec["what"], "identical": not changes, "changes": changes})
        new = run_study(spec, out=work / "results", workspace=ws, enforce_lock=False, progress=progress).results
        mode = f"fresh run in {ws.root}"
    return {"mode": mode, "tolerance": tolerance, "work": str(work), "artifacts": artifacts,
            **compare(original, new, tolerance)}


def _numbers(p: dict[str, Any]) -> dict[str, float]:
    """The numbers behind one verdict: an eval prediction's, or each part of an experiment test."""
    if "parts" in p:
        return {f"{q['what']}.{k}": q[k] for q in p["parts"] for k in ("estimate", "lo", "hi")}
    return {k: p[k] for k in NUMBERS}


def compare(original: dict[str, Any], new: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Numbers within ``tolerance`` and verdicts, prediction by prediction (controls included)."""
    def key(p: dict[str, Any]) -> tuple[str, str]:
        return (p.get("party") or "control", p["id"])

    fresh = {key(p): p for p in new["controls"] + new["predictions"]}
    rows = []
    for p in original["controls"] + original["predictions"]:
        q = fresh.get(key(p))
        if q is None:
            rows.append({"party": key(p)[0], "id": p["id"], "missing": True})
            continue
        old, fresh_numbers = _numbers(p), _numbers(q)
        diffs = {k: abs(v - fresh_numbers.get(k, math.nan)) for k, v in old.items()
                 if not (math.isnan(v) and math.isnan(fresh_numbers.get(k, math.nan)))}
        rows.append({"party": key(p)[0], "id": p["id"], "max_diff": max(diffs.values(), default=0.0),
                     "numbers_match": all(d <= tolerance for d in diffs.values()),
                     "worst": max(diffs, key=diffs.get) if diffs else None,
                     "verdict": p["verdict"], "new_verdict": q["verdict"], "verdict_changed": p["verdict"] != q["verdict"]})
    parties = [{"party": p["name"], "verdict": p["final"],
                "new_verdict": next((q["final"] for q in new["parties"] if q["name"] == p["name"]), None)}
               for p in original["parties"]]
    for p in parties:
        p["changed"] = p["verdict"] != p["new_verdict"]
    return {"rows": rows, "parties": parties,
            "all_match": all(r.get("numbers_match") and not r.get("verdict_changed") for r in rows),
            "verdicts_changed": [p["party"] for p in parties if p["changed"]],
            "outcome": new["outcome"], "original_outcome": original["outcome"]}
