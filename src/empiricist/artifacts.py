"""Artifacts: content-addressed folders with a manifest, written atomically.

Every command's output is a folder holding a ``manifest.json`` (kind, config, input hashes, the sha256
of each file, package versions, time). A folder is built under a temporary name and renamed into place
only once its manifest is written, so a crash never leaves something that looks complete: a folder
without a manifest is, by definition, not an artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from empiricist.errors import ArtifactError

MANIFEST = "manifest.json"
_UMASK = os.umask(0)
os.umask(_UMASK)
_TRACKED_PACKAGES = ("empiricist", "torch", "transformers", "tokenizers", "numpy", "pyarrow", "safetensors")


WORKSPACE_MARKER = ".empiricist-workspace"
HOME_ENV = "EMPIRICIST_HOME"
# Kind folders that ``Workspace.containing`` recognises in an unmarked (pre-marker) workspace.
KIND_FOLDERS = ("worlds", "tokenizers", "stores", "suites", "indexes")


@dataclass(frozen=True)
class Workspace:
    """Where a command's artifacts live: one value passed down, never a global that code rewrites.

    ``Workspace.from_env`` (reading ``$EMPIRICIST_HOME``) is called once, at the CLI's edge; library code
    takes a ``Workspace`` and uses its folders. A workspace marks its root with a small file so that a
    derived artifact (an index of a store) can find the workspace it belongs to by walking up, without
    guessing from folder names.
    """

    root: Path

    @classmethod
    def at(cls, path: str | Path | Workspace | None = None) -> Workspace:
        """``path`` as a workspace (``./empiricist-work`` when None); an existing value passes through."""
        if isinstance(path, Workspace):
            return path
        return cls(Path(path) if path is not None else Path("empiricist-work"))

    @classmethod
    def from_env(cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Workspace:
        """The CLI's workspace: ``--workspace``, else ``$EMPIRICIST_HOME``, else ``./empiricist-work``."""
        env = os.environ if environ is None else environ
        return cls.at(path if path is not None else env.get(HOME_ENV) or None)

    @classmethod
    def containing(cls, artifact: str | Path) -> Workspace | None:
        """The workspace an artifact folder lives in: the nearest ancestor holding the marker file.

        Folders made before workspaces were marked have no marker; for them (and only here) the older
        layout is recognised: an artifact directly inside a kind folder (``stores/``, ``suites/``, …) belongs
        to that folder's parent. None when neither applies.
        """
        path = Path(artifact).resolve()
        for parent in path.parents:
            if (parent / WORKSPACE_MARKER).is_file():
                return cls(parent)
        if path.parent.name in KIND_FOLDERS and path.parent.parent.is_dir():
            return cls(path.parent.parent)
        return None

    @classmethod
    def of(cls, artifact: str | Path, default: str | Path | Workspace | None = None) -> Workspace:
        """The workspace holding ``artifact`` when it lives in one, else ``Workspace.at(default)``: where the
        things derived from an artifact (an index of a store) go, beside the artifact they were made from."""
        return cls.containing(artifact) or cls.at(default)

    def dir(self, name: str) -> Path:
        """The workspace's folder ``name`` (``worlds``, ``stores``, ``suites``, ``indexes``, …), created."""
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / WORKSPACE_MARKER
        if not marker.exists():
            marker.write_text("empiricist workspace\n")
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def worlds(self) -> Path:
        return self.dir("worlds")

    @property
    def tokenizers(self) -> Path:
        return self.dir("tokenizers")

    @property
    def stores(self) -> Path:
        return self.dir("stores")

    @property
    def suites(self) -> Path:
        return self.dir("suites")

    @property
    def indexes(self) -> Path:
        return self.dir("indexes")

    @property
    def evals(self) -> Path:
        return self.dir("evals")

    @property
    def studies(self) -> Path:
        return self.dir("studies")

    @property
    def experiments(self) -> Path:
        return self.dir("experiments")

    def cache(self, name: str) -> Path:
        """A cache folder (``attribution-cache``, ``eval-cache``, …): safe to delete, rebuilt on demand."""
        return self.dir(name)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the form we hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def config_hash(obj: Any, length: int = 16) -> str:
    """Short sha256 of the canonical JSON of ``obj``; names artifacts by what made them."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------- atomic single files
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; artifacts are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(
        path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n"
    )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write (by any library); renamed onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


# ---------------------------------------------------------------- artifact folders
def file_hashes(folder: str | Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest, keyed by relative posix path."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out[p.relative_to(folder).as_posix()] = sha256_file(p)
    return out


def is_complete(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def read_manifest(folder: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read an artifact's manifest; a missing one means the artifact is absent or half-written."""
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        if folder.exists():
            raise ArtifactError(f"{folder} has no {MANIFEST}: it is incomplete (an interrupted build?) or not an "
                                "empiricist artifact")
        raise ArtifactError(f"{folder} does not exist")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{mpath}: corrupted manifest ({e})") from None
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{folder} is a {manifest.get('kind')!r} artifact, expected {kind!r}")
    return manifest


def verify(folder: str | Path) -> list[str]:
    """Names of files whose content no longer matches the manifest (empty list: intact)."""
    folder = Path(folder)
    recorded = read_manifest(folder)["files"]
    actual = file_hashes(folder)
    bad = [name for name, h in recorded.items() if actual.get(name) != h]
    bad += [f"{name} (not in manifest)" for name in actual if name not in recorded]
    return sorted(bad)


def write_manifest(
    folder: str | Path,
    kind: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Hash every file in ``folder`` and write its manifest (atomically; written last by convention)."""
    folder = Path(folder)
    manifest = {
        "kind": kind,
        "config": dict(config),
        "config_hash": config_hash(dict(config)),
        "inputs": dict(inputs or {}),
        "files": file_hashes(folder),
        "versions": package_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[:],
    }
    if extra:
        manifest.update(extra)
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def check_replaceable(folder: str | Path, kind: str) -> None:
    """Allow overwriting ``folder`` only if it is absent, empty, or a finished artifact of ``kind``:
    never wipe a folder that holds something else."""
    folder = Path(folder)
    if not folder.exists():
        return
    if is_complete(folder):
        read_manifest(folder, kind=kind)
    elif any(folder.iterdir()):
        raise ArtifactError(f"{folder} exists and is not a {kind} artifact; choose an empty or new output folder")


@contextmanager
def building(final: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build an artifact folder under a temporary name; on success rename it to ``final``.

    The body must write the manifest (``write_manifest``) into the yielded folder before leaving. On an
    exception the temporary folder is removed and ``final`` is untouched.
    """
    final = Path(final)
    if final.exists() and not overwrite and is_complete(final):
        raise ArtifactError(f"{final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.building-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if not is_complete(tmp):
            raise ArtifactError(f"internal: artifact {final.name} finished without a manifest")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
