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
import re
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


_WORKSPACE_FOLDERS = ("worlds", "tokenizers", "stores", "suites", "indexes", "evals", "studies", "experiments")


def _workspace_root(anchor: str | Path) -> Path | None:
    """The workspace holding ``anchor``: the nearest marked ancestor, else the parent of a standard folder."""
    ws = Workspace.containing(anchor)
    if ws is not None:
        return ws.root.resolve()
    for parent in Path(anchor).resolve().parents:
        if parent.name in _WORKSPACE_FOLDERS:
            return parent.parent
    return None


def portable_path(path: str | Path, anchor: str | Path) -> str:
    """How a manifest records ``path``: relative to the workspace holding ``anchor`` when ``path`` lies in
    it too (a copied or moved workspace, or a bundle on another machine, still resolves), else absolute."""
    root, p = _workspace_root(anchor), Path(path).resolve()
    if root is not None and p.is_relative_to(root):
        return p.relative_to(root).as_posix()
    return str(p)


def resolve_recorded(recorded: str | Path, anchor: str | Path) -> Path:
    """The path a manifest recorded (``portable_path``), for an artifact at ``anchor``. Old manifests hold
    absolute paths: used when they exist, else the same workspace folder/name under ``anchor``'s workspace."""
    p, root = Path(recorded), _workspace_root(anchor)
    if not p.is_absolute():
        return root / p if root is not None else p
    if p.exists() or root is None:
        return p
    moved = root / p.parent.name / p.name
    return moved if moved.exists() else p


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
# Names our own machinery leaves beside or inside artifacts while it works: atomic-write temp files
# (``.name.XXXX.tmp``), folders being built (``.name.building-PID``), folders being swapped out
# (``.name.old-PID``) and build locks (``.name.lock``). They are never part of an artifact.
_TEMP_NAME = re.compile(r"^\..+\.(tmp|lock|building-\d+|old-\d+)$")
SAMPLE_BLOCK = 1 << 16  # bytes per sampled block in the cheap check
FULL_HASH_LIMIT = 1 << 20  # files up to this size are fully re-hashed by the cheap check
SAMPLES_PER_FILE = 8


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of our work-in-progress names (never hashed, cleaned when stale)."""
    return bool(_TEMP_NAME.match(name))


def _artifact_files(folder: Path) -> list[Path]:
    """Files of the artifact at ``folder``: everything except the manifest and our temp names."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and rel.as_posix() != MANIFEST and not any(is_temp_name(part) for part in rel.parts):
            out.append(p)
    return out


