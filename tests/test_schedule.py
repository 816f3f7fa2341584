"""The scheduler: models trained side by side are byte-identical to the same configs trained alone."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from empiricist.data.store import TokenStore
from empiricist.errors import EmpiricistError
from empiricist.execute import Job, run_jobs
from empiricist.suite.config import ModelSize, TrainConfig, get_preset
from empiricist.suite.suite import Suite, train_suite


def test_side_by_side_equals_alone(small_store, tmp_path, monkeypatch):
    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:2], train=dataclasses.replace(cfg.train, steps=6, threads=1))
    store = TokenStore.open(small_store)
    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "1")
    alone = train_suite(cfg, store, tmp_path / "alone", progress=False)
    monkeypatch.setenv("EMPIRICIST_MAX_WORKERS", "2")
    together = train_suite(cfg, store, tmp_path / "together", progress=False)
    for size in ("t1", "t2"):
        a = (Suite(alone).checkpoint_path(size) / "model.safetensors").read_bytes()
        b = (Suite(together).checkpoint_path(size) / "model.safetensors").read_bytes()
        assert a == b, size
    assert Suite(together).complete


def _log_span(path: str, name: str) -> str:
    start = time.time()
    time.sleep(0.3)
    Path(path, f"{name}.json").write_text(json.dumps([start, time.time()]))
    return name


def _fail(why: str = "boom") -> None:
    raise ValueError(why)


def test_jobs_needing_all_cores_never_overlap(tmp_path):
    jobs = [Job("a", _log_span, {"path": str(tmp_path), "name": "a"}, 1),
            Job("b", _log_span, {"path": str(tmp_path), "name": "b"}, 1),
            Job("big", _log_span, {"path": str(tmp_path), "name": "big"}, 2),
            Job("c", _log_span, {"path": str(tmp_path), "name": "c"}, 1)]
    assert run_jobs(jobs, cores=2, progress=False) == ["a", "b", "big", "c"]
    span = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b", "big", "c")}
    for other in ("a", "b", "c"):
        assert span[other][1] <= span["big"][0] or span[other][0] >= span["big"][1], other


def test_a_failing_job_is_named_and_the_others_still_finish(tmp_path):
    for cores in (2, 1):  # a pool, then inline
        out = tmp_path / f"c{cores}"
        out.mkdir()
        jobs = [Job("broken-one", _fail, {}, 1), Job("fine", _log_span, {"path": str(out), "name": "x"}, 1)]
        with pytest.raises(EmpiricistError, match="broken-one.*boom"):
            run_jobs(jobs, cores=cores, progress=False)
        assert (out / "x.json").is_file()  # the job after the failure ran: its artifact is kept
    bad = [Job(f"bad-{i}", _fail, {}, 1) for i in range(5)] + [Job("other", _fail, {"why": "bust"}, 1)]
    with pytest.raises(EmpiricistError) as caught:
        run_jobs(bad, cores=2, progress=False)
    # one line per distinct error: the shared one names its first jobs once, the other its own job
    assert str(caught.value).splitlines() == ["6 of 6 jobs failed (the others finished):",
                                              "  5 jobs (bad-0, bad-1, bad-2, …): ValueError: boom",
                                              "  other: ValueError: bust"]


def _write_artifact(folder: str, text: str, tamper: bool) -> str:
    """A unit that writes a one-file artifact with its manifest; ``tamper``: then changes the file (as a
    torn copy on another node would)."""
    from empiricist.artifacts import building, write_manifest

    with building(Path(folder)) as tmp:
        (tmp / "out.txt").write_text(text)
        write_manifest(tmp, kind="unit", config={"text": text})
    if tamper:
        (Path(folder) / "out.txt").write_text("something else")
    return text


def test_the_driver_verifies_every_artifact_against_its_manifest(tmp_path):
    good = Job("good", _write_artifact, {"folder": str(tmp_path / "g"), "text": "a", "tamper": False}, 1,
               artifact=str(tmp_path / "g"))
    assert run_jobs([good], cores=1, progress=False) == ["a"]
    torn = Job("torn-unit", _write_artifact, {"folder": str(tmp_path / "t"), "text": "b", "tamper": True}, 1,
               artifact=str(tmp_path / "t"))
    other = dataclasses.replace(good, kwargs={**good.kwargs, "folder": str(tmp_path / "g2")},
                                artifact=str(tmp_path / "g2"))
    with pytest.raises(EmpiricistError, match=r"1 of 2 jobs left an artifact[\s\S]*torn-unit: .*out.txt"):
        run_jobs([other, torn], cores=1, progress=False)
    lost = Job("lost-unit", _log_span, {"path": str(tmp_path), "name": "x"}, 1, artifact=str(tmp_path / "nowhere"))
    with pytest.raises(EmpiricistError, match="lost-unit: .*nowhere has no manifest"):
        run_jobs([lost], cores=1, progress=False)


def test_threads_rule():
    small, big = ModelSize("s", 64, 1, 4), ModelSize("b", 128, 1, 4)
    auto = TrainConfig(threads=-1)
    assert (auto.threads_for(small), auto.threads_for(big)) == (1, 0)
    assert TrainConfig(threads=0).threads_for(small) == 0
    assert TrainConfig(threads=2).threads_for(small) == 2
    with pytest.raises(EmpiricistError, match="threads"):
        TrainConfig(threads=-2)
