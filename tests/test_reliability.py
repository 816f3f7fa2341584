"""Issue 12, "nothing lost, nothing faked": each failure the issue lists, reproduced and now refused.

Outputs never destroy what we did not make; damaged artifacts are caught on open and by `verify`;
builds can share a workspace and survive a kill at any step of a swap; a copied workspace still works;
`view` serves only regular files inside its folder. Bad inputs are in test_bad_inputs.py.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from empiricist import artifacts
from empiricist.artifacts import building, quick_check, verify, verify_tree, write_manifest
from empiricist.errors import ArtifactError


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the real entry point in-process: (exit code, stdout, stderr); an unexpected exception propagates."""
    return run_cli(capsys, *args)


# ---------------------------------------------------------------- outputs never destroy
def _inputs(tmp: Path) -> dict[str, Path]:
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(f'{{"id": "d{i}", "text": "alpha beta gamma {i}"}}\n' for i in range(20)))
    task = tmp / "task.jsonl"
    task.write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\n')
    texts = tmp / "texts.txt"
    texts.write_text("hello\n")
    from empiricist.data import train_bpe

    tok = train_bpe(["alpha beta gamma delta"] * 20, 300, tmp / "tok")
    return {"corpus": corpus, "task": task, "texts": texts, "tok": tok}


FOLDER_COMMANDS = {
    "world generate": lambda i, o: ["world", "generate", "--preset", "tiny", "--out", o, "-q"],
    "data store": lambda i, o: ["data", "store", i["corpus"], "--tokenizer", i["tok"], "--out", o, "-q"],
    "activations capture": lambda i, o: ["activations", "capture", "no-such-model", "--texts", i["texts"],
                                         "--out", o],
    "eval": lambda i, o: ["eval", "--task", i["task"], "--model", "no-such-model", "--out", o],
    "probe": lambda i, o: ["probe", "--model", "no-such-model", "--out", o],
    "attribute-validate": lambda i, o: ["attribute-validate", "--out", o],
    "stego run": lambda i, o: ["stego", "run", "--grid", "reduced", "--out", o, "-q"],
}
FILE_COMMANDS = {
    "data tokenizer": lambda i, o: ["data", "tokenizer", i["corpus"], "--out", o],
    "contamination": lambda i, o: ["contamination", i["task"], "--out", o],
    "lookup-validate": lambda i, o: ["lookup-validate", "--out", o],
}


