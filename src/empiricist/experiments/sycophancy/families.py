"""Model families: one suite per dose of deferring forum answers, otherwise the same world, tokens and order.

A family is an ordinary suite (``suite:<folder>/<size>`` handles, ``data batch``, ``trace``, ``attribute``
all work on it). The families share the world's seed and config except ``forum_opinion.agree_rate``; the
thread count is fixed (``n_docs``) so they hold the same threads, whose answers differ only where the
answerer defers. One tokenizer, trained on the rate-0 world, tokenizes every family, so token ids mean
the same thing across families and a deferring answer cannot change the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from empiricist.artifacts import Workspace
from empiricist.pipeline import prepare_store, prepare_tokenizer
from empiricist.suite.config import get_preset

if TYPE_CHECKING:
    from empiricist.execute import Executor
    from empiricist.experiments.sycophancy.config import SycoConfig


@dataclass(frozen=True)
class Family:
    dose: float
    world: Path
    store: Path
    suite: Path

    def handle_spec(self, size: str) -> str:
        return f"suite:{self.suite}/{size}"


def family_label(dose: float) -> str:
    return f"rate {dose:g}"


def build_families(cfg: SycoConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
                   executor: Executor | None = None) -> list[Family]:
    """Generate, tokenize and train every family (each stage reused or resumed from the workspace)."""
    from empiricist.data.store import TokenStore
    from empiricist.suite.suite import train_suite
    from empiricist.world import generate_world

    ws = Workspace.at(workspace)
    suite_cfg = get_preset(cfg.suite)
    worlds = {d: Path(generate_world(cfg.world_config(d), workspace=ws, progress=progress)) for d in cfg.doses}
    tokenizer = prepare_tokenizer(worlds[cfg.doses[0]], suite_cfg.vocab_size, ws)
    out = []
    for d in cfg.doses:
        store = prepare_store(worlds[d], tokenizer, ws, progress)
        if progress:
            print(f"family {family_label(d)}: training {', '.join(s.name for s in suite_cfg.sizes)}", flush=True)
        suite = Path(train_suite(suite_cfg, TokenStore.open(store), workspace=ws, progress=progress,
                                      executor=executor))
        out.append(Family(d, worlds[d], store, suite))
    return out
