"""World probe datasets and the ``probe`` command on local models and on every checkpoint of a suite."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from empiricist.internals.datasets import world_probe_dataset, world_statement_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from empiricist.world import WorldConfig, generate_world

    return Path(generate_world(WorldConfig.preset("tiny"), out_dir=tmp_path_factory.mktemp("w") / "world",
                               progress=False))


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from empiricist.cli.internals import register

    a = typer.Typer()
    register(a)
    return a


def test_world_datasets(world):
    from empiricist.world.load import World

    ents = {e["id"]: e for e in World.open(world).entities}
    d = world_probe_dataset(world, "profession", "paraphrases", min_per_class=1)
    assert len(set(d.types)) < len(d)  # several phrasings per entity: the control task can memorise
    for text, label, t in zip(d.texts, d.labels, d.types, strict=True):
        assert ents[t]["name"] in text and ents[t]["attributes"]["profession"] == label
    assert world_probe_dataset(world, "birthplace").texts[0].endswith("was born in")
    s = world_statement_dataset(world, ["birthplace"])
    assert sorted(set(s.labels)) == ["false", "true"] and np.sum(s.labels == "true") == np.sum(s.labels == "false")


def test_probe_command_on_a_local_model_and_a_suite(world, small_store, tmp_path, app):
    from empiricist.data.store import TokenStore
    from empiricist.data.tokenizer import save_hf_tokenizer
    from empiricist.suite.config import ModelSize, get_preset
    from empiricist.suite.model import build_model
    from empiricist.suite.suite import train_suite

    store = TokenStore.open(small_store)
    folder = tmp_path / "m"
    build_model(ModelSize("x", 32, 2, 2), store.vocab_size, 64, seed=0).save_pretrained(folder)
    save_hf_tokenizer(store.tokenizer_path, folder)
    runner = CliRunner()
    r = runner.invoke(app, ["probe", "--model", str(folder), "--world", str(world), "--property", "type",
                            "--layers", "0,2", "--folds", "3", "--out", str(tmp_path / "p"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p" / "heatmap.png").exists() and (tmp_path / "p" / "heatmap.svg").exists()
    assert len((tmp_path / "p" / "results.csv").read_text().splitlines()) == 1 + 2

    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:1], train=dataclasses.replace(cfg.train, steps=2, threads=1))
    suite = train_suite(cfg, store, tmp_path / "suite", progress=False)
    r = runner.invoke(app, ["probe", "--suite", str(suite), "--all-checkpoints", "--world", str(world),
                            "--property", "statements", "--layers", "all", "--folds", "3",
                            "--out", str(tmp_path / "q"), "--quiet"])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "q" / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 3 * 2  # checkpoints 0, 1, 2 × resid.0, resid.1
    r = runner.invoke(app, ["probe", "--model", str(folder), "--quiet"])
    assert r.exit_code != 0 and "not a suite model" in str(r.exception)
