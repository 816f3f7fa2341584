"""Data-parallel training under torchrun (no Ray): two gloo ranks on this machine run the trainer's own
loop on halves of each global batch and log the single-process run's batches and, within the stated
tolerance, its loss. (tests/test_ray.py runs the same on Ray Train across two nodes.)"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from empiricist.data.store import TokenStore
from empiricist.suite.config import get_preset
from empiricist.suite.distributed import LOSS_TOLERANCE, DataParallel
from empiricist.suite.suite import train_suite

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))

RANK = textwrap.dedent("""
    import sys
    import torch.distributed as dist
    from pathlib import Path
    from empiricist.data.order import TrainingOrder
    from empiricist.data.store import TokenStore
    from empiricist.suite.distributed import DataParallel
    from empiricist.suite.suite import Suite
    from empiricist.suite.train import train_model

    dist.init_process_group("gloo")
    suite, store = Suite(sys.argv[1]), TokenStore.open(sys.argv[2])
    order = TrainingOrder.load(suite.path / "order", store)
    size = suite.config.sizes[0]
    train_model(suite.path / "models" / size.name, size, suite.config.train, order, store.vocab_size,
                tokenizer_path=Path(store.tokenizer_path), progress=False, parallel=DataParallel.current())
    dist.destroy_process_group()
""")


def _log(suite: Path) -> list[dict]:
    return [json.loads(line) for line in (suite / "models" / "t1" / "loss.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_torchrun_ranks_see_the_single_process_batches(small_store, tmp_path):
    store = TokenStore.open(small_store)
    cfg = get_preset("tiny")
    cfg = dataclasses.replace(cfg, sizes=cfg.sizes[:1], train=dataclasses.replace(cfg.train, steps=20, threads=1))
    one = train_suite(cfg, store, tmp_path / "one", progress=False)
    two = tmp_path / "two"  # the same suite folder and order, no model yet
    shutil.copytree(one, two, ignore=shutil.ignore_patterns("models", "manifest.json"))
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    done = subprocess.run([TORCHRUN, "--standalone", "--nproc-per-node=2", str(script), str(two), str(small_store)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = _log(one), _log(two)
    assert [r["step"] for r in b] == [5, 10, 15, 20]
    assert [r["batch_sha256"] for r in a] == [r["batch_sha256"] for r in b]
    assert abs(a[-1]["loss"] - b[-1]["loss"]) <= LOSS_TOLERANCE
    manifest = json.loads((two / "models" / "t1" / "manifest.json").read_text())
    assert manifest["info"]["data_parallel"] == 2


def test_a_rank_takes_its_rows_and_a_batch_that_does_not_split_is_refused():
    import torch

    from empiricist.errors import InputError

    batch = torch.arange(24).view(8, 3)
    parts = [DataParallel(r, 4).shard(batch) for r in range(4)]
    assert torch.equal(torch.cat(parts), batch) and parts[1].tolist() == [[6, 7, 8], [9, 10, 11]]
    with pytest.raises(InputError, match="batch size 8 does not split over 3"):
        DataParallel(0, 3).shard(batch)
