"""Model families: one suite per dose of deferring forum answers, otherwise the same world, tokens and order.

A family is an ordinary suite (``suite:<folder>/<size>`` handles, ``data batch``, ``trace``, ``attribute``
all work on it). The families share the world's seed and config except ``forum_opinion.agree_rate``; the
thread count is fixed (``n_docs``) so they hold the same threads, whose answers differ only where the
answerer defers. ``pipeline.build_families`` trains them (one tokenizer, trained on the rate-0 world).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from empiricist.pipeline import Family
from empiricist.pipeline import build_families as _build

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.execute import Executor
    from empiricist.experiments.sycophancy.config import SycoConfig

__all__ = ["Family", "build_families", "family_label"]


def family_label(dose: float) -> str:
    return f"rate {dose:g}"


def build_families(cfg: SycoConfig, workspace: Workspace | str | Path | None = None, progress: bool = True,
                   executor: Executor | None = None) -> list[Family]:
    """Generate, tokenize and train every family (each stage reused or resumed from the workspace)."""
    return _build([(d, cfg.world_config(d)) for d in cfg.doses], cfg.suite, workspace, progress, executor)
