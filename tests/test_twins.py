"""The one-function-each helpers: the ``suite:`` spec, which world made a store, preset → inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from empiricist.artifacts import Workspace, write_manifest
from empiricist.data.store import store_world
from empiricist.errors import ArtifactError, EmpiricistError
from empiricist.suite.handles import SuiteSpec, parse_suite_spec


@pytest.mark.parametrize("spec, want", [
    ("suite:micro/m1", SuiteSpec("micro", "m1", None)),
    ("suite:tiny/t2@step64", SuiteSpec("tiny", "t2", 64)),
    ("suite:tiny/t2@12", SuiteSpec("tiny", "t2", 12)),
    ("suite:/abs/ws/suites/micro-ab12/m2@step0", SuiteSpec("/abs/ws/suites/micro-ab12", "m2", 0)),
])
def test_parse_suite_spec_round_trips(spec: str, want: SuiteSpec) -> None:
    got = parse_suite_spec(spec)
    assert got == want
    assert parse_suite_spec(got.format()) == got


@pytest.mark.parametrize("spec", ["EleutherAI/pythia-70m", "./models/m1", "suite:micro", "suite:micro/m1@latest"])
def test_non_suite_specs_are_none(spec: str) -> None:
    assert parse_suite_spec(spec) is None


def _world(folder: Path, config_hash: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "facts.jsonl").write_text("{}\n")
    write_manifest(folder, kind="world", config={"x": 1}, extra={"config_hash": config_hash})
    return folder


def _store(folder: Path, world: str, world_hash: str | None) -> Path:
    folder.mkdir(parents=True)
    source = {"world": world, **({"world_hash": world_hash} if world_hash else {})}
    write_manifest(folder, kind="token_store", config={}, extra={"source": source})
    return folder


def test_store_world_finds_the_recorded_world_by_its_hash(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "ws")
    world = _world(ws.worlds / "world-aa", "aa")
    # recorded relative to another working directory: found by name in the store's workspace
    store = _store(ws.stores / "store-1", "elsewhere/worlds/world-aa", "aa")
    assert store_world(store) == world
    # recorded relative to a folder above the store
    assert store_world(_store(tmp_path / "ws" / "stores" / "store-2", "worlds/world-aa", "aa")).resolve() \
        == world.resolve()
    # a world of the same name but another config is not the one
    with pytest.raises(ArtifactError, match="hash bb"):
        store_world(_store(ws.stores / "store-3", "worlds/world-aa", "bb"))
    with pytest.raises(ArtifactError, match="not built from a generated world"):
        store_world(_store(ws.stores / "store-4", "", None))


def test_prepare_preset_refuses_an_unknown_preset(tmp_path: Path) -> None:
    from empiricist.pipeline import prepare_preset, prepare_suite

    for fn in (prepare_preset, prepare_suite):
        with pytest.raises(EmpiricistError):
            fn("no-such-preset", tmp_path)
    assert not (tmp_path / "worlds").exists()