def file_hashes(folder: str | Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest and temp names, keyed by relative path."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in _artifact_files(folder)}


def _sample_offsets(size: int) -> list[int]:
    """Block offsets the cheap check hashes: first, last and evenly spaced ones between (deterministic)."""
    blocks = max(1, -(-size // SAMPLE_BLOCK))
    picks = {0, blocks - 1} | {round(i * (blocks - 1) / (SAMPLES_PER_FILE - 1)) for i in range(SAMPLES_PER_FILE)}
    return sorted(b * SAMPLE_BLOCK for b in picks)


def _block_sha(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return sha256_bytes(f.read(SAMPLE_BLOCK))


def file_samples(folder: str | Path) -> dict[str, dict[str, str]]:
    """For files over ``FULL_HASH_LIMIT``: sha256 of a few sampled blocks, by offset (the cheap check's)."""
    folder = Path(folder)
    out = {}
    for p in _artifact_files(folder):
        size = p.stat().st_size
        if size > FULL_HASH_LIMIT:
            out[p.relative_to(folder).as_posix()] = {str(o): _block_sha(p, o) for o in _sample_offsets(size)}
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
    bad = [name if name in actual else f"{name} (missing)" for name, h in recorded.items() if actual.get(name) != h]
    bad += [f"{name} (not in manifest)" for name in actual if name not in recorded]
    return sorted(bad)


def quick_check(folder: str | Path, manifest: Mapping[str, Any] | None = None) -> None:
    """The cheap check run whenever a store or index is opened: every recorded file is present with its
    recorded size, small files re-hash to their sha256, large ones match at their sampled blocks.

    Catches truncation, zeroed or swapped files and most local damage at a cost of a few hundred KiB
    read per file; ``verify`` (every byte) is the full check. Older manifests without ``sizes`` or
    ``samples`` get the parts they can (presence, small-file hashes).
    """
    folder = Path(folder)
    manifest = read_manifest(folder) if manifest is None else manifest
    sizes, samples = manifest.get("sizes") or {}, manifest.get("samples") or {}
    fix = f"run `empiricist verify {folder}` for the full check, then rebuild it"
    for name, sha in (manifest.get("files") or {}).items():
        p = folder / name
        if not p.is_file():
            raise ArtifactError(f"{p} is missing from artifact {folder}; {fix}")
        size = p.stat().st_size
        if name in sizes and size != sizes[name]:
            raise ArtifactError(f"{p} is {size} bytes, the manifest says {sizes[name]}: corrupted; {fix}")
        if size <= FULL_HASH_LIMIT:
            if sha256_file(p) != sha:
                raise ArtifactError(f"{p} does not match its sha256 in the manifest: corrupted; {fix}")
            continue
        for offset, block_sha in samples.get(name, {}).items():
            if _block_sha(p, int(offset)) != block_sha:
                raise ArtifactError(f"{p} differs from the manifest at byte {offset} (sampled block): "
                                    f"corrupted; {fix}")


def verify_tree(path: str | Path) -> list[tuple[Path, list[str]]]:
    """``verify`` for one artifact, or for every artifact (folder with a manifest) under a workspace:
    ``[(folder, bad files)]`` for each folder checked, in path order. Temp names are skipped."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a folder; pass an artifact folder or a workspace to `empiricist verify`")
    if is_complete(path):
        folders = [path]
    else:
        folders = sorted(m.parent for m in path.rglob(MANIFEST)
                         if not any(is_temp_name(part) for part in m.relative_to(path).parts))
    return [(f, verify(f)) for f in folders]


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
        "sizes": {p.relative_to(folder).as_posix(): p.stat().st_size for p in _artifact_files(folder)},
        "samples": file_samples(folder),
        "versions": package_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[:],
    }
    if extra:
        manifest.update(extra)
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def check_replaceable(folder: str | Path, kind: str | None, overwrite: bool = False, *,
                      resumable: str | None = None) -> None:
    """The one rule for every output path: replace ``folder`` only if it is absent, empty, or a finished
    artifact of ``kind`` (any kind when None), unless the user passed ``--overwrite``.

    Never wipe a folder of someone's files: an ``--out`` that holds ``thesis.tex`` is refused. A plain
    file at the path is refused too (file outputs pass ``kind=None``). ``resumable``: a file whose
    presence marks an unfinished folder of ours that a re-run continues (accepted as well).
    """
    folder = Path(folder)
    if overwrite or not (folder.exists() or folder.is_symlink()):
        return
    hint = "choose a new or empty folder, or pass --overwrite to replace it"
    if not folder.is_dir() or folder.is_symlink():
        raise ArtifactError(f"{folder} exists and is not an artifact folder; nothing was written: {hint}")
    if is_complete(folder):
        found = read_manifest(folder).get("kind")
        if kind is None or found == kind:
            return
        raise ArtifactError(f"{folder} holds a {found!r} artifact, not a {kind!r} one; nothing was written: {hint}")
    entries = sorted(p.name for p in folder.iterdir() if not is_temp_name(p.name))
    if entries and not (resumable is not None and (folder / resumable).is_file()):
        raise ArtifactError(f"{folder} exists and holds files that are not an empiricist artifact (e.g. "
                            f"{entries[0]!r}); nothing was written: {hint}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(final: str | Path) -> None:
    """Undo what a killed build left next to ``final``: restore a finished artifact that was being swapped
    out (``final`` missing, ``.name.old-PID`` complete) and remove temp folders of dead processes."""
    final = Path(final)
    if not final.parent.is_dir():
        return
    for p in sorted(final.parent.glob(f".{final.name}.*")):
        m = re.fullmatch(re.escape(f".{final.name}.") + r"(building|old)-(\d+)", p.name)
        if m is None or _pid_alive(int(m.group(2))) and int(m.group(2)) != os.getpid():
            continue
        if m.group(1) == "old" and not final.exists() and is_complete(p):
            os.replace(p, final)
        else:
            shutil.rmtree(p, ignore_errors=True)


def artifact_lock(final: str | Path, timeout: float = -1):
    """A lock held while ``final`` is built, so a second process waits and then reuses the artifact.

    ``with artifact_lock(path): if not is_complete(path): build...``. The lock file is a hidden sibling
    (``.name.lock``), never part of any artifact.
    """
    from filelock import FileLock

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(final.parent / f".{final.name}.lock"), timeout=timeout)


@contextmanager
def building(final: str | Path, overwrite: bool = False, *, kind: str | None = None,
             force: bool = False) -> Iterator[Path]:
    """Build an artifact folder under a temporary name; on success swap it in as ``final``.

    The body must write the manifest (``write_manifest``) into the yielded folder before leaving. On an
    exception the temporary folder is removed and ``final`` is untouched. ``overwrite`` lets a finished
    artifact of the same kind be replaced; anything else at ``final`` (someone's files) is refused by
    ``check_replaceable`` unless ``force`` (the user's ``--overwrite``). The swap renames the old folder
    aside before renaming the new one in, so a kill at any instant leaves one complete artifact
    (``recover`` puts the old one back if the kill fell between the renames).
    """
    final = Path(final)
    recover(final)
    if final.exists() and not (overwrite or force) and is_complete(final):
        raise ArtifactError(f"{final} already exists; pass --overwrite to replace it")
    check_replaceable(final, kind, overwrite=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.building-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if not is_complete(tmp):
            raise ArtifactError(f"internal: artifact {final.name} finished without a manifest")
        swap_in(tmp, final, read_manifest(tmp).get("kind"), force=force)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def swap_in(tmp: Path, final: Path, kind: str | None, force: bool = False) -> None:
    """Rename the finished ``tmp`` onto ``final``: old aside, new in, old removed (each step a rename)."""
    if final.exists() or final.is_symlink():
        check_replaceable(final, kind, overwrite=force)
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, final)