@pytest.mark.parametrize("command", sorted(FOLDER_COMMANDS))
def test_out_folder_of_user_files_survives(command: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "my-thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("\\chapter{Years of work}\n")
    code, _, err = cli(capsys, *FOLDER_COMMANDS[command](_inputs(tmp_path), out))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and "--overwrite" in err and "thesis.tex" in err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "\\chapter{Years of work}\n"


@pytest.mark.parametrize("command", sorted(FILE_COMMANDS))
def test_out_file_of_the_user_survives(command: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "thesis.tex"
    out.write_text("mine\n")
    code, _, err = cli(capsys, *FILE_COMMANDS[command](_inputs(tmp_path), out))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(out) in err and "--overwrite" in err
    assert out.read_text() == "mine\n"


def test_overwrite_replaces_and_a_finished_store_is_replaceable(tmp_path: Path, capsys) -> None:
    inputs = _inputs(tmp_path)
    out = tmp_path / "store"
    out.mkdir()
    (out / "notes.txt").write_text("scratch")
    code, _, err = cli(capsys, "data", "store", inputs["corpus"], "--tokenizer", inputs["tok"], "--out", out, "-q",
                       "--overwrite")
    assert code == 0, err
    assert not (out / "notes.txt").exists() and artifacts.is_complete(out)
    # a finished store of the same kind may be rebuilt with --overwrite; without it the error says how
    code, _, err = cli(capsys, "data", "store", inputs["corpus"], "--tokenizer", inputs["tok"], "--out", out, "-q")
    assert code == 2 and "already exists" in err and "--overwrite" in err
    # another kind of artifact is never taken for a store
    world_like = tmp_path / "other"
    world_like.mkdir()
    write_manifest(world_like, "world", {})
    code, _, err = cli(capsys, "data", "store", inputs["corpus"], "--tokenizer", inputs["tok"], "--out",
                       world_like, "-q")
    assert code == 2 and "'world' artifact, not a 'token_store'" in err


def test_building_refuses_foreign_folders_even_for_internal_overwrites(tmp_path: Path) -> None:
    """`building(overwrite=True)` (what bundles and runs use) replaces only an artifact, never user files."""
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    with pytest.raises(ArtifactError, match="not an empiricist artifact"), building(out, overwrite=True) as tmp:
        write_manifest(tmp, "bundle", {})
    assert (out / "thesis.tex").exists() and [p.name for p in tmp_path.iterdir() if "building" in p.name] == []
    with building(out, force=True) as tmp:
        write_manifest(tmp, "bundle", {})
    assert artifacts.read_manifest(out)["kind"] == "bundle" and not (out / "thesis.tex").exists()


# ---------------------------------------------------------------- verify and the cheap check
def _artifact(folder: Path, big: int = 3 << 20) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    (folder / "big.bin").write_bytes(rng.integers(0, 256, big, dtype=np.uint8).tobytes())
    (folder / "small.json").write_text('{"a": 1}')
    (folder / "sub").mkdir()
    (folder / "sub" / "x.txt").write_text("x")
    write_manifest(folder, "demo", {})
    return folder


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def test_manifest_records_sizes_and_samples_and_skips_temp_names(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "data.bin").write_bytes(b"\0" * 10)
    (folder / ".data.bin.abc123.tmp").write_bytes(b"half")  # a killed atomic write
    (folder / ".x.building-4242").mkdir()  # a killed build
    (folder / ".x.building-4242" / "f").write_text("half")
    (folder / ".x.lock").write_text("")
    m = write_manifest(folder, "demo", {})
    assert m["files"].keys() == {"data.bin"} and m["sizes"] == {"data.bin": 10}
    assert verify(folder) == []
    big = _artifact(tmp_path / "b")
    samples = artifacts.read_manifest(big)["samples"]
    assert list(samples) == ["big.bin"] and "0" in samples["big.bin"]


def test_cheap_check_catches_sampled_damage_and_verify_catches_all(tmp_path: Path, capsys) -> None:
    folder = _artifact(tmp_path / "art")
    quick_check(folder)
    code, out, _ = cli(capsys, "verify", folder)
    assert code == 0 and "1 of 1 artifact(s) intact" in out
    _flip(folder / "big.bin", 5 * artifacts.SAMPLE_BLOCK + 7)  # a block the cheap check does not sample
    quick_check(folder)  # cheap: misses it, by design
    code, out, _ = cli(capsys, "verify", folder)
    assert code == 1 and f"MISMATCH {folder}: big.bin" in out  # the full check never does
    _flip(folder / "big.bin", 5 * artifacts.SAMPLE_BLOCK + 7)
    _flip(folder / "big.bin", 3)  # the first block is always sampled
    with pytest.raises(ArtifactError, match="big.bin differs from the manifest at byte 0"):
        quick_check(folder)
    _flip(folder / "big.bin", 3)
    _flip(folder / "small.json", 0)  # small files are hashed whole on open
    with pytest.raises(ArtifactError, match="small.json does not match its sha256"):
        quick_check(folder)
    _flip(folder / "small.json", 0)
    quick_check(folder)
    (folder / "sub" / "x.txt").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        quick_check(folder)


def test_verify_a_workspace_names_the_first_mismatch(tmp_path: Path, capsys) -> None:
    ws = tmp_path / "ws"
    _artifact(ws / "stores" / "a", big=100)
    bad = _artifact(ws / "indexes" / "b", big=100)
    (bad / "sub" / "x.txt").write_text("y")
    (bad / "extra.txt").write_text("planted")
    code, out, _ = cli(capsys, "verify", ws)
    assert code == 1 and "1 of 2 artifact(s) intact" in out
    assert f"MISMATCH {bad}: extra.txt (not in manifest) (and 1 more)" in out


def test_zeroed_ngram_index_errors_instead_of_counting(small_store: Path, tmp_path: Path, capsys) -> None:
    ws = tmp_path / "ws"
    store = ws / "stores" / "s"
    shutil.copytree(small_store, store)
    code, out, err = cli(capsys, "count", "alpha beta", "--tokens", "--store", store)
    assert code == 0, err
    n = int(out.strip().splitlines()[-1])
    assert n > 0
    index = next((ws / "indexes").glob("ngram-*"))
    table = index / "table.0"
    data = bytearray(table.read_bytes())
    data[len(data) // 4: len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)
    table.write_bytes(bytes(data))
    code, out, err = cli(capsys, "count", "alpha beta", "--tokens", "--store", store)
    assert code == 2 and out.strip() == "" and "table.0" in err and "corrupted" in err
    assert "empiricist verify" in err


def test_damaged_store_is_refused_on_open(small_store: Path, tmp_path: Path) -> None:
    from empiricist.data.store import TokenStore

    store = tmp_path / "s"
    shutil.copytree(small_store, store)
    shard = next((store / "shards").iterdir())
    _flip(shard, 10)
    with pytest.raises(ArtifactError, match="corrupted"):
        TokenStore.open(store)


def test_ngram_index_name_depends_on_content_only(small_store: Path, tmp_path: Path) -> None:
    import json

    from empiricist.data.store import TokenStore
    from empiricist.lookup import default_ngram_index_path

    a, b = tmp_path / "w1" / "stores" / "s", tmp_path / "w2" / "stores" / "s"
    shutil.copytree(small_store, a)
    shutil.copytree(small_store, b)
    m = json.loads((b / "manifest.json").read_text())
    m["created"], m["argv"] = "1999-01-01T00:00:00Z", ["elsewhere"]
    (b / "manifest.json").write_text(json.dumps(m))
    assert default_ngram_index_path(TokenStore.open(a)).name == default_ngram_index_path(TokenStore.open(b)).name


# ---------------------------------------------------------------- a workspace two processes share
def _prepare(root: str) -> tuple[str, str, str]:
    from empiricist.pipeline import prepare
    from empiricist.world import WorldConfig

    p = prepare(WorldConfig.preset("tiny", target_tokens=100_000), 300, root, progress=False)
    return str(p.world), str(p.tokenizer), str(p.store)


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not artifacts.is_temp_name(p.name))


def test_concurrent_builders_share_one_artifact(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        a, b = pool.map(_prepare, [str(ws), str(ws)])
    assert a == b
    for sub in ("worlds", "tokenizers", "stores"):
        assert len(_visible(ws / sub)) == 1, sub
        assert not [p for p in (ws / sub).iterdir() if "building" in p.name or ".old-" in p.name]
    assert all(not bad for _, bad in verify_tree(ws))


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("tinyws") / "ws"
    _prepare(str(ws))
    return ws


def _quick_suite(steps: int = 12):
    from empiricist.suite.config import get_preset

    cfg = get_preset("tiny")
    return dataclasses.replace(cfg, vocab_size=300, sizes=cfg.sizes[:1],
                               train=dataclasses.replace(cfg.train, steps=steps, resume_every=3, threads=1))


class _KillDuringSwap:
    """``os`` for ``empiricist.artifacts`` that dies at one step of the first snapshot swap:
    "before" the old snapshot is renamed aside, "between" the two renames, "after" the new one is in."""

    def __init__(self, point: str) -> None:
        import os

        self.point, self._os, self.fired = point, os, False

    def __getattr__(self, name: str):
        return getattr(self._os, name)

    def replace(self, src, dst) -> None:
        src, dst = Path(src), Path(dst)
        aside = src.name == "resume" and ".old-" in dst.name
        swap_in = dst.name == "resume" and (dst.with_name(f".resume.old-{self._os.getpid()}")).exists()
        if not self.fired and self.point == "before" and aside:
            self.fired = True
            raise KeyboardInterrupt("killed before the swap")
        self._os.replace(src, dst)
        if not self.fired and ((self.point == "between" and aside) or (self.point == "after" and swap_in)):
            self.fired = True
            raise KeyboardInterrupt(f"killed {self.point} the renames")


@pytest.mark.parametrize("point", ["before", "between", "after"])
def test_kill_during_snapshot_swap_resumes_byte_identical(point: str, tiny_ws: Path, tmp_path: Path,
                                                          monkeypatch) -> None:
    from empiricist.data.store import TokenStore
    from empiricist.suite.suite import Suite, train_suite

    store = TokenStore.open(tiny_ws / "stores" / _visible(tiny_ws / "stores")[0])
    cfg = _quick_suite()
    ref = train_suite(cfg, store, tmp_path / "ref", progress=False)
    killer = _KillDuringSwap(point)
    monkeypatch.setattr(artifacts, "os", killer)
    with pytest.raises(KeyboardInterrupt):
        train_suite(cfg, store, tmp_path / "run", progress=False)
    assert killer.fired
    monkeypatch.undo()
    steps: list[int] = []
    run = train_suite(cfg, store, tmp_path / "run", progress=False, on_step=lambda s, _: steps.append(s))
    # the first swap replaces the step-1 snapshot by step 2's: before/between keep step 1, after has step 2
    assert steps[0] == (3 if point == "after" else 2), "the snapshot was lost: training restarted"
    a = (Suite(ref).checkpoint_path("t1") / "model.safetensors").read_bytes()
    b = (Suite(run).checkpoint_path("t1") / "model.safetensors").read_bytes()
    assert a == b
    model = Path(run) / "models" / "t1"
    assert not [p.name for p in model.iterdir() if ".old-" in p.name or "building" in p.name]
    assert verify(run) == []


def test_copied_workspace_verifies_and_loads(tiny_ws: Path, tmp_path: Path, capsys) -> None:
    from empiricist.data.store import TokenStore
    from empiricist.suite.handles import load_model
    from empiricist.suite.suite import Suite, train_suite

    ws = tmp_path / "original"
    shutil.copytree(tiny_ws, ws)
    store = TokenStore.open(ws / "stores" / _visible(ws / "stores")[0])
    suite = train_suite(_quick_suite(steps=4), store, workspace=ws, progress=False)
    assert not Path(Suite(suite).meta["store"]).is_absolute()
    moved = tmp_path / "moved"
    shutil.move(ws, moved)  # the original path is gone
    code, out, _ = cli(capsys, "verify", moved)
    assert code == 0 and "artifact(s) intact" in out
    s = Suite(moved / "suites" / Path(suite).name)
    assert s.store().path == moved / "stores" / store.path.name
    assert s.store().world_path().is_relative_to(moved)
    h = load_model(f"suite:{s.path}/t1")
    assert h.model.config.vocab_size == 300


def test_old_absolute_paths_still_resolve(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "stores" / "s").mkdir(parents=True)
    anchor = ws / "suites" / "x"
    anchor.mkdir(parents=True)
    old = "/somewhere/else/stores/s"
    assert artifacts.resolve_recorded(old, anchor) == (ws / "stores" / "s").resolve()
    assert artifacts.portable_path(ws / "stores" / "s", anchor) == "stores/s"
    assert artifacts.portable_path("/etc", anchor) == "/etc"


def test_stale_temp_folders_are_cleaned(tmp_path: Path) -> None:
    final = tmp_path / "art"
    dead = tmp_path / ".art.building-999999999"  # no such pid
    dead.mkdir()
    (dead / "half").write_text("x")
    with building(final) as tmp:
        write_manifest(tmp, "demo", {})
    assert not dead.exists() and artifacts.is_complete(final)


# ---------------------------------------------------------------- view
def test_view_serves_only_regular_files_inside(tmp_path: Path) -> None:
    from empiricist.report import serve

    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "report.html").write_text("<p>ok</p>")
    (site / "sub" / "a.txt").write_text("a")
    (site / "secret").symlink_to("/etc/passwd")
    (site / "linkdir").symlink_to("/etc")

    def get(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    server, url = serve(site, port=0)
    base = url.rsplit("/", 1)[0]
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert get(url) == 200 and get(f"{base}/sub/a.txt") == 200
        assert get(f"{base}/secret") == 404 and get(f"{base}/linkdir/passwd") == 404
        assert get(f"{base}/sub/") == 404 and get(f"{base}/") == 404
        assert get(f"{base}/../../../etc/passwd") == 404
    finally:
        server.shutdown()
        server.server_close()
    server, url = serve(site, port=0, listing=True)
    try:
        assert get(f"{url.rsplit('/', 1)[0]}/sub/") == 200
        assert get(f"{url.rsplit('/', 1)[0]}/secret") == 404
    finally:
        server.shutdown()
        server.server_close()
